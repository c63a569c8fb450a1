package session

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/planner"
	"github.com/pgshard/pgshard/repair"
)

// Writes the fence refused.
//
// While a repair or move fills a new placement, the source's write fence
// (repair/fence.go) refuses, with 40001 marked by repair.RefusalConstraint
// (repair.IsRefusal), every write planned on the placement list from
// before the new placement: that write would miss the new placement. A
// statement outside a transaction that the fence refused is run again
// here, on the placements the catalog holds now (reloaded when its version
// moved on), so that the application never sees the refusal; the run is
// bounded (fenceAttempts, backoff honoring ctx).
//
// Running it again is safe only because the refused run had no effect
// anywhere, which holds for the writes retried (writeShard outside a
// transaction, one shard):
//   - the fence is a BEFORE ... FOR EACH STATEMENT trigger: it raises
//     before the statement changes a row, and the error aborts the
//     statement's transaction on that server (its own implicit one for a
//     single placement, the BEGIN of writeReplicated otherwise);
//   - writeReplicated commits nothing before the statement has run on every
//     placement: a refusal on any placement returns before the commit (or
//     two-phase commit) is decided, and every placement's transaction is
//     rolled back (abortAll); no placement is marked inactive for it;
//   - the statement's arguments were bound (Eval: defaults, nextval) once,
//     before the first run: the second run writes the same values.
//
// Not retried, and why:
//   - a write inside a transaction, explicit or a multi-statement string's:
//     the refusal aborted the transaction, with the effects of its earlier
//     statements. The error keeps its 40001; its hint says to run the
//     transaction again (rerunTransaction).
//   - a write of several shards outside a transaction (Session.atomically:
//     its two-phase commit never reached a decision, so nothing is
//     committed, but the engine's f accumulates results across its
//     shards and cannot be run twice): the refusal is returned with the
//     fence's own hint (run the statement again).
//   - a write whose statement reads other co-located tables: its checks
//     (checkColocatedWrite) are made on the plan's tables, whose placements
//     would be older than the shard's.
//   - any other 40001, a SERIALIZABLE statement's serialization failure
//     above all: it carries no RefusalConstraint. (Outside a transaction a
//     statement is READ COMMITTED on every worker unless the session's
//     default_transaction_isolation says otherwise, and such a failure
//     says the statement conflicted with concurrent work: running it again
//     silently would hide that from an application that chose SERIALIZABLE
//     to hear of it.)
//   - COPY FROM STDIN: pgshard runs every COPY into a distributed table in
//     a transaction (a prepared statement's rows come one Exec at a time
//     inside tx.Prepare; pgshard.CopyFrom opens its own), and the rows
//     already taken from the application (its Execs, a one-pass
//     pgx.CopyFromSource) cannot be sent again: the refusal fails the
//     transaction with the hint to run it again (txFailed).
//   - reads: the fence refuses writes only.

// fenceAttempts bounds the runs of a write the fence refuses, the first
// included.
const fenceAttempts = 5

// fenceBackoff is the wait before the second run; it doubles before each
// next one (10, 20, 40, 80 ms: 150 ms in all), leaving the repair the
// time to switch its placements and drop its fence.
const fenceBackoff = 10 * time.Millisecond

// retryRefusedWrite runs again, outside a transaction, the write of shard
// (of plan p) the fence refused with refusal: on the shard's current
// placements, up to fenceAttempts runs in all, waiting fenceBackoff (and
// doubling it) before each, and returns the first outcome that is not a
// refusal. When every run is refused, or ctx ends while it waits, it
// returns the last refusal with a detail saying how many runs were made.
// It blocks for at most the backoffs and the runs.
func (s *Session) retryRefusedWrite(ctx context.Context, p *planner.Plan, shard *catalog.Shard, sql string, nargs []driver.NamedValue, wantRows bool, refusal error) (driver.Result, driver.Rows, error) {
	if len(p.Tables()) > 1 {
		return nil, nil, refusal
	}
	backoff := fenceBackoff
	for attempt := 2; attempt <= fenceAttempts; attempt++ {
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, gaveUp(refusal, shard.ID, attempt-1, ctx.Err())
		case <-t.C:
		}
		backoff *= 2
		res, rows, err := s.rerunWrite(ctx, p, shard.ID, sql, nargs, wantRows)
		if err == errNoRerun {
			// The shard is gone from the catalog (its table dropped), or
			// the catalog could not be read: the refusal stands.
			return nil, nil, refusal
		}
		if err == nil || !repair.IsRefusal(err) {
			return res, rows, err
		}
		refusal = err
	}
	return nil, nil, gaveUp(refusal, shard.ID, fenceAttempts, nil)
}

// rerunWrite runs the write of shard shardID of plan p once more, as a new
// write (Cluster.BeginWrite) on the catalog's current snapshot, reloaded
// first when the metadata's version moved on. It fails with errNoRerun when
// the catalog could not be read or no longer has the shard.
func (s *Session) rerunWrite(ctx context.Context, p *planner.Plan, shardID int64, sql string, nargs []driver.NamedValue, wantRows bool) (driver.Result, driver.Rows, error) {
	if _, err := s.c.Refresh(ctx); err != nil {
		return nil, nil, errNoRerun
	}
	snap, done, err := s.c.BeginWrite(ctx)
	if err != nil {
		return nil, nil, errNoRerun
	}
	defer done()
	t := snap.Lookup(p.Table.Schema, p.Table.Name)
	if t == nil || t.RelationID != p.Table.RelationID {
		return nil, nil, errNoRerun
	}
	fresh := t.ShardByID(shardID)
	if fresh == nil {
		return nil, nil, errNoRerun
	}
	s.Writing(snap)
	return s.writeShard(ctx, p, fresh, sql, nargs, wantRows)
}

// errNoRerun is rerunWrite's failure to run the write again: the refusal
// stands.
var errNoRerun = errors.New("pgshard: the refused write cannot run again")

// gaveUp returns the fence's refusal after runs runs of the write, each
// refused (stopped is ctx's error when ctx ended first): a copy of the
// refusal, its 40001 and constraint kept, with a detail saying so.
func gaveUp(refusal error, shardID int64, runs int, stopped error) error {
	var pgErr *pgconn.PgError
	if !errors.As(refusal, &pgErr) {
		return refusal
	}
	e := *pgErr
	e.Detail = fmt.Sprintf("pgshard ran the write %d times on the current placements of shard %d, and the fence of its repair or move refused each run", runs, shardID)
	if stopped != nil {
		e.Detail = fmt.Sprintf("pgshard ran the write %d times on the current placements of shard %d, refused each time by the fence of its repair or move, and stopped: %v", runs, shardID, stopped)
	}
	e.Hint = "Run the statement again once the repair or move of the shard has switched its placements."
	return &e
}

// RerunTransactionHint is the hint of the fence's refusal inside a
// transaction: pgshard cannot run the write again itself.
const RerunTransactionHint = "The transaction is aborted: roll it back and run the whole transaction again; its writes will be planned on the current placements (pgshard runs again only a write outside a transaction)."

// rerunTransaction sets, when err is the fence's refusal, its hint to
// RerunTransactionHint: the refusal aborted a transaction (explicit, or a
// multi-statement string's) whose earlier statements' effects are gone
// with it, so only the application can run it again.
func rerunTransaction(err error) {
	var pgErr *pgconn.PgError
	if repair.IsRefusal(err) && errors.As(err, &pgErr) {
		pgErr.Hint = RerunTransactionHint
	}
}
