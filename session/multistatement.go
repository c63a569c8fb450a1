package session

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// A query string with several statements (planner.Plan.Statements) runs as
// PostgreSQL runs a simple Query message that holds them
// (Session.ExecStatements, Session.QueryStatements):
//
//   - the statements run in order, each planned and routed by itself, in
//     one implicit transaction (a pgshard transaction, so writes on several
//     workers commit with two-phase commit): the first error stops the
//     string and rolls back everything since the block began. The implicit
//     block is the Session's transaction from the first statement until
//     the end of the string or the first COMMIT or ROLLBACK in it; it never
//     outlives the call;
//   - COMMIT or ROLLBACK in the string ends the block (committing or
//     rolling back what ran so far) and the statements after it start a new
//     implicit block; BEGIN turns the block into an explicit one, taking in
//     the statements before it, which must end with COMMIT or ROLLBACK later
//     in the same string (a transaction left open across strings is refused
//     before anything runs, 0A000);
//   - SAVEPOINT, RELEASE and ROLLBACK TO need an explicit block (25P01);
//   - VACUUM, CREATE DATABASE, CREATE INDEX CONCURRENTLY and the other
//     statements PostgreSQL runs only outside a transaction block fail with
//     25001;
//   - two-phase commit commands (PREPARE TRANSACTION, COMMIT PREPARED, ...)
//     are refused before anything runs (0A000), and so are the
//     administrative functions other than master_create_distributed_table,
//     master_create_worker_shards, master_create_reference_table and
//     master_add_node, and any statement after one of those in the same
//     block (the catalog knows the new distribution only once the block
//     commits);
//   - inside a database/sql transaction no block begins: the statements run
//     in that transaction, an error aborts it, and COMMIT or ROLLBACK as
//     text, or an administrative function, is refused (0A000) before
//     anything runs;
//   - as pgx's database/sql driver does against one PostgreSQL: with
//     arguments the string fails with 42601 (pgx's extended protocol cannot
//     prepare several statements), except under the simple protocol, where
//     each statement gets the arguments it uses; Query returns the first
//     statement's rows under the simple protocol and fails with 42601
//     otherwise.
//
// Errors keep the failing statement's SQLSTATE; their message starts with
// "statement i of n" and never quotes the statement's text.

// MultiPrepareError is PostgreSQL's answer to preparing several statements
// (42601).
func MultiPrepareError() error {
	return sqlerr.New(sqlerr.SyntaxError, "cannot insert multiple commands into a prepared statement")
}

// ExecStatements runs the statements of a multi-statement string (Exec), as
// described above, each as the application's own statement (s.Exec or
// s.Query: planned through the plan cache and run like any single
// statement, in the Session's transaction when one is open); the result is
// the last statement's. It blocks until the string's implicit transaction,
// if any, has ended.
func (s *Session) ExecStatements(ctx context.Context, stmts []planner.Statement, nargs []driver.NamedValue) (driver.Result, error) {
	if err := checkMultiArgs(s.c.SimpleProtocol(), stmts, nargs); err != nil {
		return nil, err
	}
	res, _, err := s.runStatements(ctx, stmts, nargs, -1)
	return res, err
}

// QueryStatements runs the statements of a multi-statement string (Query),
// as described above, each as ExecStatements runs it, and returns the first statement's
// rows, read whole (the string's block has ended when it returns).
func (s *Session) QueryStatements(ctx context.Context, stmts []planner.Statement, nargs []driver.NamedValue) (driver.Rows, error) {
	if !s.c.SimpleProtocol() {
		return nil, MultiPrepareError()
	}
	if err := checkMultiArgs(true, stmts, nargs); err != nil {
		return nil, err
	}
	_, rows, err := s.runStatements(ctx, stmts, nargs, 0)
	if err != nil {
		return nil, err
	}
	if rows == nil {
		rows = &engine.Buffered{}
	}
	return rows, nil
}

// checkMultiArgs refuses arguments as pgx does: its extended protocol
// (simple false) cannot prepare several statements (42601); under the
// simple protocol it puts them into the text, and fails when one is
// missing or unused.
func checkMultiArgs(simple bool, stmts []planner.Statement, nargs []driver.NamedValue) error {
	if len(nargs) == 0 {
		return nil
	}
	if !simple {
		return MultiPrepareError()
	}
	used := make([]bool, len(nargs))
	for _, s := range stmts {
		for _, n := range s.Params {
			if n > len(nargs) {
				return errors.New("pgshard: insufficient arguments")
			}
			used[n-1] = true
		}
	}
	for i, u := range used {
		if !u {
			return fmt.Errorf("pgshard: unused argument: %d", i)
		}
	}
	return nil
}

// statementArgs are the arguments of statement st of the string, numbered
// as its SQL.
func statementArgs(st planner.Statement, nargs []driver.NamedValue) []driver.NamedValue {
	if st.Params == nil {
		return nil
	}
	out := make([]driver.NamedValue, len(st.Params))
	for i, n := range st.Params {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: nargs[n-1].Value}
	}
	return out
}

