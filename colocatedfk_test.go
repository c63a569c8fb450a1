package pgshard_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// profilesTable is a table whose shard tables' names, and whose foreign
// key's name, are too long for "<name>_<shardid>" (60 bytes): pgshard
// shortens them (catalog.ShardName).
const profilesTable = "customer_profiles_with_a_name_long_enough_to_be_shortened_xx"

// colocatedFKTables are the referencing tables of setupColocatedFKs, each
// with a foreign key on customer_id to a co-located table.
var colocatedFKTables = []string{"orders", profilesTable, "notes"}

// setupColocatedFKs creates four co-located distributed tables, 4 shards x
// 2 replicas, chained by foreign keys on their distribution column, each
// ON DELETE CASCADE: orders → customers, profiles (a long name, with an
// unnamed foreign key whose name pgshard makes) → customers, notes →
// profiles. Customers 1..40 each have two orders, a profile and a note.
func setupColocatedFKs(t *testing.T) *env {
	e := newEnv(t)
	p := pgx.Identifier{profilesTable}.Sanitize()
	if len(profilesTable) != 60 {
		t.Fatalf("profilesTable is %d bytes, want 60", len(profilesTable))
	}
	for _, s := range []string{
		`CREATE TABLE customers (id bigint PRIMARY KEY, name text)`,
		`CREATE TABLE orders (customer_id bigint NOT NULL, amount int)`,
		`CREATE TABLE ` + p + ` (customer_id bigint PRIMARY KEY, bio text)`,
		`CREATE TABLE notes (customer_id bigint NOT NULL, body text)`,
	} {
		e.exec(s)
	}
	for _, tb := range []string{"customers", "orders", profilesTable, "notes"} {
		e.exec(`SELECT master_create_distributed_table($1, $2)`, pgx.Identifier{tb}.Sanitize(), map[bool]string{true: "id", false: "customer_id"}[tb == "customers"])
		e.exec(`SELECT master_create_worker_shards($1, 4, 2)`, pgx.Identifier{tb}.Sanitize())
	}
	for _, s := range []string{
		`ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE`,
		`ALTER TABLE ` + p + ` ADD FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE`,
		`ALTER TABLE notes ADD CONSTRAINT notes_profile_fk FOREIGN KEY (customer_id) REFERENCES ` + p + ` (customer_id) ON DELETE CASCADE`,
	} {
		e.exec(s)
	}
	for k := 1; k <= 40; k++ {
		e.exec(`INSERT INTO customers VALUES ($1, $2)`, k, fmt.Sprint("c", k))
		e.exec(`INSERT INTO orders VALUES ($1, 1), ($1, 2)`, k)
		e.exec(`INSERT INTO `+p+` VALUES ($1, 'bio')`, k)
		e.exec(`INSERT INTO notes VALUES ($1, 'note')`, k)
	}
	return e
}

// colocatedShard returns the shard of table with the same range as shard
// shardID (of a table co-located with it).
func (e *env) colocatedShard(table string, shardID int64) int64 {
	e.t.Helper()
	return e.queryInt(`SELECT s2.id FROM pgs_distribution_metadata.shard s1
		JOIN pgs_distribution_metadata.shard s2 ON s2.min_value = s1.min_value AND s2.max_value = s1.max_value
		WHERE s1.id = $1 AND s2.relation_id = $2::regclass`, shardID, pgx.Identifier{table}.Sanitize())
}

// shardTable is the quoted name of shard shardID's table of table.
func shardTable(table string, shardID int64) string {
	return pgx.Identifier{catalog.ShardName(table, shardID)}.Sanitize()
}

