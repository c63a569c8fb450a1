package pgshard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Atomic commit across servers (two-phase commit with the decision recorded
// in the metadata database):
//
//  1. Every participant on a worker runs PREPARE TRANSACTION '<id>_<i>', all
//     at once.
//  2. The decision: one autocommit INSERT of the transaction's id into
//     pgs_distribution_metadata.commit_record (committed = true) on the
//     metadata database. When the metadata database is itself a participant
//     (the transaction wrote an ordinary table), its session inserts the row
//     inside its own transaction and commits instead of preparing: that
//     commit is the decision.
//  3. Every prepared participant runs COMMIT PREPARED, all at once. One that
//     fails is retried at once on a connection of its own; if it still fails,
//     the placements it wrote are marked inactive (metadata database) before
//     the write is acknowledged, so no finalized placement lacks an
//     acknowledged write.
//
// The decision lives where no single worker's loss can hide it, and the
// single-participant path (one shard, one placement) stays a plain COMMIT.
// A lost connection or a FATAL during the decision leaves its outcome
// unknown: the client resolves it from the record (presumed abort: it
// inserts committed = false ON CONFLICT DO NOTHING, which waits for a
// concurrent decision and loses to one that committed) and never guesses;
// when even that fails it returns SQLSTATE 08007 and leaves the rest to the
// resolver.
//
// The resolver (every resolverInterval in each process, and Recover on
// demand) lists the prepared transactions named pgshard_... on every worker
// and the metadata database and finishes them as their record says: decided
// ones after decidedGrace (leaving a live coordinator time to finish its
// own), undecided ones (their client died before the decision) after
// presumeAbortAge, or after decidedGrace when the backend that prepared
// them is gone, by writing the abort record first. A statement waiting for
// one's locks has it finished at once (lockwait.go), by the same code
// (resolvePrepared). Prepared transactions
// named by the older scheme, pgshard_<hex coordinator>_<hex>_<i>, are decided
// from pgshard.transaction_log on their coordinator worker as before.
// docs/failure-model.md weighs this design.

// gidPrefix starts the name of every prepared transaction pgshard makes.
const gidPrefix = "pgshard_"

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

// commitTimeout bounds the decision and COMMIT PREPARED phases of a
// commit, which run even when the statement's context has ended (a
// variable for the tests).
var commitTimeout = 30 * time.Second

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

// newTxID makes a transaction id of the commit-record scheme.
func newTxID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return txIDPrefix + hex.EncodeToString(b[:])
}

// parseTxID returns the transaction id of a prepared transaction of the
// commit-record scheme (<id>_<i>).
func parseTxID(prepared string) (string, bool) {
	if !strings.HasPrefix(prepared, txIDPrefix) {
		return "", false
	}
	i := strings.LastIndexByte(prepared, '_')
	if i < len(txIDPrefix) {
		return "", false
	}
	return prepared[:i], true
}

// metaServer is the server key of the metadata database (in names of the
// older scheme, and for recovery).
const metaServer = "meta"

// parseGID splits a prepared transaction's name of the older scheme,
// pgshard_<hex coordinator>_<hex>_<i>, into the transaction id and its
// coordinator's server key.
func parseGID(prepared string) (gid, coordinator string, ok bool) {
	i := strings.LastIndexByte(prepared, '_')
	if i < 0 || !strings.HasPrefix(prepared, gidPrefix) {
		return "", "", false
	}
	gid = prepared[:i]
	parts := strings.Split(strings.TrimPrefix(gid, gidPrefix), "_")
	if len(parts) != 2 {
		return "", "", false
	}
	c, err := hex.DecodeString(parts[0])
	if err != nil {
		return "", "", false
	}
	return gid, string(c), true
}

