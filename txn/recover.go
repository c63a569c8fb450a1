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
func (co *Coordinator) ensureTxLog(ctx context.Context, server string) error {
	co.txLogMu.Lock()
	done := co.txLogReady[server]
	co.txLogMu.Unlock()
	if done {
		return nil
	}
	exec, err := co.serverExec(server)
	if err != nil {
		return err
	}
	if _, err := exec(ctx, txLogDDL); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "23505" && pgErr.Code != "42P07") {
			return fmt.Errorf("pgshard: creating pgshard.transaction_log on %s: %w", server, err)
		}
	}
	co.txLogMu.Lock()
	if co.txLogReady == nil {
		co.txLogReady = map[string]bool{}
	}
	co.txLogReady[server] = true
	co.txLogMu.Unlock()
	return nil
}

// serverExec returns a pooled Exec on a server named by its key.
func (co *Coordinator) serverExec(server string) (execFunc, error) {
	if server == metaServer {
		return co.cl.Meta().Exec, nil
	}
	pool, err := co.cl.NodePool(nodeOfKey(server))
	if err != nil {
		return nil, err
	}
	return pool.Exec, nil
}

func (co *Coordinator) serverQueryRow(server string) (func(ctx context.Context, sql string, args ...any) pgx.Row, error) {
	if server == metaServer {
		return co.cl.Meta().QueryRow, nil
	}
	pool, err := co.cl.NodePool(nodeOfKey(server))
	if err != nil {
		return nil, err
	}
	return pool.QueryRow, nil
}

type execFunc func(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)

// recoveryAges are the ages at which prepared transactions are decided.
type recoveryAges struct {
	decided   time.Duration // with a commit record
	undecided time.Duration // without one, and whether the session that prepared it is connected is unknown: presumed rolled back
	abandoned time.Duration // without one, and the session that prepared it is gone
	live      time.Duration // without one, and the session that prepared it is still connected
	legacy    time.Duration // of the older naming scheme
}

// undecidedAge is the age at which x, without a commit record, is
// presumed rolled back: by whether its preparing session is gone, still
// connected, or unknown (a name without its pid).
func (a recoveryAges) undecidedAge(x preparedXact) time.Duration {
	switch {
	case x.preparerGone:
		return min(a.undecided, a.abandoned)
	case x.preparerLive:
		return max(a.undecided, a.live)
	default:
		return a.undecided
	}
}

// agesFor is what Recover(ctx, minAge) uses: minAge for all, but decided
// transactions, and undecided ones whose preparing session is gone, never
// wait longer than decidedGrace, and undecided ones whose preparing session
// is still connected always wait presumeAbortAge: their coordinator may be
// about to decide them (a repair recovers its nodes with minAge 0 while
// writers commit), and a live coordinator's transaction is decided by it
// alone until then.
func agesFor(minAge time.Duration) recoveryAges {
	return recoveryAges{decided: min(minAge, decidedGrace), undecided: minAge, abandoned: min(minAge, decidedGrace), live: max(minAge, presumeAbortAge), legacy: minAge}
}

// Recover finishes or rolls back every prepared transaction pgshard left on
// the metadata database and the workers (a client that died, or lost a
// server, during a commit): committed when its commit record (or, for the
// older naming scheme, its coordinator's log) says so, rolled back
// otherwise. Prepared transactions younger than minAge are left alone, as
// their commit may still be under way (deciding them early is safe, but may
// roll back a commit that was about to succeed); those decided, and
// undecided ones whose preparing backend is gone, wait at most
// decidedGrace; undecided ones whose preparing backend is still connected
// wait at least presumeAbortAge, whatever minAge (their coordinator is
// alive: it decides them). Each process also runs it in the background
// every few seconds. It returns how many it committed and rolled back.
func (co *Coordinator) Recover(ctx context.Context, minAge time.Duration) (committed, rolledBack int, err error) {
	return co.recover(ctx, agesFor(minAge), nil)
}