// assertColocatedFKs fails unless every finalized placement of each table
// has exactly its template's foreign keys, each named as pgshard names a
// shard's constraint (catalog.ShardName of the template's name), validated,
// referencing the shard table of the referenced table with the same range,
// on the same node, where that shard has a finalized placement.
func (e *env) assertColocatedFKs(tables ...string) {
	e.t.Helper()
	ctx := context.Background()
	for _, table := range tables {
		type fk struct{ name, ref string }
		rows, err := e.DB.Query(`SELECT conname, confrelid::regclass::text FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f' ORDER BY conname`, pgx.Identifier{table}.Sanitize())
		if err != nil {
			e.t.Fatal(err)
		}
		var tmpl []fk
		for rows.Next() {
			var f fk
			if err := rows.Scan(&f.name, &f.ref); err != nil {
				e.t.Fatal(err)
			}
			f.ref = strings.Trim(f.ref, `"`)
			tmpl = append(tmpl, f)
		}
		rows.Close()
		for _, p := range e.placements(pgx.Identifier{table}.Sanitize()) {
			if p.State != 1 {
				continue
			}
			var want []string
			for _, f := range tmpl {
				refShard := e.colocatedShard(f.ref, p.ShardID)
				if rp := placementOf(e.placements(pgx.Identifier{f.ref}.Sanitize()), refShard, p.Host, p.Port); rp.State != 1 {
					e.t.Fatalf("%s's shard %d on %s:%d: the referenced shard %d of %s has no finalized placement there", table, p.ShardID, p.Host, p.Port, refShard, f.ref)
				}
				want = append(want, fmt.Sprintf("%s -> %s validated=true", catalog.ShardName(f.name, p.ShardID), catalog.ShardName(f.ref, refShard)))
			}
			slices.Sort(want)
			rows, err := e.workerAt(p.Host, p.Port).Query(ctx, `SELECT k.conname || ' -> ' || r.relname || ' validated=' || k.convalidated
				FROM pg_constraint k JOIN pg_class r ON r.oid = k.confrelid
				WHERE k.conrelid = $1::regclass AND k.contype = 'f' ORDER BY 1`, shardTable(table, p.ShardID))
			if err != nil {
				e.t.Fatal(err)
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				e.t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				e.t.Fatalf("placement %d of %s (shard %d on %s:%d) has foreign keys\n%s\nwant\n%s", p.ID, table, p.ShardID, p.Host, p.Port, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
}

// assertOrphansRefused inserts a row with a customer_id no referenced row
// has straight into every finalized placement of each table (rolled back)
// and fails unless each is refused with 23503; then the same through
// pgshard, for keys in every shard.
func (e *env) assertOrphansRefused(tables ...string) {
	e.t.Helper()
	ctx := context.Background()
	for _, table := range tables {
		for _, p := range e.placements(pgx.Identifier{table}.Sanitize()) {
			if p.State != 1 {
				continue
			}
			tx, err := e.workerAt(p.Host, p.Port).Begin(ctx)
			if err != nil {
				e.t.Fatal(err)
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+shardTable(table, p.ShardID)+` (customer_id) VALUES (-987654)`)
			_ = tx.Rollback(ctx)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "23503" {
				e.t.Fatalf("orphan insert straight into placement %d of %s (shard %d on %s:%d): %v, want SQLSTATE 23503", p.ID, table, p.ShardID, p.Host, p.Port, err)
			}
		}
		shards := map[int64]bool{}
		for k := -1; k >= -200 && len(shards) < 4; k-- {
			if _, err := e.DB.Exec(`INSERT INTO `+pgx.Identifier{table}.Sanitize()+` (customer_id) VALUES ($1)`, k); codeOf(err) != "23503" {
				e.t.Fatalf("orphan insert into %s with customer_id %d: %v (SQLSTATE %q), want 23503", table, k, err, codeOf(err))
			}
			shards[e.shardOfKey(table, int64(k))] = true
		}
		if len(shards) < 4 {
			e.t.Fatalf("orphan inserts into %s reached %d shards, want 4", table, len(shards))
		}
	}
}

// shardOfKey is the shard of table whose range holds bigint key k.
func (e *env) shardOfKey(table string, k int64) int64 {
	e.t.Helper()
	return e.queryInt(`SELECT id FROM pgs_distribution_metadata.shard WHERE relation_id = $1::regclass
		AND hashint8($2::bigint) BETWEEN min_value::int AND max_value::int`, pgx.Identifier{table}.Sanitize(), k)
}

// assertCascade deletes customer k through pgshard and fails unless every
// placement of every referencing table has lost its rows, and the
// replicas of every table are identical.
func (e *env) assertCascade(k int64) {
	e.t.Helper()
	ctx := context.Background()
	if n := e.queryInt(`SELECT count(*) FROM orders WHERE customer_id = $1`, k); n == 0 {
		e.t.Fatalf("customer %d has no orders to cascade to", k)
	}
	e.exec(`DELETE FROM customers WHERE id = $1`, k)
	for _, table := range colocatedFKTables {
		for _, p := range e.placements(pgx.Identifier{table}.Sanitize()) {
			var n int
			if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, `SELECT count(*) FROM `+shardTable(table, p.ShardID)+` WHERE customer_id = $1`, k).Scan(&n); err != nil {
				e.t.Fatal(err)
			}
			if n != 0 {
				e.t.Fatalf("after deleting customer %d, placement %d of %s (shard %d on %s:%d) still holds %d of its rows", k, p.ID, table, p.ShardID, p.Host, p.Port, n)
			}
		}
	}
	e.assertGroupIdentical()
}

// assertGroupIdentical checks that the finalized placements of each
// table of setupColocatedFKs hold the same rows.
func (e *env) assertGroupIdentical() {
	e.t.Helper()
	ctx := context.Background()
	for _, table := range append([]string{"customers"}, colocatedFKTables...) {
		digests := map[int64][]string{}
		for _, p := range e.placements(pgx.Identifier{table}.Sanitize()) {
			if p.State != 1 {
				e.t.Fatalf("placement %d of %s (shard %d on %s:%d) is in state %d", p.ID, table, p.ShardID, p.Host, p.Port, p.State)
			}
			var d string
			if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM `+shardTable(table, p.ShardID)+` t`).Scan(&d); err != nil {
				e.t.Fatal(err)
			}
			digests[p.ShardID] = append(digests[p.ShardID], d)
		}
		for shard, ds := range digests {
			for _, d := range ds[1:] {
				if d != ds[0] {
					e.t.Fatalf("%s shard %d: placements differ: %v", table, shard, ds)
				}
			}
		}
	}
}

// groupOnNode returns the placements on node host:port of customers'
// shard shardID and of the co-located shards of the referencing tables,
// customers' first.
func (e *env) groupOnNode(shardID int64, host string, port int) []placement {
	e.t.Helper()
	out := []placement{placementOf(e.placements("customers"), shardID, host, port)}
	for _, table := range colocatedFKTables {
		id := e.colocatedShard(table, shardID)
		out = append(out, placementOf(e.placements(pgx.Identifier{table}.Sanitize()), id, host, port))
	}
	for i, p := range out {
		if p.ID == 0 {
			e.t.Fatalf("table %d of the group has no placement of shard index of %d on %s:%d", i, shardID, host, port)
		}
	}
	return out
}

// assertDropConstraint drops orders' foreign key through pgshard and fails
// unless no placement of orders keeps it and an orphan order is accepted.
func (e *env) assertDropConstraint() {
	e.t.Helper()
	e.exec(`ALTER TABLE orders DROP CONSTRAINT orders_customer_fk`)
	for _, p := range e.placements("orders") {
		var n int
		if err := e.workerAt(p.Host, p.Port).QueryRow(context.Background(),
			`SELECT count(*) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'`, shardTable("orders", p.ShardID)).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		if n != 0 {
			e.t.Fatalf("after DROP CONSTRAINT, placement %d of orders (shard %d on %s:%d) has %d foreign keys", p.ID, p.ShardID, p.Host, p.Port, n)
		}
	}
	e.exec(`INSERT INTO orders VALUES (-5, 1)`)
	e.assertGroupIdentical()
}

// TestColocatedForeignKeysSurviveRepair: the placements of one shard index
// of four co-located tables chained by foreign keys are marked inactive on
// a node, rows change meanwhile, and master_copy_shard_placement repairs
// them, referenced tables first. A referencing shard cannot be repaired
// while the shard it references is not finalized on the node (55000).
// Every repaired placement then has the foreign keys of its template,
// named as DDL through pgshard names them and referencing the co-located
// shard on the same node (long names shortened alike), so an orphan row is
// refused with 23503 on every placement, ON DELETE CASCADE deletes on
// every placement, and DROP CONSTRAINT through pgshard works.
// Before the fix the repair of customers' shard failed (its table could
// not be dropped: the node's orders shard referenced it) and a repaired
// orders placement had no foreign key.
func TestColocatedForeignKeysSurviveRepair(t *testing.T) {
	e := setupColocatedFKs(t)
	e.assertColocatedFKs(colocatedFKTables...)

	cust := e.placements("customers")[0]
	var src placement
	for _, p := range e.placements("customers") {
		if p.ShardID == cust.ShardID && p.ID != cust.ID {
			src = p
		}
	}
	group := e.groupOnNode(cust.ShardID, cust.Host, cust.Port)
	for _, p := range group {
		e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, p.ID)
	}
	db := e.reopen()
	// While the node's placements are inactive: a customer of the shard is
	// deleted (its rows cascade), another added with its rows.
	var gone, added int64
	for k := int64(1); k <= 40 && gone == 0; k++ {
		if e.shardOfKey("customers", k) == cust.ShardID {
			gone = k
		}
	}
	for k := int64(1000); added == 0; k++ {
		if e.shardOfKey("customers", k) == cust.ShardID {
			added = k
		}
	}
	if gone == 0 {
		t.Fatalf("no customer of 1..40 in shard %d", cust.ShardID)
	}
	for _, s := range []string{
		`DELETE FROM customers WHERE id = $1`,
	} {
		if _, err := db.Exec(s, gone); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{
		`INSERT INTO customers VALUES ($1, 'new')`,
		`INSERT INTO orders VALUES ($1, 7)`,
		`INSERT INTO ` + pgx.Identifier{profilesTable}.Sanitize() + ` VALUES ($1, 'new')`,
		`INSERT INTO notes VALUES ($1, 'new')`,
	} {
		if _, err := db.Exec(s, added); err != nil {
			t.Fatal(err)
		}
	}

	repair := func(p placement) error {
		_, err := db.Exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, p.ShardID, src.Host, src.Port, p.Host, p.Port)
		return err
	}
	// orders' shard references customers' shard, inactive on the node.
	err := repair(group[1])
	expectError(t, err, "55000", "repair")
	if st := placementOf(e.placements("orders"), group[1].ShardID, group[1].Host, group[1].Port).State; st != 3 {
		t.Fatalf("refused repair left orders' placement in state %d, want 3", st)
	}
	for i, p := range group {
		if err := repair(p); err != nil {
			t.Fatalf("repairing placement %d (table %d of the group, shard %d on %s:%d): %v", p.ID, i, p.ShardID, p.Host, p.Port, err)
		}
	}
	e.assertGroupIdentical()
	e.assertColocatedFKs(colocatedFKTables...)
	e.assertOrphansRefused(colocatedFKTables...)
	e.assertCascade(added)

	// A referenced shard repaired while its referencing placements on the
	// node are finalized keeps their foreign keys.
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, group[0].ID)
	if err := repair(group[0]); err != nil {
		t.Fatalf("repairing customers' placement again: %v", err)
	}
	e.assertColocatedFKs(colocatedFKTables...)
	e.assertOrphansRefused(colocatedFKTables...)
	e.assertGroupIdentical()

	e.assertDropConstraint()
}

// TestColocatedForeignKeysSurviveMove: master_move_shard_placement of a
// customers shard moves the co-located shards of the three referencing
// tables with it; on the new node each has its template's foreign keys to
// the co-located shards there, orphans are refused with 23503, ON DELETE
// CASCADE acts on every placement, the old node keeps none of the group's
// tables, and DROP CONSTRAINT through pgshard works afterwards. Before the
// fix the moved shards had no foreign keys.
func TestColocatedForeignKeysSurviveMove(t *testing.T) {
	ctx := context.Background()
	e := setupColocatedFKs(t)
	moved := e.placements("customers")[0]
	dest := e.nodeWithout("customers", moved.ShardID)
	group := e.groupOnNode(moved.ShardID, moved.Host, moved.Port)
	e.exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, moved.ShardID, moved.Host, moved.Port, dest.Host, dest.Port)
	after := e.groupOnNode(moved.ShardID, dest.Host, dest.Port)
	tables := append([]string{"customers"}, colocatedFKTables...)
	for i, p := range group {
		if q := placementOf(e.placements(pgx.Identifier{tables[i]}.Sanitize()), p.ShardID, moved.Host, moved.Port); q.ID != 0 {
			t.Errorf("%s's shard %d still has placement %d on %s:%d", tables[i], p.ShardID, q.ID, moved.Host, moved.Port)
		}
		var exists bool
		if err := e.workerAt(moved.Host, moved.Port).QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, shardTable(tables[i], p.ShardID)).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("%s's shard table %s is still on the source %s:%d", tables[i], shardTable(tables[i], p.ShardID), moved.Host, moved.Port)
		}
		if after[i].State != 1 {
			t.Errorf("%s's new placement %d is in state %d", tables[i], after[i].ID, after[i].State)
		}
	}
	e.assertGroupIdentical()
	e.assertColocatedFKs(colocatedFKTables...)
	e.assertOrphansRefused(colocatedFKTables...)
	var k int64
	for c := int64(1); c <= 40 && k == 0; c++ {
		if e.shardOfKey("customers", c) == moved.ShardID {
			k = c
		}
	}
	e.assertCascade(k)
	e.assertDropConstraint()
}

