package pgshard

import (
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// The driver's own errors. The node layer's (a placement that failed, a
// worker connection lost, ErrBadConn kept from database/sql once a shard
// may have received the statement) are package session's (errors.go).

// checkOrdinals refuses named arguments: PostgreSQL has only $n.
func checkOrdinals(nargs []driver.NamedValue) error {
	for _, a := range nargs {
		if a.Name != "" {
			return sqlerr.Unsupported("named arguments are not supported (sql.Named(%q, ...)); use $n parameters", a.Name)
		}
	}
	return nil
}

// multiPrepareError is PostgreSQL's answer to preparing several statements.
func multiPrepareError() error {
	return sqlerr.New(sqlerr.SyntaxError, "cannot insert multiple commands into a prepared statement")
}

// statementError says which statement of n failed: a PostgreSQL error
// keeps its SQLSTATE and fields, its message prefixed; other errors are
// wrapped.
func statementError(i, n int, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		e := *pgErr
		e.Message = fmt.Sprintf("statement %d of %d: %s", i+1, n, pgErr.Message)
		return &e
	}
	return fmt.Errorf("pgshard: statement %d of %d: %w", i+1, n, err)
}