// participantGID names participant i's prepared transaction of
// transaction gid, prepared by the backend with process id pid:
// <gid>_<i>p<pid>, or <gid>_<i> when pid is 0 (unknown). The pid tells the
// resolvers whether the coordinator's connection to that server is gone
// (preparerGoneSQL); parseTxID, of this version and of the previous one,
// reads the id up to the last '_'.
func participantGID(gid string, i int, pid uint32) string {
	var buf [64]byte // one allocation, the string's
	b := append(buf[:0], gid...)
	b = append(b, '_')
	b = strconv.AppendInt(b, int64(i), 10)
	if pid != 0 {
		b = append(b, 'p')
		b = strconv.AppendUint(b, uint64(pid), 10)
	}
	return string(b)
}

// backendPIDKey marks, in a connection's CustomData, that the process id
// the server reported when it connected is its backend's own
// (verifyBackendPID).
const backendPIDKey = "pgshard.backendPID"

// backendPID is pc's backend process id when verifyBackendPID confirmed
// it, else 0.
func backendPID(pc *pgconn.PgConn) uint32 {
	if ok, _ := pc.CustomData()[backendPIDKey].(bool); ok {
		return pc.PID()
	}
	return 0
}

// verifyBackendPID is the worker connections' pgconn AfterConnect: it
// asks the server for its backend's process id (one round trip per new
// connection) and records whether it is the one the connection reported.
// Behind a connection pooler that answers in the server's place (PgBouncer)
// it is not, and the pid must not go into prepared transactions' names: a
// pid no backend has would make every undecided transaction look abandoned
// (preparerGoneSQL).
func verifyBackendPID(ctx context.Context, pc *pgconn.PgConn) error {
	res, err := pc.Exec(ctx, "SELECT pg_backend_pid()").ReadAll()
	if err != nil {
		return err
	}
	if len(res) == 1 && len(res[0].Rows) == 1 && len(res[0].Rows[0]) == 1 {
		if pid, err := strconv.ParseUint(string(res[0].Rows[0][0]), 10, 32); err == nil && uint32(pid) == pc.PID() {
			pc.CustomData()[backendPIDKey] = true
		}
	}
	return nil
}

// txLogDDL creates the legacy coordinator log on a server (for deciding
// transactions of the older scheme only).
const txLogDDL = `CREATE SCHEMA IF NOT EXISTS pgshard;
CREATE TABLE IF NOT EXISTS pgshard.transaction_log (
	gid text PRIMARY KEY,
	committed boolean NOT NULL,
	created timestamptz NOT NULL DEFAULT now()
)`

// ensureTxLog creates the legacy coordinator log on a server once per
// Connector. Only recovery of older transactions uses it.
func (c *Connector) ensureTxLog(ctx context.Context, server string) error {
	c.txLogMu.Lock()
	done := c.txLogReady[server]
	c.txLogMu.Unlock()
	if done {
		return nil
	}
	exec, err := c.serverExec(server)
	if err != nil {
		return err
	}
	if _, err := exec(ctx, txLogDDL); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "23505" && pgErr.Code != "42P07") {
			return fmt.Errorf("pgshard: creating pgshard.transaction_log on %s: %w", server, err)
		}
	}
	c.txLogMu.Lock()
	if c.txLogReady == nil {
		c.txLogReady = map[string]bool{}
	}
	c.txLogReady[server] = true
	c.txLogMu.Unlock()
	return nil
}

// serverExec returns a pooled Exec on a server named by its key.
func (c *Connector) serverExec(server string) (execFunc, error) {
	if server == metaServer {
		return c.meta.Exec, nil
	}
	np, err := c.node(nodeOfKey(server))
	if err != nil {
		return nil, err
	}
	return np.pool.Exec, nil
}

func (c *Connector) serverQueryRow(server string) (func(ctx context.Context, sql string, args ...any) pgx.Row, error) {
	if server == metaServer {
		return c.meta.QueryRow, nil
	}
	np, err := c.node(nodeOfKey(server))
	if err != nil {
		return nil, err
	}
	return np.pool.QueryRow, nil
}

func nodeOfKey(key string) catalog.Node {
	i := strings.LastIndexByte(key, ':')
	port, _ := strconv.Atoi(key[i+1:])
	return catalog.Node{Name: key[:i], Port: port}
}

type execFunc func(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)