// assertFolderOrphansRefused inserts a folder whose parent does not exist
// straight into every finalized placement of folders (rolled back), and
// through pgshard for customers of every shard, and fails unless each is
// refused with 23503.
func (e *env) assertFolderOrphansRefused() {
	e.t.Helper()
	ctx := context.Background()
	for _, p := range e.placements("folders") {
		if p.State != 1 {
			continue
		}
		tx, err := e.workerAt(p.Host, p.Port).Begin(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+shardTable("folders", p.ShardID)+` VALUES (1, 100, 999)`)
		_ = tx.Rollback(ctx)
		if codeOf(err) != "23503" {
			e.t.Fatalf("orphan folder straight into placement %d (shard %d on %s:%d): %v, want SQLSTATE 23503", p.ID, p.ShardID, p.Host, p.Port, err)
		}
	}
	shards := map[int64]bool{}
	for k := int64(1); k <= 20; k++ {
		if _, err := e.DB.Exec(`INSERT INTO folders VALUES ($1, 100, 999)`, k); codeOf(err) != "23503" {
			e.t.Fatalf("orphan folder of customer %d through pgshard: %v (SQLSTATE %q), want 23503", k, err, codeOf(err))
		}
		shards[e.shardOfKey("folders", k)] = true
	}
	if len(shards) != 4 {
		e.t.Fatalf("orphan folders reached %d shards, want 4", len(shards))
	}
}

