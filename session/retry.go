package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
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
// here, from the top (Session.Exec, Session.Query): planned again on the
// catalog as it is now (reloaded when its version moved on), built and
// run, so that the application never sees the refusal; the runs are
// bounded by time (fenceRetryBudget; the backoff honors ctx and
// statement_timeout). This holds for every write the engine runs, of one
// shard or of several (a scatter UPDATE or DELETE, a multi-row INSERT
// across shards, INSERT ... SELECT, a write reading other co-located
// tables): a new run makes its own counts, so no primitive is entered
// twice.
//
// Running a statement again is safe only because the refused run had no
// effect anywhere. refusedStatement admits the refusal only of a statement
// for which that holds:
//   - it ran outside any transaction: no explicit one (the session had
//     none when the statement started) and no multi-statement string's
//     implicit block (such a string is never run again: Exec and Query
//     hand it to ExecStatements / QueryStatements, whose statements run
//     with the block open, so none of them is outside a transaction
//     either);
//   - the fence is a BEFORE ... FOR EACH STATEMENT trigger: it raises
//     before the statement changes a row, and the error aborts the
//     statement's transaction on that server. It fires on INSERT, UPDATE,
//     DELETE and TRUNCATE, never at COMMIT or PREPARE TRANSACTION (it is
//     no constraint trigger), so the refusal is always the error of a
//     statement, before any commit is decided:
//   - one shard outside a transaction (Session.writeShard ->
//     writeReplicated): every placement's statement runs before the commit
//     (or two-phase commit) is decided, a refusal on any placement returns
//     there (the refused placement is the source, finalized, so it is not
//     marked inactive and the write is not acknowledged on the others), and
//     every placement's transaction is rolled back (abortAll);
//   - several shards (Session.atomically: the engine's f runs every
//     shard's write inside one statement transaction): f returns the
//     refusal, atomically rolls back every participant and returns it
//     without calling Commit, so no PREPARE was sent and no participant
//     committed alone (none commits before the decision: the participants
//     of atomically commit only in transaction.Commit). An error from the
//     commit itself (COMMIT, PREPARE, COMMIT PREPARED) is never the
//     fence's refusal, so it is never run again;
//   - INSERT ... SELECT reads its rows (the client path: a SELECT through
//     the Session, defaults filled on the metadata database) or locks its
//     sources (pushdown) and writes them in one atomically: the same;
//   - no row was handed to the application: a write's RETURNING rows are
//     read whole before Query returns (writeShard with wantRows,
//     ScatterWrite's Buffered), and the refusal is Query's error, not one
//     of a row the application reads;
//   - the statement is a DML write (planner.Plan.Modifies), not a schema
//     change (Plan.DDL: CREATE INDEX CONCURRENTLY commits placement by
//     placement) nor a COPY (Plan.Copy: its rows come from the application
//     one Exec at a time, see below).
//
// The new run evaluates the plan's Eval values again (defaults, nextval,
// volatile functions on the metadata database): what the application
// would have done on the fence's hint (run the statement again). A
// sequence skips the refused run's values, as after any failed statement.
//
// Not run again, and why:
//   - a write inside a transaction, explicit or a multi-statement string's:
//     the refusal aborted the transaction, with the effects of its earlier
//     statements. The error keeps its 40001; its hint says to run the
//     transaction again (rerunTransaction).
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
//
// A write whose lease ran out before it was sent (IsLeaseLapse, lease.go)
// is handled as the fence's refusal: it too fails before anything of the
// statement commits, and is run again (outside a transaction) or carries
// RerunTransactionHint (inside one).
//
// The single-shard write is run again here too, not also below (writeShard
// runs a statement once): one place for the policy, and a statement's runs
// are counted once.

// fenceRetryBudget bounds, by time from the first refusal, the runs of a
// write the fence refuses: no run is begun after it (the wait before it
// would end past it). It counts from the refusal, not from the
// statement's start: a write that waited long before it reached the fence
// (on a lock, in a volatile function) is still run again. It is the lease
// (catalog.LeaseDuration): a refusal lasts while the repair or move that
// fenced the source runs, which a count of runs cannot bound. A DELETE of
// a shard whose co-located shard's placement is filling (ON DELETE CASCADE reaching that shard's
// fenced source on the worker) is refused, though planned on the current
// placements, until that shard's repair switches and drops its fence: a
// copy's time, longer than a few backoffs under load (a run of the
// TestColocatedForeignKeysUnderLiveLoad writers saw a DELETE refused for
// 0.94 s under -race; five runs took at most 150 ms of backoff).
const fenceRetryBudget = catalog.LeaseDuration

// fenceBackoff is the wait before the second run; it doubles before each
// next one up to fenceMaxBackoff (10, 20, 40, 80, 160, 160, ... ms),
// leaving the repair the time to switch its placements and drop its fence.
const fenceBackoff = 10 * time.Millisecond

// fenceMaxBackoff caps the wait between two runs: a refusal that outlives
// the first backoffs (a copy under way) is tried again a few times a
// second, so that the write lands soon after the fence is dropped.
const fenceMaxBackoff = 160 * time.Millisecond

