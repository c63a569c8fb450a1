package session

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
	"github.com/pgshard/pgshard/txn"
)

// transaction is a database/sql transaction over any number of servers.
// Each server joins when a statement first reaches it: the transaction keeps
// one connection per worker node (and the connection's metadata session), so
// statements on the same placement see each other's writes. A transaction
// that wrote on more than one server commits with two-phase commit: PREPARE
// TRANSACTION everywhere, a commit record in the metadata database, then
// COMMIT PREPARED (commitAtomic); the resolver finishes what a crash leaves
// in doubt.
//
// Connections: a transaction that holds no worker connection waits for
// one (or, for a statement writing on several nodes, reserves them all at
// once: acquire) like any statement. Once it holds one it never waits in a
// pool again: an interactive transaction holding node A's connection while
// asking for node B's, with others doing the reverse and both pools in use,
// would otherwise wait forever, and neither a wait order nor a reservation
// can help, since a transaction learns the nodes it needs one statement at
// a time. It takes a pooled connection when one is free, and otherwise
// opens one to the node directly, beyond the pool's size, closed when the
// transaction ends (connect). This is how Citus keeps its shared connection
// limit from deadlocking: a session's first connection to each worker may
// exceed it. The alternative, waiting a bounded time and failing with a
// retryable error, fails transactions under load that would succeed. The
// excess is bounded: a transaction's first connection is a pooled one, so
// at most pool size × workers transactions hold connections at once, each
// at most one per worker; and a server refusing more (its max_connections)
// fails the statement with its SQLSTATE 53300, never a wait.
type transaction struct {
	s        *Session
	begin    string
	readOnly bool
	// participants in the order they joined.
	participants []*participant
	meta         *participant
	savepoints   []string
	// replay are the SET CONSTRAINTS statements run so far, which a server
	// joining the transaction runs after BEGIN.
	replay []string
	// failed is set once a statement failed on a participant; like
	// PostgreSQL, the transaction then only rolls back.
	failed bool
	done   bool
	// implicit is set for the implicit transaction of a query string with
	// several statements (multistatement.go): administrative functions
	// join it.
	implicit bool
	// statement is set for the transaction of one atomic statement
	// outside a transaction (Session.atomically).
	statement bool
	// undo are run when the transaction rolls back: they drop the shard
	// tables master_create_worker_shards created in it.
	undo []func(context.Context)
	// afterCommit are run once the transaction committed (a schema
	// change's catalog reload, see Session.SchemaChanged).
	afterCommit []func(context.Context)
	// unreserve gives back the fanoutGate reservation the first
	// participants were taken under (acquire), when there is one; finish
	// calls it.
	unreserve func()
}

// participant is one server's connection in a transaction.
type participant struct {
	node catalog.Node // zero for the metadata session
	conn *stdlib.Conn
	// release returns a worker connection to its pool (or closes one
	// opened beyond it).
	release func()
	wrote   bool
	// placements lists the placements written through this connection:
	// those marked inactive when its COMMIT PREPARED fails after the
	// decision (commitAtomic).
	placements []catalog.Placement
	// gen is the session state generation whose settings the connection
	// has (sessionState.gen); resets is set once release resets them.
	gen    uint64
	resets bool
}

// participant is a txn.Participant for the commit (commitAtomic).
var _ txn.Participant = (*participant)(nil)

func (p *participant) Node() catalog.Node              { return p.node }
func (p *participant) Conn() *pgx.Conn                 { return p.conn.Conn() }
func (p *participant) Placements() []catalog.Placement { return p.placements }

// wrotePlacement records that a statement wrote pl through the
// transaction's participant on pl's node.
func (t *transaction) wrotePlacement(pl catalog.Placement) {
	for _, p := range t.participants {
		if p.node == pl.Node {
			for _, q := range p.placements {
				if q.ID == pl.ID {
					return
				}
			}
			p.placements = append(p.placements, pl)
			return
		}
	}
}

var _ driver.Tx = (*transaction)(nil)

// beginStatement is the BEGIN sent to each server for these options.
func beginStatement(opts driver.TxOptions) (string, error) {
	s := "BEGIN"
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted:
		s += " ISOLATION LEVEL READ UNCOMMITTED"
	case sql.LevelReadCommitted:
		s += " ISOLATION LEVEL READ COMMITTED"
	case sql.LevelRepeatableRead, sql.LevelSnapshot:
		s += " ISOLATION LEVEL REPEATABLE READ"
	case sql.LevelSerializable:
		s += " ISOLATION LEVEL SERIALIZABLE"
	default:
		return "", sqlerr.Unsupported("isolation level %v is not supported", sql.IsolationLevel(opts.Isolation))
	}
	if opts.ReadOnly {
		s += " READ ONLY"
	}
	return s, nil
}

