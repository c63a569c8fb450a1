package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	plantypes "github.com/pgshard/pgshard/plan"
)

// ConcatenatePlan answers a UNION ALL that the shards cannot run together
// (its arms read tables of different co-location groups, or do not select
// their keys in the same column) and that has nothing over it (no ORDER
// BY, LIMIT, OFFSET or WITH): each arm runs as a statement of its own
// through pgshard (routed, merged, combined or materialized as any
// statement), one after the other, and its rows stream out as they come —
// nothing is held in memory. Only when every arm's columns have the same
// types, as the metadata database describes each arm: PostgreSQL would
// otherwise convert them to a common type, and the arms then run first
// (MaterializePlan). It is immutable.
type ConcatenatePlan struct {
	Arms []Arm
}

// Arm is one statement of a ConcatenatePlan: its SQL, whose parameter $i
// is the statement's parameter Params[i-1] (plan.Arm).
type Arm = plantypes.Arm

// planConcatenate makes the ConcatenatePlan of a UNION ALL, or returns nil
// (not a UNION ALL with nothing over it, or arms whose types differ or
// cannot be described).
func planConcatenate(sql string, env Env) *ConcatenatePlan {
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return nil
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if !unionAll(sel) {
		return nil
	}
	var leaves []*pg_query.SelectStmt
	var flatten func(s *pg_query.SelectStmt)
	flatten = func(s *pg_query.SelectStmt) {
		if unionAll(s) {
			flatten(s.Larg)
			flatten(s.Rarg)
			return
		}
		leaves = append(leaves, s)
	}
	flatten(sel)
	c := &ConcatenatePlan{}
	var first []ColumnDesc
	for i, leaf := range leaves {
		arm := wrapSelect(proto.Clone(leaf).(*pg_query.SelectStmt))
		var renum paramRenumbering
		renum.apply(arm)
		text, err := pg_query.Deparse(arm)
		if err != nil {
			return nil
		}
		cols, err := env.Describe(text)
		if err != nil {
			return nil
		}
		if i == 0 {
			first = cols
		} else if len(cols) != len(first) {
			return nil
		}
		for j := range cols {
			if cols[j].TypeOID != first[j].TypeOID {
				return nil
			}
		}
		c.Arms = append(c.Arms, Arm{SQL: text, Params: renum.params})
	}
	return c
}

// unionAll reports whether s is a UNION ALL with no ORDER BY, LIMIT,
// OFFSET, WITH, INTO or locking clause over it.
func unionAll(s *pg_query.SelectStmt) bool {
	return s != nil && s.Op == pg_query.SetOperation_SETOP_UNION && s.All && len(s.SortClause) == 0 && s.LimitCount == nil &&
		s.LimitOffset == nil && s.WithClause == nil && s.IntoClause == nil && len(s.LockingClause) == 0
}