// commitAtomic commits participants (each in an open transaction that
// wrote; at least two) atomically, as described above. It takes no pool
// connection: the decision goes through the metadata pool, which no caller
// holds while waiting for another. It returns nil only when the write is
// committed on every participant, or committed on some and the placements
// the others wrote are marked inactive. Otherwise every participant's
// transaction is rolled back, or (SQLSTATE 08007, or a committed transaction
// one of whose shards has no placement left to take it) left prepared and
// decided for the resolver.
func (c *Connector) commitAtomic(ctx context.Context, ps []*participant) error {
	var coord *participant // the metadata session: its COMMIT is the decision
	var prep []*participant
	for _, p := range ps {
		if p.node == (catalog.Node{}) {
			coord = p
		} else {
			prep = append(prep, p)
		}
	}
	id := newTxID()
	c.twopc.begin(id)
	finished := false
	defer func() { c.twopc.end(id, finished) }()
	gids := make([]string, len(prep))
	for i := range prep {
		gids[i] = participantGID(id, i, backendPID(prep[i].conn.Conn().PgConn()))
	}

	prepareErrs := make([]error, len(prep))
	parallel(len(prep), func(i int) {
		_, prepareErrs[i] = prep[i].conn.Conn().Exec(ctx, "PREPARE TRANSACTION "+quoteLiteral(gids[i]))
	})
	// From here on the commit runs to its end even when ctx ends.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := errors.Join(prepareErrs...); err != nil {
		c.abortPrepare(cctx, id, coord, prep, gids, prepareErrs)
		return fmt.Errorf("pgshard: commit (prepare): %w", err)
	}
	commitStep(stepAfterPrepare)
	commitStep(stepBeforeDecision)

	commit, err := c.decideCommit(cctx, id, coord)
	if err != nil && !commit {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == transactionResolutionUnknown {
			return err
		}
		// Decided rolled back: what fails to roll back here is rolled
		// back by the resolver, at any age, by its abort record.
		rollbackPrepared(cctx, prep, gids)
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			// The abort record was there first: a resolver or a waiting
			// statement decided the transaction rolled back, finding a
			// participant's connection gone after its PREPARE.
			return sqlerr.New("40000", "pgshard: commit: transaction %s was rolled back: recovery decided it rolled back before its commit was recorded (a participant's connection was lost after PREPARE)", id)
		}
		if errors.As(err, &pgErr) {
			return fmt.Errorf("pgshard: commit: transaction %s rolled back: %w", id, err)
		}
		return sqlerr.New(sqlerr.ConnectionFailure, "pgshard: commit: the connection to the metadata database failed while recording the decision (%v); transaction %s was rolled back", err, id)
	}
	commitStep(stepAfterDecision)

	commitErrs := make([]error, len(prep))
	parallel(len(prep), func(i int) {
		commitErrs[i] = commitPreparedOn(cctx, prep[i].conn.Conn(), gids[i])
	})
	// Retry the failed ones at once, each on a connection of its own (the
	// participant's may be dead, and waiting for its pool while holding the
	// others' connections could deadlock).
	parallel(len(prep), func(i int) {
		if commitErrs[i] != nil {
			commitErrs[i] = c.retryCommitPrepared(cctx, prep[i].node, gids[i], commitErrs[i])
		}
	})
	commitStep(stepAfterCommitPrepared)
	if errors.Join(commitErrs...) == nil {
		finished = true
		return nil
	}
	return c.markUncommitted(cctx, id, prep, commitErrs)
}