// recover resolves the prepared transactions of every server. conns, when
// not nil, keeps the worker connections between calls (the resolver's);
// otherwise each worker gets a connection of its own for the call.
func (co *Coordinator) recover(ctx context.Context, ages recoveryAges, conns map[catalog.Node]*pgx.Conn) (committed, rolledBack int, err error) {
	servers := []string{metaServer}
	for _, n := range co.cl.Nodes() {
		servers = append(servers, n.String())
	}
	var errs []error
	for _, s := range servers {
		cm, rb, err := co.recoverServerWith(ctx, s, ages, conns)
		committed += cm
		rolledBack += rb
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
		}
	}
	return committed, rolledBack, errors.Join(errs...)
}

// RecoverNode is Recover on one worker, over a connection of its own.
func (co *Coordinator) RecoverNode(ctx context.Context, node catalog.Node, minAge time.Duration) (committed, rolledBack int, err error) {
	return co.recoverServerWith(ctx, node.String(), agesFor(minAge), nil)
}

// resolverApplicationName is the application_name of the connections the
// resolver and recovery open to workers, outside the pools.
const resolverApplicationName = "pgshard resolver"

// connectResolver opens a worker connection for recovery, outside the
// pools; dial, when not nil, opens its sockets (the resolver loop's and the
// lock-wait watcher's tracking dialers).
func (co *Coordinator) connectResolver(ctx context.Context, node catalog.Node, dial pgconn.DialFunc) (*pgx.Conn, error) {
	cfg, err := co.cl.NodeConfig(node)
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

func (co *Coordinator) recoverServerWith(ctx context.Context, server string, ages recoveryAges, conns map[catalog.Node]*pgx.Conn) (int, int, error) {
	var r runner
	if server == metaServer {
		r = co.cl.Meta()
	} else {
		node := nodeOfKey(server)
		conn := conns[node]
		if conn == nil || conn.IsClosed() {
			var err error
			var dial pgconn.DialFunc
			if conns != nil {
				dial = co.twopc.dial
			}
			if conn, err = co.connectResolver(ctx, node, dial); err != nil {
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
	cm, rb, err := co.resolveOn(sctx, r, ages)
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
	// preparerLive: its name carries its preparing backend's pid and that
	// session is still connected. Neither is set when the name has no pid.
	preparerLive bool
}

func scanPreparedXact(row pgx.CollectableRow) (preparedXact, error) {
	var x preparedXact
	var age float64
	err := row.Scan(&x.gid, &age, &x.preparerGone)
	x.age = time.Duration(age * float64(time.Second))
	x.preparerLive = !x.preparerGone && gidHasPID(x.gid)
	return x, err
}

// resolveOn decides the prepared transactions pgshard left on one server.
func (co *Coordinator) resolveOn(ctx context.Context, r runner, ages recoveryAges) (committed, rolledBack int, err error) {
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
		outcome, err := co.resolvePrepared(ctx, r, x, ages)
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
//   - undecided, once ages.undecidedAge old (ages.abandoned when the
//     session that prepared it is gone, ages.live when it is still
//     connected, else ages.undecided): decided rolled back by writing the
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
func (co *Coordinator) resolvePrepared(ctx context.Context, r runner, x preparedXact, ages recoveryAges) (resolution, error) {
	var commit bool
	if id, ok := parseTxID(x.gid); ok {
		if co.twopc.isInflight(id) {
			return resolvedNothing, nil // this process is committing it
		}
		decided, cm, err := co.lookupDecision(ctx, id)
		if err != nil {
			return resolvedNothing, fmt.Errorf("deciding %s: %w", x.gid, err)
		}
		switch {
		case decided && x.age >= ages.decided:
			commit = cm
		case !decided && x.age >= ages.undecidedAge(x):
			if commit, err = co.resolveDecision(ctx, id); err != nil {
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
		if commit, err = co.decide(ctx, coordinator, gid); err != nil {
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
func (co *Coordinator) decide(ctx context.Context, coordinator, gid string) (bool, error) {
	if err := co.ensureTxLog(ctx, coordinator); err != nil {
		return false, err
	}
	exec, err := co.serverExec(coordinator)
	if err != nil {
		return false, err
	}
	if _, err := exec(ctx, `INSERT INTO pgshard.transaction_log (gid, committed) VALUES ($1, false) ON CONFLICT DO NOTHING`, gid); err != nil {
		return false, fmt.Errorf("deciding %s on %s: %w", gid, coordinator, err)
	}
	queryRow, err := co.serverQueryRow(coordinator)
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

// RunResolver finishes in-doubt prepared transactions every
// resolverInterval until ctx ends, over worker connections of its own, and
// deletes the commit records no longer needed. When it returns, every
// socket it opened is closed, including those pgx opens on its own to
// cancel a query interrupted on a stalled server.
func (co *Coordinator) RunResolver(ctx context.Context) {
	conns := map[catalog.Node]*pgx.Conn{}
	dialer := &trackingDialer{conns: map[net.Conn]struct{}{}}
	co.twopc.dial = dialer.DialContext
	defer func() {
		for _, conn := range conns {
			conn.Close(context.Background())
		}
		dialer.closeAll()
	}()
	t := time.NewTicker(resolverInterval)
	defer t.Stop()
	ages := recoveryAges{decided: decidedGrace, undecided: presumeAbortAge, abandoned: decidedGrace, live: presumeAbortAge, legacy: legacyMinAge}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*resolverInterval)
		_, _, _ = co.recover(rctx, ages, conns)
		co.forgetRecords(rctx, conns)
		co.dropFinishedFences(rctx, conns)
		cancel()
	}
}

// dropFinishedFences drops the write fences of repairs and moves that are
// over but could not drop them (their source was unreachable then), over
// the connections recover keeps (a worker without one is left for a later
// pass), bounded like a pass on one server (catalog.DropFinishedFences).
// It is one query of the metadata database when there are none.
func (co *Coordinator) dropFinishedFences(ctx context.Context, conns map[catalog.Node]*pgx.Conn) {
	fctx, cancel := context.WithTimeout(ctx, resolverServerTimeout)
	defer cancel()
	_, _ = catalog.DropFinishedFences(fctx, co.cl.Meta(), func(n catalog.Node) *pgx.Conn {
		if c := conns[n]; c != nil && !c.IsClosed() {
			return c
		}
		return nil
	})
}

// forgetRecords deletes the records of transactions committed everywhere,
// and, every recordGCInterval, records older than recordTTL that no
// prepared transaction on any server names any more (when every server
// answered).
func (co *Coordinator) forgetRecords(ctx context.Context, conns map[catalog.Node]*pgx.Conn) {
	if ids := co.twopc.takeFinished(); len(ids) > 0 {
		if _, err := co.cl.Meta().Exec(ctx, `DELETE FROM pgs_distribution_metadata.commit_record WHERE gid = ANY($1)`, ids); err != nil {
			co.twopc.mu.Lock()
			co.twopc.finished = append(co.twopc.finished, ids...)
			co.twopc.mu.Unlock()
		}
	}
	if time.Since(co.twopc.lastGC) < recordGCInterval {
		return
	}
	named := []string{} // not nil: ALL(NULL) matches nothing
	servers := []runner{co.cl.Meta()}
	for _, n := range co.cl.Nodes() {
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
	if _, err := co.cl.Meta().Exec(ctx, `DELETE FROM pgs_distribution_metadata.commit_record
		WHERE created < now() - make_interval(secs => $1) AND gid <> ALL($2)`, recordTTL.Seconds(), named); err == nil {
		co.twopc.lastGC = time.Now()
	}
}
