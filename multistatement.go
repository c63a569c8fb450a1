package pgshard

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
	"github.com/pgshard/pgshard/session"
)

// A query string with several statements (planner.Plan.Statements) runs as
// PostgreSQL runs a simple Query message that holds them:
//
//   - the statements run in order, each planned and routed by itself, in
//     one implicit transaction (a pgshard transaction, so writes on several
//     workers commit with two-phase commit): the first error stops the
//     string and rolls back everything since the block began;
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
//   - inside a database/sql transaction no block begins: the statements run
//     in that transaction, an error aborts it, and COMMIT or ROLLBACK as
//     text is refused (0A000) before anything runs;
//   - as pgx's database/sql driver does against one PostgreSQL: with
//     arguments the string fails with 42601 (pgx's extended protocol cannot
//     prepare several statements), except under the simple protocol, where
//     each statement gets the arguments it uses; Query returns the first
//     statement's rows under the simple protocol and fails with 42601
//     otherwise.
//
// Errors keep the failing statement's SQLSTATE; their message starts with
// "statement i of n" and never quotes the statement's text.

// simpleProtocol reports whether the DSN makes pgx send statements with
// the simple protocol (default_query_exec_mode=simple_protocol).
func (cn *conn) simpleProtocol() bool {
	return cn.c.cl.SimpleProtocol()
}

// execStatements runs the statements of a multi-statement string (Exec):
// the result is the last statement's.
func (cn *conn) execStatements(ctx context.Context, p *planner.Plan, nargs []driver.NamedValue) (driver.Result, error) {
	if err := cn.checkMultiArgs(p.Statements, nargs); err != nil {
		return nil, err
	}
	res, _, err := cn.runStatements(ctx, p.Statements, nargs, -1)
	return res, err
}

// queryStatements runs the statements of a multi-statement string (Query)
// and returns the first statement's rows, read whole.
func (cn *conn) queryStatements(ctx context.Context, p *planner.Plan, nargs []driver.NamedValue) (driver.Rows, error) {
	if !cn.simpleProtocol() {
		return nil, multiPrepareError()
	}
	if err := cn.checkMultiArgs(p.Statements, nargs); err != nil {
		return nil, err
	}
	_, rows, err := cn.runStatements(ctx, p.Statements, nargs, 0)
	if err != nil {
		return nil, err
	}
	if rows == nil {
		rows = &engine.Buffered{}
	}
	return rows, nil
}

// checkMultiArgs refuses arguments as pgx does: its extended protocol
// cannot prepare several statements (42601); under the simple protocol it
// puts them into the text, and fails when one is missing or unused.
func (cn *conn) checkMultiArgs(stmts []planner.Statement, nargs []driver.NamedValue) error {
	if len(nargs) == 0 {
		return nil
	}
	if !cn.simpleProtocol() {
		return multiPrepareError()
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

// statementArgs are the arguments of statement s of the string, numbered
// as its SQL.
func statementArgs(s planner.Statement, nargs []driver.NamedValue) []driver.NamedValue {
	if s.Params == nil {
		return nil
	}
	out := make([]driver.NamedValue, len(s.Params))
	for i, n := range s.Params {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: nargs[n-1].Value}
	}
	return out
}

// runStatements runs stmts as described above. rowsOf is the index of the
// statement whose rows are returned (read whole), or -1.
func (cn *conn) runStatements(ctx context.Context, stmts []planner.Statement, nargs []driver.NamedValue, rowsOf int) (driver.Result, *engine.Buffered, error) {
	inTx := cn.s.InTransaction()
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
			err = session.NoBadConn(err)
		}
		if !inTx {
			_ = cn.s.EndTx(context.WithoutCancel(ctx), false)
		} else {
			cn.s.FailTx()
		}
		return nil, nil, statementError(i, len(stmts), err)
	}
	// end commits or rolls back the string's own block.
	end := func(commit bool) error {
		explicit = false
		if !cn.s.InTransaction() {
			return nil
		}
		err := cn.s.EndTx(context.WithoutCancel(ctx), commit)
		if admin {
			admin = false
			if _, rerr := cn.c.cl.Refresh(ctx); err == nil {
				err = rerr
			}
		}
		return err
	}
	for i, s := range stmts {
		if !inTx && !cn.s.InTransaction() {
			cn.s.BeginImplicit()
		}
		if s.Tx != nil && !inTx {
			switch s.Tx.Kind {
			case "BEGIN":
				// Inside an explicit block PostgreSQL only warns.
				explicit = true
				continue
			case "COMMIT", "ROLLBACK":
				if err := end(s.Tx.Kind == "COMMIT"); err != nil {
					return fail(i, err)
				}
				res = engine.Result{}
				continue
			case "SAVEPOINT", "RELEASE", "ROLLBACK TO":
				if !explicit {
					return fail(i, sqlerr.New("25P01", "%s can only be used in transaction blocks", s.Tx.Kind))
				}
			}
		}
		if s.Tx != nil && inTx && s.Tx.Kind == "BEGIN" {
			continue // PostgreSQL warns: there is already a transaction in progress
		}
		if s.NoTxBlock != "" {
			return fail(i, sqlerr.New("25001", "%s cannot run inside a transaction block", s.NoTxBlock))
		}
		var err error
		if i == rowsOf {
			var r driver.Rows
			if r, err = cn.QueryContext(ctx, s.SQL, statementArgs(s, nargs)); err == nil {
				rows, err = engine.ReadAll(r)
			}
		} else {
			res, err = cn.ExecContext(ctx, s.SQL, statementArgs(s, nargs))
		}
		if err != nil {
			return fail(i, err)
		}
		admin = admin || s.Admin != ""
	}
	if !inTx {
		if err := end(true); err != nil {
			return nil, nil, fmt.Errorf("pgshard: committing the %d statements' implicit transaction: %w", len(stmts), session.NoBadConn(err))
		}
	}
	return res, rows, nil
}

// checkStatements refuses, before any runs, the strings pgshard cannot run
// as PostgreSQL would: a transaction left open at the end, COMMIT or
// ROLLBACK inside a database/sql transaction, two-phase commands, and
// statements after an administrative function in the same block (the
// catalog knows the new distribution only once the block commits).
func checkStatements(stmts []planner.Statement, inTx bool) error {
	explicit := false
	admin := ""
	for i, s := range stmts {
		if s.Tx != nil {
			switch s.Tx.Kind {
			case "BEGIN":
				explicit = !inTx
			case "COMMIT", "ROLLBACK":
				if inTx {
					return statementError(i, len(stmts), sqlerr.Unsupported("%s as SQL text is not supported by pgshard inside a transaction; use the Tx's Commit and Rollback", s.Tx.Kind))
				}
				explicit, admin = false, ""
			case "PREPARE", "OTHER":
				return statementError(i, len(stmts), sqlerr.Unsupported("two-phase commit commands as SQL text are not supported by pgshard"))
			}
			continue
		}
		if s.Admin != "" {
			switch s.Admin {
			case "master_create_distributed_table", "master_create_worker_shards", "master_create_reference_table", "master_add_node":
			default:
				return statementError(i, len(stmts), sqlerr.Unsupported("%s must be called in a query string of its own", s.Admin))
			}
			if inTx {
				return statementError(i, len(stmts), sqlerr.Unsupported("%s cannot run inside a transaction", s.Admin))
			}
			admin = s.Admin
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
