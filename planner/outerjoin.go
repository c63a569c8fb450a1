package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// outerJoinAcrossShards returns the first outer join of sel that the shards
// cannot each answer for their own rows: one whose null-extended side reads
// a distributed table while its preserved side reads none (a function, a
// VALUES list, a materialized subquery's rows). Every shard would keep the
// preserved rows its own shard does not match, so a row matched on one
// shard would also come back null-extended from every other. nil when there
// is none.
func outerJoinAcrossShards(sel *pg_query.SelectStmt, a *analyzer) *pg_query.JoinExpr {
	var found *pg_query.JoinExpr
	walk(sel, func(m protoreflect.ProtoMessage) bool {
		j, ok := m.(*pg_query.JoinExpr)
		if !ok || found != nil {
			return found == nil
		}
		l, r := readsAnyDistributed(j.Larg, a), readsAnyDistributed(j.Rarg, a)
		switch j.Jointype {
		case pg_query.JoinType_JOIN_LEFT:
			if r && !l {
				found = j
			}
		case pg_query.JoinType_JOIN_RIGHT:
			if l && !r {
				found = j
			}
		case pg_query.JoinType_JOIN_FULL:
			if l != r {
				found = j
			}
		}
		return found == nil
	})
	return found
}
