package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/internal/sqlerr"
	plantypes "github.com/pgshard/pgshard/plan"
)

// AggregateKind is how one output column of a multi-shard aggregate is
// combined from the shards' partial results.
type AggregateKind = plantypes.AggregateKind

// The aggregate kinds (plan.AggregateKind).
const (
	AggCount = plantypes.AggCount
	AggSum   = plantypes.AggSum
	AggMin   = plantypes.AggMin
	AggMax   = plantypes.AggMax
)

// Aggregate is the merge step of one output column.
type Aggregate = plantypes.Aggregate

// planScatter plans a SELECT over one distributed table without a key
// filter. Rows are concatenated when nothing needs merging; count and sum
// without grouping are added up in Go; everything else (GROUP BY, HAVING,
// DISTINCT, ORDER BY, LIMIT, avg, min/max, window functions, expressions over
// aggregates) is combined by PostgreSQL itself from the shards' partial rows
// (see CombinePlan), so the answer is PostgreSQL's.
func (p *Plan) planScatter(sel *pg_query.SelectStmt, a *analyzer, env Env) error {
	if sel == nil {
		return sqlerr.Unsupported("this statement on distributed table \"%s\" needs a filter on partition column \"%s\"", p.Table.Name, p.Table.KeyColumn)
	}
	if setOperation(sel) {
		return p.planSetOperationScatter(sel, a, env)
	}
	if j := outerJoinAcrossShards(sel, a); j != nil {
		return sqlerr.Unsupported("an outer join whose null-extended side reads a distributed table and whose preserved side reads none cannot run shard by shard (each shard would null-extend the rows it does not match)")
	}
	ref := a.refs[0]
	join := len(a.refs) > 1 || len(sel.FromClause) != 1 || sel.FromClause[0].GetRangeVar() != ref.rv
	if len(a.refs) > 1 && !a.linked() {
		other := a.refs[1]
		if other.table == ref.table {
			return sqlerr.Unsupported("a multi-shard query may reference distributed table \"%s\" several times only when its references are joined on partition column \"%s\"", ref.table.Name, ref.table.KeyColumn)
		}
		return sqlerr.Unsupported("distributed tables \"%s\" and \"%s\" can be joined across shards only on their partition columns (%s = %s); otherwise fix the partition columns by equality", ref.table.Name, other.table.Name, ref.table.KeyColumn, other.table.KeyColumn)
	}
	if join && len(a.refs) == 1 && ref.scope.parent != nil {
		return sqlerr.Unsupported("a multi-shard query over distributed table \"%s\" must read it in its top-level FROM", ref.table.Name)
	}
	if construct := nestedMerge(sel, a, env); construct != "" {
		return sqlerr.Unsupported("%s inside a subquery or CTE that reads distributed table \"%s\" is not supported in a multi-shard query (each shard would apply it to its own rows only)", construct, ref.table.Name)
	}
	unsupported := func(construct string) error {
		return sqlerr.Unsupported("%s is not supported in a multi-shard query on distributed table \"%s\"; fix partition column \"%s\" by equality to run it on one shard", construct, ref.table.Name, ref.table.KeyColumn)
	}
	switch {
	case sel.WithClause != nil:
		return unsupported("WITH")
	case sel.Op != pg_query.SetOperation_SETOP_NONE && sel.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED:
		return unsupported("UNION/INTERSECT/EXCEPT")
	case sel.IntoClause != nil:
		return unsupported("SELECT INTO")
	}
	var exprs []*pg_query.Node
	for _, t := range sel.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			return unsupported("this target list")
		}
		exprs = append(exprs, rt.Val)
	}
	exprs = append(exprs, sel.HavingClause)
	exprs = append(exprs, sel.SortClause...)
	exprs = append(exprs, sel.GroupClause...)
	exprs = append(exprs, sel.DistinctClause...)
	hasAgg, window, unknown, outer := false, len(sel.WindowClause) > 0, false, false
	for _, e := range exprs {
		if e == nil {
			continue
		}
		hasAgg = hasAgg || containsAggregate(e, env)
		window = window || windowCall(e)
		if _, ok := unknownFunction(e, env); ok {
			unknown = true
		}
		outer = outer || outerAggregate(e, env)
	}
	grouped := hasAgg || len(sel.GroupClause) > 0 || sel.HavingClause != nil
	distinct := len(sel.DistinctClause) > 0
	ordered := len(sel.SortClause) > 0 || sel.LimitCount != nil || sel.LimitOffset != nil
	if !grouped && !window && !distinct && !unknown && !outer && !ordered {
		return nil // concatenation
	}
	if len(sel.LockingClause) > 0 {
		return unsupported("FOR UPDATE/SHARE with merged results")
	}
	if grouped && !window && !distinct && !unknown && !outer && !ordered && len(sel.GroupClause) == 0 && sel.HavingClause == nil {
		if aggs, ok := simpleSums(sel, env); ok && goAddable(p.SQL, aggs, env) {
			p.Aggregates = aggs
			return nil
		}
	}
	if grouped && !window && !unknown && !outer && (!distinct || plainDistinct(sel)) {
		if c, partial, ok, err := planPartialAggregate(p.SQL, sel, a.refs, env); err != nil {
			return err
		} else if ok {
			p.Combine = c
			p.tree = partial
			return nil
		}
	}
	if !grouped && !window && !unknown && !outer && (!distinct || plainDistinct(sel)) {
		if c, partial, ok, err := planProjectedCombine(p.SQL, sel, a.refs, env); err != nil {
			return err
		} else if ok {
			p.Combine = c
			p.tree = partial
			p.SortMerge = sortMerge(p, sel, distinct)
			return nil
		}
	}
	if join {
		return unsupported("this combination (window functions, DISTINCT ON, ordered or unknown aggregates, or * with ordering) over a join")
	}
	c, partial, err := planRawCombine(sel, ref, !grouped && !window && !distinct && !unknown && !outer)
	if err != nil {
		return err
	}
	p.Combine = c
	p.tree = partial
	if !grouped && !window && !unknown && !outer {
		p.SortMerge = sortMerge(p, sel, distinct)
	}
	return nil
}