// readsOutside reports whether a pure read (planner.Plan.PureRead) of a
// node the transaction has not joined may run outside it: the
// transaction's isolation is READ COMMITTED (or READ UNCOMMITTED, which
// PostgreSQL runs as READ COMMITTED), set explicitly, so that every
// statement reads the rows committed when it starts. A transaction begun
// with the session's default isolation does not: the default may be
// REPEATABLE READ or SERIALIZABLE, whose snapshot or predicate locks a read
// outside would escape.
func (t *transaction) readsOutside() bool {
	return strings.Contains(t.begin, "READ COMMITTED") || strings.Contains(t.begin, "READ UNCOMMITTED")
}

// has reports whether node already takes part in the transaction.
func (t *transaction) has(node catalog.Node) bool {
	for _, p := range t.participants {
		if p.node == node {
			return true
		}
	}
	return false
}

func (t *transaction) usable() error {
	if t.done {
		return sqlerr.New(sqlerr.InvalidTxState, "the transaction has already been committed or rolled back")
	}
	if t.failed {
		return sqlerr.New("25P02", "current transaction is aborted, commands ignored until end of transaction block")
	}
	return nil
}

// join sends BEGIN (and the savepoints made so far, so that ROLLBACK TO
// undoes this server's work too) on a new participant's connection.
func (t *transaction) join(ctx context.Context, p *participant) error {
	pc := p.conn.Conn()
	if err := t.s.c.freshStatements(ctx, pc); err != nil {
		return err
	}
	if _, err := pc.Exec(ctx, catalog.FencedBegin(t.begin, t.s.writeVersion)); err != nil {
		return err
	}
	for _, q := range t.replay {
		if _, err := pc.Exec(ctx, q); err != nil {
			return err
		}
	}
	for _, sp := range t.savepoints {
		if _, err := pc.Exec(ctx, "SAVEPOINT "+pgx.Identifier{sp}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

// participant returns the transaction's connection to node, joining the
// node on first use.
func (t *transaction) participant(ctx context.Context, node catalog.Node, write bool) (*stdlib.Conn, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	for _, p := range t.participants {
		if p.node == node {
			if err := t.s.syncParticipant(ctx, p); err != nil {
				t.failed = true
				return nil, err
			}
			p.wrote = p.wrote || write
			return p.conn, nil
		}
	}
	np, err := t.s.c.node(node)
	if err != nil {
		return nil, err
	}
	dc, release, err := t.connect(ctx, np)
	if err != nil {
		return nil, err
	}
	p, err := t.add(ctx, node, dc, release)
	if err != nil {
		return nil, err
	}
	p.wrote = write
	return p.conn, nil
}

// connect takes a connection to np's node for the transaction: waiting
// for a pooled one while the transaction holds no worker connection, else
// a pooled one that is free at once or one opened beyond the pool (see
// transaction). release gives it back.
func (t *transaction) connect(ctx context.Context, np *nodePool) (dc *stdlib.Conn, release func(), err error) {
	if len(t.participants) == 0 {
		dc, err = np.get(ctx)
	} else {
		dc, err = np.tryGet(ctx)
		if err == nil && dc == nil {
			if dc, err = np.open(ctx); err != nil {
				return nil, nil, err
			}
			return dc, func() { dc.Close() }, nil
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return dc, func() { np.put(dc) }, nil
}

// add joins a new participant on node with connection dc, carrying the
// session's settings (sessionConn); when that or joining fails, it releases
// dc.
func (t *transaction) add(ctx context.Context, node catalog.Node, dc *stdlib.Conn, release func()) (*participant, error) {
	release, err := t.s.sessionConn(ctx, dc, release)
	if err != nil {
		return nil, err
	}
	p := &participant{node: node, conn: dc, release: release, gen: t.s.sess.gen, resets: t.s.sess.applySQL != ""}
	if err := t.join(ctx, p); err != nil {
		p.release()
		return nil, err
	}
	t.participants = append(t.participants, p)
	return p, nil
}

// acquire joins the transaction on each of nodes it has not joined yet,
// before a statement that writes on all of them runs. A transaction that
// holds no worker connection reserves those it needs all at once
// (fanoutGate) and keeps the reservation until it ends, so that no two
// statements each hold a connection the other waits for; one that holds
// some takes each as participant does, never waiting in a pool.
func (t *transaction) acquire(ctx context.Context, nodes []catalog.Node) error {
	if err := t.usable(); err != nil {
		return err
	}
	need := map[catalog.Node]int{}
	var missing []catalog.Node
	for _, n := range nodes {
		if _, dup := need[n]; !dup && !t.has(n) {
			need[n] = 1
			missing = append(missing, n)
		}
	}
	if len(t.participants) > 0 || t.unreserve != nil || len(missing) < 2 {
		for _, n := range missing {
			if _, err := t.participant(ctx, n, false); err != nil {
				return err
			}
		}
		return nil
	}
	unreserve, err := t.s.c.fanout.reserve(ctx, need)
	if err != nil {
		return err
	}
	t.unreserve = unreserve
	for _, n := range missing {
		np, err := t.s.c.node(n)
		if err != nil {
			return err
		}
		// Under the reservation: a wait here ends when statements holding
		// no reservation on n end.
		dc, err := np.get(ctx)
		if err != nil {
			return err
		}
		if _, err := t.add(ctx, n, dc, func() { np.put(dc) }); err != nil {
			return err
		}
	}
	return nil
}

// metaBeginner returns the transaction's metadata session as a
// catalog.Beginner whose Begin makes a savepoint: pgx's Begin on a
// connection already in a transaction sends a BEGIN that PostgreSQL only
// warns about, and the pgx.Tx it returns nests by savepoints; it is never
// committed or rolled back itself (the transaction does that).
func (t *transaction) metaBeginner(ctx context.Context) (catalog.Beginner, error) {
	ms, err := t.metaParticipant(ctx)
	if err != nil {
		return nil, err
	}
	outer, err := ms.Conn().Begin(ctx)
	if err != nil {
		t.failed = true
		return nil, err
	}
	return outer, nil
}

// metaParticipant returns the connection's metadata session joined to the
// transaction.
func (t *transaction) metaParticipant(ctx context.Context) (*stdlib.Conn, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	if t.meta != nil {
		return t.meta.conn, nil
	}
	ms, err := t.s.metaSession(ctx)
	if err != nil {
		return nil, err
	}
	p := &participant{conn: ms, wrote: true}
	if err := t.join(ctx, p); err != nil {
		return nil, err
	}
	t.meta = p
	return ms, nil
}

// all returns every participant, the metadata session last.
func (t *transaction) all() []*participant {
	out := append([]*participant(nil), t.participants...)
	if t.meta != nil {
		out = append(out, t.meta)
	}
	return out
}

// Commit commits on every participant: directly when at most one wrote,
// with two-phase commit otherwise.
func (t *transaction) Commit() error {
	ctx := context.Background()
	if t.done {
		return sqlerr.New(sqlerr.InvalidTxState, "the transaction has already been committed or rolled back")
	}
	if t.failed {
		t.rollback(ctx)
		return pgx.ErrTxCommitRollback
	}
	if t.s.copying != nil {
		t.rollback(ctx)
		return sqlerr.New(sqlerr.InvalidTxState, "COPY FROM STDIN was not ended (stmt.Exec() with no arguments) before Commit: the transaction is rolled back")
	}
	defer t.finish()
	var writers, readers []*participant
	for _, p := range t.all() {
		if p.wrote && !t.readOnly {
			writers = append(writers, p)
		} else {
			readers = append(readers, p)
		}
	}
	if len(writers) == 0 || strings.Contains(t.begin, "SERIALIZABLE") {
		// A serializable participant may fail its COMMIT (40001) even
		// when it only read: the readers commit first, and the writes
		// only once every one of them has.
		for _, p := range readers {
			if _, err := p.conn.Conn().Exec(ctx, "COMMIT"); err != nil {
				t.abort(ctx, append(writers, readers...))
				return fmt.Errorf("pgshard: commit: %w", err)
			}
		}
		return t.commitWriters(ctx, writers)
	}
	// Otherwise the writes commit first: the readers' locks (SELECT ...
	// FOR UPDATE) are held until the writes are visible, and the writers'
	// row locks are not held over the readers' round trips. A reader only
	// read, so once the writes are committed so is the transaction: a
	// reader's failing COMMIT changes nothing (its connection is dropped
	// when it is broken, on release).
	if err := t.commitWriters(ctx, writers); err != nil {
		t.abort(ctx, readers)
		return err
	}
	for _, p := range readers {
		_, _ = p.conn.Conn().Exec(ctx, "COMMIT")
	}
	return nil
}

// commitWriters commits the participants that wrote: with a plain COMMIT
// when there is one, with two-phase commit when there are several.
func (t *transaction) commitWriters(ctx context.Context, writers []*participant) error {
	// The hooks of schema changes made in the transaction (afterCommit) run
	// once the writes are committed.
	var err error
	switch len(writers) {
	case 0:
	case 1:
		if _, err = writers[0].conn.Conn().Exec(ctx, "COMMIT"); err != nil {
			err = fmt.Errorf("pgshard: commit: %w", err)
		}
	default:
		err = t.s.c.commitAtomic(ctx, writers)
	}
	if err == nil {
		for _, f := range t.afterCommit {
			f(ctx)
		}
	}
	return err
}

func (t *transaction) abort(ctx context.Context, ps []*participant) {
	for _, p := range ps {
		if p.conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = p.conn.Conn().Exec(ctx, "ROLLBACK")
		}
	}
}

// Rollback rolls back on every participant.
func (t *transaction) Rollback() error {
	if t.done {
		return sqlerr.New(sqlerr.InvalidTxState, "the transaction has already been committed or rolled back")
	}
	return t.rollback(context.Background())
}

func (t *transaction) rollback(ctx context.Context) error {
	t.s.abortCopy()
	defer t.finish()
	defer func() {
		for _, undo := range t.undo {
			undo(context.WithoutCancel(ctx))
		}
	}()
	var first error
	for _, p := range t.all() {
		if p.conn.Conn().IsClosed() {
			continue
		}
		if _, err := p.conn.Conn().Exec(ctx, "ROLLBACK"); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// finish returns the worker connections to their pools and ends the
// transaction on the Session.
func (t *transaction) finish() {
	for _, p := range t.participants {
		p.release()
	}
	t.participants = nil
	if t.unreserve != nil {
		t.unreserve()
		t.unreserve = nil
	}
	t.meta = nil
	t.done = true
	if t.s.tx == t {
		t.s.tx = nil
		t.s.endTxSession(true)
	}
}

// TxCommand handles transaction control statements sent as SQL text.
func (s *Session) TxCommand(ctx context.Context, p *planner.Plan, query string, nargs []driver.NamedValue) (driver.Result, error) {
	cmd := p.Tx
	t := s.tx
	switch cmd.Kind {
	case "SAVEPOINT", "RELEASE", "ROLLBACK TO":
		if t == nil {
			return nil, sqlerr.New("25P01", "%s can only be used in transaction blocks", cmd.Kind)
		}
		if cmd.Kind != "ROLLBACK TO" {
			if err := t.usable(); err != nil {
				return nil, err
			}
		} else if t.done {
			return nil, t.usable()
		}
		for _, part := range t.all() {
			if _, err := part.conn.Conn().Exec(ctx, query); err != nil {
				t.failed = true
				return nil, err
			}
		}
		switch cmd.Kind {
		case "SAVEPOINT":
			t.savepoints = append(t.savepoints, cmd.Savepoint)
		case "RELEASE", "ROLLBACK TO":
			for i := len(t.savepoints) - 1; i >= 0; i-- {
				if t.savepoints[i] == cmd.Savepoint {
					if cmd.Kind == "RELEASE" {
						t.savepoints = t.savepoints[:i]
					} else {
						t.savepoints = t.savepoints[:i+1]
					}
					break
				}
			}
			if cmd.Kind == "ROLLBACK TO" {
				t.failed = false
				s.endTxSession(false)
			}
		}
		return engine.Result{}, nil
	}
	if t == nil && cmd.Kind != "PREPARE" {
		return nil, sqlerr.Unsupported("%s as SQL text is not supported by pgshard; use database/sql's BeginTx, Commit and Rollback", cmd.Kind)
	}
	return nil, sqlerr.Unsupported("%s as SQL text is not supported by pgshard inside a transaction; use the Tx's Commit and Rollback", cmd.Kind)
}

// Begin starts a transaction with opts. Nothing is sent yet: each server
// joins the transaction (BEGIN with these options) when a statement first
// reaches it.
func (s *Session) Begin(opts driver.TxOptions) (driver.Tx, error) {
	if s.tx != nil {
		return nil, sqlerr.New(sqlerr.InvalidTxState, "there is already a transaction in progress")
	}
	begin, err := beginStatement(opts)
	if err != nil {
		return nil, err
	}
	s.tx = &transaction{s: s, begin: begin, readOnly: opts.ReadOnly}
	return s.tx, nil
}

// BeginImplicit starts the implicit transaction of a query string with
// several statements: administrative functions join it (RunAdmin).
func (s *Session) BeginImplicit() {
	s.tx = &transaction{s: s, begin: "BEGIN", implicit: true}
}

// EndTx commits (commit) or rolls back the open transaction, if any.
func (s *Session) EndTx(ctx context.Context, commit bool) error {
	t := s.tx
	if t == nil {
		return nil
	}
	if commit {
		return t.Commit()
	}
	return t.rollback(ctx)
}

// FailTx marks the open transaction, if any, failed: like PostgreSQL's, it
// then only rolls back.
func (s *Session) FailTx() {
	if s.tx != nil {
		s.tx.failed = true
	}
}

// TxFailed fails the open transaction, if any, when err is not nil, and
// returns err.
func (s *Session) TxFailed(err error) error { return s.txFailed(err) }