// refusedStatement reports whether err, the error of one run of plan p's
// primitive begun outside a transaction when autocommit is set, is the
// fence's refusal of a statement that may run again (see above).
func refusedStatement(p *planner.Plan, autocommit bool, err error) bool {
	return autocommit && p.Modifies && p.DDL == nil && p.Copy == nil && (repair.IsRefusal(err) || IsLeaseLapse(err))
}

// rerunRefused runs a statement again whose first run, outside a
// transaction, the fence refused with refusal: run is one run from the top
// (plan, write, build, run: Session.exec or Session.query), reporting
// whether its error is again such a refusal. It runs it again until a run
// is not refused, reloading the catalog when its version moved on and
// waiting fenceBackoff (doubled each time, up to fenceMaxBackoff) before
// each run, and returns that run's outcome. It begins no run whose wait
// would end past fenceRetryBudget from the first refusal (this call):
// then, or when ctx ends while it waits, it returns the last refusal with
// a detail saying how many runs were made. The session's
// statement_timeout, when set, counts from start over all the runs too: a
// wait that would end past it is not begun, and the statement fails with
// 57014 instead (timedOut); each run is bounded by it on the workers too,
// so the statement returns at most one run after its timeout. It blocks
// for at most the budget and one run; it is on the error path only.
func rerunRefused[T any](ctx context.Context, s *Session, start time.Time, refusal error, run func() (T, bool, error)) (T, error) {
	var zero T
	firstRefusal := time.Now()
	backoff := fenceBackoff
	timeout := s.statementTimeout()
	for runs := 1; ; runs++ {
		if timeout > 0 && time.Since(start)+backoff >= timeout {
			return zero, timedOut(refusal, runs, timeout)
		}
		if time.Since(firstRefusal)+backoff >= fenceRetryBudget {
			return zero, gaveUp(refusal, runs, nil)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, gaveUp(refusal, runs, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, fenceMaxBackoff)
		if _, err := s.c.Refresh(ctx); err != nil {
			// The catalog could not be read: the refusal stands.
			return zero, refusal
		}
		v, refused, err := run()
		if !refused {
			return v, err
		}
		refusal = err
	}
}

// gaveUp returns the fence's refusal after runs runs of the statement,
// each refused (stopped is ctx's error when ctx ended first): a copy of
// the refusal, its 40001 and constraint kept, with a detail saying so.
func gaveUp(refusal error, runs int, stopped error) error {
	var pgErr *pgconn.PgError
	if !errors.As(refusal, &pgErr) {
		return refusal
	}
	e := *pgErr
	e.Detail = fmt.Sprintf("pgshard ran the statement %d times, each planned on the placements current when it started, and the fence of a repair or move refused each run", runs)
	if stopped != nil {
		e.Detail = fmt.Sprintf("pgshard ran the statement %d times, each planned on the placements current when it started, refused each time by the fence of a repair or move, and stopped: %v", runs, stopped)
	}
	e.Hint = "Run the statement again once the repair or move of the shard has switched its placements."
	return &e
}

// timedOut is the error of a statement the fence refused runs times and
// whose session's statement_timeout (timeout) would pass during the next
// wait: 57014, as PostgreSQL's own statement timeout, saying that every
// run was refused (none wrote anything).
func timedOut(refusal error, runs int, timeout time.Duration) error {
	e := sqlerr.New("57014", "canceling statement due to statement timeout")
	e.Detail = fmt.Sprintf("pgshard ran the statement %d times, each refused by the fence of a repair or move (nothing was written), and stopped at the session's statement_timeout (%v): %v", runs, timeout, refusal)
	e.Hint = "Run the statement again once the repair or move of the shard has switched its placements."
	return e
}

// statementTimeout is the session's statement_timeout (0: none), as its
// metadata session reports it (settings.go).
func (s *Session) statementTimeout() time.Duration {
	for _, st := range s.sess.settings {
		if st.name == "statement_timeout" {
			return parseSettingDuration(st.value)
		}
	}
	return 0
}

// parseSettingDuration reads a time setting as current_setting shows it
// ("0", "250ms", "2s", "1min", "3h", "1d"; a bare number is milliseconds);
// 0 when it cannot.
func parseSettingDuration(v string) time.Duration {
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0
	}
	unit := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	u, ok := unit[v[i:]]
	if !ok {
		return 0
	}
	return time.Duration(n) * u
}

// RerunTransactionHint is the hint of the fence's refusal inside a
// transaction: pgshard cannot run the write again itself.
const RerunTransactionHint = "The transaction is aborted: roll it back and run the whole transaction again; its writes will be planned on the current placements (pgshard runs again only a write outside a transaction)."

// rerunTransaction sets, when err is the fence's refusal or a lapsed
// lease's error (lease.go), its hint to RerunTransactionHint: the error
// aborted a transaction (explicit, or a multi-statement string's) whose
// earlier statements' effects are gone with it, so only the application
// can run it again.
func rerunTransaction(err error) {
	var pgErr *pgconn.PgError
	if (repair.IsRefusal(err) || IsLeaseLapse(err)) && errors.As(err, &pgErr) {
		pgErr.Hint = RerunTransactionHint
	}
}
