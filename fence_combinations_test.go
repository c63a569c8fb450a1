package pgshard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	pgsession "github.com/pgshard/pgshard/session"
)

// TestFencedRepairsUnderManyWritersTinyPool: 100 writers, each
// incrementing its own key of a table with 2 replicas on 2 workers,
// through one process whose pools hold 2 connections per worker, while
// another process repairs one shard three times over (its second
// placement marked inactive, then copied back from the first: each
// repair fences the source, switches, and drops the fence). Every writer
// keeps writing throughout; all must finish within a bounded time after
// the last repair, no write may fail (the fence's refusals included: the
// writers are autocommit, so pgshard runs refused writes again itself),
// and every placement must hold exactly the acknowledged counts.
func TestFencedRepairsUnderManyWritersTinyPool(t *testing.T) {
	const writers = 100
	e := newEnvOnWorkers(t, 2)
	e.counterTable("counters", 2, 2, writers, 1)
	db := e.openPool(2)
	ps := e.placements("counters")
	shard := ps[0].ShardID
	var holders []placement
	for _, p := range ps {
		if p.ShardID == shard {
			holders = append(holders, p)
		}
	}
	if len(holders) != 2 {
		t.Fatalf("shard %d has placements %+v, want 2", shard, holders)
	}
	source, target := holders[0], holders[1]

	refusedBefore := serverRefusals(t, e, source)
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	var (
		stop     atomic.Bool
		acked    [writers]int
		mu       sync.Mutex
		errs     []error
		refusals atomic.Int64
		wg       sync.WaitGroup
	)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				_, err := db.ExecContext(ctx, `UPDATE counters SET n = n + 1 WHERE k = $1`, g+1)
				if err != nil {
					if fenceRefusal(err) {
						refusals.Add(1)
					}
					mu.Lock()
					errs = append(errs, fmt.Errorf("writer %d after %d writes: %w", g, acked[g], err))
					mu.Unlock()
					return
				}
				acked[g]++
			}
		}()
	}
	start := time.Now()
	for cycle := 1; cycle <= 3; cycle++ {
		time.Sleep(300 * time.Millisecond)
		e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, target.ID)
		time.Sleep(200 * time.Millisecond)
		if _, err := e.DB.ExecContext(ctx, `SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, shard, source.Host, source.Port, target.Host, target.Port); err != nil {
			t.Fatalf("repair %d: %v", cycle, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	repaired := time.Since(start)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	const drain = 30 * time.Second
	select {
	case <-done:
	case <-time.After(drain):
		t.Fatalf("writers still running %v after the last repair (3 repairs took %v)", drain, repaired)
	}
	total := 0
	want := map[int64]int{}
	idle := 0
	for g, n := range acked {
		total += n
		want[int64(g+1)] = n
		if n == 0 {
			idle++
		}
	}
	t.Logf("3 repairs in %v; %d writes acknowledged by %d writers; the source's fence refused %d statements (its server log), %d refusals reached writers, %d errors",
		repaired.Round(time.Millisecond), total, writers, serverRefusals(t, e, source)-refusedBefore, refusals.Load(), len(errs))
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if refusals.Load() != 0 {
		t.Errorf("%d fence refusals reached autocommit writers, want 0", refusals.Load())
	}
	if idle > 0 {
		t.Errorf("%d of %d writers acknowledged no write during the repairs", idle, writers)
	}
	e.assertCounters("counters", want)
	e.assertReplicasIdentical("counters")
}

// serverRefusals counts the fence's refusals in the server log of the
// worker holding p (every test database's, so callers take differences).
func serverRefusals(t *testing.T, e *env, p placement) int {
	t.Helper()
	for _, w := range e.workers {
		if w.Host == p.Host && w.Port == p.Port {
			log, err := os.ReadFile(filepath.Join(w.DataDir, "server.log"))
			if err != nil {
				t.Fatal(err)
			}
			return strings.Count(string(log), "is being repaired or moved, and this write was planned")
		}
	}
	t.Fatalf("no worker %s:%d", p.Host, p.Port)
	return 0
}

// TestFenceRefusalsUnderManyWritersTinyPool: as above, but the writes
// meet the fence for certain. 100 writers through one process with 2
// connections per worker, each on its own key of a shard with 2 replicas
// whose second placement is inactive, plan their writes and then wait in a
// volatile function pgshard evaluates on the metadata database
// (fence_gate, on an advisory lock the test holds), the process's
// heartbeat held, so that the repair of that placement stops waiting for
// them (their lease runs out) and fences the source. The gate opens once
// the source is fenced: every write planned before is stopped, before it
// is sent by its lapsed lease (session.LeaseLapses) or on the source by
// the fence, and pgshard runs it again on the current placements. All
// writers must finish within a bounded time, none may see an error (a
// refusal included), every held write must have been stopped at least
// once, and both placements must hold exactly the acknowledged counts.
func TestFenceRefusalsUnderManyWritersTinyPool(t *testing.T) {
	const writers = 100
	e := newEnvOnWorkers(t, 2)
	e.exec(`CREATE TABLE fc (k bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, v text)`)
	e.exec(`SELECT master_create_distributed_table('fc', 'k')`)
	e.exec(`SELECT master_create_worker_shards('fc', 2, 2)`)
	e.exec(`CREATE FUNCTION fence_gate() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
		BEGIN PERFORM pg_advisory_xact_lock_shared(4243); RETURN 'gated'; END $$`)
	ps := e.placements("fc")
	shard := ps[0].ShardID
	var holders []placement
	for _, p := range ps {
		if p.ShardID == shard {
			holders = append(holders, p)
		}
	}
	source, target := holders[0], holders[1]
	// keysInShard reads shard ranges of kv-like tables by id: any table.
	keys := e.keysInShard(shard, writers)
	for _, k := range keys {
		e.exec(`INSERT INTO fc (k) VALUES ($1)`, k)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	metaConn := func() *pgx.Conn {
		conn, err := pgx.Connect(ctx, e.c.Nodes[0].DSN(e.dbname))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	gate, heartbeat, poll := metaConn(), metaConn(), metaConn()
	processes := func() []string {
		rows, err := poll.Query(ctx, `SELECT id FROM pgs_distribution_metadata.process`)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	before := processes()
	db := e.openPool(2)
	var writerID string
	if err := poll.QueryRow(ctx, `SELECT id FROM pgs_distribution_metadata.process WHERE id <> ALL($1)`, before).Scan(&writerID); err != nil {
		t.Fatalf("the writer's heartbeat: %v", err)
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, target.ID)
	refusedBefore := serverRefusals(t, e, source)
	lapsesBefore := pgsession.LeaseLapses()

	mustExecConn(t, ctx, gate, `BEGIN`, `SELECT pg_advisory_xact_lock(4243)`)
	mustExecConn(t, ctx, heartbeat, `BEGIN`, fmt.Sprintf(`SELECT FROM pgs_distribution_metadata.process WHERE id = '%s' FOR UPDATE`, writerID))
	var (
		stop     atomic.Bool
		acked    [writers]int // guarded by mu
		mu       sync.Mutex
		errs     []error
		refusals atomic.Int64
		wg       sync.WaitGroup
	)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := true; first || !stop.Load(); first = false {
				_, err := db.ExecContext(ctx, `UPDATE fc SET n = n + 1, v = fence_gate() WHERE k = $1`, keys[g])
				mu.Lock()
				if err != nil {
					if fenceRefusal(err) {
						refusals.Add(1)
					}
					errs = append(errs, fmt.Errorf("writer %d after %d writes: %w", g, acked[g], err))
					mu.Unlock()
					return
				}
				acked[g]++
				mu.Unlock()
			}
		}()
	}
	waitUntil(t, ctx, "writes waiting in fence_gate", poll,
		`SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory')`)
	start := time.Now()
	// The repair, held after its copy (the source fenced), before its
	// switch; then the gate opens.
	r := pauseRepairBeforeSwitch(t, ctx, e, "fc", shard, source, target)
	mustExecConn(t, ctx, heartbeat, `COMMIT`)
	mustExecConn(t, ctx, gate, `COMMIT`)
	// Every writer's first write (planned before the target was filling)
	// must have been stopped (by its lapsed lease before it is sent, or by
	// the fence) and run again before the switch lets the fence go (see
	// docs/failure-model.md on leases, and TestStalledWriteAfterRepairSwitch
	// for a write that reaches the send only after the switch).
	for {
		mu.Lock()
		all := len(errs) > 0
		if !all {
			all = true
			for _, n := range acked {
				if n == 0 {
					all = false
					break
				}
			}
		}
		mu.Unlock()
		if all {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("writers without an acknowledged write a minute after the gate opened")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.release(); err != nil {
		t.Fatalf("repair: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	const drain = 30 * time.Second
	select {
	case <-done:
	case <-time.After(drain):
		t.Fatalf("writers still running %v after the repair (which took %v)", drain, time.Since(start))
	}
	refused := serverRefusals(t, e, source) - refusedBefore
	lapsed := pgsession.LeaseLapses() - lapsesBefore
	total := 0
	for _, n := range acked {
		total += n
	}
	t.Logf("repair and writers done in %v; %d writes acknowledged; the source's fence refused %d statements, %d sends stopped by a lapsed lease, %d refusals reached writers, %d errors",
		time.Since(start).Round(time.Millisecond), total, refused, lapsed, refusals.Load(), len(errs))
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if refusals.Load() != 0 {
		t.Errorf("%d fence refusals reached autocommit writers, want 0", refusals.Load())
	}
	if refused+int(lapsed) < writers {
		t.Errorf("the source's fence refused %d statements and lapsed leases stopped %d sends, want at least one of the two for each of the %d held writes", refused, lapsed, writers)
	}
	for _, p := range e.placements("fc") {
		if p.ShardID != shard {
			continue
		}
		if p.State != 1 {
			t.Errorf("placement %d on %s:%d in state %d, want 1", p.ID, p.Host, p.Port, p.State)
		}
		rows, err := e.workerAt(p.Host, p.Port).Query(ctx, fmt.Sprintf(`SELECT k, n FROM fc_%d`, shard))
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]int{}
		for rows.Next() {
			var k int64
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			got[k] = n
		}
		rows.Close()
		for g, k := range keys {
			if got[k] != acked[g] {
				t.Errorf("placement %d on %s:%d: key %d has n = %d, want %d acknowledged", p.ID, p.Host, p.Port, k, got[k], acked[g])
			}
		}
	}
	e.assertReplicasIdentical("fc")
}
