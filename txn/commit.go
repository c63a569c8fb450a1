package txn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// txIDPrefix starts the id of a transaction whose decision is a
// commit_record row; its participants prepare as <id>_<i>. Older pgshard
// versions cannot parse it (the "m" is not hex) and leave such transactions
// alone.
const txIDPrefix = gidPrefix + "m_"

// commitRecordDDL creates the decision table in the metadata database.
const commitRecordDDL = `CREATE TABLE IF NOT EXISTS pgs_distribution_metadata.commit_record (
	gid text PRIMARY KEY,
	committed boolean NOT NULL,
	created timestamptz NOT NULL DEFAULT now()
)`

const (
	insertCommitted = `INSERT INTO pgs_distribution_metadata.commit_record (gid, committed) VALUES ($1, true)`
	insertAborted   = `INSERT INTO pgs_distribution_metadata.commit_record (gid, committed) VALUES ($1, false) ON CONFLICT DO NOTHING`
	selectDecision  = `SELECT committed FROM pgs_distribution_metadata.commit_record WHERE gid = $1`
)

// transactionResolutionUnknown is SQLSTATE 08007: the commit's outcome
// could not be found; recovery finishes it.
const transactionResolutionUnknown = "08007"

const (
	// resolverInterval is how often each process looks for prepared
	// transactions left in doubt.
	resolverInterval = 2 * time.Second
	// decidedGrace is how long a decided prepared transaction is left to
	// the client committing it before the resolver finishes it (racing the
	// client is harmless: whoever comes second finds it gone, or busy and
	// then gone), and how old an abandoned undecided one must be.
	decidedGrace = time.Second
	// presumeAbortAge is how old an undecided prepared transaction must be
	// before the resolver decides it rolled back. Deciding one early is
	// safe (its client's decision then fails and it rolls back) but fails
	// a commit that was about to succeed.
	presumeAbortAge = 10 * time.Second
	// legacyMinAge is the age at which prepared transactions of the older
	// naming scheme are decided (their coordinator may be an older pgshard
	// process still committing).
	legacyMinAge = time.Minute
	// resolveTimeout bounds reading back a decision whose outcome is
	// unknown.
	resolveTimeout = 5 * time.Second
	// retryTimeout bounds the retry of a failed COMMIT PREPARED (connecting
	// included) before its placements are marked inactive.
	retryTimeout = 3 * time.Second
	// recordTTL is how long a commit record is kept at least: an abort
	// record must outlive any client that could still try to decide its
	// transaction committed.
	recordTTL = time.Hour
	// recordGCInterval is how often the resolver deletes old records.
	recordGCInterval = 10 * time.Minute
)

// twoPhaseState is a Connector's two-phase commit bookkeeping. mu guards
// inflight and finished; conns and lastGC belong to the resolver goroutine.
type twoPhaseState struct {
	mu sync.Mutex
	// inflight holds the ids this process is committing; the resolver
	// leaves them to it.
	inflight map[string]struct{}
	// finished holds ids committed on every participant, whose records
	// the resolver deletes in one batch.
	finished []string
	// conns are the resolver's own worker connections: never pooled, so a
	// pool full of statements waiting on an in-doubt transaction's locks
	// cannot keep the resolver from finishing it. The map lives in
	// resolverLoop.
	lastGC time.Time
	// dial opens the resolver's sockets (set by resolverLoop before its
	// first pass).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (s *twoPhaseState) begin(id string) {
	s.mu.Lock()
	if s.inflight == nil {
		s.inflight = map[string]struct{}{}
	}
	s.inflight[id] = struct{}{}
	s.mu.Unlock()
}

func (s *twoPhaseState) end(id string, finished bool) {
	s.mu.Lock()
	delete(s.inflight, id)
	if finished {
		s.finished = append(s.finished, id)
	}
	s.mu.Unlock()
}

func (s *twoPhaseState) isInflight(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inflight[id]
	return ok
}

func (s *twoPhaseState) takeFinished() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.finished
	s.finished = nil
	return f
}

