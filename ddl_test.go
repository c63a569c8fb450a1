package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// ddlSetup makes the tables of every schema change case, on the plain
// server and through pgshard alike; pgshard then distributes them (4
// shards, 2 replicas, one co-location group).
var ddlSetup = []string{
	`CREATE TABLE parent (k bigint PRIMARY KEY, label text)`,
	`CREATE TABLE t (k bigint NOT NULL, id int NOT NULL, v text, n int, PRIMARY KEY (k, id))`,
}

var ddlDistribute = []string{
	`SELECT master_create_distributed_table('parent', 'k')`,
	`SELECT master_create_worker_shards('parent', 4, 2)`,
	`SELECT master_create_distributed_table('t', 'k')`,
	`SELECT master_create_worker_shards('t', 4, 2)`,
}

func ddlSeed() []string {
	var parents, rows []string
	for k := 1; k <= 10; k++ {
		parents = append(parents, fmt.Sprintf("(%d, 'p%d')", k, k))
		for id := 1; id <= 3; id++ {
			n := "NULL"
			if id < 3 {
				n = fmt.Sprint(k * id)
			}
			rows = append(rows, fmt.Sprintf("(%d, %d, 'v%d_%d', %s)", k, id, k, id, n))
		}
	}
	return []string{
		`INSERT INTO parent (k, label) VALUES ` + strings.Join(parents, ", "),
		`INSERT INTO t (k, id, v, n) VALUES ` + strings.Join(rows, ", "),
	}
}

// ddlCase is a schema change and the statements after it: each runs
// through pgshard and on one plain PostgreSQL database; a SELECT's rows
// (sorted) and every statement's SQLSTATE must be the same. With refused
// set, the last step must fail through pgshard with that SQLSTATE (the
// plain server does not run it), and no template or shard may change.
type ddlCase struct {
	name    string
	steps   []string
	refused string
}

