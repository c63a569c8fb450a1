package pgshard_test

import (
	"strings"
	"testing"

	"github.com/pgshard/pgshard"
)

// TestJoinsNotShardByShard runs joins the shards cannot answer each for its
// own rows — tables of different co-location groups, self-joins and joins
// not on the partition column, outer joins whose preserved side reads no
// distributed table, correlated subqueries over another table, joins with
// an ordinary table — and compares every answer with the same statement on
// ordinary tables of the same rows. One table reference is read first
// (with its own conditions) and broadcast to the shards of the rest as
// array parameters, or the rest runs on the metadata database. EXPLAIN
// names the table broadcast; the memory bound fails a statement cleanly.
func TestJoinsNotShardByShard(t *testing.T) {
	e := setupKV(t, 8, 2)
	e.exec(`CREATE TABLE kv2 (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	e.exec(`SELECT master_create_distributed_table('kv2', 'k')`)
	e.exec(`SELECT master_create_worker_shards('kv2', 4, 1)`) // another co-location group
	e.exec(`CREATE TABLE plain_kv (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	e.exec(`CREATE TABLE plain_kv2 (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	e.exec(`CREATE TABLE dims (n int, label text)`) // an ordinary table, on the metadata database
	e.exec(`INSERT INTO dims SELECT i, 'label ' || i FROM generate_series(0, 4) i`)
	for _, table := range []string{"kv", "plain_kv"} {
		e.exec(`INSERT INTO ` + table + ` (k, v, n) SELECT i, CASE WHEN i % 11 = 0 THEN NULL ELSE 'v' || (i % 13) END, i % 7 FROM generate_series(1, 300) i`)
	}
	for _, table := range []string{"kv2", "plain_kv2"} {
		e.exec(`INSERT INTO ` + table + ` (k, v, n) SELECT i, CASE WHEN i % 5 = 0 THEN NULL ELSE 'v' || (i % 17) END, i % 3 FROM generate_series(150, 400) i`)
	}
	for _, c := range []struct {
		q    string
		args []any
	}{
		{q: `SELECT a.k, b.k FROM kv a JOIN kv2 b ON a.n = b.n WHERE a.k < 20 AND b.v = 'v3' ORDER BY 1, 2`},
		{q: `SELECT a.k, b.k, b.v FROM kv a JOIN kv2 b ON a.k = b.k ORDER BY 1`},
		{q: `SELECT count(*), sum(a.k * b.n) FROM kv a, kv2 b WHERE a.v = b.v`},
		{q: `SELECT a.k, b.k FROM kv a JOIN kv b ON a.v = b.v AND a.k < b.k WHERE a.n = $1 AND b.n = $2 ORDER BY 1, 2`, args: []any{1, 2}},
		{q: `SELECT a.k, b.k FROM kv a JOIN kv b ON b.k = a.n WHERE a.k = $1`, args: []any{33}},
		{q: `SELECT a.k, b.k FROM kv a LEFT JOIN kv2 b ON b.n = a.n AND b.k < 160 WHERE a.k BETWEEN 10 AND 30 ORDER BY 1, 2 NULLS FIRST`},
		{q: `SELECT a.k, b.k FROM kv2 b RIGHT JOIN kv a ON b.v = a.v WHERE a.k < 40 ORDER BY 1, 2 NULLS FIRST`},
		{q: `SELECT count(*), count(a.k), count(b.k) FROM kv a FULL JOIN kv2 b ON a.k = b.k + 100`},
		{q: `SELECT g, a.v FROM generate_series(1, 12) g LEFT JOIN kv a ON a.k = g * 25 ORDER BY 1`},
		{q: `SELECT x, count(a.k) FROM (VALUES (1), (2), (99)) v(x) LEFT JOIN kv a ON a.n = v.x GROUP BY x ORDER BY 1`},
		{q: `SELECT k FROM kv a WHERE EXISTS (SELECT 1 FROM kv2 b WHERE b.n = a.n AND b.v = a.v) ORDER BY k`},
		{q: `SELECT k FROM kv a WHERE NOT EXISTS (SELECT 1 FROM kv2 b WHERE b.k = a.k * 2) ORDER BY k`},
		{q: `SELECT k FROM kv a WHERE a.n IN (SELECT n FROM kv2 b WHERE b.k > 390) AND EXISTS (SELECT 1 FROM kv b WHERE b.k = a.n) ORDER BY k`},
		{q: `SELECT d.label, count(*) FROM kv a JOIN dims d ON d.n = a.n GROUP BY d.label ORDER BY 1`},
		{q: `SELECT d.label, a.k FROM dims d LEFT JOIN kv a ON a.n = d.n AND a.k < 10 ORDER BY 1, 2`},
		{q: `SELECT a.k, b.k, c.k FROM kv a JOIN kv2 b ON b.n = a.n JOIN kv c ON c.k = b.k WHERE a.k < 8 AND b.k < 170 ORDER BY 1, 2, 3`},
		{q: `SELECT a.v, count(DISTINCT b.k) FROM kv a JOIN kv2 b USING (v) GROUP BY a.v ORDER BY 1`},
	} {
		t.Run(c.q, func(t *testing.T) {
			want := queryText(t, e.DB, strings.NewReplacer("kv2", "plain_kv2", "kv", "plain_kv").Replace(c.q), c.args...)
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
		// The pinned side is read first, with its own conditions.
		{`EXPLAIN SELECT a.k, b.k FROM kv a JOIN kv b ON b.k = a.n WHERE a.k = 33`, `pgshard: Broadcast: distributed table kv (as a)`},
		{`EXPLAIN SELECT a.k, b.k FROM kv a JOIN kv b ON b.k = a.n WHERE a.k = 33`, `FROM kv a WHERE a.k = 33`},
		// The null-extended side of an outer join is read first.
		{`EXPLAIN SELECT a.k, b.k FROM kv a LEFT JOIN kv2 b ON b.n = a.n`, `pgshard: Broadcast: distributed table kv2 (as b)`},
		{`EXPLAIN SELECT a.k, b.k FROM kv a LEFT JOIN kv2 b ON b.n = a.n`, `then: SELECT a.k, b.k FROM kv a LEFT JOIN (SELECT * FROM "subquery 1") b ON b.n = a.n`},
	} {
		if got := strings.Join(queryLines(t, e, c.q), "\n"); !strings.Contains(got, c.want) {
			t.Errorf("%s: want %q in\n%s", c.q, c.want, got)
		}
	}

	// A correlated scalar subquery, NOT IN or ALL over a broadcast table
	// would scan its rows again for every outer row: refused.
	for _, q := range []string{
		`SELECT k, (SELECT count(*) FROM kv2 b WHERE b.k = a.k * 2) FROM kv a`,
		`SELECT k FROM kv a WHERE a.n NOT IN (SELECT n FROM kv2 b WHERE b.k = a.k)`,
		`SELECT k FROM kv a WHERE a.n > ALL (SELECT n FROM kv2 b WHERE b.v = a.v)`,
	} {
		_, err := e.DB.Query(q)
		expectError(t, err, "0A000", "")
	}

	restore := pgshard.SetMaxMaterializedBytes(1000)
	defer restore()
	_, err := e.DB.Query(`SELECT count(*) FROM kv a JOIN kv2 b ON a.n = b.n`)
	expectError(t, err, "54000", "returned more than")
}