// decideCommit records the decision to commit transaction id: as the
// commit of the metadata session coord when it takes part, else as one
// autocommit INSERT on the metadata database. It returns true when the
// transaction is committed. A failure whose outcome is unknown (a lost
// connection, a FATAL) is resolved from the record; when that fails too,
// the error has SQLSTATE 08007 and the prepared participants stay for the
// resolver.
func (c *Connector) decideCommit(ctx context.Context, id string, coord *participant) (bool, error) {
	var err error
	if coord != nil {
		pc := coord.conn.Conn()
		if _, err = pc.Exec(ctx, insertCommitted, id); err == nil {
			_, err = pc.Exec(ctx, "COMMIT")
		} else if !pc.IsClosed() && pc.PgConn().TxStatus() != 'I' {
			_, _ = pc.Exec(ctx, "ROLLBACK")
		}
	} else {
		_, err = c.meta.Exec(ctx, insertCommitted, id)
	}
	if err == nil {
		return true, nil
	}
	if pgconn.SafeToRetry(err) {
		// Nothing reached the server (no connection could be made).
		if _, rerr := c.meta.Exec(ctx, insertAborted, id); rerr != nil {
			// The resolver presumes the abort later.
			_ = rerr
		}
		return false, err
	}
	// Unknown: find it in the record, never guess; with time of its own,
	// as the decision may have used up ctx.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resolveTimeout)
	defer cancel()
	commit, rerr := c.resolveDecision(rctx, id)
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
func (c *Connector) resolveDecision(ctx context.Context, id string) (bool, error) {
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return false, fmt.Errorf("%v (then %w)", lastErr, ctx.Err())
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		if _, err := c.meta.Exec(ctx, insertAborted, id); err != nil {
			lastErr = err
			continue
		}
		var commit bool
		if err := c.meta.QueryRow(ctx, selectDecision, id).Scan(&commit); err != nil {
			lastErr = err
			continue
		}
		return commit, nil
	}
	return false, lastErr
}

// lookupDecision reads transaction id's commit record, if any.
func (c *Connector) lookupDecision(ctx context.Context, id string) (decided, commit bool, err error) {
	err = c.meta.QueryRow(ctx, selectDecision, id).Scan(&commit)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	return err == nil, commit, err
}

// abortPrepare rolls back a transaction whose PREPARE failed somewhere: the
// metadata session's transaction, the prepared ones, and, when a PREPARE
// may have happened without its answer arriving, an abort record that lets
// the resolver roll it back at once.
func (c *Connector) abortPrepare(ctx context.Context, id string, coord *participant, prep []*participant, gids []string, prepareErrs []error) {
	if coord != nil {
		abortAll(ctx, []*participant{coord})
	}
	unknown := false
	parallel(len(prep), func(i int) {
		if prepareErrs[i] == nil {
			_, _ = prep[i].conn.Conn().Exec(ctx, "ROLLBACK PREPARED "+quoteLiteral(gids[i]))
		}
	})
	for i, err := range prepareErrs {
		var pgErr *pgconn.PgError
		if err != nil && (!errors.As(err, &pgErr) || prep[i].conn.Conn().IsClosed()) {
			unknown = true
		}
	}
	if unknown {
		_, _ = c.meta.Exec(ctx, insertAborted, id)
	}
}

