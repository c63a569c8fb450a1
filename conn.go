package pgshard

import (
	"context"
	"database/sql/driver"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
	"github.com/pgshard/pgshard/session"
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

// conn is one database/sql connection: the glue between database/sql and
// the Session (package session) that holds the connection's node side (its
// metadata session, settings, transaction and worker connections). It
// plans each statement (the plan cache, plancache.go), builds its tree of
// primitives (engine.Build) and runs it with the Session as the Cursor;
// statements that touch no distributed table, transaction control, and
// query strings of several statements (session.Session.ExecStatements,
// which runs each statement back through the conn) are the Session's own.
// Like every database/sql connection, a conn is used by one goroutine at a
// time.
type conn struct {
	c *Connector
	s *session.Session
}

func (cn *conn) Prepare(query string) (driver.Stmt, error) {
	return cn.PrepareContext(context.Background(), query)
}

// PrepareContext plans the statement (refusing what pgshard cannot run);
// it does not contact any server.
func (cn *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := cn.s.Sync(ctx); err != nil {
		return nil, err
	}
	p, err := cn.planFor(ctx, query)
	if err != nil {
		return nil, err
	}
	if p.Statements != nil {
		return nil, session.MultiPrepareError()
	}
	return &stmt{cn: cn, query: query, copyFrom: p.Copy != nil && p.Copy.From}, nil
}

// Close rolls back the open transaction, if any, and closes the session.
func (cn *conn) Close() error { return cn.s.Close() }

func (cn *conn) Begin() (driver.Tx, error) {
	return cn.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx starts a transaction. Nothing is sent yet: each server joins the
// transaction (BEGIN with these options) when a statement first reaches it.
// BeginTx starts a transaction (session.Session.Begin). Nothing is sent
// yet: each server joins the transaction when a statement first reaches it.
func (cn *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	t, err := cn.s.Begin(opts)
	if err != nil {
		return nil, err
	}
	return &tx{t: t}, nil
}

// CheckNamedValue passes every argument through: pgx encodes Go values
// itself (driver.Valuer and sql.Scanner included), as with the "pgx" driver.
func (cn *conn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (cn *conn) Ping(ctx context.Context) error {
	if cn.s.Bad() {
		return driver.ErrBadConn
	}
	return cn.c.cl.Ping(ctx)
}

// ResetSession runs before database/sql reuses the connection.
func (cn *conn) ResetSession(ctx context.Context) error {
	if cn.s.Bad() {
		return driver.ErrBadConn
	}
	return cn.s.ResetSession(ctx)
}

func (cn *conn) IsValid() bool { return !cn.s.Bad() }

// plan returns the statement's plan; for a write to distributed tables it
// also starts the write (see session.Cluster.BeginWrite) and returns the func
// that ends it, which the caller defers.
func (cn *conn) plan(ctx context.Context, query string) (*planner.Plan, func(), error) {
	if err := cn.s.CopyBusy(); err != nil {
		return nil, nil, err
	}
	if err := cn.s.Sync(ctx); err != nil {
		return nil, nil, err
	}
	p, err := cn.planFor(ctx, query)
	if err != nil || !p.Modifies || (p.Kind != planner.Router && p.Kind != planner.Scatter) {
		return p, func() {}, err
	}
	snap, done, err := cn.c.cl.BeginWrite(ctx)
	if err != nil {
		return nil, nil, err
	}
	cn.s.Writing(snap)
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
		return cn.s.ExecStatements(ctx, cn, p.Statements, nargs)
	}
	if p.Tx != nil {
		return cn.s.TxCommand(ctx, p, query, nargs)
	}
	prim := engine.Build(p)
	if prim != nil {
		return prim.Exec(ctx, cn.s, nargs)
	}
	if p.Session != nil {
		defer cn.s.NoteSessionEffect(p)
		if p.Session.SetTransaction {
			return cn.s.SetTransaction(ctx, p.Session, query, nargs)
		}
	}
	res, err := cn.s.PassthroughExec(ctx, query, nargs)
	if cn.s.StaleTemplateWrite(ctx, p, err) {
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
		return cn.s.QueryStatements(ctx, cn, p.Statements, nargs)
	}
	if p.Tx != nil {
		if _, err := cn.s.TxCommand(ctx, p, query, nargs); err != nil {
			return nil, err
		}
		return &engine.Buffered{}, nil
	}
	prim := engine.Build(p)
	if prim != nil {
		return prim.Query(ctx, cn.s, nargs)
	}
	if p.Session != nil {
		// Read whole: the session's state is read again before the next
		// statement, on the same connection.
		defer cn.s.NoteSessionEffect(p)
		if p.Session.SetTransaction {
			_, err := cn.s.SetTransaction(ctx, p.Session, query, nargs)
			return &engine.Buffered{}, err
		}
		rows, err := cn.s.PassthroughQuery(ctx, query, nargs)
		if err != nil {
			return nil, err
		}
		return engine.ReadAll(rows)
	}
	rows, err := cn.s.PassthroughQuery(ctx, query, nargs)
	if cn.s.StaleTemplateWrite(ctx, p, err) {
		return cn.QueryContext(ctx, query, nargs)
	}
	return rows, err
}

// planFor returns the plan of query for this connection: from the shared
// plan cache when the session resolves names as the pool does, else from
// the session's own (session.Session.Plan).
func (cn *conn) planFor(ctx context.Context, query string) (*planner.Plan, error) {
	if !cn.s.OwnNames() {
		return cn.c.planFor(ctx, query)
	}
	return cn.s.Plan(ctx, query, cn.c.cl.Snapshot())
}

// planWith is planFor against snap.
func (cn *conn) planWith(ctx context.Context, query string, snap *catalog.Snapshot) (*planner.Plan, error) {
	if !cn.s.OwnNames() {
		return cn.c.planWith(ctx, query, snap)
	}
	return cn.s.Plan(ctx, query, snap)
}
