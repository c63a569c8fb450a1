package planner

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Statement is one statement of a query string that holds several (the
// simple query protocol's multi-statement string, as migration tools send
// files), split by the parser's own statement boundaries: semicolons in
// string constants, dollar quotes, identifiers and comments never split.
// The driver runs each one in order through its own plan (Plan.Statements).
type Statement struct {
	// SQL is the statement's text, as the application wrote it.
	SQL string
	// Tx is set for a transaction control statement (BEGIN, COMMIT, ...).
	Tx *TxCommand
	// NoTxBlock names the statement when PostgreSQL refuses to run it
	// inside a transaction block (VACUUM, CREATE DATABASE, CREATE INDEX
	// CONCURRENTLY, ...): in a string of several statements it fails with
	// 25001, as PostgreSQL's implicit transaction block makes it.
	NoTxBlock string
	// Admin is the administrative function the statement calls, if any.
	Admin string
}

// splitStatements returns the statements of tree, parsed from sql, with
// their text cut at the parser's statement locations.
func splitStatements(sql string, tree *pg_query.ParseResult) []Statement {
	out := make([]Statement, 0, len(tree.Stmts))
	for _, raw := range tree.Stmts {
		start := int(raw.StmtLocation)
		end := len(sql)
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		one := &pg_query.ParseResult{Version: tree.Version, Stmts: []*pg_query.RawStmt{raw}}
		s := Statement{SQL: strings.TrimSpace(sql[start:end]), Tx: txCommand(one), NoTxBlock: noTxBlock(raw.Stmt)}
		if call, err := adminCall(one); call != nil {
			s.Admin = call.Function
		} else if err != nil {
			s.Admin = "?"
		}
		out = append(out, s)
	}
	return out
}

// noTxBlock names a statement PostgreSQL runs only outside a transaction
// block (PreventInTransactionBlock), as its error message names it; ""
// for the others.
func noTxBlock(n *pg_query.Node) string {
	switch {
	case n.GetVacuumStmt() != nil && n.GetVacuumStmt().IsVacuumcmd:
		return "VACUUM"
	case n.GetCreatedbStmt() != nil:
		return "CREATE DATABASE"
	case n.GetDropdbStmt() != nil:
		return "DROP DATABASE"
	case n.GetIndexStmt() != nil && n.GetIndexStmt().Concurrent:
		return "CREATE INDEX CONCURRENTLY"
	case n.GetDropStmt() != nil && n.GetDropStmt().Concurrent:
		return "DROP INDEX CONCURRENTLY"
	case n.GetCreateTableSpaceStmt() != nil:
		return "CREATE TABLESPACE"
	case n.GetDropTableSpaceStmt() != nil:
		return "DROP TABLESPACE"
	case n.GetAlterSystemStmt() != nil:
		return "ALTER SYSTEM"
	case n.GetReindexStmt() != nil:
		r := n.GetReindexStmt()
		for _, p := range r.Params {
			if p.GetDefElem().GetDefname() == "concurrently" {
				return "REINDEX CONCURRENTLY"
			}
		}
		switch r.Kind {
		case pg_query.ReindexObjectType_REINDEX_OBJECT_DATABASE:
			return "REINDEX DATABASE"
		case pg_query.ReindexObjectType_REINDEX_OBJECT_SYSTEM:
			return "REINDEX SYSTEM"
		}
	}
	return ""
}
