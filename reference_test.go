package pgshard_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// refDDL is the schema of the reference table tests: item as TPC-C's,
// a reference table; orders a distributed table on o_id.
const refDDL = `CREATE TABLE item (i_id int PRIMARY KEY, i_name text NOT NULL, i_price numeric(5,2));
CREATE TABLE orders (o_id int NOT NULL, o_i_id int, o_qty int)`

// refRows fills item and orders the same way through any database.
var refRows = []string{
	`INSERT INTO item SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 40) g`,
	`INSERT INTO orders SELECT g, (g * 7) % 45, g % 5 FROM generate_series(1, 200) g`,
}

// setupReference creates item as a reference table and orders with shards
// x replicas.
func setupReference(t *testing.T, e *env, shards, replicas int) {
	t.Helper()
	for _, q := range strings.Split(refDDL, ";") {
		e.exec(q)
	}
	e.exec(`SELECT master_create_reference_table('item')`)
	e.exec(`SELECT master_create_distributed_table('orders', 'o_id')`)
	e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('orders', %d, %d)`, shards, replicas))
}

// referenceCopies returns, per placement (in placement id order), its state
// and the digest of the rows of the reference table's shard read straight
// from that worker ("-" for a placement not finalized).
func (e *env) referenceCopies(table string) []string {
	e.t.Helper()
	var out []string
	for _, p := range e.placements(table) {
		if p.State != 1 {
			out = append(out, fmt.Sprintf("%s:%d state %d", p.Host, p.Port, p.State))
			continue
		}
		var d string
		q := fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM %s t`, pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize())
		if err := e.workerAt(p.Host, p.Port).QueryRow(context.Background(), q).Scan(&d); err != nil {
			e.t.Fatalf("%s on %s:%d: %v", q, p.Host, p.Port, err)
		}
		out = append(out, d)
	}
	return out
}

// assertEveryCopy checks that the reference table has a finalized
// placement on every worker of e, all holding want rows, identical.
func (e *env) assertEveryCopy(table string, want int) {
	e.t.Helper()
	ps := e.placements(table)
	if len(ps) != len(e.workers) {
		e.t.Fatalf("%s has %d placements, want one on each of %d workers: %+v", table, len(ps), len(e.workers), ps)
	}
	copies := e.referenceCopies(table)
	for i, c := range copies {
		if c != copies[0] || !strings.HasPrefix(c, fmt.Sprintf("%d:", want)) {
			e.t.Fatalf("%s: copy %d (%s:%d) is %q, want %d rows identical to the first (%q)", table, i, ps[i].Host, ps[i].Port, c, want, copies[0])
		}
	}
}

