package session

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

// placementFailed reports whether err means the placement's node could
// not be reached or lost its connection (so another placement may be
// tried, and a missed write makes it inactive) rather than that PostgreSQL
// answered with an error. An error caused by the caller's own context is
// never a placement failure.
//
// Node failures are the network's errors and PostgreSQL's words for a
// server going away: connection exceptions (class 08), admin_shutdown
// (57P01), crash_shutdown (57P02) and cannot_connect_now (57P03: the server
// is starting up, shutting down or in recovery, so it is not taking
// writes). A server refusing for lack of resources — class 53:
// too_many_connections (53300, "sorry, too many clients already", or a
// role's or database's CONNECTION LIMIT), out_of_memory, disk_full,
// configuration_limit_exceeded — is up and has the rows: that is not a
// node failure, and a write must fail with the server's error rather than
// cost the shard a replica (placementBusy lets reads try another
// placement).
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

// placementBusy reports whether err is a server's refusal for lack of
// resources (SQLSTATE class 53, too_many_connections above all): the node
// is up, so nothing is marked, but a read may go to another placement.
func placementBusy(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "53")
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

// NoBadConn is noBadConn for the driver's own use: once a statement of a
// multi-statement string ran, none of its errors may be ErrBadConn.
func NoBadConn(err error) error { return noBadConn(err) }
