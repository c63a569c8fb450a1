package pgshard_test

import (
	"strings"
	"testing"

	"github.com/pgshard/pgshard"
)

// TestMaterializedSubqueries runs statements whose subqueries need all of a
// distributed table's rows (LIMIT, GROUP BY, DISTINCT inside them): each
// such subquery runs first through pgshard, the rest over its rows. Their
// answers are compared with the same statements on an ordinary table (the
// differential oracle covers many more); the memory bound fails a statement
// cleanly; EXPLAIN shows the subqueries.
func TestMaterializedSubqueries(t *testing.T) {
	e := setupKV(t, 8, 2)
	e.exec(`CREATE TABLE plain_kv (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	for _, table := range []string{"kv", "plain_kv"} {
		e.exec(`INSERT INTO ` + table + ` (k, v, n) SELECT i, 'v' || (i % 37), i % 7 FROM generate_series(1, 2000) i`)
	}
	for _, c := range []struct {
		q    string
		args []any
	}{
		{q: `SELECT count(*), sum(k) FROM (SELECT k FROM %s ORDER BY k DESC LIMIT 100) s`},
		{q: `WITH g AS (SELECT n, count(*) AS c, max(v) AS m FROM %s GROUP BY n) SELECT * FROM g WHERE c > $1 ORDER BY n`, args: []any{200}},
		{q: `SELECT count(*) FROM (SELECT DISTINCT v FROM %s WHERE n = $1) d`, args: []any{3}},
		{q: `WITH top AS (SELECT k FROM %s ORDER BY v DESC, k LIMIT 5) SELECT x.k, x.v FROM %s x JOIN top USING (k) ORDER BY x.k`},
	} {
		t.Run(c.q, func(t *testing.T) {
			want := queryText(t, e.DB, strings.ReplaceAll(c.q, "%s", "plain_kv"), c.args...)
			if got := queryText(t, e.DB, strings.ReplaceAll(c.q, "%s", "kv"), c.args...); got != want {
				t.Fatalf("pgshard:\n%s\nsingle PostgreSQL:\n%s", got, want)
			}
		})
	}

	got := strings.Join(queryLines(t, e, `EXPLAIN SELECT count(*) FROM (SELECT k FROM kv ORDER BY k LIMIT 10) s`), "\n")
	if !strings.Contains(got, "pgshard: Materialize: 1 subqueries run first") || !strings.Contains(got, "subquery 1: SELECT k FROM kv ORDER BY k LIMIT 10") {
		t.Fatalf("EXPLAIN:\n%s", got)
	}

	restore := pgshard.SetMaxMaterializedBytes(1000)
	defer restore()
	_, err := e.DB.Query(`SELECT count(*) FROM (SELECT v FROM kv ORDER BY k LIMIT 1500) s`)
	expectError(t, err, "54000", "returned more than")
}

func queryLines(t *testing.T, e *env, q string) []string {
	t.Helper()
	rows, err := e.DB.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}
