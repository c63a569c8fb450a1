package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// shardOfText returns the id of the shard of table whose range holds
// PostgreSQL's own hashtext(key), computed by a worker.
func (e *env) shardOfText(table, key string) int64 {
	e.t.Helper()
	var h int32
	if err := e.worker(e.workers[0]).QueryRow(context.Background(), `SELECT hashtext($1)`, key).Scan(&h); err != nil {
		e.t.Fatal(err)
	}
	var id int64
	if err := e.DB.QueryRow(`SELECT id FROM pgs_distribution_metadata.shard WHERE relation_id = $1::regclass
		AND $2 BETWEEN min_value::int AND max_value::int`, table, h).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func setupReviews(t *testing.T, shards, replicas int) *env {
	e := newEnv(t)
	e.exec(customerReviewsDDL)
	e.exec(`SELECT master_create_distributed_table('customer_reviews', 'customer_id')`)
	e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('customer_reviews', %d, %d)`, shards, replicas))
	return e
}

func TestPreparedStatementRoutesEveryKeyToItsShard(t *testing.T) {
	e := setupReviews(t, 16, 2)
	ins, err := e.DB.Prepare(`INSERT INTO customer_reviews (customer_id, review_rating) VALUES ($1, $2)`)
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	sel, err := e.DB.Prepare(`SELECT review_rating FROM customer_reviews WHERE customer_id = $1`)
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Close()
	const n = 200
	for i := 0; i < n; i++ {
		if _, err := ins.Exec("key-"+strconv.Itoa(i), i); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 7 {
		key := "key-" + strconv.Itoa(i)
		got := e.holders("customer_reviews", "customer_id", key)
		want := e.shardOfText("customer_reviews", key)
		if len(got) != 1 || got[want] != 1 {
			t.Fatalf("%s is in shards %v, want only %d", key, sortedKeys(got), want)
		}
		var r int
		if err := sel.QueryRow(key).Scan(&r); err != nil || r != i {
			t.Fatalf("select %s = %d, %v", key, r, err)
		}
		// The same value as a literal (no arguments) and as a cast parameter.
		if err := e.DB.QueryRow(fmt.Sprintf(`SELECT review_rating FROM customer_reviews WHERE customer_id = '%s'`, key)).Scan(&r); err != nil || r != i {
			t.Fatalf("literal select %s = %d, %v", key, r, err)
		}
		if err := e.DB.QueryRow(`SELECT review_rating FROM customer_reviews WHERE $1::text = customer_id`, key).Scan(&r); err != nil || r != i {
			t.Fatalf("cast select %s = %d, %v", key, r, err)
		}
	}
	if c := e.queryInt(`SELECT count(*) FROM customer_reviews`); c != n {
		t.Fatalf("count = %d", c)
	}
	if c := e.queryInt(`SELECT sum(review_rating) FROM customer_reviews`); c != n*(n-1)/2 {
		t.Fatalf("sum = %d", c)
	}
	var lo, hi int
	if err := e.DB.QueryRow(`SELECT min(review_rating), max(review_rating) FROM customer_reviews`).Scan(&lo, &hi); err != nil || lo != 0 || hi != n-1 {
		t.Fatalf("min, max = %d, %d, %v", lo, hi, err)
	}
	// UPDATE and DELETE by key touch one row.
	res, err := e.DB.Exec(`UPDATE customer_reviews SET review_votes = 10 WHERE customer_id = $1`, "key-3")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("update affected %d", n)
	}
	res, err = e.DB.Exec(`DELETE FROM customer_reviews WHERE customer_id = 'key-4'`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("delete affected %d", n)
	}
	if c := e.queryInt(`SELECT count(*) FROM customer_reviews`); c != n-1 {
		t.Fatalf("count after delete = %d", c)
	}
	e.assertReplicasIdentical("customer_reviews")
}

func TestPinnedStatementsRunWhole(t *testing.T) {
	e := setupReviews(t, 8, 2)
	e.exec(`CREATE TABLE orders (customer_id text, order_id int, amount numeric, PRIMARY KEY (customer_id, order_id))`)
	e.exec(`SELECT master_create_distributed_table('orders', 'customer_id')`)
	e.exec(`SELECT master_create_worker_shards('orders', 8, 2)`)
	for i := 1; i <= 5; i++ {
		e.exec(`INSERT INTO orders VALUES ($1, $2, $3)`, "alice", i, i*10)
		e.exec(`INSERT INTO orders VALUES ($1, $2, $3)`, "bob", i, i*100)
	}
	e.exec(`INSERT INTO customer_reviews (customer_id, review_rating) VALUES ('alice', 4), ('alice', 5)`)

	cases := []struct {
		name string
		sql  string
		args []any
		want string
	}{
		{"returning", `INSERT INTO orders VALUES ($1, 6, 60) RETURNING order_id * 2`, []any{"alice"}, "12"},
		{"on conflict", `INSERT INTO orders VALUES ($1, 1, 1) ON CONFLICT (customer_id, order_id) DO UPDATE SET amount = orders.amount + excluded.amount RETURNING amount`, []any{"alice"}, "11"},
		{"update returning", `UPDATE orders SET amount = amount + 1 WHERE customer_id = $1 AND order_id = 2 RETURNING amount`, []any{"alice"}, "21"},
		{"subquery", `SELECT count(*) FROM orders WHERE customer_id = $1 AND amount > (SELECT avg(amount) FROM orders WHERE customer_id = $1)`, []any{"bob"}, "2"},
		{"cte", `WITH o AS (SELECT * FROM orders WHERE customer_id = $1) SELECT sum(amount) FROM o`, []any{"bob"}, "1500"},
		{"window", `SELECT string_agg(r::text, ',' ORDER BY order_id) FROM (SELECT order_id, rank() OVER (ORDER BY amount DESC) r FROM orders WHERE customer_id = 'bob') s`, nil, "5,4,3,2,1"},
		{"co-located join", `SELECT count(*) FROM orders o JOIN customer_reviews r ON r.customer_id = o.customer_id WHERE o.customer_id = $1`, []any{"alice"}, "12"},
		{"correlated", `SELECT count(*) FROM orders o WHERE o.customer_id = $1 AND EXISTS (SELECT 1 FROM customer_reviews r WHERE r.customer_id = o.customer_id AND r.review_rating = 5)`, []any{"alice"}, "6"},
		{"order limit", `SELECT order_id FROM orders WHERE customer_id = $1 ORDER BY amount DESC LIMIT 1`, []any{"bob"}, "5"},
		{"group by", `SELECT count(*) FROM (SELECT customer_id, count(*) FROM orders WHERE customer_id = 'bob' GROUP BY customer_id HAVING count(*) > 1) g`, nil, "1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got string
			if err := e.DB.QueryRow(c.sql, c.args...).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
	e.assertReplicasIdentical("orders")
}

func TestNonConstantValuesAreTheSameOnEveryReplica(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE events (id bigserial, tenant text NOT NULL, at timestamptz DEFAULT clock_timestamp(), r float8, note text)`)
	e.exec(`SELECT master_create_distributed_table('events', 'tenant')`)
	e.exec(`SELECT master_create_worker_shards('events', 4, 2)`)
	ids := map[int64]bool{}
	for i := 0; i < 40; i++ {
		var id int64
		err := e.DB.QueryRow(`INSERT INTO events (tenant, r, note) VALUES ($1, random(), now()::text || md5(random()::text)) RETURNING id`, "t"+strconv.Itoa(i)).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		if ids[id] {
			t.Fatalf("id %d returned twice", id)
		}
		ids[id] = true
	}
	// The seed's refusal: a non-constant value, now() with no column list.
	e.exec(`INSERT INTO events (tenant, at) VALUES ('a', now())`)
	e.exec(`UPDATE events SET at = clock_timestamp(), r = random() WHERE tenant = $1`, "t1")
	if c := e.queryInt(`SELECT count(DISTINCT id) FROM events WHERE tenant = 't1'`); c != 1 {
		t.Fatalf("%d", c)
	}
	e.assertReplicasIdentical("events")
	// NULL key.
	_, err := e.DB.Exec(`INSERT INTO events (tenant) VALUES ($1)`, nil)
	expectError(t, err, "23502", "NULL value in partition column")
	_, err = e.DB.Exec(`INSERT INTO events (note) VALUES ('x')`)
	expectError(t, err, "23502", "partition column")
	// A volatile function applied to a column would differ between replicas.
	_, err = e.DB.Exec(`UPDATE events SET r = r + random() WHERE tenant = 't1'`)
	expectError(t, err, "0A000", "not immutable")
}

