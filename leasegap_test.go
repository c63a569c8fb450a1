package pgshard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	pgsession "github.com/pgshard/pgshard/session"
)

// TestStalledWriteAfterRepairSwitch: a write that started on its lease
// (BeginWrite) and then stalled, past the lease, before it was sent — here
// in a volatile function pgshard evaluates on the metadata database
// (lease_gate, on an advisory lock the test holds) — while its process
// could not heartbeat (the test holds the process's row, and the gated
// writes hold its 2 metadata connections), must not reach the source
// after a repair stopped waiting for the process, switched and dropped
// the source's fence: planned on the placements from before the repair
// (the repaired placement inactive, so the source alone), it would land
// on the source only, and the replicas would differ for good.
//
// 100 writers of one process (pool_max_conns=2), each on its own key of a
// shard with 2 replicas whose second placement is inactive, are held in the
// gate; the repair of that placement runs to its end (it waits out the
// process's lease, fences, copies, switches, drops the fence); then the
// heartbeat and the gate are released. Outside a transaction the held write
// is run again on the current placements (no error reaches the writer);
// in a transaction it fails with 40001 and the rerun hint, and the writer
// runs the transaction again. Either way both placements must hold exactly
// the acknowledged counts and be identical.
func TestStalledWriteAfterRepairSwitch(t *testing.T) {
	cases := []struct {
		name string
		tx   bool
	}{
		{"autocommit", false},
		{"transaction", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { stalledWriteAfterSwitch(t, tc.tx) })
	}
}

func stalledWriteAfterSwitch(t *testing.T, inTx bool) {
	const writers = 100
	e := newEnvOnWorkers(t, 2)
	e.exec(`CREATE TABLE lg (k bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, v text)`)
	e.exec(`SELECT master_create_distributed_table('lg', 'k')`)
	e.exec(`SELECT master_create_worker_shards('lg', 2, 2)`)
	e.exec(`CREATE FUNCTION lease_gate() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
		BEGIN PERFORM pg_advisory_xact_lock_shared(4244); RETURN 'gated'; END $$`)
	ps := e.placements("lg")
	shard := ps[0].ShardID
	var holders []placement
	for _, p := range ps {
		if p.ShardID == shard {
			holders = append(holders, p)
		}
	}
	source, target := holders[0], holders[1]
	keys := e.keysInShard(shard, writers)
	for _, k := range keys {
		e.exec(`INSERT INTO lg (k) VALUES ($1)`, k)
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

	lapsesBefore := pgsession.LeaseLapses()
	mustExecConn(t, ctx, gate, `BEGIN`, `SELECT pg_advisory_xact_lock(4244)`)
	mustExecConn(t, ctx, heartbeat, `BEGIN`, fmt.Sprintf(`SELECT FROM pgs_distribution_metadata.process WHERE id = '%s' FOR UPDATE`, writerID))
	var (
		stop   atomic.Bool
		acked  [writers]int // guarded by mu
		mu     sync.Mutex
		errs   []error
		lapses atomic.Int64 // 40001s with the rerun hint, in transactions
		wg     sync.WaitGroup
	)
	write := func(k int64) error {
		const update = `UPDATE lg SET n = n + 1, v = lease_gate() WHERE k = $1`
		if !inTx {
			_, err := db.ExecContext(ctx, update, k)
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, update, k); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := true; first || !stop.Load(); first = false {
				err := write(keys[g])
				for inTx && rerunHint(err) {
					// The held write was not sent: run the transaction again.
					lapses.Add(1)
					err = write(keys[g])
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("writer %d after %d writes: %w", g, acked[g], err))
					mu.Unlock()
					return
				}
				acked[g]++
				mu.Unlock()
			}
		}()
	}
	waitUntil(t, ctx, "writes waiting in lease_gate", poll,
		`SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory')`)
	start := time.Now()
	// The repair runs to its end while the writes are held: it stops
	// waiting for the writers' process once its heartbeat is older than the
	// lease and a second, fences the source, copies, switches and drops the
	// fence.
	if _, err := e.DB.ExecContext(ctx, `SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, shard, source.Host, source.Port, target.Host, target.Port); err != nil {
		t.Fatalf("repair: %v", err)
	}
	repaired := time.Since(start)
	var held bool
	if err := poll.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory')`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if !held {
		t.Fatalf("no write held in lease_gate when the repair ended: the test did not exercise the gap")
	}
	mustExecConn(t, ctx, heartbeat, `COMMIT`)
	mustExecConn(t, ctx, gate, `COMMIT`)
	// Every writer gets one write acknowledged, then a little more load.
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
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("writers still running 30s after the gate opened")
	}
	total := 0
	for _, n := range acked {
		total += n
	}
	lapsed := pgsession.LeaseLapses() - lapsesBefore
	t.Logf("repair done in %v with the writes held; %d writes acknowledged, %d sends stopped by a lapsed lease, %d transactions failed with 40001 and the rerun hint, %d errors",
		repaired.Round(time.Millisecond), total, lapsed, lapses.Load(), len(errs))
	if lapsed < writers {
		t.Errorf("lapsed leases stopped %d sends, want at least one for each of the %d held writes (the fence was dropped: nothing else stops them)", lapsed, writers)
	}
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if inTx && lapses.Load() == 0 {
		t.Errorf("no held transaction's write failed with 40001: the test did not exercise the lapsed lease")
	}
	for _, p := range e.placements("lg") {
		if p.ShardID != shard {
			continue
		}
		if p.State != 1 {
			t.Errorf("placement %d on %s:%d in state %d, want 1", p.ID, p.Host, p.Port, p.State)
		}
		rows, err := e.workerAt(p.Host, p.Port).Query(ctx, fmt.Sprintf(`SELECT k, n FROM lg_%d`, shard))
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
		for g, k := range keys {
			if got[k] != acked[g] {
				if wrong++; wrong <= 5 {
					t.Errorf("placement %d on %s:%d: key %d has n = %d, want %d acknowledged", p.ID, p.Host, p.Port, k, got[k], acked[g])
				}
			}
		}
		if wrong > 0 {
			t.Errorf("placement %d on %s:%d: %d of %d keys differ from the acknowledged counts", p.ID, p.Host, p.Port, wrong, writers)
		}
	}
	e.assertReplicasIdentical("lg")
}

