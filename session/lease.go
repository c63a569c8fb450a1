package session

import (
	"errors"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Writes whose lease ran out before they were sent.
//
// A write starts on a snapshot confirmed within the lease
// (catalog.Cache.BeginWrite), but may stall before it reaches a worker: it
// waits for a connection from an exhausted pool, evaluates a function on
// the metadata database, or the process pauses. When the process could
// not heartbeat meanwhile, a repair or move may have stopped waiting for
// it, switched its placements and dropped the source's fence; the write,
// planned on the old placements, would reach the source alone. So every
// write statement is checked again (sendable) just before it is sent to a
// placement, after its connection is taken:
//   - a shard's write in a transaction, the statement's own (atomically:
//     a scatter write, a multi-row INSERT across shards, INSERT ... SELECT)
//     or the application's, and a single placement's write outside one
//     (writeShard -> writePlacement);
//   - each placement of a replicated write outside a transaction
//     (writeReplicated), before its locks and statement;
//   - each batch of a COPY FROM STDIN (CopyIn's runners).
//
// A write that may not be sent fails with leaseLapsed's 40001, before
// anything more is sent; what was sent is in an open transaction that the
// error rolls back (writeReplicated's abortAll, atomically's rollback, the
// application's transaction, failed). Outside a transaction the statement
// is run again from the top on a fresh snapshot (refusedStatement,
// rerunRefused); inside one the error carries RerunTransactionHint.

// LeaseConstraint is the constraint name leaseLapsed's errors carry, as the
// fence's refusals carry repair.RefusalConstraint.
const LeaseConstraint = "pgshard_write_lease"

// leaseLapses counts, in this process, the sends refused by sendable.
var leaseLapses atomic.Int64

// LeaseLapses returns how many times this process did not send a write
// because its lease had run out (sendable), since it started: for tests
// and operators. Safe for concurrent use.
func LeaseLapses() int64 { return leaseLapses.Load() }

// sendable returns nil when the statement's write may be sent to a worker
// now (catalog.Cache.Sendable), else leaseLapsed's error. Cheap: one clock
// read, no allocation on success.
func (s *Session) sendable() error {
	if s.c.cache.Sendable(s.lease) {
		return nil
	}
	leaseLapses.Add(1)
	return leaseLapsed(s.lease)
}

// leaseLapsed is the error of a write not sent because its lease ran out
// (sendable): 40001, nothing of it committed anywhere.
func leaseLapsed(l catalog.WriteLease) error {
	e := sqlerr.New("40001", "a write planned on the placements of metadata version %d was not sent: its lease ran out before it reached the workers (the distribution metadata could not be confirmed for %v meanwhile), and the placements may have changed", l.Version(), catalog.LeaseDuration)
	e.ConstraintName = LeaseConstraint
	e.Hint = "Run the statement again; it will be planned on the current placements."
	return e
}

// IsLeaseLapse reports whether err is leaseLapsed's: a write not sent
// because its lease ran out.
func IsLeaseLapse(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40001" && pgErr.ConstraintName == LeaseConstraint
}