func TestSimpleProtocolDSN(t *testing.T) {
	e := setupReviews(t, 4, 2)
	db, err := sql.Open("pgshard", e.DSN+"&default_query_exec_mode=simple_protocol")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ins, err := db.Prepare(`INSERT INTO customer_reviews (customer_id, review_rating, product_title) VALUES ($1, $2, $3)`)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := ins.Exec(fmt.Sprintf("c%d", i), i, "it's \"quoted\""); err != nil {
			t.Fatal(err)
		}
	}
	var title string
	if err := db.QueryRow(`SELECT product_title FROM customer_reviews WHERE customer_id = $1`, "c7").Scan(&title); err != nil || title != `it's "quoted"` {
		t.Fatalf("title = %q, %v", title, err)
	}
	for i := 0; i < 20; i += 5 {
		key := fmt.Sprintf("c%d", i)
		if got := e.holders("customer_reviews", "customer_id", key); len(got) != 1 || got[e.shardOfText("customer_reviews", key)] != 1 {
			t.Fatalf("%s in %v", key, got)
		}
	}
}

func TestRefusedWithFeatureNotSupported(t *testing.T) {
	e := setupReviews(t, 4, 2)
	e.exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text)`)
	e.exec(`SELECT master_create_distributed_table('items', 'id')`)
	e.exec(`SELECT master_create_worker_shards('items', 3, 1)`)
	for _, q := range []string{
		`UPDATE customer_reviews SET customer_id = 'x' WHERE customer_id = 'y'`,
		// Schema changes run on every shard now (ddl_test.go); these are
		// the ones that cannot be made safely.
		`ALTER TABLE customer_reviews ADD UNIQUE (review_rating)`,
		`ALTER TABLE customer_reviews ADD COLUMN x serial`,
		`ALTER TABLE customer_reviews DROP COLUMN customer_id`,
		`TRUNCATE customer_reviews RESTART IDENTITY`,
		`DROP TABLE customer_reviews, items`,
	} {
		t.Run(q, func(t *testing.T) {
			_, err := e.DB.Exec(q)
			expectError(t, err, "0A000", "")
		})
	}
	if c := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard`); c != 7 {
		t.Fatalf("shards = %d", c)
	}
}

