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
	h := newHeldWriters(t, "fc", "fence_gate", 4243, writers)
	e, ctx := h.e, h.ctx
	refusedBefore := serverRefusals(t, e, h.source)
	lapsesBefore := pgsession.LeaseLapses()
	h.hold(t)
	var refusals atomic.Int64
	h.start(t, func(k int64) error {
		_, err := h.db.ExecContext(ctx, `UPDATE fc SET n = n + 1, v = fence_gate() WHERE k = $1`, k)
		if err != nil && fenceRefusal(err) {
			refusals.Add(1)
		}
		return err
	})
	start := time.Now()
	// The repair, held after its copy (the source fenced), before its
	// switch; then the gate opens.
	r := pauseRepairBeforeSwitch(t, ctx, e, "fc", h.shard, h.source, h.target)
	h.release(t)
	// Every writer's first write (planned before the target was filling)
	// must have been stopped (by its lapsed lease before it is sent, or by
	// the fence) and run again before the switch lets the fence go (see
	// docs/failure-model.md on leases, and TestStalledWriteAfterRepairSwitch
	// for a write that reaches the send only after the switch).
	h.waitEveryWriterAcked(t, start)
	if err := r.release(); err != nil {
		t.Fatalf("repair: %v", err)
	}
	total := h.stopWriters(t, 500*time.Millisecond, 30*time.Second)
	refused := serverRefusals(t, e, h.source) - refusedBefore
	lapsed := pgsession.LeaseLapses() - lapsesBefore
	t.Logf("repair and writers done in %v; %d writes acknowledged; the source's fence refused %d statements, %d sends stopped by a lapsed lease, %d refusals reached writers, %d errors",
		time.Since(start).Round(time.Millisecond), total, refused, lapsed, refusals.Load(), len(h.errs))
	h.reportErrors(t)
	if refusals.Load() != 0 {
		t.Errorf("%d fence refusals reached autocommit writers, want 0", refusals.Load())
	}
	if refused+int(lapsed) < writers {
		t.Errorf("the source's fence refused %d statements and lapsed leases stopped %d sends, want at least one of the two for each of the %d held writes", refused, lapsed, writers)
	}
	h.checkPlacements(t)
}