// sortMerge is the streaming plan of a query that only orders and cuts rows,
// or nil.
func sortMerge(p *Plan, sel *pg_query.SelectStmt, distinct bool) *SortMergePlan {
	if distinct {
		return nil
	}
	return planSortMerge(p, sel)
}

// simpleSums accepts a select list of count(...) and sum(...) calls only,
// which the driver adds up itself.
func simpleSums(sel *pg_query.SelectStmt, env Env) ([]Aggregate, bool) {
	var aggs []Aggregate
	for _, t := range sel.TargetList {
		fc := t.GetResTarget().GetVal().GetFuncCall()
		if fc == nil || fc.AggDistinct || len(fc.AggOrder) > 0 || fc.AggWithinGroup || fc.FuncVariadic || fc.Over != nil {
			return nil, false
		}
		schema, name := funcName(fc)
		if schema != "" && schema != "pg_catalog" {
			return nil, false
		}
		for _, arg := range fc.Args {
			if containsAggregate(arg, env) {
				return nil, false
			}
		}
		switch {
		case name == "count":
			aggs = append(aggs, Aggregate{Kind: AggCount})
		case name == "sum" && len(fc.Args) == 1:
			aggs = append(aggs, Aggregate{Kind: AggSum})
		default:
			return nil, false
		}
	}
	return aggs, true
}

// goAddable reports whether the driver can add up every sum of a simpleSums
// select list in Go: sums of bigint, numeric and double precision (what
// sum() returns for integers, numerics and float8). A sum of another type
// (interval, money, real) is combined by PostgreSQL instead. When the query
// cannot be described, the driver adds up in Go and refuses (0A000) a type
// it cannot add.
func goAddable(sql string, aggs []Aggregate, env Env) bool {
	sums := false
	for _, a := range aggs {
		sums = sums || a.Kind == AggSum
	}
	if !sums {
		return true
	}
	cols, err := env.Describe(sql)
	if err != nil || len(cols) != len(aggs) {
		return true
	}
	for i, a := range aggs {
		if a.Kind != AggSum {
			continue
		}
		switch cols[i].TypeOID {
		case 20, 1700, 701: // int8, numeric, float8
		default:
			return false
		}
	}
	return true
}

func plainDistinct(sel *pg_query.SelectStmt) bool {
	return len(sel.DistinctClause) == 1 && sel.DistinctClause[0].GetNode() == nil
}

func windowCall(n *pg_query.Node) bool {
	found := false
	walk(n, func(m protoreflect.ProtoMessage) bool {
		if fc, ok := m.(*pg_query.FuncCall); ok && fc.Over != nil {
			found = true
		}
		if _, ok := m.(*pg_query.SubLink); ok {
			return false
		}
		return !found
	})
	return found
}