// assertFolderCascade deletes customer k's root folder through pgshard and
// fails unless no placement keeps any of k's folders (its subfolders go by
// ON DELETE CASCADE) and the replicas agree.
func (e *env) assertFolderCascade(k int64) {
	e.t.Helper()
	if n := e.queryInt(`SELECT count(*) FROM folders WHERE customer_id = $1`, k); n != 3 {
		e.t.Fatalf("customer %d has %d folders, want 3", k, n)
	}
	e.exec(`DELETE FROM folders WHERE customer_id = $1 AND id = 1`, k)
	for _, p := range e.placements("folders") {
		var n int
		if err := e.workerAt(p.Host, p.Port).QueryRow(context.Background(), `SELECT count(*) FROM `+shardTable("folders", p.ShardID)+` WHERE customer_id = $1`, k).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		if n != 0 {
			e.t.Fatalf("after deleting customer %d's root folder, placement %d (shard %d on %s:%d) keeps %d of its folders", k, p.ID, p.ShardID, p.Host, p.Port, n)
		}
	}
	e.assertReplicasIdentical("folders")
}

// TestColocatedSelfForeignKeySurvivesRepairAndMove: a distributed table's
// foreign key to itself (subfolder → parent folder of the same customer,
// ON DELETE CASCADE) references the shard's own table. A placement marked
// inactive and repaired with master_copy_shard_placement, and a placement
// moved with master_move_shard_placement, get it back, named as DDL
// through pgshard names it: orphans are refused with 23503 on every
// placement, the cascade acts on every placement, and DROP CONSTRAINT
// through pgshard then removes it everywhere.
func TestColocatedSelfForeignKeySurvivesRepairAndMove(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.exec(`CREATE TABLE folders (customer_id bigint NOT NULL, id bigint NOT NULL, parent_id bigint, PRIMARY KEY (customer_id, id))`)
	e.exec(`SELECT master_create_distributed_table('folders', 'customer_id')`)
	e.exec(`SELECT master_create_worker_shards('folders', 4, 2)`)
	e.exec(`ALTER TABLE folders ADD FOREIGN KEY (customer_id, parent_id) REFERENCES folders (customer_id, id) ON DELETE CASCADE`)
	for k := 1; k <= 20; k++ {
		e.exec(`INSERT INTO folders VALUES ($1, 1, NULL), ($1, 2, 1), ($1, 3, 2)`, k)
	}
	e.assertColocatedFKs("folders")
	// customerOf returns a customer of 1..20 in shard, skipping those in skip.
	customerOf := func(shard int64, skip ...int64) int64 {
		for k := int64(1); k <= 20; k++ {
			if e.shardOfKey("folders", k) == shard && !slices.Contains(skip, k) {
				return k
			}
		}
		t.Fatalf("no customer of 1..20 in shard %d", shard)
		return 0
	}

	// Repair.
	ps := e.placements("folders")
	bad, src := ps[0], placement{}
	for _, p := range ps {
		if p.ShardID == bad.ShardID && p.ID != bad.ID {
			src = p
		}
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, bad.ID)
	db := e.reopen()
	gone := customerOf(bad.ShardID)
	if _, err := db.Exec(`DELETE FROM folders WHERE customer_id = $1 AND id = 1`, gone); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, bad.ShardID, src.Host, src.Port, bad.Host, bad.Port); err != nil {
		t.Fatalf("repairing placement %d: %v", bad.ID, err)
	}
	e.assertReplicasIdentical("folders")
	e.assertColocatedFKs("folders")
	e.assertFolderOrphansRefused()
	e.assertFolderCascade(customerOf(bad.ShardID, gone))

	// Move.
	moved := e.placements("folders")[1]
	dest := e.nodeWithout("folders", moved.ShardID)
	e.exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, moved.ShardID, moved.Host, moved.Port, dest.Host, dest.Port)
	if p := placementOf(e.placements("folders"), moved.ShardID, dest.Host, dest.Port); p.State != 1 {
		t.Fatalf("moved placement of shard %d on %s:%d: %+v, want finalized", moved.ShardID, dest.Host, dest.Port, p)
	}
	e.assertReplicasIdentical("folders")
	e.assertColocatedFKs("folders")
	e.assertFolderOrphansRefused()
	e.assertFolderCascade(customerOf(moved.ShardID, gone, customerOf(bad.ShardID, gone)))

	e.exec(`ALTER TABLE folders DROP CONSTRAINT folders_customer_id_parent_id_fkey`)
	for _, p := range e.placements("folders") {
		var n int
		if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'`, shardTable("folders", p.ShardID)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("after DROP CONSTRAINT, placement %d (shard %d on %s:%d) has %d foreign keys", p.ID, p.ShardID, p.Host, p.Port, n)
		}
	}
	e.exec(`INSERT INTO folders VALUES (1, 100, 999)`)
}