// ensureCommitRecord creates pgs_distribution_metadata.commit_record when it
// is missing; the Connector runs it once, when it initializes, so that no
// commit needs a connection of its own to create it.
func ensureCommitRecord(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('pgs_distribution_metadata.commit_record') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("pgshard: checking pgs_distribution_metadata.commit_record: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, commitRecordDDL); err != nil {
		var pgErr *pgconn.PgError
		// Two processes creating it at once: one loses the race on the
		// catalog's unique index; the table is there all the same.
		if !errors.As(err, &pgErr) || (pgErr.Code != "23505" && pgErr.Code != "42P07") {
			return fmt.Errorf("pgshard: creating pgs_distribution_metadata.commit_record: %w", err)
		}
	}
	return nil
}

// Commit commits the participants atomically, as described in the package
// doc: prep, the workers' (each in an open transaction that wrote), and
// coord, the metadata session's when it wrote too (else nil); at least two
// in all. It takes no pool
// connection: the decision goes through the metadata pool, which no caller
// holds while waiting for another. It returns nil only when the write is
// committed on every participant, or committed on some and the placements
// the others wrote are marked inactive. Otherwise every participant's
// transaction is rolled back, or (SQLSTATE 08007, or a committed transaction
// one of whose shards has no placement left to take it) left prepared and
// decided for the resolver.
func (co *Coordinator) Commit(ctx context.Context, coord Participant, prep []Participant) error {
	id := newTxID()
	co.twopc.begin(id)
	finished := false
	defer func() { co.twopc.end(id, finished) }()
	gids := make([]string, len(prep))
	for i := range prep {
		gids[i] = participantGID(id, i, backendPID(prep[i].Conn().PgConn()))
	}

	prepareErrs := make([]error, len(prep))
	parallel(len(prep), func(i int) {
		tag, err := prep[i].Conn().Exec(ctx, "PREPARE TRANSACTION "+quoteLiteral(gids[i]))
		if err == nil && tag.String() != "PREPARE TRANSACTION" {
			// PostgreSQL rolls back, without an error, a transaction that
			// failed before PREPARE: committing the others would lose this
			// participant's writes.
			err = sqlerr.New("25P02", "the transaction on %s had failed, and PostgreSQL rolled it back instead of preparing it (%s)", prep[i].Node(), tag)
		}
		prepareErrs[i] = err
	})
	// From here on the commit runs to its end even when ctx ends.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CommitTimeout)
	defer cancel()
	if err := errors.Join(prepareErrs...); err != nil {
		co.abortPrepare(cctx, id, coord, prep, gids, prepareErrs)
		return fmt.Errorf("pgshard: commit (prepare): %w", err)
	}
	Step(StepAfterPrepare)
	Step(StepBeforeDecision)

	commit, err := co.decideCommit(cctx, id, coord)
	if err != nil && !commit {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == transactionResolutionUnknown {
			return err
		}
		// Decided rolled back: what fails to roll back here is rolled
		// back by the resolver, at any age, by its abort record.
		rollbackPrepared(cctx, prep, gids)
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			// The abort record was there first: a resolver, Recover or a
			// waiting statement decided the transaction rolled back, finding
			// a participant's preparing connection gone, or the prepared
			// transaction older than presumeAbortAge, before the decision.
			return sqlerr.New("40000", "pgshard: commit: transaction %s was rolled back: recovery decided it rolled back before its commit was recorded (a participant's connection was lost after PREPARE, or the decision came more than %s after it)", id, presumeAbortAge)
		}
		if errors.As(err, &pgErr) {
			return fmt.Errorf("pgshard: commit: transaction %s rolled back: %w", id, err)
		}
		return sqlerr.New(sqlerr.ConnectionFailure, "pgshard: commit: the connection to the metadata database failed while recording the decision (%v); transaction %s was rolled back", err, id)
	}
	Step(StepAfterDecision)

	commitErrs := make([]error, len(prep))
	parallel(len(prep), func(i int) {
		commitErrs[i] = commitPreparedOn(cctx, prep[i].Conn(), gids[i])
	})
	// Retry the failed ones at once, each on a connection of its own (the
	// participant's may be dead, and waiting for its pool while holding the
	// others' connections could deadlock).
	parallel(len(prep), func(i int) {
		if commitErrs[i] != nil {
			commitErrs[i] = co.retryCommitPrepared(cctx, prep[i].Node(), gids[i], commitErrs[i])
		}
	})
	Step(StepAfterCommitPrepared)
	if errors.Join(commitErrs...) == nil {
		finished = true
		return nil
	}
	return co.markUncommitted(cctx, id, prep, commitErrs)
}