var ddlCases = []ddlCase{
	{name: "add column constant default", steps: []string{
		`ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 7`,
		`SELECT k, id, c FROM t`,
		`INSERT INTO t (k, id, v) VALUES (100, 1, 'new')`,
		`SELECT k, c FROM t WHERE k = 100`,
		`SELECT sum(c) FROM t`,
	}},
	{name: "add column stable default evaluated once", steps: []string{
		`ALTER TABLE t ADD COLUMN created timestamptz NOT NULL DEFAULT now()`,
		`SELECT count(DISTINCT created) FROM t`,
		`INSERT INTO t (k, id) VALUES (101, 1)`,
		`SELECT count(*) FROM t WHERE created IS NULL`,
	}},
	{name: "drop and rename column, change type", steps: []string{
		`ALTER TABLE t DROP COLUMN v`,
		`ALTER TABLE t RENAME COLUMN n TO amount`,
		`ALTER TABLE t ALTER COLUMN amount TYPE bigint`,
		`SELECT k, id, amount FROM t`,
		`INSERT INTO t VALUES (102, 1, 5000000000)`,
		`SELECT * FROM t WHERE k = 102`,
		`SELECT k, sum(amount) FROM t GROUP BY k`,
	}},
	{name: "defaults and not null", steps: []string{
		`ALTER TABLE t ALTER COLUMN v SET DEFAULT 'dflt'`,
		`INSERT INTO t (k, id) VALUES (103, 1)`,
		`SELECT v FROM t WHERE k = 103`,
		`ALTER TABLE t ALTER COLUMN v DROP DEFAULT`,
		`ALTER TABLE t ALTER COLUMN n SET NOT NULL`,
		`DELETE FROM t WHERE n IS NULL`,
		`ALTER TABLE t ALTER COLUMN n SET NOT NULL`,
		`INSERT INTO t (k, id) VALUES (104, 1)`,
		`ALTER TABLE t ALTER COLUMN n DROP NOT NULL`,
		`INSERT INTO t (k, id) VALUES (104, 1)`,
		`SELECT count(*) FROM t`,
	}},
	{name: "check constraint", steps: []string{
		`ALTER TABLE t ADD CHECK (n > 0)`,
		`INSERT INTO t VALUES (105, 1, 'x', -1)`,
		`INSERT INTO t VALUES (105, 1, 'x', 1)`,
		`ALTER TABLE t ADD CONSTRAINT v_short CHECK (length(v) < 10) NOT VALID`,
		`ALTER TABLE t VALIDATE CONSTRAINT v_short`,
		`INSERT INTO t VALUES (105, 2, 'much too long', 1)`,
		`ALTER TABLE t DROP CONSTRAINT t_n_check`,
		`INSERT INTO t VALUES (105, 3, 'x', -1)`,
		`SELECT k, id, n FROM t WHERE k = 105`,
	}},
	{name: "unique and primary key with the key", steps: []string{
		`ALTER TABLE t ADD UNIQUE (k, v)`,
		`INSERT INTO t VALUES (1, 9, 'v1_1', 0)`,
		`ALTER TABLE t DROP CONSTRAINT t_pkey`,
		`ALTER TABLE t ADD PRIMARY KEY (id, k)`,
		`INSERT INTO t VALUES (1, 1, 'other', 0)`,
		`SELECT count(*) FROM t`,
	}},
	{name: "foreign key between co-located tables", steps: []string{
		`ALTER TABLE t ADD FOREIGN KEY (k) REFERENCES parent (k) ON DELETE CASCADE`,
		`INSERT INTO t VALUES (999, 1, 'orphan', 1)`,
		`DELETE FROM parent WHERE k = 2`,
		`SELECT count(*) FROM t WHERE k = 2`,
		`SELECT count(*) FROM t`,
	}},
	{name: "indexes", steps: []string{
		`CREATE INDEX ON t (v)`,
		`CREATE INDEX t_n_idx2 ON t (n) WHERE n > 5`,
		`CREATE UNIQUE INDEX t_k_v ON t (k, v)`,
		`INSERT INTO t VALUES (1, 8, 'v1_1', 0)`,
		`CREATE INDEX IF NOT EXISTS t_n_idx2 ON t (n)`,
		`DROP INDEX t_v_idx`,
		`ALTER INDEX t_n_idx2 RENAME TO t_n_partial`,
		`SELECT k, id FROM t WHERE n > 5`,
	}},
	{name: "indexes concurrently", steps: []string{
		`CREATE INDEX CONCURRENTLY t_v_c ON t (v)`,
		`SELECT count(*) FROM t WHERE v = 'v3_1'`,
		`DROP INDEX CONCURRENTLY t_v_c`,
		`DROP INDEX CONCURRENTLY IF EXISTS t_v_c`,
	}},
	{name: "truncate", steps: []string{
		`TRUNCATE t`,
		`SELECT count(*) FROM t`,
		`INSERT INTO t VALUES (1, 1, 'again', 1)`,
		`TRUNCATE TABLE t, parent`,
		`SELECT count(*) FROM t`,
		`SELECT count(*) FROM parent`,
	}},
	{name: "rename table", steps: []string{
		`ALTER TABLE t RENAME TO renamed`,
		`SELECT count(*) FROM renamed`,
		`INSERT INTO renamed VALUES (106, 1, 'r', 1)`,
		`SELECT k, v FROM renamed WHERE k = 106`,
		`ALTER TABLE renamed RENAME CONSTRAINT t_pkey TO renamed_pk`,
		`INSERT INTO renamed VALUES (106, 1, 'r', 1)`,
	}},
	{name: "rename the distribution column", steps: []string{
		`ALTER TABLE t RENAME COLUMN k TO tenant`,
		`SELECT id, v FROM t WHERE tenant = 4`,
		`INSERT INTO t VALUES (107, 1, 'x', 1)`,
		`SELECT tenant, v FROM t WHERE tenant = 107`,
		`UPDATE t SET v = 'y' WHERE tenant = 107`,
		`SELECT tenant, count(*) FROM t GROUP BY tenant`,
	}},
	{name: "comments", steps: []string{
		`COMMENT ON TABLE t IS 'the t table'`,
		`COMMENT ON COLUMN t.v IS 'a value'`,
		`SELECT obj_description('t'::regclass, 'pg_class'), col_description('t'::regclass, 3)`,
	}},
	{name: "drop table", steps: []string{
		`DROP TABLE t`,
		`SELECT to_regclass('t') IS NULL`,
		`SELECT count(*) FROM parent`,
		`CREATE TABLE t (k bigint PRIMARY KEY)`,
		`INSERT INTO t VALUES (1)`,
		`SELECT count(*) FROM t`,
	}},
	{name: "several changes in one string", steps: []string{
		"ALTER TABLE t ADD COLUMN x int; UPDATE t SET x = n * 2; CREATE INDEX t_x ON t (x)",
		`SELECT k, id, x FROM t WHERE x > 10`,
		"ALTER TABLE t ADD COLUMN y int; ALTER TABLE t ADD COLUMN y int",
		`SELECT count(*) FROM t`,
	}},

	{name: "unique without the key", refused: "0A000", steps: []string{`ALTER TABLE t ADD UNIQUE (v)`}},
	{name: "primary key without the key", refused: "0A000", steps: []string{`ALTER TABLE t DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (id)`}},
	{name: "unique index without the key", refused: "0A000", steps: []string{`CREATE UNIQUE INDEX t_v_key ON t (v)`}},
	{name: "drop the distribution column", refused: "0A000", steps: []string{`ALTER TABLE t DROP COLUMN k`}},
	{name: "retype the distribution column", refused: "0A000", steps: []string{`ALTER TABLE t ALTER COLUMN k TYPE int`}},
	{name: "serial column", refused: "0A000", steps: []string{`ALTER TABLE t ADD COLUMN s bigserial`}},
	{name: "volatile default", refused: "0A000", steps: []string{`ALTER TABLE t ADD COLUMN r float8 DEFAULT random()`}},
	{name: "foreign key off the key", refused: "0A000", steps: []string{`ALTER TABLE t ADD FOREIGN KEY (id) REFERENCES parent (k)`}},
	{name: "foreign key to an ordinary table", refused: "0A000", steps: []string{
		`CREATE TABLE plain (k bigint PRIMARY KEY)`,
		`ALTER TABLE t ADD FOREIGN KEY (k) REFERENCES plain (k)`}},
	{name: "failure in the middle of a string", refused: "42701", steps: []string{
		"ALTER TABLE t ADD COLUMN z int; CREATE INDEX t_z ON t (z); ALTER TABLE t ADD COLUMN z int"}},
}