// rerunHint reports whether err is a 40001 whose hint says to run the
// transaction again.
func rerunHint(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40001" && pgErr.Hint == pgsession.RerunTransactionHint
}

// ackEverything makes the heartbeats of process id, from now on, record
// that it acknowledged every metadata version (a trigger on the metadata
// database's process table), while they keep renewing its lease: the
// process's writes in flight stay sendable (catalog.Cache.Sendable), and a
// repair's WaitForAcks stops waiting for them at once. It stands for what
// the lease cannot see (clocks apart by more than its margin), so that a
// stale write is sent to a fenced source and the fence, the second line,
// is what refuses it.
func ackEverything(t *testing.T, ctx context.Context, conn *pgx.Conn, id string) {
	t.Helper()
	mustExecConn(t, ctx, conn,
		`CREATE OR REPLACE FUNCTION pgshard_test_ack_everything() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN NEW.acked := 9223372036854775807; RETURN NEW; END $$`,
		fmt.Sprintf(`CREATE TRIGGER pgshard_test_ack_everything BEFORE INSERT OR UPDATE ON pgs_distribution_metadata.process
			FOR EACH ROW WHEN (NEW.id = '%s') EXECUTE FUNCTION pgshard_test_ack_everything()`, id),
		fmt.Sprintf(`UPDATE pgs_distribution_metadata.process SET acked = 0 WHERE id = '%s'`, id))
	var acked int64
	if err := conn.QueryRow(ctx, `SELECT acked FROM pgs_distribution_metadata.process WHERE id = $1`, id).Scan(&acked); err != nil {
		t.Fatal(err)
	}
	if acked != 9223372036854775807 {
		t.Fatalf("process %s acked %d after the trigger, want every version", id, acked)
	}
}
