package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/pgshard/pgshard"
)

// The seed's 16 shard ranges (pg_shard 1.2.2's split of the int32 hash space).
var seedRanges = [][2]string{
	{"-2147483648", "-1879048194"}, {"-1879048193", "-1610612739"}, {"-1610612738", "-1342177284"}, {"-1342177283", "-1073741829"},
	{"-1073741828", "-805306374"}, {"-805306373", "-536870919"}, {"-536870918", "-268435464"}, {"-268435463", "-9"},
	{"-8", "268435446"}, {"268435447", "536870901"}, {"536870902", "805306356"}, {"805306357", "1073741811"},
	{"1073741812", "1342177266"}, {"1342177267", "1610612721"}, {"1610612722", "1879048176"}, {"1879048177", "2147483647"},
}

func TestMetadataSchemaMatchesPgShard(t *testing.T) {
	e := newEnv(t)
	want := map[string]string{
		"partition.relation_id":       "oid",
		"partition.partition_method":  "char",
		"partition.key":               "text",
		"shard.id":                    "bigint",
		"shard.relation_id":           "oid",
		"shard.storage":               "char",
		"shard.min_value":             "text",
		"shard.max_value":             "text",
		"shard_placement.id":          "bigint",
		"shard_placement.shard_id":    "bigint",
		"shard_placement.shard_state": "integer",
		"shard_placement.node_name":   "text",
		"shard_placement.node_port":   "integer",
	}
	rows, err := e.DB.Query(`SELECT table_name || '.' || column_name, data_type FROM information_schema.columns
		WHERE table_schema = 'pgs_distribution_metadata' AND table_name IN ('partition', 'shard', 'shard_placement')`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var col, typ string
		if err := rows.Scan(&col, &typ); err != nil {
			t.Fatal(err)
		}
		got[col] = typ
	}
	rows.Close()
	if len(got) != len(want) {
		t.Fatalf("columns = %v, want %v", got, want)
	}
	for col, typ := range want {
		if got[col] != typ && !(typ == "char" && got[col] == `"char"`) {
			t.Errorf("%s is %q, want %q", col, got[col], typ)
		}
	}
	// Nodes are listed ordered by (name, port).
	var nodes []string
	rows, err = e.DB.Query(`SELECT node_name || ':' || node_port FROM pgs_distribution_metadata.node ORDER BY node_name, node_port`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		nodes = append(nodes, n)
	}
	rows.Close()
	if len(nodes) != 4 {
		t.Fatalf("nodes = %v", nodes)
	}
	_, err = e.DB.Exec(`SELECT master_add_node($1, $2)`, e.workers[0].Host, e.workers[0].Port)
	expectError(t, err, "42710", "already added")
}