// TestSchemaChanges runs each case on a fresh cluster database and a plain
// PostgreSQL one: the answers must agree, every finalized placement must
// have the template's definition (columns, defaults, constraints, indexes,
// comments, names extended with the shard id), and replicas the same rows.
// On the old code every case fails at its first step (0A000: DDL on a
// distributed table is refused).
func TestSchemaChanges(t *testing.T) {
	for _, c := range ddlCases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			plain := e.plainDB("", "")
			for _, s := range ddlSetup {
				e.exec(s)
				mustExecDB(t, plain, s)
			}
			for _, s := range ddlDistribute {
				e.exec(s)
			}
			for _, s := range ddlSeed() {
				e.exec(s)
				mustExecDB(t, plain, s)
			}
			before := e.distributedShapes()
			for i, s := range c.steps {
				if c.refused != "" && i == len(c.steps)-1 {
					_, err := e.DB.Exec(s)
					if code := codeOf(err); code != c.refused {
						t.Fatalf("%s: %v (SQLSTATE %q), want %s", s, err, code, c.refused)
					}
					if after := e.distributedShapes(); !reflect.DeepEqual(after, before) {
						t.Fatalf("refused %s changed the definitions:\n%v\nwant\n%v", s, after, before)
					}
					e.assertReplicasIdentical("t")
					return
				}
				if strings.HasPrefix(s, "SELECT") {
					got := sortedRows(t, e.DB, s)
					want := sortedRows(t, plain, s)
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%s:\npgshard %v\nplain   %v", s, got, want)
					}
					continue
				}
				_, gerr := e.DB.Exec(s)
				_, werr := plain.Exec(s)
				if codeOf(gerr) != codeOf(werr) {
					t.Fatalf("%s: pgshard %v, plain %v", s, gerr, werr)
				}
			}
			shapes := e.distributedShapes()
			for table, sh := range shapes {
				if sh == "" {
					t.Fatalf("%s: no shape", table)
				}
				e.assertReplicasIdentical(table)
			}
			if c.name == "drop table" {
				if _, ok := shapes["t"]; ok {
					t.Fatalf("t is still distributed: %v", shapes)
				}
				e.assertNoShardTables("t")
			}
		})
	}
}

