package pgshard_test

import (
	"context"
	"database/sql"
	"testing"
)

// Thousands of failing statements of every kind leave no connection behind,
// and no worker ever sees more connections than the per-node pool allows.
func TestNoConnectionLeaksAfterFailures(t *testing.T) {
	e := setupKV(t, 4, 2)
	db, err := sql.Open("pgshard", e.DSN+"&pool_max_conns=4")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(16)
	e.exec(`INSERT INTO kv (k, v) VALUES (1, 'a'), (2, 'b')`)
	failing := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO kv (k, v) VALUES ($1, 'dup')`, []any{1}},            // unique violation on a replicated write
		{`SELECT v / 0 FROM kv WHERE k = $1`, []any{1}},                   // error on one shard
		{`SELECT 1 / (k - 2) FROM kv`, nil},                               // error on one shard of a scatter
		{`SELECT v FROM kv WHERE k = $1`, []any{"not a number"}},          // error before sending
		{`UPDATE kv SET n = n / 0 WHERE n >= 0`, nil},                     // multi-shard write rolled back
		{`SELECT count(*) FROM kv GROUP BY v HAVING sum(k) / 0 > 1`, nil}, // error in the combine step
	}
	ctx := context.Background()
	maxSeen := 0
	for i := 0; i < 2000; i++ {
		f := failing[i%len(failing)]
		if _, err := db.ExecContext(ctx, f.sql, f.args...); err == nil {
			t.Fatalf("%s succeeded", f.sql)
		}
		if i%250 == 0 {
			// The two-phase commit resolver's own connection (one per worker,
			// outside the pools, named) is not the pool's.
			for _, w := range e.workers {
				var n int
				if err := e.worker(w).QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> 'pgshard resolver'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n > maxSeen {
					maxSeen = n
				}
			}
		}
	}
	if maxSeen > 4 {
		t.Fatalf("a worker saw %d connections from a pool limited to 4", maxSeen)
	}
	// Still healthy: every placement finalized, statements work.
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard_placement WHERE shard_state <> 1`); n != 0 {
		t.Fatalf("%d placements marked after statement errors", n)
	}
	var v string
	if err := db.QueryRow(`SELECT v FROM kv WHERE k = 2`).Scan(&v); err != nil || v != "b" {
		t.Fatalf("after the failures: %q, %v", v, err)
	}
	e.assertReplicasIdentical("kv")
	t.Logf("2000 failing statements; at most %d connections per worker (pool limit 4)", maxSeen)
}
