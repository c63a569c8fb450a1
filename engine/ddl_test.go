package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// metaTable is a distributed table with real metadata: its template and
// pgs_distribution_metadata rows in database metaDB of the cluster's
// first server (the metadata database of these tests), its shard tables
// made from the template's definition on both servers.
type metaTable struct {
	meta  *pgx.Conn
	name  string
	relid uint32
}

// metaDB is the metadata database of the schema change tests.
const metaDB = "ddlmeta"

// newMetaTable creates table name (k bigint PRIMARY KEY, v text) with shards
// shards of replicas placements, replica j of shard i on server (i+j) mod
// 2, each shard holding the rows k = 1..8 that hash to it.
func newMetaTable(t *testing.T, name string, shards, replicas int) *metaTable {
	t.Helper()
	ctx := context.Background()
	// The metadata database is one of its own: the event trigger of the
	// metadata schema (a version bump on every ALTER TABLE) must not fire
	// on the shard tables.
	admin, err := pgx.Connect(ctx, Servers().Nodes[0].DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+metaDB); err != nil && sqlerr.Code(err) != "42P04" {
		t.Fatal(err)
	}
	meta, err := pgx.Connect(ctx, Servers().Nodes[0].DSN(metaDB))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close(context.Background()) })
	if err := catalog.EnsureSchema(ctx, meta); err != nil {
		t.Fatal(err)
	}
	mustMeta := func(sql string, args ...any) {
		t.Helper()
		if _, err := meta.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustMeta(`CREATE TABLE ` + name + ` (k bigint PRIMARY KEY, v text)`)
	dt := &metaTable{meta: meta, name: name}
	if err := meta.QueryRow(ctx, `SELECT $1::regclass::oid`, name).Scan(&dt.relid); err != nil {
		t.Fatal(err)
	}
	mustMeta(`INSERT INTO pgs_distribution_metadata.partition VALUES ($1, 'h', 'k')`, dt.relid)
	ddl, err := catalog.ReadTemplateDDL(ctx, meta, dt.relid)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < shards; i++ {
		lo, hi := catalog.HashRange(i, shards)
		var id int64
		if err := meta.QueryRow(ctx, `INSERT INTO pgs_distribution_metadata.shard (relation_id, storage, min_value, max_value) VALUES ($1, 't', $2, $3) RETURNING id`,
			dt.relid, fmt.Sprint(lo), fmt.Sprint(hi)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < replicas; j++ {
			n := Servers().Nodes[(i+j)%len(Servers().Nodes)]
			mustMeta(`INSERT INTO pgs_distribution_metadata.shard_placement (shard_id, shard_state, node_name, node_port) VALUES ($1, 1, $2, $3)`, id, n.Host, n.Port)
			node := catalog.Node{Name: n.Host, Port: n.Port}
			for _, s := range ddl.ShardStatements(id) {
				ExecOn(t, node, s)
			}
			for k := 1; k <= 8; k++ {
				h, err := catalog.Hash(20, int64(k))
				if err != nil {
					t.Fatal(err)
				}
				if h >= lo && h <= hi {
					ExecOn(t, node, fmt.Sprintf(`INSERT INTO %s VALUES (%d, 'v%d')`, ddl.ShardTableIdentifier(id), k, k))
				}
			}
		}
	}
	return dt
}

// plan plans sql against the metadata as it is now.
func (dt *metaTable) plan(t *testing.T, sql string) (*planner.Plan, *catalog.Table) {
	t.Helper()
	snap, err := catalog.Load(context.Background(), dt.meta)
	if err != nil {
		t.Fatal(err)
	}
	p, err := planner.New(sql, snap, testEnv{})
	if err != nil {
		t.Fatalf("planning %s: %v", sql, err)
	}
	return p, snap.TableByRelation(dt.relid)
}

// columns returns the columns of relation rel on the server of node (the
// metadata database for the template), "" when the relation does not
// exist.
func columnsOn(t *testing.T, node catalog.Node, rel string) string {
	t.Helper()
	dsn := DSNOf(node)
	if node.Port == 0 {
		dsn = Servers().Nodes[0].DSN(metaDB)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var cols *string
	if err := conn.QueryRow(context.Background(), `SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`, rel).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	if cols == nil {
		return ""
	}
	return *cols
}

// TestDDL: a schema change reaches the template and every finalized
// placement in one atomic statement, the metadata locked and read inside
// it; an inactive placement is left for its repair; a placement that fails
// leaves the template and every other placement as they were.
func TestDDL(t *testing.T) {
	ctx := context.Background()
	dt := newMetaTable(t, "ddl_kv", 2, 2)
	var metaNode catalog.Node // the metadata database (columnsOn)

	p, tbl := dt.plan(t, `ALTER TABLE ddl_kv ADD COLUMN c int NOT NULL DEFAULT 3`)
	if got := Tree(planner.Build(p)); got != "DDL" {
		t.Fatalf("tree %s, want DDL", got)
	}
	vc := &testCursor{meta: dt.meta}
	if _, err := planner.Build(p).Exec(ctx, vc, nil); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range tbl.Shards {
		for _, pl := range s.Placements {
			want = append(want, fmt.Sprintf("write placement %d on %s", s.ID, pl.Node))
			if got := columnsOn(t, pl.Node, tbl.ShardTableName(s.ID)); got != "k,v,c" {
				t.Fatalf("shard %d on %s has columns %s", s.ID, pl.Node, got)
			}
		}
	}
	log := vc.calls()
	for _, w := range append(want, "atomically ") {
		if !slices.Contains(log, w) {
			t.Fatalf("log %v lacks %q", log, w)
		}
	}
	if !slices.ContainsFunc(log, func(l string) bool { return strings.HasPrefix(l, "schema changed ") }) {
		t.Fatalf("log %v: the catalog was not told", log)
	}
	if got := columnsOn(t, metaNode, "ddl_kv"); got != "k,v,c" {
		t.Fatalf("template has columns %s", got)
	}

	// An inactive placement gets no statement.
	inactive := tbl.Shards[0].Placements[1]
	if _, err := dt.meta.Exec(ctx, `UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, inactive.ID); err != nil {
		t.Fatal(err)
	}
	p, tbl = dt.plan(t, `ALTER TABLE ddl_kv ADD COLUMN d text`)
	vc = &testCursor{meta: dt.meta}
	if _, err := planner.Build(p).Exec(ctx, vc, nil); err != nil {
		t.Fatal(err)
	}
	if got := columnsOn(t, inactive.Node, tbl.ShardTableName(inactive.ShardID)); got != "k,v,c" {
		t.Fatalf("inactive placement has columns %s", got)
	}
	if slices.Contains(vc.calls(), fmt.Sprintf("write placement %d on %s", inactive.ShardID, inactive.Node)) {
		t.Fatalf("log %v: the inactive placement was written", vc.calls())
	}
	if _, err := dt.meta.Exec(ctx, `UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 1 WHERE id = $1`, inactive.ID); err != nil {
		t.Fatal(err)
	}
	ExecOn(t, inactive.Node, `ALTER TABLE `+tbl.ShardTableName(inactive.ShardID)+` ADD COLUMN d text`)

	// A placement that fails: nothing anywhere.
	last := tbl.Shards[len(tbl.Shards)-1]
	bad := last.Placements[len(last.Placements)-1]
	ExecOn(t, bad.Node, `ALTER TABLE `+tbl.ShardTableName(bad.ShardID)+` ADD COLUMN e int`)
	p, tbl = dt.plan(t, `ALTER TABLE ddl_kv ADD COLUMN e int`)
	vc = &testCursor{meta: dt.meta}
	_, err := planner.Build(p).Exec(ctx, vc, nil)
	if sqlerr.Code(err) != "42701" {
		t.Fatalf("adding a column one placement has: %v, want 42701", err)
	}
	if got := columnsOn(t, metaNode, "ddl_kv"); got != "k,v,c,d" {
		t.Fatalf("template has columns %s after the failure", got)
	}
	for _, s := range tbl.Shards {
		for _, pl := range s.Placements {
			if pl == bad {
				continue
			}
			if got := columnsOn(t, pl.Node, tbl.ShardTableName(s.ID)); got != "k,v,c,d" {
				t.Fatalf("shard %d on %s has columns %s after the failure", s.ID, pl.Node, got)
			}
		}
	}

	// Describe lists every shard's statement.
	var d Description
	if err := planner.Build(p).Describe(ctx, vc, nil, &d); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(d.Lines, "\n")
	for _, s := range tbl.Shards {
		if w := fmt.Sprintf("SQL: ALTER TABLE public.%s ADD COLUMN e int", tbl.ShardTableName(s.ID)); !strings.Contains(text, w) {
			t.Fatalf("Describe:\n%s\nlacks %q", text, w)
		}
	}
}

// TestDDLConcurrently: CREATE INDEX CONCURRENTLY runs placement by
// placement, outside a transaction (no "atomically" in the log); when one
// placement fails, the index is dropped again everywhere.
func TestDDLConcurrently(t *testing.T) {
	ctx := context.Background()
	dt := newMetaTable(t, "ddl_conc", 2, 2)
	p, tbl := dt.plan(t, `CREATE UNIQUE INDEX CONCURRENTLY ddl_conc_kv ON ddl_conc (k, v)`)
	vc := &testCursor{meta: dt.meta}
	if _, err := planner.Build(p).Exec(ctx, vc, nil); err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(vc.calls(), func(l string) bool { return strings.HasPrefix(l, "atomically") }) {
		t.Fatalf("log %v: CONCURRENTLY ran in a transaction", vc.calls())
	}
	for _, s := range tbl.Shards {
		for _, pl := range s.Placements {
			if got := columnsOn(t, pl.Node, "ddl_conc_kv_"+fmt.Sprint(s.ID)); got != "k,v" {
				t.Fatalf("index of shard %d on %s: %q", s.ID, pl.Node, got)
			}
		}
	}
	last := tbl.Shards[len(tbl.Shards)-1]
	bad := last.Placements[len(last.Placements)-1]
	// A row only the last placement has, whose expression below divides
	// by zero there.
	ExecOn(t, bad.Node, `INSERT INTO `+tbl.ShardTableName(bad.ShardID)+` (k, v) VALUES (1000, 'dup')`)
	p, tbl = dt.plan(t, `CREATE INDEX CONCURRENTLY ddl_conc_expr ON ddl_conc ((1 / (length(v) - 3)))`)
	_, err := planner.Build(p).Exec(ctx, &testCursor{meta: dt.meta}, nil)
	if err == nil || !strings.Contains(err.Error(), "dropped again") {
		t.Fatalf("an index whose build fails on one placement: %v", err)
	}
	var metaNode catalog.Node // the metadata database (columnsOn)
	if got := columnsOn(t, metaNode, "ddl_conc_expr"); got != "" {
		t.Fatalf("the template keeps the index (%s)", got)
	}
	for _, s := range tbl.Shards {
		for _, pl := range s.Placements {
			if got := columnsOn(t, pl.Node, "ddl_conc_expr_"+fmt.Sprint(s.ID)); got != "" {
				t.Fatalf("shard %d on %s keeps the index (%s)", s.ID, pl.Node, got)
			}
		}
	}
}
