package txn

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
)

// Statements waiting for an in-doubt prepared transaction's locks.
//
// A prepared transaction keeps its row and table locks until COMMIT or
// ROLLBACK PREPARED. When pgshard's client died, or lost a worker, between
// PREPARE and COMMIT PREPARED, the next statement touching those rows waits
// for whoever finishes the transaction. The resolver does every
// resolverInterval; a statement that waits does not wait for it: the
// lock-wait watcher finds the prepared transactions of pgshard that block
// it and finishes them at once (resolvePrepared, the resolver's own code
// path): decided ones as their commit record says, undecided ones only
// when abandoned (the session that prepared them is gone) or older than
// presumeAbortAge, by writing the abort record first, so that a
// coordinator still running can never commit after.
//
// What a statement pays when it does not wait: every worker connection of
// the pools carries a stmtClock, made once per connection and kept in its
// pgconn's CustomData. pgx calls the pool's tracer (lockWaitTracer) when a
// statement starts and ends; it stores the start time in the clock and
// marks it idle: two map lookups, one monotonic clock read and two atomic
// stores, no allocation, no lock (the watcher's lock is taken once per
// connection, when its first statement starts, and again after the watcher
// forgot it for being idle lockWaitForget). The work is on the watcher
// goroutine (one per Connector): every lockWaitTick it looks at the clocks,
// and only for statements running for lockWaitThreshold or more asks their
// worker, over a connection of its own (never a pooled one: the pool may
// be full of statements waiting for these very locks), whether they wait
// for a lock of a prepared transaction of pgshard's.

const (
	// lockWaitTick is how often the watcher looks for long statements.
	lockWaitTick = 50 * time.Millisecond
	// lockWaitThreshold is how long a statement runs before the watcher
	// asks its worker whether it waits for an in-doubt transaction: a
	// statement that waits is noticed lockWaitThreshold to
	// lockWaitThreshold+lockWaitTick after it started.
	lockWaitThreshold = 100 * time.Millisecond
	// lockWaitRecheck is how often a statement that keeps running is asked
	// about again (what blocks it may change).
	lockWaitRecheck = 500 * time.Millisecond
	// lockWaitForget is how long a connection stays idle before the
	// watcher forgets its clock (a closed connection's clock goes then).
	lockWaitForget = time.Minute
)

// lockWatch is a Connector's registry of the statement clocks of its worker
// connections. mu guards clocks and the clocks' checked fields.
type lockWatch struct {
	mu     sync.Mutex
	clocks map[*stmtClock]struct{}
	// resolved counts the prepared transactions the watcher finished.
	resolved atomic.Int64
}

// stmtClock tells the watcher whether a worker connection runs a statement
// and since when. since is written by the connection's user (the tracer)
// and, for forgetting, by the watcher under lockWatch.mu.
type stmtClock struct {
	node catalog.Node
	pid  uint32 // the connection's backend process id
	// since is 0 while the watcher does not know the clock; > 0 while a
	// statement runs, its start (monoNow); < 0 while idle, minus the last
	// statement's start.
	since atomic.Int64
	// checkedStart and checkedAt record the statement (its start) the
	// watcher asked about last, and when.
	checkedStart, checkedAt int64
}

// monoEpoch starts the monotonic clock of stmtClock.
var monoEpoch = time.Now()

// monoNow is the monotonic time since monoEpoch, in nanoseconds, never 0.
func monoNow() int64 { return int64(time.Since(monoEpoch)) + 1 }

// stmtClockKey is the key of a connection's stmtClock in its CustomData.
const stmtClockKey = "pgshard.stmtClock"

// lockWaitTracer is the pgx.QueryTracer of one worker node's pool: it keeps
// each connection's stmtClock. pgx calls it on the goroutine using the
// connection.
type lockWaitTracer struct {
	w    *lockWatch
	node catalog.Node
}

var _ pgx.QueryTracer = (*lockWaitTracer)(nil)

// TraceQueryStart records that a statement starts on conn.
func (t *lockWaitTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	data := conn.PgConn().CustomData()
	sc, _ := data[stmtClockKey].(*stmtClock)
	if sc == nil {
		sc = &stmtClock{node: t.node, pid: conn.PgConn().PID()}
		data[stmtClockKey] = sc
	}
	if sc.since.Swap(monoNow()) == 0 {
		t.w.register(sc)
	}
	return ctx
}

// TraceQueryEnd records that conn's statement ended (for a query, when its
// rows are closed).
func (t *lockWaitTracer) TraceQueryEnd(_ context.Context, conn *pgx.Conn, _ pgx.TraceQueryEndData) {
	if sc, _ := conn.PgConn().CustomData()[stmtClockKey].(*stmtClock); sc != nil {
		if v := sc.since.Load(); v > 0 {
			sc.since.Store(-v)
		}
	}
}

