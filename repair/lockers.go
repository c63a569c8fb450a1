package repair

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Waiting for the writes already on the source.
//
// The copy reads the source in one snapshot. A write that is on the source
// but not yet committed when that snapshot is taken is not in the copy, and
// it must then reach the target by itself. Two kinds of write do not:
//
//   - a write planned before the target was filling (an older metadata
//     version), so it does not write the target at all. catalog.WaitForAcks
//     waits for the processes that heartbeat, but a process that stopped
//     heartbeating (starved, its metadata connection blocked) can still have
//     such a write in flight on the source, waiting for a row lock or just
//     slow, long after its lease ran out;
//   - a two-phase write that wrote the target's old table: the copy's DROP
//     waits for it there, but once it is committed there it may still only
//     be prepared on the source (COMMIT PREPARED runs one participant after
//     the other), so the snapshot misses it while its row on the target is
//     gone with the old table.
//
// So, before the copy recreates the target's table, it waits for every
// transaction that then holds a lock on the source's table (the first kind,
// and any other write begun before); after the target's table is dropped and
// before the source's snapshot, it waits for every prepared transaction that
// then holds a lock on the source's table (the second kind). The first wait
// holds no lock, so writers are never held back by it; the second waits only
// for prepared transactions, which wait for nothing, so it cannot deadlock
// with a write blocked by the copy's lock on the target.
//
// The workers decide, not clocks: a write that is on the source when the
// copy starts is in the copy or fails. What remains assumed is written in
// docs/failure-model.md (a stale write that reaches the source only after
// the first wait).

// lockersTimeout bounds each wait for the writes on the source: a write
// that holds the source's table longer fails the repair or move, which
// changes nothing and can be run again.
const lockersTimeout = 30 * time.Second

// waitingApplicationName is the application_name of the source connection
// while it waits for writers, so that an operator (and a test) sees why.
const waitingApplicationName = "pgshard: repair waiting for writes on the source"

// waitForLockers waits until every transaction that holds a lock on table
// on conn's node now has ended; with preparedOnly, every prepared
// transaction that does. It polls pg_locks and holds no lock itself. It
// fails with 55P03 after lockersTimeout, and with ctx's error.
func waitForLockers(ctx context.Context, conn *pgx.Conn, table string, preparedOnly bool) error {
	if _, err := conn.Exec(ctx, "SET application_name = '"+waitingApplicationName+"'"); err != nil {
		return fmt.Errorf("repair: waiting for writes on %s on the source: %w", table, err)
	}
	var holders []string
	err := conn.QueryRow(ctx, `
		SELECT coalesce(array_agg(DISTINCT virtualtransaction), '{}') FROM pg_locks
		WHERE locktype = 'relation' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND relation = to_regclass($1) AND granted AND (pid IS NULL OR NOT $2) AND pid IS DISTINCT FROM pg_backend_pid()`,
		table, preparedOnly).Scan(&holders)
	if err != nil {
		return waitError(ctx, table, err)
	}
	deadline := time.Now().Add(lockersTimeout)
	for len(holders) > 0 {
		var left []string
		err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT virtualtransaction), '{}') FROM pg_locks WHERE virtualtransaction = ANY($1)`,
			holders).Scan(&left)
		if err != nil {
			return waitError(ctx, table, err)
		}
		if holders = left; len(holders) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return sqlerr.New("55P03", "a write on %s has been running for more than %v (transactions %v); the copy waits for the writes begun before it: end them and run it again", table, lockersTimeout, holders)
		}
		select {
		case <-ctx.Done():
			return waitError(ctx, table, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	_, err = conn.Exec(ctx, "RESET application_name")
	return waitError(ctx, table, err)
}

func waitError(ctx context.Context, table string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("repair: waiting for writes on %s on the source: %w", table, ctx.Err())
	}
	return fmt.Errorf("repair: waiting for writes on %s on the source: %w", table, err)
}