// decideCommit records the decision to commit transaction id: as the
// commit of the metadata session coord when it takes part, else as one
// autocommit INSERT on the metadata database. It returns true when the
// transaction is committed. A failure whose outcome is unknown (a lost
// connection, a FATAL) is resolved from the record; when that fails too,
// the error has SQLSTATE 08007 and the prepared participants stay for the
// resolver.
func (co *Coordinator) decideCommit(ctx context.Context, id string, coord Participant) (bool, error) {
	var err error
	if coord != nil {
		pc := coord.Conn()
		if _, err = pc.Exec(ctx, insertCommitted, id); err == nil {
			_, err = pc.Exec(ctx, "COMMIT")
		} else if !pc.IsClosed() && pc.PgConn().TxStatus() != 'I' {
			_, _ = pc.Exec(ctx, "ROLLBACK")
		}
	} else {
		_, err = co.cl.Meta().Exec(ctx, insertCommitted, id)
	}
	if err == nil {
		return true, nil
	}
	if pgconn.SafeToRetry(err) {
		// Nothing reached the server (no connection could be made).
		if _, rerr := co.cl.Meta().Exec(ctx, insertAborted, id); rerr != nil {
			// The resolver presumes the abort later.
			_ = rerr
		}
		return false, err
	}
	// Unknown: find it in the record, never guess; with time of its own,
	// as the decision may have used up ctx.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resolveTimeout)
	defer cancel()
	commit, rerr := co.resolveDecision(rctx, id)
	if rerr != nil {
		return false, sqlerr.New(transactionResolutionUnknown, "pgshard: commit: whether transaction %s committed is unknown: recording the decision failed (%v) and reading it back failed (%v); it is finished by recovery from pgs_distribution_metadata.commit_record", id, err, rerr)
	}
	if commit {
		return true, nil
	}
	return false, err
}

// resolveDecision returns whether transaction id is decided committed, by
// its commit record, deciding it rolled back when there is none (presumed
// abort: the abort record waits for a concurrent decision and loses to one
// that committed). It retries for up to a few seconds, on fresh pool
// connections, when the metadata database cannot be reached.
func (co *Coordinator) resolveDecision(ctx context.Context, id string) (bool, error) {
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return false, fmt.Errorf("%v (then %w)", lastErr, ctx.Err())
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		if _, err := co.cl.Meta().Exec(ctx, insertAborted, id); err != nil {
			lastErr = err
			continue
		}
		var commit bool
		if err := co.cl.Meta().QueryRow(ctx, selectDecision, id).Scan(&commit); err != nil {
			lastErr = err
			continue
		}
		return commit, nil
	}
	return false, lastErr
}

// lookupDecision reads transaction id's commit record, if any.
func (co *Coordinator) lookupDecision(ctx context.Context, id string) (decided, commit bool, err error) {
	err = co.cl.Meta().QueryRow(ctx, selectDecision, id).Scan(&commit)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	return err == nil, commit, err
}

// abortPrepare rolls back a transaction whose PREPARE failed somewhere: the
// metadata session's transaction, the prepared ones, and, when a PREPARE
// may have happened without its answer arriving, an abort record that lets
// the resolver roll it back at once.
func (co *Coordinator) abortPrepare(ctx context.Context, id string, coord Participant, prep []Participant, gids []string, prepareErrs []error) {
	if coord != nil {
		abortAll(ctx, []Participant{coord})
	}
	unknown := false
	parallel(len(prep), func(i int) {
		if prepareErrs[i] == nil {
			_, _ = prep[i].Conn().Exec(ctx, "ROLLBACK PREPARED "+quoteLiteral(gids[i]))
		}
	})
	for i, err := range prepareErrs {
		var pgErr *pgconn.PgError
		if err != nil && (!errors.As(err, &pgErr) || prep[i].Conn().IsClosed()) {
			unknown = true
		}
	}
	if unknown {
		_, _ = co.cl.Meta().Exec(ctx, insertAborted, id)
	}
}

// rollbackPrepared rolls back the prepared participants; failures are left
// to the resolver.
func rollbackPrepared(ctx context.Context, prep []Participant, gids []string) {
	parallel(len(prep), func(i int) {
		pc := prep[i].Conn()
		if !pc.IsClosed() {
			_, _ = pc.Exec(ctx, "ROLLBACK PREPARED "+quoteLiteral(gids[i]))
		}
	})
}