// TraceCopyFromStart records that a COPY ... FROM STDIN starts on conn,
// as a statement (TraceQueryStart).
func (t *lockWaitTracer) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return t.TraceQueryStart(ctx, conn, pgx.TraceQueryStartData{})
}

// TraceCopyFromEnd records that conn's COPY ended.
func (t *lockWaitTracer) TraceCopyFromEnd(ctx context.Context, conn *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	t.TraceQueryEnd(ctx, conn, pgx.TraceQueryEndData{})
}

var _ pgx.CopyFromTracer = (*lockWaitTracer)(nil)

// CopyFrom runs sql, a COPY ... FROM STDIN, on conn's PostgreSQL
// connection with its data read from r, and returns its command tag. Unlike
// pgx.Conn.CopyFrom it sends the data as it is (COPY's text format, any
// option of sql), but like it, it has the connection's tracer see the COPY
// start and end: the lock-wait watcher (Tracer) then finds a COPY blocked
// by an in-doubt prepared transaction as it finds any statement. It blocks
// until the server answers; ctx cancels it.
func CopyFrom(ctx context.Context, conn *pgx.Conn, sql string, r io.Reader) (pgconn.CommandTag, error) {
	tr, _ := conn.Config().Tracer.(pgx.CopyFromTracer)
	if tr != nil {
		ctx = tr.TraceCopyFromStart(ctx, conn, pgx.TraceCopyFromStartData{})
	}
	tag, err := conn.PgConn().CopyFrom(ctx, r, sql)
	if tr != nil {
		tr.TraceCopyFromEnd(ctx, conn, pgx.TraceCopyFromEndData{CommandTag: tag, Err: err})
	}
	return tag, err
}

// CopyTo runs sql, a COPY ... TO STDOUT, on conn's PostgreSQL connection,
// writing its output to w, and returns its command tag; the connection's
// query tracer sees it start and end as a statement (pgx has no tracer
// of its own for COPY TO), so that the lock-wait watcher sees it wait. It
// blocks until the server answers; ctx cancels it.
func CopyTo(ctx context.Context, conn *pgx.Conn, sql string, w io.Writer) (pgconn.CommandTag, error) {
	tr := conn.Config().Tracer
	if tr != nil {
		ctx = tr.TraceQueryStart(ctx, conn, pgx.TraceQueryStartData{SQL: sql})
	}
	tag, err := conn.PgConn().CopyTo(ctx, w, sql)
	if tr != nil {
		tr.TraceQueryEnd(ctx, conn, pgx.TraceQueryEndData{CommandTag: tag, Err: err})
	}
	return tag, err
}

func (w *lockWatch) register(sc *stmtClock) {
	w.mu.Lock()
	if w.clocks == nil {
		w.clocks = map[*stmtClock]struct{}{}
	}
	w.clocks[sc] = struct{}{}
	w.mu.Unlock()
}

// longRunning returns, by node, the backend pids of the statements running
// for lockWaitThreshold that were not asked about within lockWaitRecheck,
// and forgets the clocks idle for lockWaitForget.
func (w *lockWatch) longRunning(now int64) map[catalog.Node][]uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out map[catalog.Node][]uint32
	for sc := range w.clocks {
		v := sc.since.Load()
		switch {
		case v > 0:
			if now-v < int64(lockWaitThreshold) || (sc.checkedStart == v && now-sc.checkedAt < int64(lockWaitRecheck)) {
				continue
			}
			sc.checkedStart, sc.checkedAt = v, now
			if out == nil {
				out = map[catalog.Node][]uint32{}
			}
			out[sc.node] = append(out[sc.node], sc.pid)
		case v < 0:
			// A statement starting meanwhile swaps since away from v (the
			// CAS fails) or finds 0 and registers again after this.
			if now+v >= int64(lockWaitForget) && sc.since.CompareAndSwap(v, 0) {
				delete(w.clocks, sc)
			}
		}
	}
	return out
}

// lockWaitNode is the watcher's connection to one worker; busy is set
// while a check of that worker runs, which owns conn meanwhile.
type lockWaitNode struct {
	busy atomic.Bool
	conn *pgx.Conn
}