func TestSeedShardRangesAndPlacements(t *testing.T) {
	e := newEnv(t)
	e.exec(customerReviewsDDL)
	e.exec(`SELECT master_create_distributed_table('customer_reviews', 'customer_id')`)
	e.exec(`SELECT master_create_worker_shards('customer_reviews', 16, 2)`)

	var method, key string
	if err := e.DB.QueryRow(`SELECT partition_method, key FROM pgs_distribution_metadata.partition WHERE relation_id = 'customer_reviews'::regclass`).Scan(&method, &key); err != nil {
		t.Fatal(err)
	}
	if method != "h" || key != "customer_id" {
		t.Fatalf("partition = %q %q", method, key)
	}
	rows, err := e.DB.Query(`SELECT id, storage, min_value, max_value FROM pgs_distribution_metadata.shard ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rows.Next() {
		var id int64
		var storage, lo, hi string
		if err := rows.Scan(&id, &storage, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if id != int64(10000+i) || storage != "t" || lo != seedRanges[i][0] || hi != seedRanges[i][1] {
			t.Errorf("shard %d = %d %s [%s, %s], want %d t [%s, %s]", i, id, storage, lo, hi, 10000+i, seedRanges[i][0], seedRanges[i][1])
		}
		i++
	}
	rows.Close()
	if i != 16 {
		t.Fatalf("%d shards", i)
	}

	var nodes []string
	nrows, _ := e.DB.Query(`SELECT node_name || ':' || node_port FROM pgs_distribution_metadata.node ORDER BY node_name, node_port`)
	for nrows.Next() {
		var n string
		nrows.Scan(&n)
		nodes = append(nodes, n)
	}
	nrows.Close()
	ps := e.placements("customer_reviews")
	if len(ps) != 32 {
		t.Fatalf("%d placements", len(ps))
	}
	for k, p := range ps {
		shard, replica := k/2, k%2
		wantNode := nodes[(shard+replica)%4]
		if p.ID != int64(k+1) || p.ShardID != int64(10000+shard) || p.State != 1 || fmt.Sprintf("%s:%d", p.Host, p.Port) != wantNode {
			t.Errorf("placement %d = %+v, want id %d shard %d on %s", k, p, k+1, 10000+shard, wantNode)
		}
		// The shard table exists on that worker.
		var exists bool
		if err := e.workerAt(p.Host, p.Port).QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, fmt.Sprintf("customer_reviews_%d", p.ShardID)).Scan(&exists); err != nil || !exists {
			t.Errorf("shard table customer_reviews_%d missing on %s:%d (%v)", p.ShardID, p.Host, p.Port, err)
		}
	}
}

func TestFourShardsAndTomato(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE fruit (name text PRIMARY KEY, color text)`)
	e.exec(`SELECT master_create_distributed_table('fruit', 'name')`)
	e.exec(`SELECT master_create_worker_shards('fruit', 4, 1)`)
	want := [][2]string{{"-2147483648", "-1073741826"}, {"-1073741825", "-3"}, {"-2", "1073741820"}, {"1073741821", "2147483647"}}
	rows, err := e.DB.Query(`SELECT min_value, max_value FROM pgs_distribution_metadata.shard WHERE relation_id = 'fruit'::regclass ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; rows.Next(); i++ {
		var lo, hi string
		rows.Scan(&lo, &hi)
		if lo != want[i][0] || hi != want[i][1] {
			t.Errorf("shard %d: [%s, %s], want %v", i, lo, hi, want[i])
		}
	}
	rows.Close()
	e.exec(`INSERT INTO fruit VALUES ('tomato', 'red')`)
	var firstShard int64
	e.DB.QueryRow(`SELECT min(id) FROM pgs_distribution_metadata.shard WHERE relation_id = 'fruit'::regclass`).Scan(&firstShard)
	got := e.holders("fruit", "name", "tomato")
	if len(got) != 1 || got[firstShard+2] != 1 {
		t.Fatalf("tomato is in shards %v, want only the third, %d", got, firstShard+2)
	}
	var color string
	if err := e.DB.QueryRow(`SELECT color FROM fruit WHERE name = 'tomato'`).Scan(&color); err != nil || color != "red" {
		t.Fatalf("color = %q, %v", color, err)
	}
}

func TestAdminFunctionErrors(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE docs (id bigint, body jsonb, title text)`)
	e.exec(`CREATE TABLE plain (id int)`)
	cases := []struct {
		sql, code, contains string
	}{
		{`SELECT master_create_distributed_table('nope', 'id')`, "42P01", `relation "nope" does not exist`},
		{`SELECT master_create_distributed_table('docs', 'nope')`, "42703", `column "nope"`},
		{`SELECT master_create_distributed_table('docs', 'body')`, "42883", "could not identify a hash function for type jsonb"},
		{`SELECT master_create_worker_shards('plain', 4, 1)`, "55000", "is not distributed"},
		{`SELECT master_create_worker_shards('docs', 4, 1)`, "55000", "is not distributed"},
		{`SELECT master_create_distributed_table('docs')`, "42883", "takes 2 arguments"},
		{`SELECT master_add_node('localhost', 0)`, "22023", "out of range"},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			_, err := e.DB.Exec(c.sql)
			expectError(t, err, c.code, c.contains)
		})
	}
	e.exec(`SELECT master_create_distributed_table('docs', 'id')`)
	_, err := e.DB.Exec(`SELECT master_create_distributed_table('docs', 'id')`)
	expectError(t, err, "55000", "already distributed")
	for _, c := range []struct{ sql, code, contains string }{
		{`SELECT master_create_worker_shards('docs', 0, 1)`, "22023", "shard_count must be positive"},
		{`SELECT master_create_worker_shards('docs', 4, 0)`, "22023", "replication_factor must be positive"},
		{`SELECT master_create_worker_shards('docs', 4, 5)`, "22023", "exceeds number of worker nodes"},
	} {
		_, err := e.DB.Exec(c.sql)
		expectError(t, err, c.code, c.contains)
	}
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard`); n != 0 {
		t.Fatalf("failed calls left %d shards", n)
	}
	e.exec(`SELECT master_create_worker_shards('docs', 4, 2)`)
	_, err = e.DB.Exec(`SELECT master_create_worker_shards('docs', 4, 2)`)
	expectError(t, err, "55000", "already had shards created")
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard`); n != 4 {
		t.Fatalf("%d shards", n)
	}
}

