package pgshard

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// The database/sql/driver interfaces conn implements. Not implemented:
// driver.Execer and driver.Queryer (the context versions replace them).
var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

// conn is one database/sql connection. It owns, lazily, a session on the
// metadata database (for ordinary tables, SET, temporary tables: everything
// that is not distributed) and, during a transaction, one connection per
// worker node it touched. Statements on distributed tables outside a
// transaction borrow worker connections from the Connector's pools for the
// duration of the statement. Like every database/sql connection, a conn is
// used by one goroutine at a time.
type conn struct {
	c       *Connector
	session *stdlib.Conn
	tx      *transaction
	bad     bool
	// sess is what the session changed (settings, names); see session.go.
	sess sessionState
	// copying is the COPY FROM STDIN open in the transaction, if any
	// (copycursor.go).
	copying *copyIn
	// writeVersion is the version the BEGINs on workers carry for the last
	// write planned here (catalog.Snapshot.FenceVersion, FencedBegin).
	writeVersion int64
}

// metaSession returns this connection's session on the metadata database,
// opening it on first use.
func (cn *conn) metaSession(ctx context.Context) (*stdlib.Conn, error) {
	if cn.session != nil {
		return cn.session, nil
	}
	dc, err := stdlib.GetConnector(cn.c.metaSessionConfig()).Connect(ctx)
	if err != nil {
		return nil, err
	}
	session := dc.(*stdlib.Conn)
	engine.AcceptBinaryArrays(session.Conn().TypeMap())
	if !cn.c.live.add(session.Conn().PgConn()) {
		session.Close()
		return nil, errors.New("pgshard: connector is closed")
	}
	cn.session = session
	return cn.session, nil
}

func (cn *conn) Prepare(query string) (driver.Stmt, error) {
	return cn.PrepareContext(context.Background(), query)
}

// PrepareContext plans the statement (refusing what pgshard cannot run);
// it does not contact any server.
func (cn *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := cn.syncSession(ctx); err != nil {
		return nil, err
	}
	p, err := cn.planFor(ctx, query)
	if err != nil {
		return nil, err
	}
	if p.Statements != nil {
		return nil, multiPrepareError()
	}
	return &stmt{cn: cn, query: query, copyFrom: p.Copy != nil && p.Copy.From}, nil
}

func (cn *conn) Close() error {
	var err error
	if cn.tx != nil {
		err = cn.tx.rollback(context.Background())
	}
	if cn.session != nil {
		cn.c.live.remove(cn.session.Conn().PgConn())
		if cerr := cn.session.Close(); err == nil {
			err = cerr
		}
		cn.session = nil
	}
	return err
}