// containsAggregate reports whether n calls an aggregate at this query level
// (not inside a subquery).
func containsAggregate(n *pg_query.Node, env Env) bool {
	found := false
	walk(n, func(m protoreflect.ProtoMessage) bool {
		switch x := m.(type) {
		case *pg_query.SubLink:
			return false
		case *pg_query.FuncCall:
			if x.AggStar || x.AggDistinct || len(x.AggOrder) > 0 || x.AggFilter != nil || x.AggWithinGroup {
				found = true
			} else if _, name := funcName(x); name != "" {
				if info, ok := env.Function(name); ok && info.Aggregate && x.Over == nil {
					found = true
				}
			}
		}
		return !found
	})
	return found
}

// unknownFunction returns the name of a function called in n that env does
// not know: pgshard cannot tell whether it aggregates.
func unknownFunction(n *pg_query.Node, env Env) (string, bool) {
	var unknown string
	walk(n, func(m protoreflect.ProtoMessage) bool {
		if fc, ok := m.(*pg_query.FuncCall); ok && unknown == "" {
			if _, name := funcName(fc); name != "" {
				if _, found := env.Function(name); !found {
					unknown = name
				}
			}
		}
		return unknown == ""
	})
	return unknown, unknown != ""
}

// outerAggregate reports whether a subquery in n calls an aggregate over
// columns: such an aggregate belongs to the outer query when its columns are
// the outer query's (SELECT (SELECT max(t.x)) FROM t aggregates t), which the
// shards' answers cannot be concatenated for.
func outerAggregate(n *pg_query.Node, env Env) bool {
	found := false
	walk(n, func(m protoreflect.ProtoMessage) bool {
		sl, ok := m.(*pg_query.SubLink)
		if !ok || found {
			return !found
		}
		walk(sl.Subselect, func(m protoreflect.ProtoMessage) bool {
			fc, ok := m.(*pg_query.FuncCall)
			if !ok || found {
				return !found
			}
			agg := fc.AggStar || fc.AggDistinct || len(fc.AggOrder) > 0 || fc.AggFilter != nil || fc.AggWithinGroup
			if _, name := funcName(fc); !agg && fc.Over == nil {
				info, ok := env.Function(name)
				agg = !ok || info.Aggregate
			}
			if agg && containsColumnRef(fc) {
				found = true
			}
			return !found
		})
		return false
	})
	return found
}

// nestedMerge names a construct in a subquery or CTE below the top level
// that reads a distributed table and whose answer depends on all the rows
// (LIMIT, aggregates, DISTINCT, window functions, set operations): each
// shard would compute it over its own rows only. It returns "" when there is
// none.
func nestedMerge(root *pg_query.SelectStmt, a *analyzer, env Env) string {
	found := ""
	walk(root, func(m protoreflect.ProtoMessage) bool {
		sel, ok := m.(*pg_query.SelectStmt)
		if !ok || sel == root || found != "" {
			return found == ""
		}
		if !readsAnyDistributed(sel, a) {
			return false
		}
		switch {
		case sel.LimitCount != nil || sel.LimitOffset != nil:
			found = "LIMIT/OFFSET"
		case len(sel.GroupClause) > 0 || sel.HavingClause != nil:
			found = "GROUP BY/HAVING"
		case len(sel.DistinctClause) > 0:
			found = "DISTINCT"
		case len(sel.WindowClause) > 0:
			found = "WINDOW"
		case sel.Op != pg_query.SetOperation_SETOP_NONE && sel.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED:
			found = "UNION/INTERSECT/EXCEPT"
		}
		for _, t := range sel.TargetList {
			if found != "" {
				break
			}
			if rt := t.GetResTarget(); rt != nil {
				if containsAggregate(rt.Val, env) {
					found = "an aggregate"
				} else if windowCall(rt.Val) {
					found = "a window function"
				}
			}
		}
		return found == ""
	})
	return found
}

// readsAnyDistributed reports whether a RangeVar below m is one of the
// statement's distributed table references.
func readsAnyDistributed(m protoreflect.ProtoMessage, a *analyzer) bool {
	found := false
	walk(m, func(x protoreflect.ProtoMessage) bool {
		if rv, ok := x.(*pg_query.RangeVar); ok {
			for _, r := range a.refs {
				if r.rv == rv {
					found = true
				}
			}
		}
		return !found
	})
	return found
}
