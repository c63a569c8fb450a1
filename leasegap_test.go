package pgshard_test

import (
	"context"
	"errors"
	"fmt"
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
	h := newHeldWriters(t, "lg", "lease_gate", 4244, writers)
	e, ctx := h.e, h.ctx
	lapsesBefore := pgsession.LeaseLapses()
	h.hold(t)
	var lapses atomic.Int64 // 40001s with the rerun hint, in transactions
	write := func(k int64) error {
		const update = `UPDATE lg SET n = n + 1, v = lease_gate() WHERE k = $1`
		if !inTx {
			_, err := h.db.ExecContext(ctx, update, k)
			return err
		}
		tx, err := h.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, update, k); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	h.start(t, func(k int64) error {
		err := write(k)
		for inTx && rerunHint(err) {
			// The held write was not sent: run the transaction again.
			lapses.Add(1)
			err = write(k)
		}
		return err
	})
	start := time.Now()
	// The repair runs to its end while the writes are held: it stops
	// waiting for the writers' process once its heartbeat is older than the
	// lease and a second, fences the source, copies, switches and drops the
	// fence.
	if _, err := e.DB.ExecContext(ctx, `SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, h.shard, h.source.Host, h.source.Port, h.target.Host, h.target.Port); err != nil {
		t.Fatalf("repair: %v", err)
	}
	repaired := time.Since(start)
	var held bool
	if err := h.poll.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory')`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if !held {
		t.Fatalf("no write held in lease_gate when the repair ended: the test did not exercise the gap")
	}
	h.release(t)
	// Every writer gets one write acknowledged, then a little more load.
	h.waitEveryWriterAcked(t, start)
	total := h.stopWriters(t, 300*time.Millisecond, 30*time.Second)
	lapsed := pgsession.LeaseLapses() - lapsesBefore
	t.Logf("repair done in %v with the writes held; %d writes acknowledged, %d sends stopped by a lapsed lease, %d transactions failed with 40001 and the rerun hint, %d errors",
		repaired.Round(time.Millisecond), total, lapsed, lapses.Load(), len(h.errs))
	if lapsed < writers {
		t.Errorf("lapsed leases stopped %d sends, want at least one for each of the %d held writes (the fence was dropped: nothing else stops them)", lapsed, writers)
	}
	h.reportErrors(t)
	if inTx && lapses.Load() == 0 {
		t.Errorf("no held transaction's write failed with 40001: the test did not exercise the lapsed lease")
	}
	h.checkPlacements(t)
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