// commitPreparedOn runs COMMIT PREPARED gid on conn. A prepared transaction
// that no longer exists was committed by the resolver meanwhile (it
// decides from the same record).
func commitPreparedOn(ctx context.Context, conn *pgx.Conn, gid string) error {
	if conn.IsClosed() {
		return errors.New("connection closed")
	}
	for {
		_, err := conn.Exec(ctx, "COMMIT PREPARED "+quoteLiteral(gid))
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			return err
		}
		switch pgErr.Code {
		case sqlerr.UndefinedObject:
			return nil
		case sqlerr.ObjectNotInPrereq:
			// "prepared transaction ... is busy": a resolver or a waiting
			// statement (lockwait.go) is committing it at this instant, from
			// the same record; wait for it to be gone.
			select {
			case <-ctx.Done():
				return err
			case <-time.After(busyRetryDelay):
			}
		default:
			return err
		}
	}
}

// busyRetryDelay is how long COMMIT PREPARED waits before trying again a
// prepared transaction someone else is finishing.
const busyRetryDelay = 10 * time.Millisecond

// retryCommitPrepared runs COMMIT PREPARED gid once more on node, on a
// connection of its own, within retryTimeout.
func (co *Coordinator) retryCommitPrepared(ctx context.Context, node catalog.Node, gid string, first error) error {
	rctx, cancel := context.WithTimeout(ctx, retryTimeout)
	defer cancel()
	conn, err := co.connectNode(rctx, node)
	if err != nil {
		return fmt.Errorf("%w; retrying: %v", first, err)
	}
	defer conn.Close(context.Background())
	if err := commitPreparedOn(rctx, conn, gid); err != nil {
		return fmt.Errorf("%w; retrying: %v", first, err)
	}
	return nil
}

// markUncommitted handles a committed transaction whose COMMIT PREPARED
// failed on some participants: their placements are marked inactive, so
// that nothing reads them before a repair, and the write is acknowledged.
// A placement whose shard has no finalized placement that committed is not
// marked (the shard would have none left); the transaction then fails with
// SQLSTATE 08007 and its writes there become visible when the resolver
// commits them.
func (co *Coordinator) markUncommitted(ctx context.Context, id string, prep []Participant, commitErrs []error) error {
	committedShards := map[int64]bool{}
	for i, p := range prep {
		if commitErrs[i] != nil {
			continue
		}
		for _, pl := range p.Placements() {
			if pl.State == catalog.StateFinalized {
				committedShards[pl.ShardID] = true
			}
		}
	}
	var mark []catalog.Placement
	var stuck []error
	for i, p := range prep {
		if commitErrs[i] == nil {
			continue
		}
		if len(p.Placements()) == 0 {
			stuck = append(stuck, fmt.Errorf("%s: %w", p.Node(), commitErrs[i]))
			continue
		}
		for _, pl := range p.Placements() {
			if committedShards[pl.ShardID] {
				mark = append(mark, pl)
			} else {
				stuck = append(stuck, fmt.Errorf("shard %d on %s: %w", pl.ShardID, p.Node(), commitErrs[i]))
			}
		}
	}
	if len(stuck) > 0 {
		if len(mark) > 0 {
			_ = co.cl.MarkInactive(ctx, mark)
		}
		return sqlerr.New(transactionResolutionUnknown, "pgshard: commit: transaction %s is committed, but COMMIT PREPARED failed where no other placement took it (%v); its writes there become visible when recovery commits them", id, errors.Join(stuck...))
	}
	if err := co.cl.MarkInactive(ctx, mark); err != nil {
		return sqlerr.New(transactionResolutionUnknown, "pgshard: commit: transaction %s is committed, but COMMIT PREPARED failed on some placements and marking them inactive failed: %v", id, err)
	}
	return nil
}

func abortAll(ctx context.Context, ps []Participant) {
	for _, p := range ps {
		if !p.Conn().IsClosed() && p.Conn().PgConn().TxStatus() != 'I' {
			_, _ = p.Conn().Exec(ctx, "ROLLBACK")
		}
	}
}

// parallel runs f(0..n-1) concurrently and waits.
func parallel(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}
