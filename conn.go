package pgshard

import (
	"context"
	"database/sql/driver"

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
// metadata session, settings, transaction and worker connections) and runs
// its statements: planned through the Cluster's plan cache, built into a
// tree of primitives run with the Session as the Cursor, or the Session's
// own (session/statement.go). Like every database/sql connection, a conn
// is used by one goroutine at a time.
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
	copyFrom, err := cn.s.Prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return &stmt{cn: cn, query: query, copyFrom: copyFrom}, nil
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

// ExecContext runs a statement, or a string of several, and reports the
// rows it affected (session.Session.Exec).
func (cn *conn) ExecContext(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Result, error) {
	return cn.s.Exec(ctx, query, nargs)
}

// QueryContext runs a statement, or a string of several, and returns its
// rows (session.Session.Query).
func (cn *conn) QueryContext(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Rows, error) {
	return cn.s.Query(ctx, query, nargs)
}
