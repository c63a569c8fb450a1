package pgshard

import (
	"database/sql/driver"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// result is the driver.Result of a statement: rows affected only, since
// PostgreSQL has no last insert id (use RETURNING).
type result struct {
	rows int64
}

var _ driver.Result = result{}

func (r result) LastInsertId() (int64, error) {
	return 0, sqlerr.Unsupported("LastInsertId is not supported by PostgreSQL; use INSERT ... RETURNING")
}

func (r result) RowsAffected() (int64, error) { return r.rows, nil }