// TestReferenceTableWritesEveryPlacement: master_create_reference_table
// records one shard with a finalized placement on every worker; INSERT,
// UPDATE and DELETE with any WHERE reach every copy; reads come from one;
// what would make the copies differ is refused.
func TestReferenceTableWritesEveryPlacement(t *testing.T) {
	e := newEnv(t)
	setupReference(t, e, 4, 1)
	var method string
	var key string
	if err := e.DB.QueryRow(`SELECT partition_method::text, key FROM pgs_distribution_metadata.partition WHERE relation_id = 'item'::regclass`).Scan(&method, &key); err != nil {
		t.Fatal(err)
	}
	if method != "n" || key != "" {
		t.Fatalf("partition row of item: method %q key %q, want 'n' and ''", method, key)
	}
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard WHERE relation_id = 'item'::regclass`); n != 1 {
		t.Fatalf("item has %d shards, want 1", n)
	}
	e.assertEveryCopy("item", 0)

	e.exec(refRows[0])
	e.assertEveryCopy("item", 40)
	e.exec(`INSERT INTO item VALUES ($1, $2, $3), (41, 'forty-one', 2.5)`, 42, "forty-two", "3.5")
	e.assertEveryCopy("item", 42)
	if res := e.exec(`UPDATE item SET i_price = i_price + 1 WHERE i_name LIKE 'item 1%'`); affected(t, res) != 11 {
		t.Fatalf("UPDATE affected %d rows, want 11", affected(t, res))
	}
	if res := e.exec(`DELETE FROM item WHERE i_price > 55`); affected(t, res) != 4 {
		t.Fatalf("DELETE affected %d rows, want 4", affected(t, res))
	}
	e.assertEveryCopy("item", 38)
	if n := e.queryInt(`SELECT count(*) FROM item WHERE i_price > 10`); n != 30 {
		t.Fatalf("count through pgshard: %d, want 30", n)
	}
	// A transaction that writes the reference table and a distributed
	// one commits on every node together.
	tx, err := e.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`INSERT INTO item VALUES (100, 'hundred', 1)`, `INSERT INTO orders VALUES (1, 100, 3)`, `UPDATE item SET i_name = 'a hundred' WHERE i_id = 100`} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e.assertEveryCopy("item", 39)
	// A rolled back one leaves no copy changed.
	tx, err = e.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`DELETE FROM item`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	e.assertEveryCopy("item", 39)

	// Reads outside a transaction spread over the copies: each worker
	// ran one (its backend's last query is the read).
	for i := 0; i < 2*len(e.workers); i++ {
		e.queryInt(`SELECT count(*) FROM item WHERE i_id > -7`)
	}
	for _, w := range e.workers {
		var n int
		if err := e.worker(w).QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE '%FROM item\_% WHERE i_id > -7'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("worker %s answered none of %d reads of the reference table", w.Addr(), 2*len(e.workers))
		}
	}

	lines := strings.Join(e.explainLines(`SELECT * FROM item WHERE i_name = 'x'`), "\n")
	if !strings.Contains(lines, "Router") || strings.Count(lines, "SQL:") != 1 {
		t.Fatalf("EXPLAIN of a reference table read: want one Router statement:\n%s", lines)
	}

	// A volatile value that reads no column is computed once, on the
	// metadata database, and every copy gets it.
	e.exec(`UPDATE item SET i_name = random()::text WHERE i_id = 2`)
	e.assertEveryCopy("item", 39)
	for _, q := range []string{
		`UPDATE item SET i_name = i_name || random()::text WHERE i_id = 1`,
		`DELETE FROM item WHERE i_price > random()`,
		`INSERT INTO item VALUES (500, 'x', 1) ON CONFLICT (i_id) DO UPDATE SET i_name = clock_timestamp()::text || item.i_name`,
		`SELECT master_move_shard_placement((SELECT id FROM pgs_distribution_metadata.shard WHERE relation_id = 'item'::regclass), 'x', 1, 'y', 2)`,
		// A write to a reference table cannot read a distributed one on
		// its placements.
		`UPDATE item SET i_price = o_qty FROM orders WHERE o_i_id = i_id`,
	} {
		_, err := e.DB.Exec(q)
		if err == nil {
			t.Fatalf("%s: no error, want 0A000", q)
		}
		if got := sqlState(t, err); got != "0A000" {
			t.Fatalf("%s: SQLSTATE %s (%v), want 0A000", q, got, err)
		}
	}
	e.assertEveryCopy("item", 39)
	if _, err := e.DB.Exec(`SELECT master_create_reference_table('item')`); sqlState(t, err) != "55000" {
		t.Fatalf("making item a reference table twice: %v, want 55000", err)
	}
}

func affected(t *testing.T, res interface{ RowsAffected() (int64, error) }) int64 {
	t.Helper()
	n, err := res.RowsAffected()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReferenceTableJoinsLikeOneServer: joins, subqueries and INSERT ...
// SELECT between a distributed table and a reference table, through
// pgshard, answer as one plain PostgreSQL with the same rows; what cannot
// run shard by shard is refused (0A000) or materialized, never wrong.
func TestReferenceTableJoinsLikeOneServer(t *testing.T) {
	e := newEnv(t)
	setupReference(t, e, 8, 1)
	plain := e.plainDB("", refDDL)
	for _, q := range refRows {
		e.exec(q)
		if _, err := plain.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	queries := []string{
		`SELECT o_id, i_name FROM orders JOIN item ON i_id = o_i_id ORDER BY o_id`,
		`SELECT o_id, i_name FROM orders, item WHERE i_id = o_i_id AND o_id = 77`,
		`SELECT i_name, sum(o_qty), count(*) FROM orders JOIN item ON i_id = o_i_id GROUP BY i_name ORDER BY 1`,
		`SELECT count(*), sum(i_price * o_qty) FROM orders JOIN item ON i_id = o_i_id`,
		`SELECT o_id, i_name FROM orders LEFT JOIN item ON i_id = o_i_id ORDER BY o_id LIMIT 30`,
		`SELECT o_id FROM orders WHERE o_i_id IN (SELECT i_id FROM item WHERE i_price < 20) ORDER BY 1`,
		`SELECT o_id FROM orders o WHERE NOT EXISTS (SELECT 1 FROM item WHERE i_id = o.o_i_id) ORDER BY 1`,
		`SELECT o_id, (SELECT i_name FROM item WHERE i_id = o_i_id) FROM orders ORDER BY o_qty DESC, o_id LIMIT 10`,
		`SELECT o_id, x.n FROM orders JOIN (SELECT i_id, upper(i_name) AS n FROM item WHERE i_id % 2 = 0) x ON x.i_id = o_i_id ORDER BY o_id`,
		`SELECT DISTINCT i_name FROM item JOIN orders ON o_i_id = i_id WHERE o_qty = 3 ORDER BY 1`,
		`SELECT count(*) FROM item a JOIN item b ON a.i_id = b.i_id + 1`,
		`SELECT i_name FROM item ORDER BY i_price DESC LIMIT 3`,
		`SELECT max(i_price), count(DISTINCT i_name) FROM item`,
		// Shapes that cannot run shard by shard as they are: materialized or
		// refused, never answered wrong.
		`SELECT i_id, o_id FROM item LEFT JOIN orders ON o_i_id = i_id ORDER BY 1, 2`,
		`SELECT i_id FROM item WHERE i_id IN (SELECT o_i_id FROM orders WHERE o_qty = 4) ORDER BY 1`,
		`SELECT i_id, o_id FROM orders RIGHT JOIN item ON o_i_id = i_id ORDER BY 1, 2`,
		`SELECT count(*) FROM item FULL JOIN orders ON o_i_id = i_id`,
	}
	for _, q := range queries {
		want := tableRows(t, plain, q)
		rows, err := e.DB.Query(q)
		if err != nil {
			if sqlState(t, err) == "0A000" {
				t.Logf("refused: %s: %v", q, err)
				continue
			}
			t.Fatalf("%s: %v", q, err)
		}
		rows.Close()
		got := tableRows(t, e.DB, q)
		if !strings.Contains(q, "ORDER BY") {
			slices.Sort(got)
			slices.Sort(want)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s:\n pgshard %v\n plain   %v", q, got, want)
		}
	}
	// The join runs on the workers, shard by shard.
	lines := strings.Join(e.explainLines(`SELECT count(*) FROM orders JOIN item ON i_id = o_i_id`), "\n")
	if !strings.Contains(lines, "over 8 of 8 shards") || !strings.Contains(lines, "item_") {
		t.Fatalf("EXPLAIN of the join: want 8 shards, each reading item's shard:\n%s", lines)
	}

	// Writes of the distributed table that read the reference table, and
	// INSERT ... SELECT from the reference table into the distributed one.
	for _, q := range []string{
		`UPDATE orders SET o_qty = o_qty + 1 FROM item WHERE i_id = o_i_id AND i_price > 30`,
		`DELETE FROM orders WHERE o_i_id IN (SELECT i_id FROM item WHERE i_name LIKE '%3')`,
		`INSERT INTO orders SELECT 1000 + i_id, i_id, 9 FROM item WHERE i_price < 10`,
		`INSERT INTO orders SELECT o_id + 5000, o_i_id, o_qty FROM orders JOIN item ON i_id = o_i_id WHERE i_price > 50`,
		`INSERT INTO item SELECT 100 + o_id, 'from order ' || o_id, 1 FROM orders WHERE o_id < 4`,
	} {
		if _, err := plain.Exec(q); err != nil {
			t.Fatalf("plain: %s: %v", q, err)
		}
		e.exec(q)
	}
	for _, q := range []string{`SELECT * FROM orders ORDER BY o_id`, `SELECT * FROM item ORDER BY i_id`} {
		if got, want := tableRows(t, e.DB, q), tableRows(t, plain, q); !slices.Equal(got, want) {
			t.Fatalf("%s after the writes:\n pgshard %d rows %v\n plain   %d rows %v", q, len(got), got, len(want), want)
		}
	}
	e.assertEveryCopy("item", 43)
}

// TestReferenceTableReplicatedWriteReadingItRefused: a distributed table
// with two replicas per shard cannot be written by a statement that reads
// a reference table (its replicas could read different versions); the
// same through INSERT ... SELECT runs through the client, and a write
// whose values come first works.
func TestReferenceTableReplicatedWriteReadingItRefused(t *testing.T) {
	e := newEnv(t)
	setupReference(t, e, 4, 2)
	for _, q := range refRows {
		e.exec(q)
	}
	_, err := e.DB.Exec(`UPDATE orders SET o_qty = 0 FROM item WHERE i_id = o_i_id AND i_price > 30`)
	if sqlState(t, err) != "0A000" {
		t.Fatalf("replicated UPDATE ... FROM reference table: %v, want 0A000", err)
	}
	e.exec(`INSERT INTO orders SELECT o_id + 5000, o_i_id, o_qty FROM orders JOIN item ON i_id = o_i_id WHERE i_price > 50`)
	if n := e.queryInt(`SELECT count(*) FROM orders WHERE o_id > 5000`); n != 31 {
		t.Fatalf("INSERT ... SELECT through the client inserted %d rows, want 31", n)
	}
	e.assertReplicasIdentical("orders")
}

// TestReferenceTableFailoverMarkingRepair: with a worker stopped, reads of
// the reference table (alone and joined) fail over to another copy; a
// write outside a transaction succeeds on the others and marks the stopped
// worker's placement inactive; master_copy_shard_placement repairs it.
func TestReferenceTableFailoverMarkingRepair(t *testing.T) {
	e := newEnv(t)
	setupReference(t, e, 4, 2)
	for _, q := range refRows {
		e.exec(q)
	}
	first := e.placements("item")[0] // reads go to the first placement
	var stopped = e.workers[0]
	for _, w := range e.workers {
		if w.Host == first.Host && w.Port == first.Port {
			stopped = w
		}
	}
	joined := e.queryInt(`SELECT count(*) FROM orders JOIN item ON i_id = o_i_id`)
	e.stopWorker(stopped)

	if n := e.queryInt(`SELECT count(*) FROM item`); n != 40 {
		t.Fatalf("read with the first copy's worker stopped: %d rows, want 40", n)
	}
	if n := e.queryInt(`SELECT count(*) FROM orders JOIN item ON i_id = o_i_id`); n != joined {
		t.Fatalf("join with a worker stopped: %d rows, want %d", n, joined)
	}
	e.exec(`UPDATE item SET i_name = 'changed' WHERE i_id <= 5`)
	var state int
	if err := e.DB.QueryRow(`SELECT shard_state FROM pgs_distribution_metadata.shard_placement WHERE id = $1`, first.ID).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != 3 {
		t.Fatalf("the stopped worker's placement is in state %d after a write it missed, want 3", state)
	}
	if n := e.queryInt(`SELECT count(*) FROM item WHERE i_name = 'changed'`); n != 5 {
		t.Fatalf("after the write: %d changed rows, want 5", n)
	}

	if err := stopped.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var src placement
	for _, p := range e.placements("item") {
		if p.State == 1 {
			src = p
			break
		}
	}
	e.exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, first.ShardID, src.Host, src.Port, first.Host, first.Port)
	e.assertEveryCopy("item", 40)
	if n := e.queryInt(`SELECT count(*) FROM item WHERE i_name = 'changed'`); n != 5 {
		t.Fatalf("after the repair: %d changed rows, want 5", n)
	}
}

// TestReferenceTableCopiedToAddedNode: master_add_node copies every
// reference table to the new worker before it returns, so shards created
// there afterwards join with it.
func TestReferenceTableCopiedToAddedNode(t *testing.T) {
	c := sharedCluster(t)
	e := newEnvWithWorkers(t, c, "", 2)
	for _, q := range strings.Split(refDDL, ";") {
		e.exec(q)
	}
	e.exec(`CREATE TABLE country (code text PRIMARY KEY, name text)`)
	e.exec(`SELECT master_create_reference_table('item')`)
	e.exec(`SELECT master_create_reference_table('country')`)
	e.exec(refRows[0])
	e.exec(`INSERT INTO country VALUES ('fr', 'France'), ('in', 'India')`)

	for _, w := range c.Nodes[3:] {
		e.exec(`SELECT master_add_node($1, $2)`, w.Host, w.Port)
		e.workers = append(e.workers, w)
	}
	e.assertEveryCopy("item", 40)
	e.assertEveryCopy("country", 2)

	// Shards on every node, the new ones included, join with it.
	e.exec(`SELECT master_create_distributed_table('orders', 'o_id')`)
	e.exec(`SELECT master_create_worker_shards('orders', 8, 1)`)
	e.exec(refRows[1])
	want := int64(0)
	for g := 1; g <= 200; g++ {
		if i := (g * 7) % 45; i >= 1 && i <= 40 {
			want++
		}
	}
	if n := e.queryInt(`SELECT count(*) FROM orders JOIN item ON i_id = o_i_id`); n != want {
		t.Fatalf("join after adding nodes: %d rows, want %d", n, want)
	}
	// Adding a node twice changes nothing.
	if _, err := e.DB.Exec(`SELECT master_add_node($1, $2)`, c.Nodes[4].Host, c.Nodes[4].Port); sqlState(t, err) != "42710" {
		t.Fatalf("adding a node twice: %v, want 42710", err)
	}
	e.assertEveryCopy("item", 40)
}

// TestReferenceTableWritersDoNotDeadlock: 40 writers of a few reference
// table rows, with pool_max_conns=2 (each write takes a connection to
// every worker, under one fan-out reservation), half of them in
// transactions that also write a distributed table, before or after: all
// finish, every increment lands once and the copies stay identical.
func TestReferenceTableWritersDoNotDeadlock(t *testing.T) {
	e := newEnvOnWorkers(t, 4)
	setupReference(t, e, 4, 1)
	e.exec(refRows[0])
	e.exec(refRows[1])
	db := e.openPool(2)
	before := e.queryInt(`SELECT sum(i_price)::bigint FROM item`)
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	const writers, rounds = 40, 3
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				item, order := 1+(w+r)%3, 1+(w*7+r)%200
				var err error
				if w%2 == 0 {
					_, err = db.ExecContext(ctx, `UPDATE item SET i_price = i_price + 1 WHERE i_id = $1`, item)
				} else {
					err = func() error {
						tx, err := db.BeginTx(ctx, nil)
						if err != nil {
							return err
						}
						defer tx.Rollback()
						stmts := []string{`UPDATE orders SET o_qty = o_qty + 1 WHERE o_id = $1`, `UPDATE item SET i_price = i_price + 1 WHERE i_id = $1`}
						args := []any{order, item}
						if w%4 == 1 {
							stmts[0], stmts[1], args[0], args[1] = stmts[1], stmts[0], args[1], args[0]
						}
						for i, q := range stmts {
							if _, err := tx.ExecContext(ctx, q, args[i]); err != nil {
								return err
							}
						}
						return tx.Commit()
					}()
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d round %d: %w", w, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if after := e.queryInt(`SELECT sum(i_price)::bigint FROM item`); after != before+writers*rounds {
		t.Fatalf("sum of prices went from %d to %d, want +%d", before, after, writers*rounds)
	}
	e.assertEveryCopy("item", 40)
}

// TestReferenceTableInMigrationString: CREATE TABLE and
// master_create_reference_table in one string (a migration file) make the
// table at once; a string that fails after it leaves no shard table
// behind on any worker.
func TestReferenceTableInMigrationString(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE country (code text PRIMARY KEY, name text); SELECT master_create_reference_table('country')`)
	e.exec(`INSERT INTO country VALUES ('fr', 'France')`)
	e.assertEveryCopy("country", 1)

	_, err := e.DB.Exec(`CREATE TABLE region (id int); SELECT master_create_reference_table('region'); SELECT master_create_reference_table('no_such_table')`)
	if sqlState(t, err) != "42P01" {
		t.Fatalf("a string failing after master_create_reference_table: %v, want 42P01", err)
	}
	if n := e.queryInt(`SELECT count(*) FROM pg_class WHERE relname = 'region'`); n != 0 {
		t.Fatal("the failed string's table is still there")
	}
	for _, w := range e.workers {
		var n int
		if err := e.worker(w).QueryRow(context.Background(), `SELECT count(*) FROM pg_class WHERE relname LIKE 'region%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("worker %s keeps %d shard relations of the rolled back reference table", w.Addr(), n)
		}
	}
}