func mustExecDB(t testing.TB, db *sql.DB, s string) {
	t.Helper()
	if _, err := db.Exec(s); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
}

func sortedRows(t testing.TB, db *sql.DB, q string) []string {
	t.Helper()
	rows := tableRows(t, db, q)
	slices.Sort(rows)
	return rows
}

// shapeSQL describes relation $1: its columns (type, NOT NULL, default,
// comment), constraints and indexes by name and definition, and its
// comment.
const shapeSQL = `SELECT coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
		CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') ||
		coalesce(' comment ' || col_description(a.attrelid, a.attnum), ''), ', ' ORDER BY a.attnum)
	FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped), '') || ' | ' ||
	coalesce((SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' not valid' END, ', ' ORDER BY conname)
	FROM pg_constraint WHERE conrelid = $1::regclass), '') || ' | ' ||
	coalesce((SELECT string_agg(pg_get_indexdef(i.indexrelid), ', ' ORDER BY c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	WHERE i.indrelid = $1::regclass), '') || ' | ' || coalesce(obj_description($1::regclass, 'pg_class'), '')`

// shardIDs matches the "_<shard id>" pgshard appends to the names of shard
// tables, their constraints and indexes.
var shardIDs = regexp.MustCompile(`_1\d{4,}\b`)

// distributedShapes returns, for every distributed table, its template's
// shape (shapeSQL); it fails the test when a finalized placement's shape,
// shard ids taken out, differs from it.
func (e *env) distributedShapes() map[string]string {
	e.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, table := range tableRows(e.t, e.DB, `SELECT relation_id::regclass::text FROM pgs_distribution_metadata.partition`) {
		var tmpl string
		if err := e.DB.QueryRow(shapeSQL, table).Scan(&tmpl); err != nil {
			e.t.Fatalf("shape of %s: %v", table, err)
		}
		out[table] = tmpl
		for _, p := range e.placements(table) {
			if p.State != 1 {
				continue
			}
			var sh string
			rel := pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize()
			if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, shapeSQL, rel).Scan(&sh); err != nil {
				e.t.Fatalf("shape of shard %d on %s:%d: %v", p.ShardID, p.Host, p.Port, err)
			}
			if got := shardIDs.ReplaceAllString(sh, ""); got != tmpl {
				e.t.Fatalf("shard %d of %s on %s:%d:\n%s\ntemplate:\n%s", p.ShardID, table, p.Host, p.Port, got, tmpl)
			}
		}
	}
	return out
}

// assertNoShardTables fails when a worker still has a table named after
// table's shards.
func (e *env) assertNoShardTables(table string) {
	e.t.Helper()
	for _, w := range e.workers {
		var n int
		if err := e.worker(w).QueryRow(context.Background(), `SELECT count(*) FROM pg_class WHERE relname ~ ('^' || $1 || '_[0-9]+$') AND relkind = 'r'`, table).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		if n != 0 {
			e.t.Fatalf("%s:%d still has %d shard tables of %s", w.Host, w.Port, n, table)
		}
	}
}

