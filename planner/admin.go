package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// AdminFunctions are pg_shard's administrative functions that pgshard runs
// itself, with their argument counts.
var AdminFunctions = map[string]int{
	"master_add_node":                 2,
	"master_create_distributed_table": 2,
	"master_create_worker_shards":     3,
	"master_copy_shard_placement":     5,
	"master_move_shard_placement":     5,
	"master_create_reference_table":   1,
}

// AdminCall is a call of an administrative function: SELECT f(args), or
// SELECT f(columns) FROM ... to call it once per row, as pg_shard's users
// repair every inactive placement in one statement.
type AdminCall struct {
	Function string
	// Args are the arguments of a call without FROM.
	Args []Value
	// ArgsSQL, for a call with FROM, selects the arguments of each call.
	ArgsSQL string
}

// adminCall recognizes a statement calling an administrative function. It
// returns an error when such a function is called in a form pgshard does not
// run (nested in an expression, say).
func adminCall(tree *pg_query.ParseResult) (*AdminCall, error) {
	var found string
	for _, raw := range tree.Stmts {
		walk(raw.Stmt, func(m protoreflect.ProtoMessage) bool {
			if fc, ok := m.(*pg_query.FuncCall); ok && found == "" {
				if schema, name := funcName(fc); (schema == "" || schema == "pgs_distribution_metadata") && AdminFunctions[name] > 0 {
					found = name
				}
			}
			return true
		})
	}
	if found == "" {
		return nil, nil
	}
	bad := sqlerr.Unsupported("%s must be called on its own: SELECT %s(...) [FROM ...]", found, found)
	if len(tree.Stmts) != 1 {
		return nil, bad
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 || sel.Op > pg_query.SetOperation_SETOP_NONE || sel.WithClause != nil || sel.IntoClause != nil ||
		len(sel.GroupClause) > 0 || sel.HavingClause != nil || len(sel.WindowClause) > 0 || len(sel.DistinctClause) > 0 {
		return nil, bad
	}
	fc := sel.TargetList[0].GetResTarget().GetVal().GetFuncCall()
	if fc == nil {
		return nil, bad
	}
	_, name := funcName(fc)
	if name != found {
		return nil, bad
	}
	if fc.AggStar || fc.AggDistinct || fc.Over != nil || fc.FuncVariadic || len(fc.AggOrder) > 0 || fc.AggFilter != nil {
		return nil, bad
	}
	for _, arg := range fc.Args {
		if arg.GetNamedArgExpr() != nil {
			return nil, sqlerr.Unsupported("%s takes positional arguments only", name)
		}
	}
	if want := AdminFunctions[name]; len(fc.Args) != want {
		return nil, sqlerr.New(sqlerr.UndefinedFunction, "function %s takes %d arguments, not %d", name, want, len(fc.Args))
	}
	call := &AdminCall{Function: name}
	if len(sel.FromClause) == 0 && sel.WhereClause == nil {
		for i, arg := range fc.Args {
			v, ok := constValue(arg, 0)
			if !ok {
				v, ok = castConst(arg)
			}
			if !ok {
				return nil, sqlerr.Unsupported("argument %d of %s must be a constant or a parameter", i+1, name)
			}
			call.Args = append(call.Args, v)
		}
		return call, nil
	}
	// Select the arguments row by row over the statement's own FROM.
	argsSel := proto.Clone(sel).(*pg_query.SelectStmt)
	argsSel.TargetList = nil
	for _, arg := range fc.Args {
		argsSel.TargetList = append(argsSel.TargetList, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: arg}}})
	}
	text, err := pg_query.Deparse(&pg_query.ParseResult{Version: tree.Version, Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: argsSel}}}}})
	if err != nil {
		return nil, sqlerr.New(sqlerr.InternalError, "deparsing arguments of %s: %v", name, err)
	}
	call.ArgsSQL = text
	return call, nil
}

// castConst accepts a constant cast to any type ('x'::regclass, 5::bigint) as
// an administrative function argument.
func castConst(n *pg_query.Node) (Value, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		if v, ok := constValue(tc.Arg, 0); ok {
			return v, true
		}
		return castConst(tc.Arg)
	}
	return Value{}, false
}