// rollbackPrepared rolls back the prepared participants; failures are left
// to the resolver.
func rollbackPrepared(ctx context.Context, prep []*participant, gids []string) {
	parallel(len(prep), func(i int) {
		pc := prep[i].conn.Conn()
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
func (c *Connector) retryCommitPrepared(ctx context.Context, node catalog.Node, gid string, first error) error {
	rctx, cancel := context.WithTimeout(ctx, retryTimeout)
	defer cancel()
	conn, err := c.connectNode(rctx, node)
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
func (c *Connector) markUncommitted(ctx context.Context, id string, prep []*participant, commitErrs []error) error {
	committedShards := map[int64]bool{}
	for i, p := range prep {
		if commitErrs[i] != nil {
			continue
		}
		for _, pl := range p.placements {
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
		if len(p.placements) == 0 {
			stuck = append(stuck, fmt.Errorf("%s: %w", p.node, commitErrs[i]))
			continue
		}
		for _, pl := range p.placements {
			if committedShards[pl.ShardID] {
				mark = append(mark, pl)
			} else {
				stuck = append(stuck, fmt.Errorf("shard %d on %s: %w", pl.ShardID, p.node, commitErrs[i]))
			}
		}
	}
	if len(stuck) > 0 {
		if len(mark) > 0 {
			_ = c.markInactive(ctx, mark)
		}
		return sqlerr.New(transactionResolutionUnknown, "pgshard: commit: transaction %s is committed, but COMMIT PREPARED failed where no other placement took it (%v); its writes there become visible when recovery commits them", id, errors.Join(stuck...))
	}
	if err := c.markInactive(ctx, mark); err != nil {
		return sqlerr.New(transactionResolutionUnknown, "pgshard: commit: transaction %s is committed, but COMMIT PREPARED failed on some placements and marking them inactive failed: %v", id, err)
	}
	return nil
}

func abortAll(ctx context.Context, ps []*participant) {
	for _, p := range ps {
		if !p.conn.Conn().IsClosed() && p.conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = p.conn.Conn().Exec(ctx, "ROLLBACK")
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

// recoveryAges are the ages at which prepared transactions are decided.
type recoveryAges struct {
	decided   time.Duration // with a commit record
	undecided time.Duration // without one: presumed rolled back
	abandoned time.Duration // without one, and the session that prepared it is gone
	legacy    time.Duration // of the older naming scheme
}

// agesFor is what Recover(ctx, minAge) uses: minAge for all, but decided
// transactions never wait longer than decidedGrace.
func agesFor(minAge time.Duration) recoveryAges {
	return recoveryAges{decided: min(minAge, decidedGrace), undecided: minAge, abandoned: min(minAge, decidedGrace), legacy: minAge}
}

// Recover finishes or rolls back every prepared transaction pgshard left on
// the metadata database and the workers (a client that died, or lost a
// server, during a commit): committed when its commit record (or, for the
// older naming scheme, its coordinator's log) says so, rolled back
// otherwise. Prepared transactions younger than minAge are left alone, as
// their commit may still be under way (deciding them early is safe, but may
// roll back a commit that was about to succeed); those decided, and
// undecided ones whose preparing backend is gone, wait at most
// decidedGrace. Each process also runs it in the background
// every few seconds. It returns how many it committed and rolled back.
func (c *Connector) Recover(ctx context.Context, minAge time.Duration) (committed, rolledBack int, err error) {
	if err := c.init(ctx); err != nil {
		return 0, 0, err
	}
	return c.recover(ctx, agesFor(minAge), nil)
}

// recover resolves the prepared transactions of every server. conns, when
// not nil, keeps the worker connections between calls (the resolver's);
// otherwise each worker gets a connection of its own for the call.
func (c *Connector) recover(ctx context.Context, ages recoveryAges, conns map[catalog.Node]*pgx.Conn) (committed, rolledBack int, err error) {
	servers := []string{metaServer}
	for _, n := range c.snapshot().Nodes {
		servers = append(servers, n.String())
	}
	var errs []error
	for _, s := range servers {
		cm, rb, err := c.recoverServerWith(ctx, s, ages, conns)
		committed += cm
		rolledBack += rb
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
		}
	}
	return committed, rolledBack, errors.Join(errs...)
}

// recoverServer resolves the prepared transactions on one server older
// than minAge (decided ones older than decidedGrace), over a connection of
// its own.
func (c *Connector) recoverServer(ctx context.Context, server string, minAge time.Duration) (int, int, error) {
	return c.recoverServerWith(ctx, server, agesFor(minAge), nil)
}

// resolverApplicationName is the application_name of the connections the
// resolver and recovery open to workers, outside the pools.
const resolverApplicationName = "pgshard resolver"

// connectResolver opens a worker connection for recovery, outside the
// pools; dial, when not nil, opens its sockets (the resolver loop's and the
// lock-wait watcher's tracking dialers).
func (c *Connector) connectResolver(ctx context.Context, node catalog.Node, dial pgconn.DialFunc) (*pgx.Conn, error) {
	cfg, err := c.nodeConfig(node)
	if err != nil {
		return nil, err
	}
	if dial != nil {
		cfg.ConnConfig.DialFunc = dial
	}
	// Named, so that an operator (and a test counting a pool's
	// connections) tells it from the pools' connections.
	cfg.ConnConfig.RuntimeParams["application_name"] = resolverApplicationName
	return pgx.ConnectConfig(ctx, cfg.ConnConfig)
}

// trackingDialer dials TCP and remembers the sockets it opened until they
// are closed, so that closeAll can end them all.
type trackingDialer struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (d *trackingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		conn.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: conn, d: d}
	d.conns[tc] = struct{}{}
	return tc, nil
}

// closeAll closes every open socket and refuses new ones.
func (d *trackingDialer) closeAll() {
	d.mu.Lock()
	d.closed = true
	conns := d.conns
	d.conns = map[net.Conn]struct{}{}
	d.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	d *trackingDialer
}

func (c *trackedConn) Close() error {
	c.d.mu.Lock()
	delete(c.d.conns, c)
	c.d.mu.Unlock()
	return c.Conn.Close()
}

// runner is what recovery needs of a server: a pool or one connection.
type runner interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (c *Connector) recoverServerWith(ctx context.Context, server string, ages recoveryAges, conns map[catalog.Node]*pgx.Conn) (int, int, error) {
	var r runner
	if server == metaServer {
		r = c.meta
	} else {
		node := nodeOfKey(server)
		conn := conns[node]
		if conn == nil || conn.IsClosed() {
			var err error
			var dial pgconn.DialFunc
			if conns != nil {
				dial = c.twopc.dial
			}
			if conn, err = c.connectResolver(ctx, node, dial); err != nil {
				return 0, 0, err
			}
			if conns != nil {
				conns[node] = conn
			} else {
				defer conn.Close(context.Background())
			}
		}
		r = conn
	}
	sctx, cancel := context.WithTimeout(ctx, resolverServerTimeout)
	defer cancel()
	cm, rb, err := c.resolveOn(sctx, r, ages)
	if err != nil && conns != nil && server != metaServer {
		// Start afresh next time.
		node := nodeOfKey(server)
		if conn := conns[node]; conn != nil {
			conn.Close(context.Background())
			delete(conns, node)
		}
	}
	return cm, rb, err
}

// preparedXactsQuery lists the prepared transactions of pgshard on a server
// at least $1 seconds old: name, age in seconds, and whether the session
// that prepared it is gone (preparerGoneSQL).
const preparedXactsQuery = `SELECT px.gid, extract(epoch FROM now() - px.prepared)::float8, ` + preparerGoneSQL + `
	FROM pg_prepared_xacts px
	WHERE px.gid LIKE 'pgshard\_%' AND px.database = current_database() AND px.prepared <= now() - make_interval(secs => $1)`

// preparerGoneSQL is true when the prepared transaction px is named by the
// current scheme with its preparing backend's pid (<id>_<i>p<pid>) and no
// backend with that pid that started before the PREPARE is still
// connected: the coordinator's connection to this server is gone.
const preparerGoneSQL = `(px.gid ~ '_[0-9]+p[0-9]+$' AND NOT EXISTS (SELECT FROM pg_stat_activity a
		WHERE a.pid = substring(px.gid FROM '_[0-9]+p([0-9]+)$')::int AND a.backend_start <= px.prepared))`

// preparedXact is one prepared transaction of pgshard on a server.
type preparedXact struct {
	gid string
	age time.Duration
	// preparerGone: the session that prepared it has disconnected (see
	// preparerGoneSQL).
	preparerGone bool
}

func scanPreparedXact(row pgx.CollectableRow) (preparedXact, error) {
	var x preparedXact
	var age float64
	err := row.Scan(&x.gid, &age, &x.preparerGone)
	x.age = time.Duration(age * float64(time.Second))
	return x, err
}

// resolveOn decides the prepared transactions pgshard left on one server.
func (c *Connector) resolveOn(ctx context.Context, r runner, ages recoveryAges) (committed, rolledBack int, err error) {
	youngest := min(ages.decided, ages.undecided, ages.abandoned, ages.legacy)
	rows, err := r.Query(ctx, preparedXactsQuery, youngest.Seconds())
	if err != nil {
		return 0, 0, err
	}
	prepared, err := pgx.CollectRows(rows, scanPreparedXact)
	if err != nil {
		return 0, 0, err
	}
	for _, x := range prepared {
		outcome, err := c.resolvePrepared(ctx, r, x, ages)
		switch {
		case err != nil:
			return committed, rolledBack, err
		case outcome == resolvedCommitted:
			committed++
		case outcome == resolvedRolledBack:
			rolledBack++
		}
	}
	return committed, rolledBack, nil
}

// resolution is what resolvePrepared did with a prepared transaction.
type resolution int

const (
	resolvedNothing    resolution = iota // left alone (too young, or its client is at it)
	resolvedCommitted                    // COMMIT PREPARED
	resolvedRolledBack                   // ROLLBACK PREPARED
)

// resolvePrepared is the one way a prepared transaction of pgshard's is
// finished, by the resolver, by Recover and by a statement waiting for its
// locks (lockwait.go), over r (a connection to the server holding it):
//
//   - one this process is committing is left to it;
//   - decided (its id has a commit record), once ages.decided old: committed
//     or rolled back as the record says;
//   - undecided, once ages.undecided old, or ages.abandoned old when the
//     session that prepared it is gone: decided rolled back by writing the
//     abort record first (resolveDecision: it waits for, and loses to, a
//     concurrent commit decision, so a coordinator still running can never
//     commit after), then rolled back (or committed, when the coordinator's
//     decision won);
//   - of the older naming scheme, once ages.legacy old: from the
//     coordinator's pgshard.transaction_log.
//
// A transaction finished meanwhile by someone else (42704), or being
// finished by someone else at this instant (55000, "is busy"), counts as
// left alone.
func (c *Connector) resolvePrepared(ctx context.Context, r runner, x preparedXact, ages recoveryAges) (resolution, error) {
	var commit bool
	if id, ok := parseTxID(x.gid); ok {
		if c.twopc.isInflight(id) {
			return resolvedNothing, nil // this process is committing it
		}
		decided, cm, err := c.lookupDecision(ctx, id)
		if err != nil {
			return resolvedNothing, fmt.Errorf("deciding %s: %w", x.gid, err)
		}
		switch {
		case decided && x.age >= ages.decided:
			commit = cm
		case !decided && (x.age >= ages.undecided || (x.preparerGone && x.age >= ages.abandoned)):
			if commit, err = c.resolveDecision(ctx, id); err != nil {
				return resolvedNothing, fmt.Errorf("deciding %s: %w", x.gid, err)
			}
		default:
			return resolvedNothing, nil
		}
	} else if gid, coordinator, ok := parseGID(x.gid); ok {
		if x.age < ages.legacy {
			return resolvedNothing, nil
		}
		var err error
		if commit, err = c.decide(ctx, coordinator, gid); err != nil {
			return resolvedNothing, err
		}
	} else {
		return resolvedNothing, nil
	}
	verb := "ROLLBACK PREPARED "
	if commit {
		verb = "COMMIT PREPARED "
	}
	if _, err := r.Exec(ctx, verb+quoteLiteral(x.gid)); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == sqlerr.UndefinedObject || pgErr.Code == sqlerr.ObjectNotInPrereq) {
			return resolvedNothing, nil // finished, or being finished, by its client or another resolver
		}
		return resolvedNothing, err
	}
	if commit {
		return resolvedCommitted, nil
	}
	return resolvedRolledBack, nil
}

// decide returns whether a transaction of the older naming scheme
// committed, by its coordinator's log. An absent row becomes a
// committed = false row, so a coordinator still running can no longer
// commit it (its own insert then fails).
func (c *Connector) decide(ctx context.Context, coordinator, gid string) (bool, error) {
	if err := c.ensureTxLog(ctx, coordinator); err != nil {
		return false, err
	}
	exec, err := c.serverExec(coordinator)
	if err != nil {
		return false, err
	}
	if _, err := exec(ctx, `INSERT INTO pgshard.transaction_log (gid, committed) VALUES ($1, false) ON CONFLICT DO NOTHING`, gid); err != nil {
		return false, fmt.Errorf("deciding %s on %s: %w", gid, coordinator, err)
	}
	queryRow, err := c.serverQueryRow(coordinator)
	if err != nil {
		return false, err
	}
	var commit bool
	if err := queryRow(ctx, `SELECT committed FROM pgshard.transaction_log WHERE gid = $1`, gid).Scan(&commit); err != nil {
		return false, fmt.Errorf("deciding %s on %s: %w", gid, coordinator, err)
	}
	return commit, nil
}

// resolverServerTimeout bounds one resolver pass on one server, so that a
// stalled server delays the others by no more than that.
const resolverServerTimeout = 5 * time.Second

// resolverLoop finishes in-doubt prepared transactions every
// resolverInterval until ctx ends, over worker connections of its own, and
// deletes the commit records no longer needed. When it returns, every
// socket it opened is closed, including those pgx opens on its own to
// cancel a query interrupted on a stalled server.
func (c *Connector) resolverLoop(ctx context.Context) {
	conns := map[catalog.Node]*pgx.Conn{}
	dialer := &trackingDialer{conns: map[net.Conn]struct{}{}}
	c.twopc.dial = dialer.DialContext
	defer func() {
		for _, conn := range conns {
			conn.Close(context.Background())
		}
		dialer.closeAll()
	}()
	t := time.NewTicker(resolverInterval)
	defer t.Stop()
	ages := recoveryAges{decided: decidedGrace, undecided: presumeAbortAge, abandoned: decidedGrace, legacy: legacyMinAge}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*resolverInterval)
		_, _, _ = c.recover(rctx, ages, conns)
		c.forgetRecords(rctx, conns)
		cancel()
	}
}

// forgetRecords deletes the records of transactions committed everywhere,
// and, every recordGCInterval, records older than recordTTL that no
// prepared transaction on any server names any more (when every server
// answered).
func (c *Connector) forgetRecords(ctx context.Context, conns map[catalog.Node]*pgx.Conn) {
	if ids := c.twopc.takeFinished(); len(ids) > 0 {
		if _, err := c.meta.Exec(ctx, `DELETE FROM pgs_distribution_metadata.commit_record WHERE gid = ANY($1)`, ids); err != nil {
			c.twopc.mu.Lock()
			c.twopc.finished = append(c.twopc.finished, ids...)
			c.twopc.mu.Unlock()
		}
	}
	if time.Since(c.twopc.lastGC) < recordGCInterval {
		return
	}
	named := []string{} // not nil: ALL(NULL) matches nothing
	servers := []runner{c.meta}
	for _, n := range c.snapshot().Nodes {
		conn := conns[n]
		if conn == nil || conn.IsClosed() {
			return // the next pass reconnects
		}
		servers = append(servers, conn)
	}
	for _, r := range servers {
		rows, err := r.Query(ctx, `SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'pgshard\_m\_%' AND database = current_database()`)
		if err != nil {
			return
		}
		gids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return
		}
		for _, g := range gids {
			if id, ok := parseTxID(g); ok {
				named = append(named, id)
			}
		}
	}
	if _, err := c.meta.Exec(ctx, `DELETE FROM pgs_distribution_metadata.commit_record
		WHERE created < now() - make_interval(secs => $1) AND gid <> ALL($2)`, recordTTL.Seconds(), named); err == nil {
		c.twopc.lastGC = time.Now()
	}
}

// commit steps at which a test may stop the process (see commitStep).
const (
	stepAfterPlacementWrite = "after-placement-write" // a replicated write ran on one more placement
	stepAfterMarking        = "after-marking"         // unreachable placements were marked inactive
	stepAfterPrepare        = "after-prepare"         // every other participant prepared
	stepBeforeDecision      = "before-decision"
	stepAfterDecision       = "after-decision"
	stepAfterCommitPrepared = "after-commit-prepared"
)

// commitStep is a fault-injection point: the package's tests replace it
// (export_test.go) to kill the process at a given step. It does nothing in
// a real program.
var commitStep = func(step string) {}
