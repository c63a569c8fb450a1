package pgshard

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// CopyFrom loads the rows of src into the distributed table (its columns
// in that order) as COPY table (columns) FROM STDIN does through lib/pq's
// CopyIn convention (a prepared statement, one Exec per row), in a
// transaction of its own, all rows or none, and returns the rows copied. It
// is the pgx-shaped way in (pgx.Conn.CopyFrom's arguments): the rows reach
// the writer without database/sql's per-row Exec and its allocations
// (BenchmarkCopy measures both ways). Values are typed as for an Exec of the COPY statement;
// errors carry the row number, as the statement's do. It takes a
// connection of db for the whole load and blocks until the COPY is
// committed or rolled back; ctx cancels it. A table that is not
// distributed is refused (42P01): pgx.Conn.CopyFrom loads a plain one.
func CopyFrom(ctx context.Context, db *sql.DB, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	cols := make([]string, len(columns))
	for i, col := range columns {
		cols[i] = pgx.Identifier{col}.Sanitize()
	}
	query := "COPY " + table.Sanitize() + " (" + strings.Join(cols, ", ") + ") FROM STDIN"
	var n int64
	err = c.Raw(func(dc any) error {
		cn, ok := dc.(*conn)
		if !ok {
			return sqlerr.New(sqlerr.InternalError, "pgshard.CopyFrom: %T is not a pgshard connection", dc)
		}
		n, err = cn.copyFromSource(ctx, query, src)
		return err
	})
	return n, err
}

// copyFromSource runs query, a COPY FROM STDIN, in a transaction of its
// own on cn with the rows of src, and commits it.
func (cn *conn) copyFromSource(ctx context.Context, query string, src pgx.CopyFromSource) (n int64, err error) {
	tx, err := cn.BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			// The COPY's error is the one to report; a failed rollback
			// leaves the connection to be discarded as usual.
			_ = tx.Rollback()
		}
	}()
	p, done, err := cn.plan(ctx, query)
	if err != nil {
		return 0, err
	}
	defer done()
	if p.Copy == nil || !p.Copy.From {
		return 0, sqlerr.New(sqlerr.UndefinedTable, "pgshard.CopyFrom: %s is not a distributed table", query)
	}
	w, err := engine.CopyFrom{Plan: p}.Start(ctx, cn.s)
	if err != nil {
		return 0, cn.s.TxFailed(err)
	}
	for src.Next() {
		vals, err := src.Values()
		if err == nil {
			err = w.Values(ctx, vals)
		}
		if err != nil {
			w.Abort()
			return 0, cn.s.TxFailed(err)
		}
	}
	if err := src.Err(); err != nil {
		w.Abort()
		return 0, cn.s.TxFailed(err)
	}
	if n, err = w.Finish(ctx); err != nil {
		return 0, cn.s.TxFailed(err)
	}
	return n, tx.Commit()
}