// TestColocatedRepairLocksReferencedTableFirst: a repair of a referenced
// shard (customers) whose referencing placements on the node (orders, ...)
// are finalized takes the repaired table's lock before those of the
// tables referencing it, so a writer on the node that holds the
// customers shard and then writes the orders shard waits for the repair
// instead of deadlocking with it. Before the repair took the customers
// lock first it held orders' (dropping its foreign key) while waiting for
// customers', and PostgreSQL ended the repair with 40P01.
func TestColocatedRepairLocksReferencedTableFirst(t *testing.T) {
	ctx := context.Background()
	e := setupColocatedFKs(t)
	var cust, src placement
	for _, p := range e.placements("customers") {
		switch {
		case cust.ID == 0:
			cust = p
		case p.ShardID == cust.ShardID:
			src = p
		}
	}
	orders := e.colocatedShard("orders", cust.ShardID)
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, cust.ID)
	db := e.reopen()

	var node *pgtest.Node
	for _, w := range e.workers {
		if w.Host == cust.Host && w.Port == cust.Port {
			node = w
		}
	}
	writer, err := pgx.Connect(ctx, node.DSN(e.dbname))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(ctx)
	tx, err := writer.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO `+shardTable("customers", cust.ShardID)+` VALUES (-1, 'held')`); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := db.Exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, cust.ShardID, src.Host, src.Port, cust.Host, cust.Port)
		done <- err
	}()
	// The repair waits for the writer's lock on the customers shard.
	waiting := false
	for deadline := time.Now().Add(20 * time.Second); !waiting && time.Now().Before(deadline); {
		select {
		case err := <-done:
			t.Fatalf("the repair ended (%v) while the writer held the customers shard", err)
		case <-time.After(50 * time.Millisecond):
		}
		if err := e.workerAt(cust.Host, cust.Port).QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted AND relation = $1::regclass)`,
			shardTable("customers", cust.ShardID)).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if !waiting {
		t.Fatal("the repair never waited for the customers shard's lock")
	}
	// Past deadlock_timeout (1 s), so a deadlock would have been found.
	time.Sleep(1500 * time.Millisecond)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := tx.Exec(wctx, `INSERT INTO `+shardTable("orders", orders)+` VALUES (-1, 1)`); err != nil {
		t.Fatalf("the writer's insert into the orders shard while the repair waits: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("repair: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the repair did not finish within 60 s of the writer's rollback")
	}
	e.assertGroupIdentical()
	e.assertColocatedFKs(colocatedFKTables...)
	e.assertOrphansRefused(colocatedFKTables...)
}

