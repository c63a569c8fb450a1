package pgshard

import (
	"context"
	"database/sql/driver"
	"errors"
)

// stmt is a prepared statement: the SQL text and the connection it belongs
// to. Preparing parses and plans the text (once per distinct text for the
// whole Connector); the server-side prepared statements are made per worker
// connection by pgx's statement cache, on first use of each shard's SQL.
type stmt struct {
	cn    *conn
	query string
}

var (
	_ driver.Stmt             = (*stmt)(nil)
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

// Close releases nothing: plans are shared through the Connector's cache.
func (s *stmt) Close() error { return nil }

// NumInput is -1: database/sql does not check the argument count; the
// server does.
func (s *stmt) NumInput() int { return -1 }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return nil, errors.New("pgshard: Stmt.Exec is deprecated; use ExecContext")
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return nil, errors.New("pgshard: Stmt.Query is deprecated; use QueryContext")
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.cn.ExecContext(ctx, s.query, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.cn.QueryContext(ctx, s.query, args)
}