func (cn *conn) Begin() (driver.Tx, error) {
	return cn.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx starts a transaction. Nothing is sent yet: each server joins the
// transaction (BEGIN with these options) when a statement first reaches it.
func (cn *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if cn.tx != nil {
		return nil, sqlerr.New(sqlerr.InvalidTxState, "there is already a transaction in progress")
	}
	begin, err := beginStatement(opts)
	if err != nil {
		return nil, err
	}
	cn.tx = &transaction{cn: cn, begin: begin, readOnly: opts.ReadOnly}
	return cn.tx, nil
}

// CheckNamedValue passes every argument through: pgx encodes Go values
// itself (driver.Valuer and sql.Scanner included), as with the "pgx" driver.
func (cn *conn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (cn *conn) Ping(ctx context.Context) error {
	if cn.bad {
		return driver.ErrBadConn
	}
	return cn.c.meta.Ping(ctx)
}

// ResetSession runs before database/sql reuses the connection.
func (cn *conn) ResetSession(ctx context.Context) error {
	if cn.bad {
		return driver.ErrBadConn
	}
	if cn.session != nil {
		return cn.session.ResetSession(ctx)
	}
	return nil
}

func (cn *conn) IsValid() bool { return !cn.bad }

// plan returns the statement's plan; for a write to distributed tables it
// also starts the write (see Connector.beginWrite) and returns the func
// that ends it, which the caller defers.
func (cn *conn) plan(ctx context.Context, query string) (*planner.Plan, func(), error) {
	if err := cn.copyBusy(); err != nil {
		return nil, nil, err
	}
	if err := cn.syncSession(ctx); err != nil {
		return nil, nil, err
	}
	p, err := cn.planFor(ctx, query)
	if err != nil || !p.Modifies || (p.Kind != planner.Router && p.Kind != planner.Scatter) {
		return p, func() {}, err
	}
	snap, done, err := cn.c.beginWrite(ctx)
	if err != nil {
		return nil, nil, err
	}
	cn.writeVersion = snap.FenceVersion()
	if p.Version != snap.Version {
		if p, err = cn.planWith(ctx, query, snap); err != nil {
			done()
			return nil, nil, err
		}
	}
	return p, done, nil
}

// ExecContext runs a statement and reports the rows it affected.
func (cn *conn) ExecContext(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Result, error) {
	p, done, err := cn.plan(ctx, query)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := checkOrdinals(nargs); err != nil {
		return nil, err
	}
	if p.Statements != nil {
		return cn.execStatements(ctx, p, nargs)
	}
	if p.Tx != nil {
		return cn.txCommand(ctx, p, query, nargs)
	}
	prim := engine.Build(p)
	if prim != nil {
		return prim.Exec(ctx, cn, nargs)
	}
	if p.Session != nil {
		defer cn.noteSessionEffect(p)
		if p.Session.SetTransaction {
			return cn.setTransaction(ctx, p.Session, query, nargs)
		}
	}
	res, err := cn.passthroughExec(ctx, query, nargs)
	if cn.staleTemplateWrite(ctx, p, err) {
		return cn.ExecContext(ctx, query, nargs)
	}
	return res, err
}

// QueryContext runs a statement and returns its rows. A write's rows
// (RETURNING) are read whole before it returns.
func (cn *conn) QueryContext(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Rows, error) {
	p, done, err := cn.plan(ctx, query)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := checkOrdinals(nargs); err != nil {
		return nil, err
	}
	if p.Statements != nil {
		return cn.queryStatements(ctx, p, nargs)
	}
	if p.Tx != nil {
		if _, err := cn.txCommand(ctx, p, query, nargs); err != nil {
			return nil, err
		}
		return &engine.Buffered{}, nil
	}
	prim := engine.Build(p)
	if prim != nil {
		return prim.Query(ctx, cn, nargs)
	}
	if p.Session != nil {
		// Read whole: the session's state is read again before the next
		// statement, on the same connection.
		defer cn.noteSessionEffect(p)
		if p.Session.SetTransaction {
			_, err := cn.setTransaction(ctx, p.Session, query, nargs)
			return &engine.Buffered{}, err
		}
		rows, err := cn.passthroughQuery(ctx, query, nargs)
		if err != nil {
			return nil, err
		}
		return engine.ReadAll(rows)
	}
	rows, err := cn.passthroughQuery(ctx, query, nargs)
	if cn.staleTemplateWrite(ctx, p, err) {
		return cn.QueryContext(ctx, query, nargs)
	}
	return rows, err
}

// checkOrdinals refuses named arguments: PostgreSQL has only $n.
func checkOrdinals(nargs []driver.NamedValue) error {
	for _, a := range nargs {
		if a.Name != "" {
			return sqlerr.Unsupported("named arguments are not supported (sql.Named(%q, ...)); use $n parameters", a.Name)
		}
	}
	return nil
}

// passthroughExec runs a statement that touches no distributed table on
// the metadata database, in this connection's session.
func (cn *conn) passthroughExec(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Result, error) {
	s, err := cn.passthroughSession(ctx)
	if err != nil {
		return nil, err
	}
	res, err := s.ExecContext(ctx, query, nargs)
	if errors.Is(err, driver.ErrBadConn) && cn.tx == nil {
		cn.dropSession()
	}
	return res, cn.sessionErr(err)
}

func (cn *conn) passthroughQuery(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Rows, error) {
	s, err := cn.passthroughSession(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.QueryContext(ctx, query, nargs)
	if errors.Is(err, driver.ErrBadConn) && cn.tx == nil {
		cn.dropSession()
	}
	return rows, cn.sessionErr(err)
}

// passthroughSession is the metadata session, joined to the transaction
// when one is open.
func (cn *conn) passthroughSession(ctx context.Context) (*stdlib.Conn, error) {
	if cn.tx != nil {
		return cn.tx.metaParticipant(ctx)
	}
	return cn.metaSession(ctx)
}

func (cn *conn) dropSession() {
	if cn.session != nil {
		cn.c.live.remove(cn.session.Conn().PgConn())
		cn.session.Close()
		cn.session = nil
		if cn.sess.stale || cn.sess.applySQL != "" || cn.sess.path != nil {
			// The session's settings and temporary tables are gone with
			// it: the conn must not go on without them.
			cn.bad = true
		}
	}
}

// sessionErr passes errors of the metadata session through. ErrBadConn
// (the statement was not sent) stays ErrBadConn outside a transaction, so
// database/sql retries on a fresh connection exactly as with pgx; inside a
// transaction the connection is marked bad instead.
func (cn *conn) sessionErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, driver.ErrBadConn) && cn.tx != nil {
		cn.bad = true
		return noBadConn(err)
	}
	if cn.tx != nil {
		// As in PostgreSQL, an error ends the transaction's use: the
		// metadata session's part of it is aborted.
		cn.tx.failed = true
	}
	return err
}

// namedArgs turns driver arguments into the ordinal values pgx takes.
func plainArgs(nargs []driver.NamedValue) []any {
	args := make([]any, len(nargs))
	for i, a := range nargs {
		args[i] = a.Value
	}
	return args
}

// staleTemplateWrite reports whether a statement that ran on the metadata
// database failed on a distributed table's template guard because this
// process's catalog did not know the table was distributed yet (another
// process distributed it a moment ago), and the catalog now does: the
// statement changed nothing and can be planned again. p is the plan it
// ran by, made against an older catalog version when that is so. Inside a transaction
// the error has aborted it, so it is returned as it is.
func (cn *conn) staleTemplateWrite(ctx context.Context, p *planner.Plan, err error) bool {
	if cn.tx != nil || !catalog.IsTemplateWriteError(err) {
		return false
	}
	fresh, rerr := cn.c.cache.Refresh(ctx, false)
	return rerr == nil && fresh.Version != p.Version
}