// TestColocatedForeignKeyToLegacyShardNames: the referenced table's shard
// tables keep the names an older pgshard left (PostgreSQL's truncation of
// "<name>_<shardid>" to 63 bytes, recorded in shard_table_name). Repairing
// a referencing shard, and then the referenced shard, gives the referencing
// placement its foreign key to the legacy-named shard table on its node, so
// an orphan is refused with 23503 there; DROP CONSTRAINT through pgshard
// works afterwards.
func TestColocatedForeignKeyToLegacyShardNames(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := "legacy_" + strings.Repeat("n", 53) // 60 bytes
	legacyName := func(shardID int64) string { return fmt.Sprintf("%s_%d", name, shardID)[:63] }
	e.exec(`CREATE TABLE ` + name + ` (k int PRIMARY KEY, v int)`)
	e.exec(`CREATE TABLE kids (k int NOT NULL, w int)`)
	for _, tb := range []string{name, "kids"} {
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, tb)
		// One shard: two would get the same truncated name on a node.
		e.exec(`SELECT master_create_worker_shards($1, 1, 2)`, tb)
	}
	e.exec(`ALTER TABLE kids ADD CONSTRAINT kids_parent_fk FOREIGN KEY (k) REFERENCES ` + name + ` (k)`)
	e.exec(`INSERT INTO ` + name + ` (k, v) SELECT g, g FROM generate_series(1, 50) g`)
	e.exec(`INSERT INTO kids (k, w) SELECT g, g FROM generate_series(1, 50) g`)
	for _, p := range e.placements(name) {
		if _, err := e.workerAt(p.Host, p.Port).Exec(ctx, `ALTER TABLE `+shardTable(name, p.ShardID)+` RENAME TO `+pgx.Identifier{legacyName(p.ShardID)}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	e.exec(`DROP TABLE IF EXISTS pgs_distribution_metadata.shard_table_name`)
	db := e.reopen()
	// The reopened process records the legacy names when it first connects.
	var recorded int
	if err := db.QueryRow(`SELECT count(*) FROM pgs_distribution_metadata.shard_table_name`).Scan(&recorded); err != nil || recorded != 1 {
		t.Fatalf("%d legacy shard names recorded (%v), want 1", recorded, err)
	}

	// assertFK fails unless every finalized placement of kids has its
	// foreign key to the legacy-named shard of the same range, validated,
	// and refuses an orphan with 23503.
	assertFK := func() {
		t.Helper()
		for _, p := range e.placements("kids") {
			if p.State != 1 {
				t.Fatalf("placement %d of kids is in state %d", p.ID, p.State)
			}
			conn := e.workerAt(p.Host, p.Port)
			var got string
			if err := conn.QueryRow(ctx, `SELECT string_agg(k.conname || ' -> ' || r.relname || ' validated=' || k.convalidated, ', ')
				FROM pg_constraint k JOIN pg_class r ON r.oid = k.confrelid
				WHERE k.conrelid = $1::regclass AND k.contype = 'f'`, shardTable("kids", p.ShardID)).Scan(&got); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%s -> %s validated=true", catalog.ShardName("kids_parent_fk", p.ShardID), legacyName(e.colocatedShard(name, p.ShardID)))
			if got != want {
				t.Fatalf("placement %d of kids (shard %d on %s:%d) has foreign keys %q, want %q", p.ID, p.ShardID, p.Host, p.Port, got, want)
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+shardTable("kids", p.ShardID)+` VALUES (-1, 0)`)
			_ = tx.Rollback(ctx)
			if codeOf(err) != "23503" {
				t.Fatalf("orphan straight into placement %d of kids: %v, want SQLSTATE 23503", p.ID, err)
			}
		}
	}
	assertFK()

	kid := e.placements("kids")[0]
	parent := placementOf(e.placements(name), e.colocatedShard(name, kid.ShardID), kid.Host, kid.Port)
	source := func(table string, shardID int64, not placement) placement {
		for _, p := range e.placements(pgx.Identifier{table}.Sanitize()) {
			if p.ShardID == shardID && p.ID != not.ID {
				return p
			}
		}
		t.Fatalf("no other placement of shard %d", shardID)
		return placement{}
	}
	for _, p := range []placement{kid, parent} {
		table := map[bool]string{true: "kids", false: name}[p.ID == kid.ID]
		src := source(table, p.ShardID, p)
		e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, p.ID)
		if _, err := db.Exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, p.ShardID, src.Host, src.Port, p.Host, p.Port); err != nil {
			t.Fatalf("repairing placement %d of %s: %v", p.ID, table, err)
		}
		e.assertReplicasIdentical("kids")
		assertFK()
	}
	if _, err := db.Exec(`INSERT INTO kids VALUES (-1, 0)`); codeOf(err) != "23503" {
		t.Fatalf("orphan through pgshard: %v, want SQLSTATE 23503", err)
	}
	if _, err := db.Exec(`ALTER TABLE kids DROP CONSTRAINT kids_parent_fk`); err != nil {
		t.Fatalf("DROP CONSTRAINT after the repairs: %v", err)
	}
	if _, err := db.Exec(`INSERT INTO kids VALUES (-1, 0)`); err != nil {
		t.Fatalf("insert after DROP CONSTRAINT: %v", err)
	}
}

