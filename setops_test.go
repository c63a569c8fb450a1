package pgshard_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/pgshard/pgshard"
)

// TestSetOperationsAcrossShards runs UNION, INTERSECT and EXCEPT (ALL or
// not) over distributed tables, at the top level with ORDER BY and LIMIT
// over the result and inside FROM subqueries, IN subqueries and CTEs, and
// compares every answer with the same statement on ordinary tables of the
// same rows (duplicates and NULLs included, which INTERSECT ALL and EXCEPT
// ALL count). EXPLAIN names the strategy; the memory bound fails a
// statement cleanly.
func TestSetOperationsAcrossShards(t *testing.T) {
	e := setupKV(t, 8, 2)
	e.exec(`CREATE TABLE kv2 (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	e.exec(`SELECT master_create_distributed_table('kv2', 'k')`)
	e.exec(`SELECT master_create_worker_shards('kv2', 4, 1)`) // another co-location group
	e.exec(`CREATE TABLE kvc (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	e.exec(`SELECT master_create_distributed_table('kvc', 'k')`)
	e.exec(`SELECT master_create_worker_shards('kvc', 8, 2)`) // co-located with kv
	e.exec(`CREATE TABLE plain_kvc (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	for _, table := range []string{"kvc", "plain_kvc"} {
		e.exec(`INSERT INTO ` + table + ` (k, v, n) SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'v' || (i % 13) END, i % 4 FROM generate_series(100, 350) i`)
	}
	e.exec(`CREATE TABLE plain_kv (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	e.exec(`CREATE TABLE plain_kv2 (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	for _, table := range []string{"kv", "plain_kv"} {
		// v repeats (duplicates across shards) and is NULL for every 11th k.
		e.exec(`INSERT INTO ` + table + ` (k, v, n) SELECT i, CASE WHEN i % 11 = 0 THEN NULL ELSE 'v' || (i % 13) END, i % 7 FROM generate_series(1, 300) i`)
	}
	for _, table := range []string{"kv2", "plain_kv2"} {
		e.exec(`INSERT INTO ` + table + ` (k, v, n) SELECT i, CASE WHEN i % 5 = 0 THEN NULL ELSE 'v' || (i % 17) END, i % 3 FROM generate_series(150, 400) i`)
	}
	for _, c := range []struct {
		q    string
		args []any
	}{
		{q: `SELECT v FROM kv UNION SELECT v FROM kv2 ORDER BY v NULLS FIRST`},
		{q: `SELECT v FROM kv UNION ALL SELECT v FROM kv2 ORDER BY v, 1 LIMIT 40`},
		{q: `SELECT v, n FROM kv INTERSECT SELECT v, n FROM kv2 ORDER BY 1, 2`},
		{q: `SELECT v, n FROM kv INTERSECT ALL SELECT v, n FROM kv2 ORDER BY 1, 2`},
		{q: `SELECT v FROM kv EXCEPT SELECT v FROM kv2 ORDER BY 1`},
		{q: `SELECT v, n FROM kv EXCEPT ALL SELECT v, n FROM kv2 ORDER BY 1, 2`},
		{q: `SELECT n FROM kv2 EXCEPT ALL SELECT n FROM kv WHERE k < $1 ORDER BY 1`, args: []any{200}},
		{q: `SELECT k FROM kv WHERE k = $1 UNION ALL SELECT k FROM kv WHERE k = $2 ORDER BY 1`, args: []any{3, 250}},
		{q: `SELECT k, v FROM kv WHERE k = 7 UNION SELECT k, v FROM kv2 WHERE k = 7 UNION SELECT k, v FROM kv WHERE k = 8 ORDER BY 1, 2`},
		{q: `(SELECT k FROM kv ORDER BY k DESC LIMIT 5) UNION ALL (SELECT k FROM kv2 ORDER BY k LIMIT 5) ORDER BY 1`},
		{q: `SELECT k FROM kv UNION SELECT k FROM kv2 EXCEPT SELECT n FROM kv ORDER BY 1 LIMIT 10 OFFSET 100`},
		{q: `SELECT 'x' AS tag, count(*) FROM kv UNION ALL SELECT 'y', count(*) FROM kv2 ORDER BY 1`},
		{q: `SELECT count(*), count(v), count(DISTINCT v) FROM (SELECT v FROM kv INTERSECT ALL SELECT v FROM kv2) s`},
		{q: `SELECT x.k, x.v FROM kv x JOIN (SELECT v FROM kv2 WHERE n = 1 EXCEPT SELECT v FROM kv WHERE n = 2) s ON s.v = x.v ORDER BY 1`},
		{q: `SELECT k, n FROM kv WHERE v IN (SELECT v FROM kv2 WHERE k > $1 INTERSECT SELECT v FROM kv) ORDER BY k`, args: []any{390}},
		{q: `WITH u AS (SELECT k FROM kv UNION SELECT k FROM kv2) SELECT count(*), min(k), max(k) FROM u`},
		{q: `SELECT k, v FROM kv UNION SELECT k, v FROM kvc`},
		{q: `SELECT k, v FROM kv UNION ALL SELECT k, v FROM kvc WHERE n = $1`, args: []any{2}},
		{q: `SELECT * FROM kv INTERSECT SELECT * FROM kvc`},
		{q: `SELECT v, k FROM kv WHERE n < 3 INTERSECT ALL SELECT v, k FROM kvc EXCEPT ALL SELECT v, k FROM kvc WHERE k % 3 = 0`},
		{q: `SELECT k, v FROM kv EXCEPT SELECT n, v FROM kvc ORDER BY 1, 2`},
		{q: `SELECT k, v FROM kvc UNION SELECT k, v FROM kv ORDER BY 2, 1 LIMIT 7`},
		{q: `SELECT v, n FROM kv UNION ALL SELECT v, n FROM kv2 WHERE k > $1 UNION ALL SELECT v, n FROM kvc`, args: []any{390}},
		{q: `SELECT k FROM kv WHERE n = 1 UNION ALL SELECT n FROM kv2`},
		// Untyped literals in an arm take the type of the other arms' column.
		{q: `SELECT NULL AS x, v FROM kv WHERE k < 5 UNION SELECT k, v FROM kv2 WHERE k < 155 ORDER BY 1 NULLS FIRST, 2`},
		{q: `SELECT '7' AS x FROM kv WHERE k < 3 UNION ALL SELECT k FROM kv2 WHERE k < 152 ORDER BY 1`},
		{q: `WITH u (key) AS (SELECT k FROM kv WHERE n = 3 INTERSECT SELECT k FROM kv2) SELECT key FROM u ORDER BY key DESC LIMIT 3`},
	} {
		t.Run(c.q, func(t *testing.T) {
			want := queryText(t, e.DB, strings.NewReplacer("kv2", "plain_kv2", "kvc", "plain_kvc", "kv", "plain_kv").Replace(c.q), c.args...)
			got := queryText(t, e.DB, c.q, c.args...)
			if !strings.Contains(c.q, "ORDER BY") {
				want, got = sortedLines(want), sortedLines(got)
			}
			if got != want {
				t.Fatalf("pgshard:\n%s\nsingle PostgreSQL:\n%s", got, want)
			}
		})
	}

	for _, c := range []struct{ q, want string }{
		{`EXPLAIN SELECT v FROM kv INTERSECT ALL SELECT v FROM kv2 ORDER BY 1 LIMIT 3`, "pgshard: Materialize: 2 subqueries run first"},
		{`EXPLAIN SELECT v FROM kv INTERSECT ALL SELECT v FROM kv2 ORDER BY 1 LIMIT 3`, `then: SELECT * FROM "subquery 1" INTERSECT ALL SELECT * FROM "subquery 2" ORDER BY 1 LIMIT 3`},
		// Co-located arms selecting the key in the same column: pushed down.
		{`EXPLAIN SELECT k, v FROM kv EXCEPT SELECT k, v FROM kvc`, "pgshard: Scatter over 8 of 8 shards of kv"},
		{`EXPLAIN SELECT k, v FROM kv EXCEPT SELECT k, v FROM kvc`, "EXCEPT SELECT k, v FROM kvc_"},
		// A UNION ALL of arms of the same types: streamed arm by arm.
		{`EXPLAIN SELECT v, n FROM kv UNION ALL SELECT v, n FROM kv2`, "pgshard: Concatenate: UNION ALL of 2 arms"},
		// Of different types (bigint, integer): each arm runs first.
		{`EXPLAIN SELECT k FROM kv UNION ALL SELECT n FROM kv2`, "pgshard: Materialize: 2 subqueries run first"},
		// Not the key in the same column: each arm runs first.
		{`EXPLAIN SELECT k, v FROM kv EXCEPT SELECT n, v FROM kvc`, "pgshard: Materialize: 2 subqueries run first"},
	} {
		if got := strings.Join(queryLines(t, e, c.q), "\n"); !strings.Contains(got, c.want) {
			t.Errorf("%s: want %q in\n%s", c.q, c.want, got)
		}
	}

	// Inside a transaction the arms take turns on its connections.
	tx, err := e.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM (SELECT v FROM kv UNION ALL SELECT v FROM kv2) s`).Scan(&n); err != nil || n != 551 {
		t.Fatalf("count = %d, %v; want 551", n, err)
	}
	rows, err := tx.Query(`SELECT v, n FROM kv UNION ALL SELECT v, n FROM kv2`)
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil || n != 551 {
		t.Fatalf("%d rows, %v; want 551", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	restore := pgshard.SetMaxMaterializedBytes(1000)
	defer restore()
	_, err = e.DB.Query(`SELECT v FROM kv UNION SELECT v FROM kv2`)
	expectError(t, err, "54000", "returned more than")
	// A UNION ALL streamed arm by arm holds nothing: the bound does not apply.
	if got := len(strings.Split(strings.TrimSpace(queryText(t, e.DB, `SELECT v, n FROM kv UNION ALL SELECT v, n FROM kv2`)), "\n")); got != 1+551 {
		t.Fatalf("%d lines, want a header and 551 rows", got)
	}
}

// sortedLines is s with its lines sorted, for rows in no particular order.
func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
