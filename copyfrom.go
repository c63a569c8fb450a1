package pgshard

import (
	"context"
	"database/sql"
	"strings"

	"github.com/jackc/pgx/v5"

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
		n, err = cn.s.CopyFromSource(ctx, query, src)
		return err
	})
	return n, err
}