// TestColocatedForeignKeysUnderLiveLoad: writers keep adding customers of
// one shard with their orders and deleting some (ON DELETE CASCADE) while
// that shard's group of placements on one node is repaired, referenced
// table first, and then the group is moved off another node. No order
// whose customer's insert was acknowledged is refused with 23503, no
// placement ends with an orphan, the replicas agree, and every placement
// has its foreign keys. No write fails with 40000 (recovery, such as the
// repair's own on its nodes, deciding a live coordinator's commit rolled
// back), and none with the repair fence's 40001: the writers are autocommit,
// and pgshard runs a statement the fence refused again on the current
// placements (session/retry.go).
func TestColocatedForeignKeysUnderLiveLoad(t *testing.T) {
	ctx := context.Background()
	e := setupColocatedFKs(t)
	cust := e.placements("customers")[0]
	shard := cust.ShardID
	var src placement
	for _, p := range e.placements("customers") {
		if p.ShardID == shard && p.ID != cust.ID {
			src = p
		}
	}
	var keys []int64
	for _, k := range e.keysInShard(shard, 4*150+40) {
		if k > 40 {
			keys = append(keys, k)
		}
	}
	group := e.groupOnNode(shard, cust.Host, cust.Port)
	for _, p := range group {
		e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, p.ID)
	}

	var (
		stop             atomic.Bool
		wg               sync.WaitGroup
		writes, failures atomic.Int64
		refused          atomic.Int64 // orders refused with 23503 after their customer was acknowledged
		rolledBack       atomic.Int64 // writes rolled back by someone else's recovery (40000)
		fenced           atomic.Int64 // writes failed with the repair fence's refusal (40001)
		mu               sync.Mutex
		firstRefusal     error
		firstRollback    error
	)
	// failed counts a failed write: a 40001 fence refusal means pgshard
	// did not run an autocommit write again, and a 40000 means recovery
	// decided a live coordinator's commit rolled back, which it never may.
	failed := func(what string, err error) {
		failures.Add(1)
		t.Logf("%s: %v", what, err)
		if fenceRefusal(err) {
			fenced.Add(1)
		}
		if codeOf(err) == "40000" {
			rolledBack.Add(1)
			mu.Lock()
			if firstRollback == nil {
				firstRollback = fmt.Errorf("%s: %w", what, err)
			}
			mu.Unlock()
		}
	}
	for w := 0; w < 4; w++ {
		db := e.reopen()
		mine := keys[w*150 : (w+1)*150]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := mine[i%len(mine)]
				round := i / len(mine)
				if _, err := db.Exec(`INSERT INTO customers VALUES ($1, 'live') ON CONFLICT (id) DO NOTHING`, k); err != nil {
					failed(fmt.Sprintf("customer %d", k), err)
					continue
				}
				if _, err := db.Exec(`INSERT INTO orders VALUES ($1, $2)`, k, round); err != nil {
					if codeOf(err) == "23503" {
						refused.Add(1)
						mu.Lock()
						if firstRefusal == nil {
							firstRefusal = fmt.Errorf("order of acknowledged customer %d: %w", k, err)
						}
						mu.Unlock()
					} else {
						failed(fmt.Sprintf("order of %d", k), err)
					}
					continue
				}
				writes.Add(1)
				if round%3 == 2 {
					if _, err := db.Exec(`DELETE FROM customers WHERE id = $1`, k); err != nil {
						failed(fmt.Sprintf("delete customer %d", k), err)
					}
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	time.Sleep(300 * time.Millisecond)

	admin := e.reopen()
	for _, p := range group {
		if _, err := admin.Exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, p.ShardID, src.Host, src.Port, p.Host, p.Port); err != nil {
			t.Fatalf("repairing placement %d (shard %d on %s:%d) under load: %v", p.ID, p.ShardID, p.Host, p.Port, err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	var dest placement
	for _, w := range e.workers {
		if (w.Host != cust.Host || w.Port != cust.Port) && (w.Host != src.Host || w.Port != src.Port) {
			dest = placement{Host: w.Host, Port: w.Port}
		}
	}
	if dest.Port == 0 {
		t.Fatal("no third worker to move to")
	}
	if _, err := admin.Exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, shard, src.Host, src.Port, dest.Host, dest.Port); err != nil {
		t.Fatalf("move under load: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	t.Logf("orders written: %d, other failed writes: %d (rolled back by recovery with 40000: %d, fence refusals: %d), orders refused with 23503: %d", writes.Load(), failures.Load(), rolledBack.Load(), fenced.Load(), refused.Load())
	if refused.Load() != 0 {
		t.Fatalf("%d orders of acknowledged customers refused, first: %v", refused.Load(), firstRefusal)
	}
	if rolledBack.Load() != 0 {
		t.Fatalf("%d writes of live coordinators rolled back by recovery, first: %v", rolledBack.Load(), firstRollback)
	}
	if n := fenced.Load(); n != 0 {
		t.Fatalf("%d autocommit writes failed with the repair fence's refusal; want 0 (pgshard runs them again)", n)
	}
	if writes.Load() < 200 {
		t.Fatalf("only %d orders written: the writers were held back", writes.Load())
	}
	e.assertGroupIdentical()
	e.assertColocatedFKs(colocatedFKTables...)
	for _, p := range e.placements("orders") {
		var orphans int
		if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, `SELECT count(*) FROM `+shardTable("orders", p.ShardID)+` o
			WHERE NOT EXISTS (SELECT FROM `+shardTable("customers", e.colocatedShard("customers", p.ShardID))+` c WHERE c.id = o.customer_id)`).Scan(&orphans); err != nil {
			t.Fatal(err)
		}
		if orphans != 0 {
			t.Fatalf("placement %d of orders (shard %d on %s:%d) holds %d orphans", p.ID, p.ShardID, p.Host, p.Port, orphans)
		}
	}
	e.assertOrphansRefused(colocatedFKTables...)
}

// TestColocatedForeignKeyCycle: two co-located tables whose foreign keys
// reference each other have no order in which a move could copy their
// shards referenced first: master_move_shard_placement refuses with 0A000
// and changes nothing. A repair of either's placement still works (the
// other's shard is finalized there), and keeps both foreign keys.
func TestColocatedForeignKeyCycle(t *testing.T) {
	e := newEnv(t)
	for _, tb := range []string{"a", "b"} {
		e.exec(`CREATE TABLE ` + tb + ` (k bigint PRIMARY KEY, v int)`)
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, tb)
		e.exec(`SELECT master_create_worker_shards($1, 4, 2)`, tb)
	}
	e.exec(`ALTER TABLE a ADD CONSTRAINT a_b_fk FOREIGN KEY (k) REFERENCES b (k) DEFERRABLE INITIALLY DEFERRED`)
	e.exec(`ALTER TABLE b ADD CONSTRAINT b_a_fk FOREIGN KEY (k) REFERENCES a (k) DEFERRABLE INITIALLY DEFERRED`)
	for k := 1; k <= 20; k++ {
		tx, err := e.DB.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{`INSERT INTO a VALUES ($1, 1)`, `INSERT INTO b VALUES ($1, 2)`} {
			if _, err := tx.Exec(s, k); err != nil {
				t.Fatalf("%s with %d: %v", s, k, err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit of a and b rows %d: %v", k, err)
		}
	}
	p := e.placements("a")[0]
	dest := e.nodeWithout("a", p.ShardID)
	before := fmt.Sprint(e.placements("a"), e.placements("b"))
	_, err := e.DB.Exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, p.ShardID, p.Host, p.Port, dest.Host, dest.Port)
	expectError(t, err, "0A000", "cycle")
	if after := fmt.Sprint(e.placements("a"), e.placements("b")); after != before {
		t.Fatalf("a refused move changed placements: %s -> %s", before, after)
	}

	var src placement
	for _, q := range e.placements("a") {
		if q.ShardID == p.ShardID && q.ID != p.ID {
			src = q
		}
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, p.ID)
	db := e.reopen()
	if _, err := db.Exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, p.ShardID, src.Host, src.Port, p.Host, p.Port); err != nil {
		t.Fatalf("repairing a's placement %d: %v", p.ID, err)
	}
	e.assertReplicasIdentical("a")
	e.assertColocatedFKs("a", "b")
}

// TestColocatedForeignKeyMoveCopiesReferencedFirst: the referencing table
// was created first (a lower oid: first in its co-location group), yet a
// move copies the referenced table's shard first, so the referencing
// shard's foreign key is added against the copied rows; on the new node
// the constraint holds, orphans are refused with 23503 and ON DELETE
// CASCADE deletes on every placement.
func TestColocatedForeignKeyMoveCopiesReferencedFirst(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.exec(`CREATE TABLE child (k bigint NOT NULL, v int)`)
	e.exec(`CREATE TABLE parent (k bigint PRIMARY KEY)`)
	for _, tb := range []string{"child", "parent"} {
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, tb)
		e.exec(`SELECT master_create_worker_shards($1, 4, 2)`, tb)
	}
	e.exec(`ALTER TABLE child ADD CONSTRAINT child_parent_fk FOREIGN KEY (k) REFERENCES parent (k) ON DELETE CASCADE`)
	for k := 1; k <= 40; k++ {
		e.exec(`INSERT INTO parent VALUES ($1)`, k)
		e.exec(`INSERT INTO child VALUES ($1, 1), ($1, 2)`, k)
	}
	p := e.placements("child")[0]
	dest := e.nodeWithout("child", p.ShardID)
	e.exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, p.ShardID, p.Host, p.Port, dest.Host, dest.Port)
	if q := placementOf(e.placements("child"), p.ShardID, dest.Host, dest.Port); q.State != 1 {
		t.Fatalf("child's shard %d on %s:%d after the move: %+v", p.ShardID, dest.Host, dest.Port, q)
	}
	e.assertColocatedFKs("child")
	e.assertReplicasIdentical("child")
	e.assertReplicasIdentical("parent")
	for _, q := range e.placements("child") {
		tx, err := e.workerAt(q.Host, q.Port).Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+shardTable("child", q.ShardID)+` VALUES (-1, 0)`)
		_ = tx.Rollback(ctx)
		if codeOf(err) != "23503" {
			t.Fatalf("orphan straight into placement %d of child (shard %d on %s:%d): %v, want SQLSTATE 23503", q.ID, q.ShardID, q.Host, q.Port, err)
		}
	}
	for k := int64(1); k <= 40; k++ {
		if e.shardOfKey("child", k) == p.ShardID {
			e.exec(`DELETE FROM parent WHERE k = $1`, k)
			for _, q := range e.placements("child") {
				var n int
				if err := e.workerAt(q.Host, q.Port).QueryRow(ctx, `SELECT count(*) FROM `+shardTable("child", q.ShardID)+` WHERE k = $1`, k).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Fatalf("after deleting parent %d, placement %d of child (shard %d on %s:%d) keeps %d rows", k, q.ID, q.ShardID, q.Host, q.Port, n)
				}
			}
			return
		}
	}
	t.Fatalf("no key of 1..40 in shard %d", p.ShardID)
}
