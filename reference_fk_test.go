package pgshard_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestForeignKeysToReferenceTables: a distributed table created with a
// REFERENCES to a reference table, then distributed, has the constraint
// on every placement against the node's copy (and so has a table given it
// by ALTER TABLE ADD FOREIGN KEY / ADD COLUMN ... REFERENCES): a violating
// insert fails with 23503, ON DELETE CASCADE of reference rows deletes the
// rows on every placement, and a repaired placement gets the constraint
// back. Foreign keys the shards cannot enforce are refused with 0A000.
// On the old code the ALTER TABLE was refused (0A000) and the shards of a
// table created with the REFERENCES had no constraint (the violating
// insert succeeded).
func TestForeignKeysToReferenceTables(t *testing.T) {
	e := newEnv(t)
	for _, s := range []string{
		`CREATE TABLE country (id int PRIMARY KEY, name text)`,
		`SELECT master_create_reference_table('country')`,
		`INSERT INTO country VALUES (1, 'one'), (2, 'two'), (3, 'three')`,
		`CREATE TABLE orders (k bigint NOT NULL, id int NOT NULL, c int REFERENCES country (id) ON DELETE CASCADE, PRIMARY KEY (k, id))`,
		`SELECT master_create_distributed_table('orders', 'k')`,
		`SELECT master_create_worker_shards('orders', 4, 2)`,
		`CREATE TABLE visits (k bigint NOT NULL, c int)`,
		`SELECT master_create_distributed_table('visits', 'k')`,
		`SELECT master_create_worker_shards('visits', 4, 2)`,
		`ALTER TABLE visits ADD FOREIGN KEY (c) REFERENCES country (id)`,
		`ALTER TABLE visits ADD COLUMN c2 int REFERENCES country (id)`,
	} {
		e.exec(s)
	}
	for k := 1; k <= 20; k++ {
		e.exec(`INSERT INTO orders VALUES ($1, 1, $2)`, k, k%3+1)
		e.exec(`INSERT INTO visits VALUES ($1, $2, $3)`, k, k%3+1, 3-k%3)
	}
	checkFKs := func(table string, want int) {
		t.Helper()
		for _, p := range e.placements(table) {
			var n int
			rel := pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize()
			if err := e.workerAt(p.Host, p.Port).QueryRow(context.Background(),
				`SELECT count(*) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f' AND confrelid::regclass::text LIKE 'country\_%'`, rel).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Fatalf("placement %d of %s (shard %d on %s:%d) has %d foreign keys to the node's country copy, want %d", p.ID, table, p.ShardID, p.Host, p.Port, n, want)
			}
		}
	}
	checkFKs("orders", 1)
	checkFKs("visits", 2)
	e.distributedShapes() // every placement's definition equals its template's

	for _, s := range []string{
		`INSERT INTO orders VALUES (5, 2, 99)`,
		`INSERT INTO visits VALUES (6, 99, 1)`,
		`INSERT INTO visits VALUES (7, 1, 99)`,
		`UPDATE orders SET c = 42 WHERE k = 3`,
	} {
		if _, err := e.DB.Exec(s); codeOf(err) != "23503" {
			t.Fatalf("%s: %v (SQLSTATE %q), want 23503", s, err, codeOf(err))
		}
	}
	// visits references country 2 without a cascade: delete those first.
	e.exec(`DELETE FROM visits WHERE c = 2 OR c2 = 2`)
	before := e.queryInt(`SELECT count(*) FROM orders`)
	gone := e.queryInt(`SELECT count(*) FROM orders WHERE c = 2`)
	if gone == 0 {
		t.Fatal("no order references country 2")
	}
	e.exec(`DELETE FROM country WHERE id = 2`)
	if n := e.queryInt(`SELECT count(*) FROM orders`); n != before-gone {
		t.Fatalf("after deleting country 2: %d orders, want %d", n, before-gone)
	}
	for _, p := range e.placements("orders") {
		var n int
		rel := pgx.Identifier{fmt.Sprintf("orders_%d", p.ShardID)}.Sanitize()
		if err := e.workerAt(p.Host, p.Port).QueryRow(context.Background(), `SELECT count(*) FROM `+rel+` WHERE c = 2`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("placement %d of orders still holds %d rows of country 2", p.ID, n)
		}
	}
	e.assertReplicasIdentical("orders")

	// Repair: a placement marked inactive and copied again from its
	// replica gets the foreign key from the template.
	ps := e.placements("orders")
	stale, src := ps[0], ps[0]
	for _, p := range ps[1:] {
		if p.ShardID == stale.ShardID {
			src = p
		}
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, stale.ID)
	if _, err := e.workerAt(stale.Host, stale.Port).Exec(context.Background(),
		fmt.Sprintf(`ALTER TABLE orders_%d DROP CONSTRAINT orders_c_fkey_%d`, stale.ShardID, stale.ShardID)); err != nil {
		t.Fatal(err)
	}
	e.exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, stale.ShardID, src.Host, src.Port, stale.Host, stale.Port)
	checkFKs("orders", 1)
	e.assertReplicasIdentical("orders")

	// What the shards cannot enforce stays refused.
	for _, s := range []string{
		`CREATE TABLE parent (k bigint PRIMARY KEY)`,
		`SELECT master_create_distributed_table('parent', 'k')`,
		`SELECT master_create_worker_shards('parent', 4, 2)`,
		`CREATE TABLE other (k bigint PRIMARY KEY)`,
		`SELECT master_create_distributed_table('other', 'k')`,
		`SELECT master_create_worker_shards('other', 3, 2)`,
		`CREATE TABLE region (id int PRIMARY KEY, k bigint)`,
		`SELECT master_create_reference_table('region')`,
	} {
		e.exec(s)
	}
	for _, s := range []string{
		`ALTER TABLE region ADD FOREIGN KEY (k) REFERENCES parent (k)`,
		`ALTER TABLE orders ADD FOREIGN KEY (k) REFERENCES other (k)`,
		`CREATE TABLE region2 (id int PRIMARY KEY, k bigint REFERENCES parent (k))`,
	} {
		if _, err := e.DB.Exec(s); codeOf(err) != "0A000" {
			t.Fatalf("%s: %v (SQLSTATE %q), want 0A000", s, err, codeOf(err))
		}
	}
}
