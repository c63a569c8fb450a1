package planner

import (
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
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
	// Params lists the string's parameters the statement uses: its $i is
	// the string's $Params[i-1] (SQL is renumbered from $1). Nil when it
	// uses none.
	Params []int
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
		text, params := renumberParams(sql, start, end, raw)
		s := Statement{SQL: strings.TrimSpace(text), Tx: txCommand(one), NoTxBlock: noTxBlock(raw.Stmt), Params: params}
		if call, err := adminCall(one); call != nil {
			s.Admin = call.Function
		} else if err != nil {
			s.Admin = "?"
		}
		out = append(out, s)
	}
	return out
}

// renumberParams returns the text sql[start:end] of statement raw with its
// parameters numbered $1, $2, ... in order of first appearance, and the
// string's parameter number of each.
func renumberParams(sql string, start, end int, raw *pg_query.RawStmt) (string, []int) {
	type ref struct{ loc, num int }
	var refs []ref
	walk(raw.Stmt, func(m protoreflect.ProtoMessage) bool {
		if pr, ok := m.(*pg_query.ParamRef); ok && int(pr.Location) >= start && int(pr.Location) < end {
			refs = append(refs, ref{int(pr.Location), int(pr.Number)})
		}
		return true
	})
	if len(refs) == 0 {
		return sql[start:end], nil
	}
	slices.SortFunc(refs, func(a, b ref) int { return a.loc - b.loc })
	var params []int
	number := map[int]int{}
	var b strings.Builder
	prev := start
	for _, r := range refs {
		n, seen := number[r.num]
		if !seen {
			params = append(params, r.num)
			n = len(params)
			number[r.num] = n
		}
		// $ and its digits, as the lexer read them.
		j := r.loc + 1
		for j < end && sql[j] >= '0' && sql[j] <= '9' {
			j++
		}
		b.WriteString(sql[prev:r.loc])
		b.WriteString("$" + strconv.Itoa(n))
		prev = j
	}
	b.WriteString(sql[prev:end])
	return b.String(), params
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