func TestOrdinaryTablesStayOnTheMetadataDatabase(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE settings (name text PRIMARY KEY, value text)`)
	e.exec(`INSERT INTO settings VALUES ($1, $2)`, "mode", "fast")
	var v string
	if err := e.DB.QueryRow(`SELECT value FROM settings WHERE name = $1`, "mode").Scan(&v); err != nil || v != "fast" {
		t.Fatalf("value = %q, %v", v, err)
	}
	_, err := e.DB.Exec(`INSERT INTO settings VALUES ('mode', 'slow')`)
	expectError(t, err, "23505", "duplicate key")
	_, err = e.DB.Exec(`SELEC 1`)
	expectError(t, err, "42601", "syntax error")
	// The table is on the metadata database only.
	var exists bool
	e.worker(e.workers[0]).QueryRow(context.Background(), `SELECT to_regclass('settings') IS NOT NULL`).Scan(&exists)
	if exists {
		t.Fatal("settings exists on a worker")
	}
}

// Multi-shard queries whose final step PostgreSQL combines; the expected
// answers come from the same rows in one plain table on the metadata database.
func TestCombinedMultiShardQueries(t *testing.T) {
	e := setupReviews(t, 16, 2)
	e.exec(strings.Replace(customerReviewsDDL, "customer_reviews", "plain_reviews", 1))
	for i := 0; i < 300; i++ {
		args := []any{fmt.Sprintf("Cust-%03d", i), i % 7, (i * 13) % 50, fmt.Sprintf("%s%d", []string{"é", "a", "B", "z", ""}[i%5], i%3)}
		if i%11 == 0 {
			args[2] = nil
		}
		e.exec(`INSERT INTO customer_reviews (customer_id, review_rating, review_votes, product_title) VALUES ($1, $2, $3, $4)`, args...)
		e.exec(`INSERT INTO plain_reviews (customer_id, review_rating, review_votes, product_title) VALUES ($1, $2, $3, $4)`, args...)
	}
	for _, q := range []string{
		`SELECT review_rating, count(*), sum(review_votes), avg(review_votes), min(product_title), max(product_title) FROM %s GROUP BY review_rating ORDER BY review_rating`,
		`SELECT avg(review_votes), count(DISTINCT review_rating), count(review_votes) FROM %s`,
		`SELECT DISTINCT product_title FROM %s ORDER BY product_title`,
		`SELECT customer_id, review_votes FROM %s ORDER BY review_votes DESC NULLS LAST, customer_id LIMIT 7 OFFSET 3`,
		`SELECT product_title, round(avg(review_rating), 2) AS r FROM %s GROUP BY 1 HAVING count(*) > 10 ORDER BY r DESC, 1`,
		`SELECT review_rating %% 3 AS m, sum(review_votes) / count(*) FROM %s WHERE review_votes > 10 GROUP BY m ORDER BY m`,
		`SELECT customer_id, rank() OVER (PARTITION BY review_rating ORDER BY review_votes DESC NULLS LAST, customer_id) FROM %s ORDER BY 1 LIMIT 20`,
		`SELECT min(customer_id), max(customer_id), bool_and(review_votes > 0), bool_or(review_votes > 40) FROM %s`,
		`SELECT coalesce(max(review_votes), 0) FROM %s WHERE review_rating = 100`,
	} {
		t.Run(q, func(t *testing.T) {
			want := queryText(t, e.DB, fmt.Sprintf(q, "plain_reviews"))
			got := queryText(t, e.DB, fmt.Sprintf(q, "customer_reviews"))
			if got != want {
				t.Fatalf("pgshard:\n%s\nsingle PostgreSQL:\n%s", got, want)
			}
		})
	}
}

// queryText renders a query's answer (column names, rows) as text.
func queryText(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := fmt.Sprint(cols) + "\n"
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if v.Valid {
				out += v.String + "|"
			} else {
				out += "NULL|"
			}
		}
		out += "\n"
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMultiShardModificationsAndPruning(t *testing.T) {
	e := setupKV(t, 8, 2)
	for k := 1; k <= 40; k++ {
		e.exec(`INSERT INTO kv (k, v, n) VALUES ($1, $2, $3)`, k, fmt.Sprint("v", k), k%4)
	}
	res, err := e.DB.Exec(`UPDATE kv SET n = n + 10 WHERE n = 1`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 10 {
		t.Fatalf("updated %d rows, want 10", n)
	}
	if s := e.queryInt(`SELECT sum(n) FROM kv`); s != 40/4*(0+1+2+3)+100 {
		t.Fatalf("sum = %d", s)
	}
	rows, err := e.DB.Query(`DELETE FROM kv WHERE k IN (1, 2, 3, 39) RETURNING k`)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for rows.Next() {
		got++
	}
	rows.Close()
	if got != 4 {
		t.Fatalf("deleted %d rows", got)
	}
	if c := e.queryInt(`SELECT count(*) FROM kv WHERE k = ANY($1)`, []int64{4, 5, 6, 1}); c != 3 {
		t.Fatalf("ANY count = %d", c)
	}
	if c := e.queryInt(`SELECT count(*) FROM kv WHERE k = 7 OR k = 8 OR k = 1000`); c != 2 {
		t.Fatalf("OR count = %d", c)
	}
	// A failure on one shard rolls back every shard.
	_, err = e.DB.Exec(`UPDATE kv SET v = NULL WHERE n >= 0 AND (CASE WHEN k = 30 THEN 1/0 ELSE 1 END) = 1`)
	expectError(t, err, "22012", "division by zero")
	if c := e.queryInt(`SELECT count(*) FROM kv WHERE v IS NULL`); c != 0 {
		t.Fatalf("%d rows changed by a failed multi-shard update", c)
	}
	e.assertReplicasIdentical("kv")
}

type notEncodable struct{ X chan int }

// Regressions found through GORM: parameters in LIMIT/OFFSET of multi-shard
// queries, and errors of the client's own making reported as such.
func TestScatterParametersAndClientErrors(t *testing.T) {
	e := setupKV(t, 4, 1)
	e.exec(`INSERT INTO kv (k, v) VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e')`)
	for _, c := range []struct {
		q    string
		args []any
		want string
	}{
		{`SELECT v FROM kv ORDER BY v LIMIT $1 OFFSET $2`, []any{2, 1}, "b,c"},
		{`SELECT v FROM kv ORDER BY v OFFSET $1`, []any{3}, "d,e"},
		{`SELECT v FROM kv WHERE k > $1 ORDER BY v DESC LIMIT $2`, []any{1, 2}, "e,d"},
	} {
		rows, err := e.DB.Query(c.q, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		var got []string
		for rows.Next() {
			var v string
			rows.Scan(&v)
			got = append(got, v)
		}
		rows.Close()
		if strings.Join(got, ",") != c.want {
			t.Fatalf("%s = %v, want %s", c.q, got, c.want)
		}
	}
	_, err := e.DB.Exec(`UPDATE kv SET v = $1 WHERE k = $2`, notEncodable{}, 1)
	if err == nil || strings.Contains(err.Error(), "08006") || strings.Contains(err.Error(), "could not reach") {
		t.Fatalf("an argument pgx cannot encode gave %v", err)
	}
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard_placement WHERE shard_state <> 1`); n != 0 {
		t.Fatalf("%d placements marked", n)
	}
}

func TestExplainShowsTheDistributedPlan(t *testing.T) {
	e := setupKV(t, 4, 2)
	e.exec(`INSERT INTO kv (k, v) VALUES (1,'a'),(2,'b'),(3,'c')`)
	plan := func(q string, args ...any) string {
		t.Helper()
		rows, err := e.DB.Query(q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var l string
			rows.Scan(&l)
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
	got := plan(`EXPLAIN SELECT v FROM kv WHERE k = $1`, 2)
	for _, want := range []string{"pgshard: Router to shard", "placements:", "SQL: SELECT v FROM kv_", "Scan"} {
		if !strings.Contains(got, want) {
			t.Fatalf("EXPLAIN lacks %q:\n%s", want, got)
		}
	}
	got = plan(`EXPLAIN ANALYZE SELECT count(*) FROM kv`)
	if !strings.Contains(got, "Scatter over 4 of 4 shards") || strings.Count(got, "actual rows=") != 4 || !strings.Contains(got, "add up") {
		t.Fatalf("EXPLAIN ANALYZE:\n%s", got)
	}
	got = plan(`EXPLAIN SELECT v FROM kv WHERE k IN (1, 2) ORDER BY v LIMIT 1`)
	if !strings.Contains(got, "Scatter over 2 of 4 shards") || !strings.Contains(got, "merge the shards' sorted rows") {
		t.Fatalf("EXPLAIN of a merged query:\n%s", got)
	}
	got = plan(`EXPLAIN SELECT v, count(*) FROM kv GROUP BY v ORDER BY 2 DESC LIMIT 1`)
	if !strings.Contains(got, "PostgreSQL combines") {
		t.Fatalf("EXPLAIN of a combined query:\n%s", got)
	}
	_, err := e.DB.Exec(`EXPLAIN ANALYZE UPDATE kv SET v = 'x' WHERE k = 1`)
	expectError(t, err, "0A000", "EXPLAIN ANALYZE of a modification")
	t.Log("\n" + got)
}

func TestInsertSelect(t *testing.T) {
	e := setupReviews(t, 16, 2)
	// The seed's example, refused by pg_shard.
	res, err := e.DB.Exec(`INSERT INTO customer_reviews SELECT generate_series(1, 100)`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 100 {
		t.Fatalf("inserted %d", n)
	}
	if n := e.queryInt(`SELECT count(*) FROM customer_reviews`); n != 100 {
		t.Fatalf("count = %d", n)
	}
	for _, k := range []string{"1", "42", "100"} {
		if got := e.holders("customer_reviews", "customer_id", k); len(got) != 1 || got[e.shardOfText("customer_reviews", k)] != 1 {
			t.Fatalf("%s in %v", k, got)
		}
	}
	// From an ordinary table, with parameters, dates and arrays, and from a
	// distributed table into another.
	e.exec(`CREATE TABLE staging (id text, d date, tags char(10)[], r int)`)
	e.exec(`INSERT INTO staging VALUES ('s1', '2024-02-29', '{a,b}', 5), ('s2', NULL, NULL, 1), ('s3', '1999-12-31', '{}', 3)`)
	e.exec(`INSERT INTO customer_reviews (customer_id, review_date, similar_product_ids, review_rating) SELECT id, d, tags, r FROM staging WHERE r > $1`, 2)
	var d, tags string
	if err := e.DB.QueryRow(`SELECT review_date::text, similar_product_ids::text FROM customer_reviews WHERE customer_id = 's1'`).Scan(&d, &tags); err != nil || d != "2024-02-29" || tags != `{"a         ","b         "}` {
		t.Fatalf("s1 = %q %q %v", d, tags, err)
	}
	e.exec(`CREATE TABLE archive (customer_id text, rating int)`)
	e.exec(`SELECT master_create_distributed_table('archive', 'customer_id')`)
	e.exec(`SELECT master_create_worker_shards('archive', 4, 1)`)
	e.exec(`INSERT INTO archive SELECT customer_id, review_rating FROM customer_reviews WHERE review_rating IS NOT NULL`)
	if n := e.queryInt(`SELECT count(*) FROM archive`); n != 2 {
		t.Fatalf("archive count = %d", n)
	}
	e.assertReplicasIdentical("customer_reviews")
	_, err = e.DB.Exec(`INSERT INTO archive SELECT NULL, 1`)
	expectError(t, err, "23502", "NULL value in partition column")
}
