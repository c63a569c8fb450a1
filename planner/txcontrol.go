package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// TxCommand is a transaction control statement sent as SQL text.
type TxCommand struct {
	// Kind is one of "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE",
	// "ROLLBACK TO", "PREPARE", "OTHER".
	Kind string
	// Savepoint is the savepoint name for SAVEPOINT, RELEASE and ROLLBACK TO.
	Savepoint string
}

// txCommand recognizes a single transaction control statement.
func txCommand(tree *pg_query.ParseResult) *TxCommand {
	if len(tree.Stmts) != 1 {
		return nil
	}
	ts := tree.Stmts[0].Stmt.GetTransactionStmt()
	if ts == nil {
		return nil
	}
	cmd := &TxCommand{Kind: "OTHER", Savepoint: ts.SavepointName}
	switch ts.Kind {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
		cmd.Kind = "BEGIN"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		cmd.Kind = "COMMIT"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		cmd.Kind = "ROLLBACK"
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		cmd.Kind = "SAVEPOINT"
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		cmd.Kind = "RELEASE"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		cmd.Kind = "ROLLBACK TO"
	case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE, pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED, pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		cmd.Kind = "PREPARE"
	}
	return cmd
}