// TestSchemaChangeSeenByAnotherProcess: a schema change made through one
// handle (a migration tool) is in force for another handle (the
// application, its own Connector with its own catalog cache and plan
// cache) as soon as the change returns: the application's cached plans of
// the old shape never run. After ADD COLUMN its SELECT * returns the new
// column (its workers' prepared statements are prepared again); after DROP
// COLUMN of the column before the key, its positional INSERT (planned
// before, with the key as the second value) routes each row by its new key.
// On the old code the ALTER TABLE was refused (0A000).
func TestSchemaChangeSeenByAnotherProcess(t *testing.T) {
	e := newEnv(t)
	app, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for round := range 3 {
		tb := fmt.Sprintf("t%d", round)
		q := func(s string) string { return strings.ReplaceAll(s, "t_", tb) }
		e.exec(q(`CREATE TABLE t_ (a int, k bigint NOT NULL, v int)`))
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, tb)
		e.exec(`SELECT master_create_worker_shards($1, 4, 2)`, tb)
		for i := 1; i <= 8; i++ {
			if _, err := app.Exec(q(`INSERT INTO t_ VALUES ($1, $2, $3)`), 0, i, 10*i); err != nil {
				t.Fatal(err)
			}
		}
		if got := tableRows(t, app, q(`SELECT * FROM t_ WHERE k = 1`)); !reflect.DeepEqual(got, []string{"0|1|10"}) {
			t.Fatalf("round %d: before: %v", round, got)
		}
		e.exec(q(`ALTER TABLE t_ ADD COLUMN w int DEFAULT 5`))
		if got := tableRows(t, app, q(`SELECT * FROM t_ WHERE k = 1`)); !reflect.DeepEqual(got, []string{"0|1|10|5"}) {
			t.Fatalf("round %d: after ADD COLUMN: %v", round, got)
		}
		e.exec(q(`ALTER TABLE t_ DROP COLUMN a`))
		for i := 11; i <= 18; i++ {
			// The new shape: (k, v, w).
			if _, err := app.Exec(q(`INSERT INTO t_ VALUES ($1, $2, $3)`), i, 10*i, 100*i); err != nil {
				t.Fatalf("round %d: positional INSERT after DROP COLUMN: %v", round, err)
			}
		}
		for i := 11; i <= 18; i++ {
			if got := tableRows(t, e.DB, q(fmt.Sprintf(`SELECT v, w FROM t_ WHERE k = %d`, i))); !reflect.DeepEqual(got, []string{fmt.Sprintf("%d|%d", 10*i, 100*i)}) {
				t.Fatalf("round %d: key %d read by its shard: %v (the row went to another shard)", round, i, got)
			}
		}
		e.assertReplicasIdentical(tb)
	}
}

// TestSchemaChangeWithAWorkerDown: a schema change that cannot reach one
// worker fails whole: the template and every placement keep their
// definition, no placement is marked inactive, nothing is left prepared;
// once the worker is back the same statement succeeds. On the old code the
// ALTER TABLE was refused (0A000) before anything ran.
func TestSchemaChangeWithAWorkerDown(t *testing.T) {
	e := newEnv(t)
	for _, s := range ddlSetup {
		e.exec(s)
	}
	for _, s := range ddlDistribute {
		e.exec(s)
	}
	for _, s := range ddlSeed() {
		e.exec(s)
	}
	before := e.distributedShapes()
	counts := e.placementCounts("t")
	down := e.workers[len(e.workers)-1]
	ctx := context.Background()
	if err := down.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !down.Running() {
			_ = down.Start(context.Background())
		}
	})
	for _, s := range []string{
		`ALTER TABLE t ADD COLUMN c int DEFAULT 1`,
		`CREATE INDEX t_v ON t (v)`,
		`ALTER TABLE t ADD FOREIGN KEY (k) REFERENCES parent (k)`,
		`DROP TABLE t`,
		`TRUNCATE t`,
		`CREATE INDEX CONCURRENTLY t_n ON t (n)`,
	} {
		if _, err := e.DB.Exec(s); err == nil {
			t.Fatalf("%s with worker %s down succeeded", s, down.Addr())
		}
	}
	if err := down.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if after := e.distributedShapes(); !reflect.DeepEqual(after, before) {
		t.Fatalf("after the failed changes:\n%v\nwant\n%v", after, before)
	}
	if got := e.placementCounts("t"); !reflect.DeepEqual(got, counts) {
		t.Fatalf("rows after the failed changes: %v, want %v", got, counts)
	}
	for _, p := range e.placements("t") {
		if p.State != 1 {
			t.Fatalf("placement %d is in state %d after a failed schema change", p.ID, p.State)
		}
	}
	e.exec(`ALTER TABLE t ADD COLUMN c int DEFAULT 1`)
	if sh := e.distributedShapes()["t"]; !strings.Contains(sh, "c integer default 1") {
		t.Fatalf("after the worker came back: %s", sh)
	}
	e.assertReplicasIdentical("t")
}