func TestShardTablesCarryTemplateDefinition(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE accounts (
		id bigint PRIMARY KEY,
		email text NOT NULL,
		balance numeric NOT NULL DEFAULT 0 CHECK (balance >= 0),
		UNIQUE (id, email))`)
	e.exec(`CREATE INDEX accounts_email_idx ON accounts (lower(email))`)
	e.exec(`SELECT master_create_distributed_table('accounts', 'id')`)
	e.exec(`SELECT master_create_worker_shards('accounts', 4, 2)`)
	ps := e.placements("accounts")
	conn := e.workerAt(ps[0].Host, ps[0].Port)
	var indexes []string
	rows, err := conn.Query(context.Background(), `SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1`, fmt.Sprintf("accounts_%d", ps[0].ShardID))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		indexes = append(indexes, n)
	}
	rows.Close()
	suffix := fmt.Sprintf("_%d", ps[0].ShardID)
	if len(indexes) != 3 {
		t.Fatalf("indexes on the shard: %v", indexes)
	}
	for _, ix := range indexes {
		if !strings.HasSuffix(ix, suffix) {
			t.Errorf("index %s is not named with %s", ix, suffix)
		}
	}
	e.exec(`INSERT INTO accounts (id, email) VALUES (1, 'a@example.com')`)
	var bal string
	if err := e.DB.QueryRow(`SELECT balance FROM accounts WHERE id = 1`).Scan(&bal); err != nil || bal != "0" {
		t.Fatalf("default balance = %q, %v", bal, err)
	}
	_, err = e.DB.Exec(`UPDATE accounts SET balance = -1 WHERE id = 1`)
	expectError(t, err, "23514", "check constraint")
	_, err = e.DB.Exec(`INSERT INTO accounts (id, email) VALUES (1, 'b@example.com')`)
	expectError(t, err, "23505", "duplicate key")
	e.assertReplicasIdentical("accounts")
}

func TestConnectorAndKeyValueDSN(t *testing.T) {
	e := newEnv(t)
	meta := e.c.Nodes[0]
	kv := fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", meta.Host, meta.Port, e.dbname)
	c, err := pgshard.NewConnector(kv)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	db.Exec(`CREATE TABLE kv (k int, v text)`)
	for _, q := range []string{
		`SELECT master_create_distributed_table('kv', 'k')`,
		`SELECT master_create_worker_shards('kv', 8, 2)`,
		`INSERT INTO kv VALUES (7, 'seven')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var v string
	if err := db.QueryRow(`SELECT v FROM kv WHERE k = $1`, 7).Scan(&v); err != nil || v != "seven" {
		t.Fatalf("v = %q, %v", v, err)
	}
	// The first DB (a different connector and cache) sees the new table too.
	var n int
	if err := e.DB.QueryRow(`SELECT count(*) FROM kv`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("count through the other connector = %d, %v", n, err)
	}
}

// TestAdminFunctionsRefusedInTransaction: the administrative functions
// commit their metadata changes by themselves, so inside a transaction they
// are refused (0A000) before anything runs, the call's FROM rows included,
// and the table stays undistributed.
func TestAdminFunctionsRefusedInTransaction(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE docs (id bigint, title text)`)
	for _, sql := range []string{
		`SELECT master_create_distributed_table('docs', 'id')`,
		`SELECT master_create_distributed_table(t, 'id') FROM (VALUES ('docs')) v(t)`,
	} {
		t.Run(sql, func(t *testing.T) {
			tx, err := e.DB.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			_, err = tx.Exec(sql)
			expectError(t, err, "0A000", "cannot run inside a transaction")
		})
	}
	// Not distributed: this call succeeds.
	e.exec(`SELECT master_create_distributed_table('docs', 'id')`)
}
