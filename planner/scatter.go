package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// AggregateKind is how one output column of a multi-shard aggregate is
// combined from the shards' partial results.
type AggregateKind int

const (
	// AggCount adds the shards' counts.
	AggCount AggregateKind = iota + 1
	// AggSum adds the shards' sums (NULL when every shard's is NULL).
	AggSum
	// AggMin takes the least of the shards' minimums.
	AggMin
	// AggMax takes the greatest of the shards' maximums.
	AggMax
)

func (k AggregateKind) String() string {
	return [...]string{"?", "count", "sum", "min", "max"}[k]
}

// Aggregate is the merge step of one output column.
type Aggregate struct {
	Kind AggregateKind
}

// planScatter accepts a SELECT over one distributed table without a key
// filter when pgshard can merge the shards' answers exactly: plain rows, or
// count/sum/min/max without GROUP BY. Anything else is refused, naming the
// construct.
func (p *Plan) planScatter(sel *pg_query.SelectStmt, a *analyzer, env Env) error {
	if sel == nil {
		return sqlerr.Unsupported("this statement on distributed table \"%s\" needs a filter on partition column \"%s\"", p.Table.Name, p.Table.KeyColumn)
	}
	ref := a.refs[0]
	if len(a.refs) > 1 {
		other := a.refs[1]
		if other.table == ref.table {
			return sqlerr.Unsupported("a multi-shard query may reference distributed table \"%s\" only once; fix partition column \"%s\" by equality to run it on one shard", ref.table.Name, ref.table.KeyColumn)
		}
		return sqlerr.Unsupported("joins between distributed tables \"%s\" and \"%s\" across shards are not supported; fix the partition columns by equality", ref.table.Name, other.table.Name)
	}
	if ref.scope.parent != nil || len(sel.FromClause) != 1 || sel.FromClause[0].GetRangeVar() != ref.rv {
		return sqlerr.Unsupported("a multi-shard query over distributed table \"%s\" must read it directly in its top-level FROM, without joins or subqueries around it", ref.table.Name)
	}
	unsupported := func(construct string) error {
		return sqlerr.Unsupported("%s is not supported in a multi-shard query on distributed table \"%s\"; fix partition column \"%s\" by equality to run it on one shard", construct, ref.table.Name, ref.table.KeyColumn)
	}
	switch {
	case sel.WithClause != nil:
		return unsupported("WITH")
	case sel.Op != pg_query.SetOperation_SETOP_NONE && sel.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED:
		return unsupported("UNION/INTERSECT/EXCEPT")
	case len(sel.GroupClause) > 0:
		return unsupported("GROUP BY")
	case sel.HavingClause != nil:
		return unsupported("HAVING")
	case len(sel.DistinctClause) > 0:
		return unsupported("DISTINCT")
	case len(sel.SortClause) > 0:
		return unsupported("ORDER BY")
	case sel.LimitCount != nil || sel.LimitOffset != nil:
		return unsupported("LIMIT/OFFSET")
	case len(sel.WindowClause) > 0:
		return unsupported("WINDOW")
	case sel.IntoClause != nil:
		return unsupported("SELECT INTO")
	}
	var aggs []Aggregate
	hasAgg := false
	for _, t := range sel.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			return unsupported("this target list")
		}
		if windowCall(rt.Val) {
			return unsupported("a window function")
		}
		if name, ok := unknownFunction(rt.Val, env); ok {
			return unsupported("function " + name + ", unknown on the metadata database (it could be an aggregate),")
		}
		if outerAggregate(rt.Val, env) {
			return unsupported("an aggregate of columns inside a subquery")
		}
		if containsAggregate(rt.Val, env) {
			hasAgg = true
		}
	}
	if !hasAgg {
		return nil
	}
	for _, t := range sel.TargetList {
		fc := t.GetResTarget().GetVal().GetFuncCall()
		if fc == nil {
			return unsupported("an expression that is not a plain count, sum, min or max aggregate")
		}
		schema, name := funcName(fc)
		if schema != "" && schema != "pg_catalog" {
			return unsupported("aggregate " + schema + "." + name)
		}
		if len(fc.AggOrder) > 0 || fc.AggWithinGroup || fc.FuncVariadic {
			return unsupported("an ordered aggregate")
		}
		for _, arg := range fc.Args {
			if containsAggregate(arg, env) {
				return unsupported("a nested aggregate")
			}
		}
		var kind AggregateKind
		switch name {
		case "count":
			kind = AggCount
		case "sum":
			kind = AggSum
		case "min":
			kind = AggMin
		case "max":
			kind = AggMax
		default:
			return unsupported("aggregate " + name)
		}
		if fc.AggDistinct && (kind == AggCount || kind == AggSum) {
			return unsupported(name + "(DISTINCT ...)")
		}
		if kind != AggCount && len(fc.Args) != 1 {
			return unsupported(name + " with several arguments")
		}
		aggs = append(aggs, Aggregate{Kind: kind})
	}
	p.Aggregates = aggs
	return nil
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
