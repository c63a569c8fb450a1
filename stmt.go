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
	// copyFrom is set for COPY ... FROM STDIN on a distributed table, whose
	// Execs take its rows (execCopy).
	copyFrom bool
}

var (
	_ driver.Stmt             = (*stmt)(nil)
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

// Close releases nothing: plans are shared through the Connector's cache.
// A COPY FROM STDIN the statement left open is ended, as lib/pq's CopyIn
// statement ends it.
func (s *stmt) Close() error {
	if c := s.cn.copying; c != nil && c.owner == s {
		_, err := s.cn.finishCopy(context.Background())
		return err
	}
	return nil
}

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
	if s.copyFrom {
		return s.execCopy(ctx, args)
	}
	return s.cn.ExecContext(ctx, s.query, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.cn.QueryContext(ctx, s.query, args)
}