// runStatements runs stmts as described above, each through s.Exec (or
// s.Query for the one whose rows are returned). rowsOf
// is the index of the statement whose rows are returned (read whole), or
// -1.
func (s *Session) runStatements(ctx context.Context, stmts []planner.Statement, nargs []driver.NamedValue, rowsOf int) (driver.Result, *engine.Buffered, error) {
	inTx := s.InTransaction()
	if err := checkStatements(stmts, inTx); err != nil {
		return nil, nil, err
	}
	var (
		res      driver.Result = engine.Result{}
		rows     *engine.Buffered
		explicit bool // the block is explicit: BEGIN ran in this string
		admin    bool // an administrative function ran in the block
	)
	fail := func(i int, err error) (driver.Result, *engine.Buffered, error) {
		if i > 0 {
			// Earlier statements ran: database/sql must not send the
			// string again on another connection.
			err = noBadConn(err)
		}
		if !inTx {
			_ = s.EndTx(context.WithoutCancel(ctx), false)
		} else {
			s.FailTx()
		}
		return nil, nil, statementError(i, len(stmts), err)
	}
	// end commits or rolls back the string's own block.
	end := func(commit bool) error {
		explicit = false
		if !s.InTransaction() {
			return nil
		}
		err := s.EndTx(context.WithoutCancel(ctx), commit)
		if admin {
			admin = false
			if _, rerr := s.c.Refresh(ctx); err == nil {
				err = rerr
			}
		}
		return err
	}
	for i, st := range stmts {
		if !inTx && !s.InTransaction() {
			s.BeginImplicit()
		}
		if st.Tx != nil && !inTx {
			switch st.Tx.Kind {
			case "BEGIN":
				// Inside an explicit block PostgreSQL only warns.
				explicit = true
				continue
			case "COMMIT", "ROLLBACK":
				if err := end(st.Tx.Kind == "COMMIT"); err != nil {
					return fail(i, err)
				}
				res = engine.Result{}
				continue
			case "SAVEPOINT", "RELEASE", "ROLLBACK TO":
				if !explicit {
					return fail(i, sqlerr.New("25P01", "%s can only be used in transaction blocks", st.Tx.Kind))
				}
			}
		}
		if st.Tx != nil && inTx && st.Tx.Kind == "BEGIN" {
			continue // PostgreSQL warns: there is already a transaction in progress
		}
		if st.NoTxBlock != "" {
			return fail(i, sqlerr.New("25001", "%s cannot run inside a transaction block", st.NoTxBlock))
		}
		var err error
		if i == rowsOf {
			var r driver.Rows
			if r, err = s.Query(ctx, st.SQL, statementArgs(st, nargs)); err == nil {
				rows, err = engine.ReadAll(r)
			}
		} else {
			res, err = s.Exec(ctx, st.SQL, statementArgs(st, nargs))
		}
		if err != nil {
			return fail(i, err)
		}
		admin = admin || st.Admin != ""
	}
	if !inTx {
		if err := end(true); err != nil {
			return nil, nil, fmt.Errorf("pgshard: committing the %d statements' implicit transaction: %w", len(stmts), noBadConn(err))
		}
	}
	return res, rows, nil
}

// checkStatements refuses (0A000), before any runs, the strings pgshard
// cannot run as PostgreSQL would: a transaction left open at the end,
// COMMIT or ROLLBACK inside a database/sql transaction (inTx), two-phase
// commands, administrative functions other than the four that may share a
// string, any administrative function inside a database/sql transaction,
// and statements after an administrative function in the same block (the
// catalog knows the new distribution only once the block commits).
func checkStatements(stmts []planner.Statement, inTx bool) error {
	explicit := false
	admin := ""
	for i, st := range stmts {
		if st.Tx != nil {
			switch st.Tx.Kind {
			case "BEGIN":
				explicit = !inTx
			case "COMMIT", "ROLLBACK":
				if inTx {
					return statementError(i, len(stmts), sqlerr.Unsupported("%s as SQL text is not supported by pgshard inside a transaction; use the Tx's Commit and Rollback", st.Tx.Kind))
				}
				explicit, admin = false, ""
			case "PREPARE", "OTHER":
				return statementError(i, len(stmts), sqlerr.Unsupported("two-phase commit commands as SQL text are not supported by pgshard"))
			}
			continue
		}
		if st.Admin != "" {
			switch st.Admin {
			case "master_create_distributed_table", "master_create_worker_shards", "master_create_reference_table", "master_add_node":
			default:
				return statementError(i, len(stmts), sqlerr.Unsupported("%s must be called in a query string of its own", st.Admin))
			}
			if inTx {
				return statementError(i, len(stmts), sqlerr.Unsupported("%s cannot run inside a transaction", st.Admin))
			}
			admin = st.Admin
			continue
		}
		if admin != "" {
			return statementError(i, len(stmts), sqlerr.Unsupported("a statement after %s in the same transaction is not supported: the new distribution is known once the transaction commits; put a COMMIT before it or send it separately", admin))
		}
	}
	if explicit {
		return sqlerr.Unsupported("a query string that leaves a transaction open (BEGIN without a later COMMIT or ROLLBACK) is not supported by pgshard; use database/sql's BeginTx")
	}
	return nil
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
