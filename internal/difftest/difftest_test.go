package difftest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// TestDifferential loads the dataset into a plain database (the oracle) and,
// through pgshard, into every layout, runs the corpus and the generated
// queries on both and fails when pgshard answers any query wrongly or fails
// with an error other than a 0A000 refusal (or when the oracle rejects a
// query: a corpus bug). With -short it runs one layout (16 shards × 2).
//
// DIFFTEST_LAYOUTS="1x1,3x2/default_query_exec_mode=simple_protocol" picks
// other layouts (SHARDSxREPLICAS[/DSN options]); DIFFTEST_VERBOSE=1 also
// logs every query's outcome per layout.
func TestDifferential(t *testing.T) {
	layouts := DefaultLayouts
	if testing.Short() {
		layouts = []Layout{{Shards: 16, Replicas: 2}}
	}
	if s := os.Getenv("DIFFTEST_LAYOUTS"); s != "" {
		layouts = parseLayouts(t, s)
	}
	c := pgtest.StartTB(t, 5)
	// A hang detector, not a speed target: the 8 layouts take 10-15 minutes
	// under -race on 2 busy cores.
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	// First prove that the harness tells every outcome apart, on a shard
	// tampered with behind pgshard's back.
	if !t.Run("harness detects a tampered shard", func(t *testing.T) { testHarnessDetectsTampering(ctx, t, c) }) {
		t.FailNow()
	}
	start := time.Now()
	rep, err := Run(ctx, Config{
		Nodes:      c.Nodes,
		Layouts:    layouts,
		Seed:       20240601,
		CorpusFile: "../../testdata/differential/queries.sql",
		Generated:  200,
		Logf: func(f string, a ...any) {
			t.Logf("[%s] "+f, append([]any{time.Since(start).Round(time.Second)}, a...)...)
		},
	})
	if rep != nil {
		t.Log("\n" + rep.String())
		if os.Getenv("DIFFTEST_VERBOSE") != "" {
			t.Log("\n" + rep.Outcomes())
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.CorpusQueries < 300 {
		t.Errorf("the corpus has %d queries, want at least 300", rep.CorpusQueries)
	}
	if len(rep.CorpusBugs) > 0 {
		t.Errorf("the oracle rejected %d queries: fix the corpus", len(rep.CorpusBugs))
	}
	c2 := rep.Counts()
	if c2[Wrong] > 0 || c2[Error] > 0 {
		t.Errorf("pgshard answered %d query×layout pairs wrongly and failed %d with errors other than 0A000 refusals (see the report above)", c2[Wrong], c2[Error])
	}
}

func parseLayouts(t *testing.T, s string) []Layout {
	var out []Layout
	for _, part := range strings.Split(s, ",") {
		spec, options, _ := strings.Cut(strings.TrimSpace(part), "/")
		a, b, ok := strings.Cut(spec, "x")
		shards, err1 := strconv.Atoi(a)
		replicas, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("DIFFTEST_LAYOUTS: bad layout %q (want SHARDSxREPLICAS[/DSN options])", part)
		}
		out = append(out, Layout{Shards: shards, Replicas: replicas, Options: options})
	}
	return out
}

// TestCorpusParses checks the corpus file without a server: names unique,
// every entry has SQL, at least 300 entries, and the generator is
// deterministic.
func TestCorpusParses(t *testing.T) {
	qs, err := LoadCorpus("../../testdata/differential/queries.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 300 {
		t.Errorf("%d queries, want at least 300", len(qs))
	}
	a, b := GenerateQueries(7, 50), GenerateQueries(7, 50)
	for i := range a {
		if a[i].SQL != b[i].SQL {
			t.Fatalf("generator is not deterministic: %q vs %q", a[i].SQL, b[i].SQL)
		}
	}
}

func TestCompare(t *testing.T) {
	ns := func(vals ...string) []sql.NullString {
		out := make([]sql.NullString, len(vals))
		for i, v := range vals {
			if v != "NULL" {
				out[i] = sql.NullString{String: v, Valid: true}
			}
		}
		return out
	}
	want := &Result{Columns: []string{"a", "f"}, Types: []string{"TEXT", "FLOAT8"},
		Rows: [][]sql.NullString{ns("x", "1.0000000000001"), ns("y", "NULL"), ns("x", "2")}}
	cases := []struct {
		name    string
		rows    [][]sql.NullString
		ordered bool
		equal   bool
	}{
		{"same", want.Rows, true, true},
		{"permuted multiset", [][]sql.NullString{ns("x", "2"), ns("y", "NULL"), ns("x", "1.0000000000001")}, false, true},
		{"permuted ordered", [][]sql.NullString{ns("x", "2"), ns("y", "NULL"), ns("x", "1.0000000000001")}, true, false},
		{"float within tolerance", [][]sql.NullString{ns("x", "1.0000000000002"), ns("y", "NULL"), ns("x", "2")}, true, true},
		{"float beyond tolerance", [][]sql.NullString{ns("x", "1.00000001"), ns("y", "NULL"), ns("x", "2")}, true, false},
		{"NULL vs empty", [][]sql.NullString{ns("x", "1.0000000000001"), ns("y", ""), ns("x", "2")}, true, false},
		{"missing row", [][]sql.NullString{ns("x", "2"), ns("y", "NULL")}, false, false},
		{"duplicate instead", [][]sql.NullString{ns("x", "2"), ns("x", "2"), ns("y", "NULL")}, false, false},
	}
	for _, c := range cases {
		got := &Result{Columns: want.Columns, Types: want.Types, Rows: c.rows}
		why := Compare(want, got, c.ordered)
		if (why == "") != c.equal {
			t.Errorf("%s: Compare = %q, want equal=%v", c.name, why, c.equal)
		}
	}
	// Text columns compare exactly, whatever they look like.
	tw := &Result{Columns: []string{"t"}, Types: []string{"TEXT"}, Rows: [][]sql.NullString{ns("1.0000000000001")}}
	tg := &Result{Columns: []string{"t"}, Types: []string{"TEXT"}, Rows: [][]sql.NullString{ns("1.0000000000002")}}
	if Compare(tw, tg, true) == "" {
		t.Error("text values compared with a tolerance")
	}
}

func TestParseCorpusDirectives(t *testing.T) {
	qs, err := ParseCorpus(`
-- a comment
-- name: one
-- ordered
-- args: 42, 'it''s, here', NULL, true, 1.5, ts:2024-01-01T05:00:00.5Z, date:2024-04-03
SELECT $1::bigint, $2::text;

-- name: two
SELECT 1
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || !qs[0].Ordered || qs[1].Ordered || qs[1].SQL != "SELECT 1" {
		t.Fatalf("got %+v", qs)
	}
	want := []any{int64(42), "it's, here", nil, true, 1.5,
		time.Date(2024, 1, 1, 5, 0, 0, 500_000_000, time.UTC), time.Date(2024, 4, 3, 0, 0, 0, 0, time.UTC)}
	if len(qs[0].Args) != len(want) {
		t.Fatalf("args %v", qs[0].Args)
	}
	for i := range want {
		if w, ok := want[i].(time.Time); ok {
			if g, ok := qs[0].Args[i].(time.Time); !ok || !g.Equal(w) {
				t.Fatalf("arg %d = %#v, want %v", i, qs[0].Args[i], w)
			}
			continue
		}
		if qs[0].Args[i] != want[i] {
			t.Fatalf("arg %d = %#v, want %#v", i, qs[0].Args[i], want[i])
		}
	}
}

// testHarnessDetectsTampering loads a small dataset into one layout, then
// changes its shards directly on the workers (a deleted row, a changed
// value, a renamed column on one shard) and checks that Run classifies each
// query as it must: wrong, error, refused or equal.
func testHarnessDetectsTampering(ctx context.Context, t *testing.T, c *pgtest.Cluster) {
	want := map[string]Outcome{}
	var queries []Query
	add := func(name string, o Outcome, ordered bool, sql string) {
		queries = append(queries, Query{Name: name, SQL: sql, Ordered: ordered})
		want[name] = o
	}
	add("deleted_row_count", Wrong, false, "SELECT count(*) FROM people")
	add("deleted_row_lookup", Wrong, false, "SELECT id, name FROM people WHERE id = 7")
	add("deleted_row_grouped", Wrong, false, "SELECT dept, count(*) FROM people GROUP BY dept")
	add("deleted_row_ordered", Wrong, true, "SELECT id FROM people WHERE id > 0 ORDER BY id LIMIT 10")
	add("changed_value", Wrong, false, "SELECT name FROM people WHERE id = 9")
	add("renamed_column", Error, false, "SELECT sum(score) FROM people")
	add("not_colocated_locking", Refused, false, "SELECT p.id FROM people p JOIN visits v ON p.id = v.visit_id FOR UPDATE")
	add("untouched_lookup", Equal, false, "SELECT id, name FROM people WHERE id = 10")
	add("untouched_table", Equal, false, "SELECT count(*), sum(amount) FROM visits")
	add("untouched_order", Equal, true, "SELECT id FROM people WHERE id > 10 ORDER BY id LIMIT 10")

	layout := Layout{Shards: 4, Replicas: 2}
	rep, err := Run(ctx, Config{
		Nodes: c.Nodes, Layouts: []Layout{layout}, Seed: 1, People: 500, Visits: 800, Queries: queries,
		AfterLoad: func(ctx context.Context, l Layout, dbname string) error { return tamper(ctx, c, dbname) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Layouts) != 1 || len(rep.CorpusBugs) > 0 {
		t.Fatalf("unexpected report:\n%s", rep)
	}
	for _, f := range rep.Layouts[0].Findings {
		if f.Outcome != want[f.Query.Name] {
			t.Errorf("%s: outcome %s (%s), want %s", f.Query.Name, f.Outcome, f.Why, want[f.Query.Name])
		}
	}
	if !rep.Failed() {
		t.Error("Report.Failed() is false with wrong answers")
	}
	if t.Failed() {
		t.Logf("\n%s", rep)
	}
}

// tamper changes the shards of people directly on the workers: the row with
// id 7 disappears, the name of id 9 changes, and the first shard's column
// score is renamed.
func tamper(ctx context.Context, c *pgtest.Cluster, dbname string) error {
	meta, err := pgx.Connect(ctx, c.Nodes[0].DSN(dbname))
	if err != nil {
		return err
	}
	defer meta.Close(ctx)
	rows, err := meta.Query(ctx, `SELECT s.id, p.node_port FROM pgs_distribution_metadata.shard s
		JOIN pgs_distribution_metadata.shard_placement p ON p.shard_id = s.id
		WHERE s.relation_id = 'people'::regclass ORDER BY s.id, p.id`)
	if err != nil {
		return err
	}
	type placement struct {
		shard int64
		port  int
	}
	var pls []placement
	for rows.Next() {
		var p placement
		if err := rows.Scan(&p.shard, &p.port); err != nil {
			return err
		}
		pls = append(pls, p)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(pls) == 0 {
		return fmt.Errorf("no placements of people")
	}
	for _, p := range pls {
		var node *pgtest.Node
		for _, n := range c.Nodes[1:] {
			if n.Port == p.port {
				node = n
			}
		}
		if node == nil {
			return fmt.Errorf("no worker on port %d", p.port)
		}
		conn, err := pgx.Connect(ctx, node.DSN(dbname))
		if err != nil {
			return err
		}
		table := pgx.Identifier{fmt.Sprintf("people_%d", p.shard)}.Sanitize()
		stmts := []string{
			"DELETE FROM " + table + " WHERE id = 7",
			"UPDATE " + table + " SET name = coalesce(name, '') || 'x' WHERE id = 9",
		}
		if p.shard == pls[0].shard {
			stmts = append(stmts, "ALTER TABLE "+table+" RENAME COLUMN score TO score2")
		}
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				conn.Close(ctx)
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		conn.Close(ctx)
	}
	return nil
}

// TestStorageCheckDetectsStrayRows loads a small layout, then writes
// behind pgshard's back: a row into the template table of people on the
// metadata database, and a deleted row on one placement of a visits shard.
// The storage check must call both tables wrong and the untouched ones
// equal.
func TestStorageCheckDetectsStrayRows(t *testing.T) {
	c := pgtest.StartTB(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	layout := Layout{Shards: 2, Replicas: 2}
	cfg := Config{Nodes: c.Nodes, Layouts: []Layout{layout}, Seed: 3, People: 60, Visits: 80, Keep: true,
		Queries: []Query{{Name: "count", SQL: "SELECT count(*) FROM people"}}}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Layouts[0].Findings {
		if f.Outcome != Equal {
			t.Fatalf("before tampering: %s is %s: %s", f.Query.Name, f.Outcome, f.Why)
		}
	}
	const db = "difftest_s2_r2"
	exec := func(n *pgtest.Node, sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, n.DSN(db))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// A stray row in the template, as a process that predates the
	// template guards could leave (the guard is a trigger; replica mode
	// skips it).
	exec(c.Nodes[0], "SET session_replication_role = replica; INSERT INTO people (id, name) VALUES (424242, 'stray')")
	var shard int64
	var port int
	meta, err := pgx.Connect(ctx, c.Nodes[0].DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close(ctx)
	if err := meta.QueryRow(ctx, `SELECT s.id, p.node_port FROM pgs_distribution_metadata.shard s
		JOIN pgs_distribution_metadata.shard_placement p ON p.shard_id = s.id
		WHERE s.relation_id = 'visits'::regclass ORDER BY s.id, p.id DESC LIMIT 1`).Scan(&shard, &port); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes[1:] {
		if n.Port == port {
			exec(n, fmt.Sprintf("DELETE FROM visits_%d WHERE ctid = (SELECT min(ctid) FROM visits_%d)", shard, shard))
		}
	}
	cfg.defaults()
	findings, err := checkStorage(ctx, &cfg, layout, db, "difftest_oracle_read", Generate(cfg.Seed, cfg.People, cfg.Visits))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"storage:people": "template", "storage:visits": "placements of shard",
		"storage:events": "", "storage:days": "", "storage:stamps": "", "storage:ranks": ""}
	if len(findings) != len(want) {
		t.Fatalf("%d findings, want %d", len(findings), len(want))
	}
	for _, f := range findings {
		w, ok := want[f.Query.Name]
		switch {
		case !ok:
			t.Errorf("unexpected finding %s", f.Query.Name)
		case w == "" && f.Outcome != Equal:
			t.Errorf("%s: %s (%s), want equal", f.Query.Name, f.Outcome, f.Why)
		case w != "" && (f.Outcome != Wrong || !strings.Contains(f.Why, w)):
			t.Errorf("%s: %s (%s), want wrong saying %q", f.Query.Name, f.Outcome, f.Why, w)
		}
	}
}
