package pgshard

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
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

// Close releases nothing: plans are shared through the Cluster's cache.
// A COPY FROM STDIN the statement left open is ended, as lib/pq's CopyIn
// statement ends it.
func (s *stmt) Close() error {
	if s.cn.s.CopyOwner() == any(s) {
		_, err := s.cn.s.FinishCopy(context.Background())
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
	return s.cn.s.Exec(ctx, s.query, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.cn.s.Query(ctx, s.query, args)
}

// execCopy is Exec of a statement prepared with COPY ... FROM STDIN on a
// distributed table: Exec(values...) takes one row, Exec() ends the COPY
// and reports the rows copied (lib/pq's CopyIn convention). The COPY is
// the session's (session.Session.StartCopy) from its first row to its end.
func (s *stmt) execCopy(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	cn := s.cn
	owner := cn.s.CopyOwner()
	if owner != nil && owner != any(s) {
		return nil, cn.s.CopyBusy()
	}
	if owner == nil {
		if len(args) == 0 {
			return engine.Result{}, nil
		}
		if !cn.s.InTransaction() {
			return nil, sqlerr.New("25P01", "COPY FROM STDIN into a distributed table runs inside a transaction: prepare it with tx.Prepare")
		}
		if err := cn.s.StartCopyFrom(ctx, s, s.query); err != nil {
			return nil, err
		}
	}
	if len(args) > 0 {
		if err := cn.s.CopyRow(ctx, args); err != nil {
			return nil, err
		}
		return engine.Result{}, nil
	}
	n, err := cn.s.FinishCopy(ctx)
	return engine.Result{Rows: n}, err
}
