package pgshard

import (
	"database/sql/driver"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// The driver's own errors. The node layer's (a placement that failed, a
// worker connection lost, ErrBadConn kept from database/sql once a shard
// may have received the statement) are package session's (errors.go), and
// so are those of multi-statement strings (session/multistatement.go).

// checkOrdinals refuses named arguments: PostgreSQL has only $n.
func checkOrdinals(nargs []driver.NamedValue) error {
	for _, a := range nargs {
		if a.Name != "" {
			return sqlerr.Unsupported("named arguments are not supported (sql.Named(%q, ...)); use $n parameters", a.Name)
		}
	}
	return nil
}
