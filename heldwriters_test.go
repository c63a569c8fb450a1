package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// heldWriters is the fixture of the tests in which many writers of one
// process, each incrementing its own key of one shard, are held in a
// volatile function pgshard evaluates on the metadata database (the gate,
// on an advisory lock the test holds) while the process's heartbeat is held
// too (the test holds its row in pgs_distribution_metadata.process), and a
// repair of that shard runs meanwhile. The table has 2 replicas on 2
// workers; the shard's second placement (target) starts inactive, to be
// copied back from the first (source). The writers' process has pools of 2
// connections per node.
//
// acked, errs and stop are shared with the writer goroutines: acked and
// errs are guarded by mu.
type heldWriters struct {
	e              *env
	ctx            context.Context
	table, gate    string // the table and the gate function's name
	lock           int    // the gate's advisory lock
	shard          int64
	source, target placement
	keys           []int64 // one per writer
	db             *sql.DB // the writers' process
	writerID       string  // its row in pgs_distribution_metadata.process
	// gateConn holds the gate's lock, heartbeat the process's row; poll
	// reads the metadata database.
	gateConn, heartbeat, poll *pgx.Conn

	mu    sync.Mutex
	acked []int
	errs  []error
	stop  atomic.Bool
	wg    sync.WaitGroup
}

// newHeldWriters makes the table (`table (k bigint PRIMARY KEY, n int,
// v text)`, 2 shards, 2 replicas), its rows for writers keys of one shard,
// the gate function gate on advisory lock lock, the writers' process, and
// marks the shard's second placement inactive. ctx ends with the test
// (hangDeadline at the latest).
func newHeldWriters(t *testing.T, table, gate string, lock, writers int) *heldWriters {
	t.Helper()
	e := newEnvOnWorkers(t, 2)
	e.exec(fmt.Sprintf(`CREATE TABLE %s (k bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, v text)`, table))
	e.exec(fmt.Sprintf(`SELECT master_create_distributed_table('%s', 'k')`, table))
	e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', 2, 2)`, table))
	e.exec(fmt.Sprintf(`CREATE FUNCTION %s() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
		BEGIN PERFORM pg_advisory_xact_lock_shared(%d); RETURN 'gated'; END $$`, gate, lock))
	h := &heldWriters{e: e, table: table, gate: gate, lock: lock, acked: make([]int, writers)}
	ps := e.placements(table)
	h.shard = ps[0].ShardID
	var holders []placement
	for _, p := range ps {
		if p.ShardID == h.shard {
			holders = append(holders, p)
		}
	}
	h.source, h.target = holders[0], holders[1]
	// keysInShard reads shard ranges of kv-like tables by id: any table.
	h.keys = e.keysInShard(h.shard, writers)
	for _, k := range h.keys {
		e.exec(fmt.Sprintf(`INSERT INTO %s (k) VALUES ($1)`, table), k)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	t.Cleanup(cancel)
	h.ctx = ctx
	metaConn := func() *pgx.Conn {
		conn, err := pgx.Connect(ctx, e.c.Nodes[0].DSN(e.dbname))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	h.gateConn, h.heartbeat, h.poll = metaConn(), metaConn(), metaConn()
	processes := func() []string {
		rows, err := h.poll.Query(ctx, `SELECT id FROM pgs_distribution_metadata.process`)
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
	h.db = e.openPool(2)
	if err := h.poll.QueryRow(ctx, `SELECT id FROM pgs_distribution_metadata.process WHERE id <> ALL($1)`, before).Scan(&h.writerID); err != nil {
		t.Fatalf("the writer's heartbeat: %v", err)
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, h.target.ID)
	return h
}

// hold closes the gate and holds the writers' heartbeat.
func (h *heldWriters) hold(t *testing.T) {
	t.Helper()
	mustExecConn(t, h.ctx, h.gateConn, `BEGIN`, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, h.lock))
	mustExecConn(t, h.ctx, h.heartbeat, `BEGIN`, fmt.Sprintf(`SELECT FROM pgs_distribution_metadata.process WHERE id = '%s' FOR UPDATE`, h.writerID))
}

// start runs one goroutine per key, each calling write(key) until stop
// (at least once), counting acknowledged writes; a writer stops at its
// first error. It returns once some write waits in the gate.
func (h *heldWriters) start(t *testing.T, write func(k int64) error) {
	t.Helper()
	for g := range h.keys {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for first := true; first || !h.stop.Load(); first = false {
				err := write(h.keys[g])
				h.mu.Lock()
				if err != nil {
					h.errs = append(h.errs, fmt.Errorf("writer %d after %d writes: %w", g, h.acked[g], err))
					h.mu.Unlock()
					return
				}
				h.acked[g]++
				h.mu.Unlock()
			}
		}()
	}
	waitUntil(t, h.ctx, "writes waiting in "+h.gate, h.poll,
		`SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory')`)
}

// release lets the heartbeat and the gated writes go.
func (h *heldWriters) release(t *testing.T) {
	t.Helper()
	mustExecConn(t, h.ctx, h.heartbeat, `COMMIT`)
	mustExecConn(t, h.ctx, h.gateConn, `COMMIT`)
}

// waitEveryWriterAcked waits until every writer has an acknowledged write
// (or some writer failed), failing the test a minute after start.
func (h *heldWriters) waitEveryWriterAcked(t *testing.T, start time.Time) {
	t.Helper()
	for {
		h.mu.Lock()
		all := len(h.errs) > 0
		if !all {
			all = true
			for _, n := range h.acked {
				if n == 0 {
					all = false
					break
				}
			}
		}
		h.mu.Unlock()
		if all {
			return
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("writers without an acknowledged write a minute after the gate opened")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopWriters lets the writers keep writing for a while more, stops them
// and waits for them, failing the test when they have not ended within
// drain; it returns the acknowledged writes.
func (h *heldWriters) stopWriters(t *testing.T, more, drain time.Duration) int {
	t.Helper()
	time.Sleep(more)
	h.stop.Store(true)
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(drain):
		t.Fatalf("writers still running %v after they were told to stop", drain)
	}
	total := 0
	for _, n := range h.acked {
		total += n
	}
	return total
}

// reportErrors fails the test with the writers' first errors.
func (h *heldWriters) reportErrors(t *testing.T) {
	t.Helper()
	for _, err := range h.errs[:min(len(h.errs), 5)] {
		t.Error(err)
	}
}

// checkPlacements fails the test unless every placement of the shard is
// finalized and holds exactly the acknowledged count of every key, and the
// replicas are identical.
func (h *heldWriters) checkPlacements(t *testing.T) {
	t.Helper()
	for _, p := range h.e.placements(h.table) {
		if p.ShardID != h.shard {
			continue
		}
		if p.State != 1 {
			t.Errorf("placement %d on %s:%d in state %d, want 1", p.ID, p.Host, p.Port, p.State)
		}
		rows, err := h.e.workerAt(p.Host, p.Port).Query(h.ctx, fmt.Sprintf(`SELECT k, n FROM %s_%d`, h.table, h.shard))
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
		wrong := 0
		for g, k := range h.keys {
			if got[k] != h.acked[g] {
				if wrong++; wrong <= 5 {
					t.Errorf("placement %d on %s:%d: key %d has n = %d, want %d acknowledged", p.ID, p.Host, p.Port, k, got[k], h.acked[g])
				}
			}
		}
		if wrong > 0 {
			t.Errorf("placement %d on %s:%d: %d of %d keys differ from the acknowledged counts", p.ID, p.Host, p.Port, wrong, len(h.keys))
		}
	}
	h.e.assertReplicasIdentical(h.table)
}
