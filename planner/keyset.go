package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// This file holds the key sets of row constructors and of ORs of
// conjunctions: the shapes TPC-C's New-Order and Delivery write,
//
//	(s_w_id, s_i_id) IN (($1, $2), ($3, $4))
//	(no_w_id = $1 AND no_d_id = $2) OR (no_w_id = $3 AND no_d_id = $4)
//
// Each restricts the reference whose key it holds to the listed values, as
// key IN (...) does, so the statement runs only on those values' shards.

// orKeySet is the key set of an OR of args: every branch must restrict the
// same reference (a branch that is an AND restricts each reference any of its
// conjuncts restricts); the set is the union of the branches' sets. It
// returns nil when no reference is restricted by every branch.
func (sc *scope) orKeySet(args []*pg_query.Node) (*tableRef, *KeySet) {
	branches := make([][]refSet, len(args))
	for i, arg := range args {
		branches[i] = sc.branchKeySets(arg)
		if len(branches[i]) == 0 {
			return nil, nil
		}
	}
candidates:
	for _, first := range branches[0] {
		out := &KeySet{}
		for _, branch := range branches {
			rs, ok := setOf(branch, first.ref)
			if !ok {
				continue candidates
			}
			out.Values = append(out.Values, rs.Values...)
			out.ArrayParams = append(out.ArrayParams, rs.ArrayParams...)
		}
		return first.ref, out
	}
	return nil, nil
}

// branchKeySets lists the references one OR branch restricts, with their
// sets: one for a key equality, IN list or nested OR; one per restricting
// conjunct for an AND (each conjunct alone bounds the branch's rows).
func (sc *scope) branchKeySets(n *pg_query.Node) []refSet {
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		var out []refSet
		for _, arg := range b.Args {
			out = append(out, sc.branchKeySets(arg)...)
		}
		return out
	}
	if pairs := rowEqualityPairs(n.GetAExpr()); pairs != nil {
		var out []refSet
		for _, pair := range pairs {
			out = append(out, sc.branchKeySets(pair)...)
		}
		return out
	}
	if ref, set := sc.keySet(n); ref != nil {
		return []refSet{{ref, set}}
	}
	return nil
}

// setOf returns the first set in sets that restricts ref.
func setOf(sets []refSet, ref *tableRef) (*KeySet, bool) {
	for _, rs := range sets {
		if rs.ref == ref {
			return rs.set, true
		}
	}
	return nil, false
}

// rowInKeySet is the key set of (a, b, ...) IN ((...), (...)) when one of
// a, b, ... is a reference's key column: that position of every listed row,
// each a constant or a parameter. It returns nil otherwise (a row of another
// arity, a sub-select, an expression in the key's position).
func (sc *scope) rowInKeySet(e *pg_query.A_Expr) (*tableRef, *KeySet) {
	cols := e.Lexpr.GetRowExpr().Args
	list := e.Rexpr.GetList()
	if list == nil {
		return nil, nil
	}
	for pos, col := range cols {
		ref := sc.keyColumn(col)
		if ref == nil {
			continue
		}
		out := &KeySet{}
		for _, item := range list.Items {
			row := item.GetRowExpr()
			if row == nil || len(row.Args) != len(cols) {
				return nil, nil
			}
			v, ok := constValue(row.Args[pos], ref.table.KeyType)
			if !ok {
				return nil, nil
			}
			out.Values = append(out.Values, v)
		}
		return ref, out
	}
	return nil, nil
}

// rowEqualityPairs splits (a, b) = (x, y) into the equalities a = x and
// b = y; it returns nil when e is not an equality of two row constructors
// of one arity.
func rowEqualityPairs(e *pg_query.A_Expr) []*pg_query.Node {
	if e == nil || e.Kind != pg_query.A_Expr_Kind_AEXPR_OP || !isEqualsOperator(e.Name) {
		return nil
	}
	l, r := e.Lexpr.GetRowExpr(), e.Rexpr.GetRowExpr()
	if l == nil || r == nil || len(l.Args) != len(r.Args) {
		return nil
	}
	pairs := make([]*pg_query.Node, len(l.Args))
	for i := range l.Args {
		pairs[i] = &pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: &pg_query.A_Expr{
			Kind: pg_query.A_Expr_Kind_AEXPR_OP, Name: e.Name, Lexpr: l.Args[i], Rexpr: r.Args[i], Location: e.Location,
		}}}
	}
	return pairs
}
