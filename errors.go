package pgshard

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// placementFailed reports whether err means the placement could not be
// reached or lost its connection (so another placement may be tried, and a
// missed write makes it inactive) rather than that PostgreSQL rejected the
// statement. An error caused by the caller's own context is never a
// placement failure.
func placementFailed(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) >= 2 && pgErr.Code[:2] == "08": // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutdown, crash, cannot connect now
			return true
		case pgErr.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &netErr), errors.As(err, &connectErr):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed):
		return true
	case strings.Contains(err.Error(), "conn closed"):
		return true
	}
	// Anything else happened in this process (an argument pgx cannot
	// encode, say): the placement is fine, the statement is not.
	return false
}

// noBadConn keeps driver.ErrBadConn from reaching database/sql once a
// statement may have reached a shard: database/sql would retry it on another
// connection and could apply a write twice. It is the one place that decides.
func noBadConn(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, driver.ErrBadConn) {
		return sqlerr.New(sqlerr.ConnectionFailure, "pgshard: connection to a worker failed")
	}
	return err
}
