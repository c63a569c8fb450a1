// Package sqlerr makes pgshard's own errors look like PostgreSQL's: every error
// pgshard raises itself is a *pgconn.PgError with a SQLSTATE, so callers handle
// pgshard's refusals and the servers' errors the same way.
package sqlerr

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes pgshard raises itself.
const (
	FeatureNotSupported   = "0A000" // a construct pgshard cannot run correctly (yet)
	InvalidParameterValue = "22023" // bad argument to an admin function (pg_shard's code)
	NotNullViolation      = "23502" // NULL shard key
	UndefinedTable        = "42P01"
	UndefinedColumn       = "42703"
	UndefinedFunction     = "42883"
	DuplicateObject       = "42710"
	ObjectNotInPrereq     = "55000" // object_not_in_prerequisite_state
	InvalidTextRepr       = "22P02"
	NumericOutOfRange     = "22003"
	// InvalidRowCountInLimit and InvalidRowCountInResultOffset are a
	// negative LIMIT and OFFSET.
	InvalidRowCountInLimit        = "2201W"
	InvalidRowCountInResultOffset = "2201X"
	DatetimeFormat                = "22007"
	DatatypeMismatch              = "42804"
	SyntaxError                   = "42601"
	ConnectionFailure             = "08006"
	InternalError                 = "XX000"
	WrongObjectType               = "42809"
	UndefinedObject               = "42704"
	ProtocolViolation             = "08P01"
	TooManyConnections            = "53300"
	InvalidTxState                = "25000"
	InvalidColumnReference        = "42P10"
)

// New returns a *pgconn.PgError with the given SQLSTATE and message.
func New(code, format string, args ...any) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns a copy of err with Detail set.
func WithDetail(err *pgconn.PgError, format string, args ...any) *pgconn.PgError {
	e := *err
	e.Detail = fmt.Sprintf(format, args...)
	return &e
}

// Unsupported is the 0A000 error for a construct pgshard refuses rather than
// answer wrongly.
func Unsupported(format string, args ...any) *pgconn.PgError {
	return New(FeatureNotSupported, format, args...)
}

// Code returns the SQLSTATE of err, or "" when err carries none.
func Code(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// As returns err as a *pgconn.PgError: itself when it is one, else an
// internal error carrying its message.
func As(err error) *pgconn.PgError {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr
	}
	return New(InternalError, "%s", err.Error())
}
