package pgshard_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pausedRepair is a master_copy_shard_placement run through e.DB, held
// after its copy is committed on the target and before its metadata
// switch (the target's placement row locked on the metadata database),
// so that the source is fenced and the switch not yet made.
type pausedRepair struct {
	t        *testing.T
	ctx      context.Context
	table    string // the shard table, <table>_<shard>
	metaHold *pgx.Conn
	done     chan error
}

// pauseRepairBeforeSwitch starts the repair of shard's placement on
// target from source and returns once it waits for its switch. The
// connections it opens are closed at the test's end.
func pauseRepairBeforeSwitch(t *testing.T, ctx context.Context, e *env, table string, shard int64, source, target placement) *pausedRepair {
	t.Helper()
	connect := func(host string, port int) *pgx.Conn {
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", host, port, e.dbname))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	metaHost, metaPort := e.c.Nodes[0].Host, e.c.Nodes[0].Port
	r := &pausedRepair{t: t, ctx: ctx, table: fmt.Sprintf("%s_%d", table, shard), metaHold: connect(metaHost, metaPort), done: make(chan error, 1)}
	poll := connect(metaHost, metaPort)
	hold, targetPoll := connect(target.Host, target.Port), connect(target.Host, target.Port)
	// Hold the copy before it recreates the target's table (the source is
	// fenced by then), then the switch.
	mustExecConn(t, ctx, hold, `BEGIN`, `LOCK TABLE `+r.table+` IN ACCESS SHARE MODE`)
	go func() {
		_, err := e.DB.ExecContext(ctx, `SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, shard, source.Host, source.Port, target.Host, target.Port)
		r.done <- err
	}()
	waitUntil(t, ctx, "the copy's DROP waiting on the target", targetPoll, `SELECT EXISTS (SELECT FROM pg_locks
		WHERE relation = '`+r.table+`'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted)`)
	mustExecConn(t, ctx, r.metaHold, `BEGIN`, fmt.Sprintf(`SELECT FROM pgs_distribution_metadata.shard_placement WHERE id = %d FOR UPDATE`, target.ID))
	mustExecConn(t, ctx, hold, `COMMIT`)
	waitUntil(t, ctx, "the switch waiting for the placement row", poll, `SELECT EXISTS (SELECT FROM pg_stat_activity
		WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE pgs_distribution_metadata.shard_placement%' AND pid <> pg_backend_pid())`)
	return r
}

// release lets the repair switch and returns its error.
func (r *pausedRepair) release() error {
	r.t.Helper()
	mustExecConn(r.t, r.ctx, r.metaHold, `COMMIT`)
	select {
	case err := <-r.done:
		return err
	case <-r.ctx.Done():
		r.t.Fatalf("the repair did not return: %v", r.ctx.Err())
		return nil
	}
}

// fenceTriggers counts the write fences on table on worker n.
func fenceTriggers(t *testing.T, ctx context.Context, conn *pgx.Conn, table string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname = 'pgshard_write_fence' AND tgrelid = to_regclass($1)`, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFenceOfUnreachableSourceIsDropped: a repair whose source worker is
// down when the repair has switched its placements cannot drop its write
// fence there. Once the source is back, the fence must go by itself (the
// resolver, catalog.DropFinishedFences): writes to the shard that carry no
// version (every write once nothing is filling) succeed again within a
// few resolver passes, with no manual repair, on both placements. Before,
// the fence stayed until the next repair of the shard, and every write to
// the shard was refused (40001, after the retry budget) for good.
func TestFenceOfUnreachableSourceIsDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := startClusterEnv(t, 3)
	e.exec(`CREATE TABLE kv (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	e.exec(`SELECT master_create_distributed_table('kv', 'k')`)
	e.exec(`SELECT master_create_worker_shards('kv', 2, 2)`)
	shard, holders := firstShard(e)
	keys := e.keysInShard(shard, 10)
	for _, k := range keys {
		e.exec(`INSERT INTO kv (k, v) VALUES ($1, 'before')`, k)
	}
	source, target := holders[0], holders[1]
	var srcNode = e.workers[0]
	for _, w := range e.workers {
		if w.Host == source.Host && w.Port == source.Port {
			srcNode = w
		}
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, target.ID)

	r := pauseRepairBeforeSwitch(t, ctx, e, "kv", shard, source, target)
	if n := fenceTriggers(t, ctx, e.workerAt(source.Host, source.Port), r.table); n != 1 {
		t.Fatalf("the source has %d write fences on %s while the repair runs, want 1", n, r.table)
	}
	// The source goes down before the repair drops its fence.
	if err := srcNode.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.release(); err != nil {
		t.Fatalf("repair: %v", err)
	}
	var recorded int
	if err := e.worker(e.c.Nodes[0]).QueryRow(ctx, `SELECT count(*) FROM pgs_distribution_metadata.write_fence WHERE shard_id = $1`, shard).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != 1 {
		t.Fatalf("%d records of shard %d's fence left after a repair that could not drop it, want 1", recorded, shard)
	}
	if err := srcNode.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The fence was left in place on the source.
	if n := fenceTriggers(t, ctx, e.workerAt(source.Host, source.Port), r.table); n != 1 {
		t.Logf("the source has %d write fences on %s right after its restart", n, r.table)
	}

	// Writes to the shard: each autocommit UPDATE is refused (and run
	// again by pgshard five times) while the fence stands; it must go
	// within a bounded time.
	const bound = 15 * time.Second
	start := time.Now()
	attempts := 0
	var lastErr error
	for {
		attempts++
		_, lastErr = e.DB.ExecContext(ctx, `UPDATE kv SET n = n + 1 WHERE k = $1`, keys[0])
		if lastErr == nil {
			break
		}
		if !fenceRefusal(lastErr) {
			t.Fatalf("write after the source's restart: %v (want success, or the fence's refusal until it is dropped)", lastErr)
		}
		if time.Since(start) > bound {
			t.Fatalf("writes to shard %d still refused %v after the source came back (%d statements): %v", shard, bound, attempts, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the first write succeeded %v after the source came back (%d statements)", time.Since(start).Round(time.Millisecond), attempts)
	for _, k := range keys[1:] {
		if _, err := e.DB.ExecContext(ctx, `UPDATE kv SET n = n + 1, v = 'after' WHERE k = $1`, k); err != nil {
			t.Fatalf("write of key %d: %v", k, err)
		}
	}
	for _, p := range e.placements("kv") {
		if p.State != 1 {
			t.Errorf("placement %d of shard %d on %s:%d is in state %d, want 1 (written, not marked inactive)", p.ID, p.ShardID, p.Host, p.Port, p.State)
		}
		if p.ShardID != shard {
			continue
		}
		var sum int
		if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(sum(n), 0) FROM kv_%d`, shard)).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if sum != len(keys) {
			t.Errorf("placement %d on %s:%d: sum(n) = %d, want %d", p.ID, p.Host, p.Port, sum, len(keys))
		}
	}
	e.assertReplicasIdentical("kv")
	if n := fenceTriggers(t, ctx, e.workerAt(source.Host, source.Port), r.table); n != 0 {
		t.Errorf("the source still has %d write fences on %s", n, r.table)
	}
	// The record goes with the fence (in the same resolver pass).
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := e.worker(e.c.Nodes[0]).QueryRow(ctx, `SELECT count(*) FROM pgs_distribution_metadata.write_fence`).Scan(&recorded); err != nil {
			t.Fatal(err)
		}
		if recorded == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fence records left after the fence was dropped", recorded)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