// RunLockWatch is the watcher (see the top of this file): until ctx ends,
// every lockWaitTick, it checks the workers of the statements running for
// lockWaitThreshold, each worker on its own goroutine (a stalled worker
// delays no other), at most one check per worker at a time. When it
// returns, every socket it opened is closed.
func (co *Coordinator) RunLockWatch(ctx context.Context) {
	dialer := &trackingDialer{conns: map[net.Conn]struct{}{}}
	nodes := map[catalog.Node]*lockWaitNode{}
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		for _, ln := range nodes {
			if ln.conn != nil {
				ln.conn.Close(context.Background())
			}
		}
		dialer.closeAll()
	}()
	t := time.NewTicker(lockWaitTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for node, pids := range co.lockwait.longRunning(monoNow()) {
			ln := nodes[node]
			if ln == nil {
				ln = &lockWaitNode{}
				nodes[node] = ln
			}
			if !ln.busy.CompareAndSwap(false, true) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer ln.busy.Store(false)
				_, _ = co.resolveLockWaits(ctx, node, ln, pids, dialer.DialContext)
			}()
		}
	}
}

// blockingPreparedQuery lists the prepared transactions of pgshard's that
// hold a lock one of the backends $1 waits for (directly, or queued behind
// a backend that waits for it), as preparedXactsQuery does. A prepared
// transaction's locks are held by no backend (pid is null), under the
// virtual transaction id of the session that prepared it; among them is
// the lock on its own transaction id, which names it in pg_prepared_xacts.
const blockingPreparedQuery = `WITH waiting AS MATERIALIZED (
		SELECT a.pid FROM pg_stat_activity a
		WHERE a.wait_event_type = 'Lock' AND (a.pid = ANY($1)
			OR a.pid IN (SELECT unnest(pg_blocking_pids(p)) FROM unnest($1::int[]) p))
	)
	SELECT DISTINCT px.gid, extract(epoch FROM now() - px.prepared)::float8, ` + preparerGoneSQL + `
	FROM waiting
	JOIN pg_locks w ON w.pid = waiting.pid AND NOT w.granted
	JOIN pg_locks h ON h.granted AND h.pid IS NULL AND h.locktype = w.locktype
		AND h.database IS NOT DISTINCT FROM w.database AND h.relation IS NOT DISTINCT FROM w.relation
		AND h.page IS NOT DISTINCT FROM w.page AND h.tuple IS NOT DISTINCT FROM w.tuple
		AND h.virtualxid IS NOT DISTINCT FROM w.virtualxid
		AND h.transactionid IS NOT DISTINCT FROM w.transactionid
		AND h.classid IS NOT DISTINCT FROM w.classid AND h.objid IS NOT DISTINCT FROM w.objid
		AND h.objsubid IS NOT DISTINCT FROM w.objsubid
	JOIN pg_locks x ON x.locktype = 'transactionid' AND x.granted AND x.pid IS NULL
		AND x.virtualtransaction = h.virtualtransaction
	JOIN pg_prepared_xacts px ON px.transaction = x.transactionid
	WHERE px.gid LIKE 'pgshard\_%' AND px.database = current_database()`

// lockWaitAges are the ages at which a prepared transaction blocking a
// statement is finished: decided or abandoned ones at once, others as the
// resolver would (a live coordinator's, never: it decides within
// presumeAbortAge or loses to the abort record).
var lockWaitAges = recoveryAges{decided: 0, undecided: presumeAbortAge, abandoned: 0, live: presumeAbortAge, legacy: legacyMinAge}

// resolveLockWaits finds the prepared transactions of pgshard's on node
// that block the backends pids and finishes them (resolvePrepared), over
// ln's connection (opened with dial when missing, dropped after an
// error). It returns how many it finished.
func (co *Coordinator) resolveLockWaits(ctx context.Context, node catalog.Node, ln *lockWaitNode, pids []uint32, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (int, error) {
	qctx, cancel := context.WithTimeout(ctx, resolverServerTimeout)
	defer cancel()
	if ln.conn == nil || ln.conn.IsClosed() {
		conn, err := co.connectResolver(qctx, node, dial)
		if err != nil {
			return 0, err
		}
		ln.conn = conn
	}
	fail := func(err error) (int, error) {
		ln.conn.Close(context.Background())
		ln.conn = nil
		return 0, err
	}
	rows, err := ln.conn.Query(qctx, blockingPreparedQuery, pids)
	if err != nil {
		return fail(err)
	}
	blocking, err := pgx.CollectRows(rows, scanPreparedXact)
	if err != nil {
		return fail(err)
	}
	finished := 0
	for _, x := range blocking {
		outcome, err := co.resolvePrepared(qctx, ln.conn, x, lockWaitAges)
		if err != nil {
			if ln.conn.IsClosed() {
				return fail(err)
			}
			continue // its record could not be read: the next check tries again
		}
		if outcome != resolvedNothing {
			finished++
			co.lockwait.resolved.Add(1)
		}
	}
	return finished, nil
}
