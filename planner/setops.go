package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// planSetOperationScatter plans a UNION, INTERSECT or EXCEPT (ALL or not)
// of co-located distributed tables that every shard can answer for its own
// rows: each arm reads one table, plainly (no aggregate, DISTINCT, GROUP
// BY, window, ORDER BY or LIMIT inside it, no subquery reading distributed
// tables), and every arm selects its table's partition column in the same
// output column. Two equal result rows then have the same key, so they
// come from the same shard, whichever arm they come from: the shards'
// answers are disjoint and their concatenation is the answer (Citus pushes
// a UNION down on the same condition). The statement itself must not order
// or cut the result (that needs every shard's rows: the arms then run
// first, MaterializePlan). It returns an error (0A000) when the condition
// does not hold.
func (p *Plan) planSetOperationScatter(sel *pg_query.SelectStmt, a *analyzer, env Env) error {
	refuse := func(why string) error {
		return sqlerr.Unsupported("a UNION/INTERSECT/EXCEPT over distributed tables runs shard by shard only when %s", why)
	}
	if sel.WithClause != nil || sel.IntoClause != nil || len(sel.LockingClause) > 0 || len(sel.SortClause) > 0 || sel.LimitCount != nil || sel.LimitOffset != nil {
		return refuse("the statement has no WITH, ORDER BY, LIMIT, OFFSET, INTO or locking clause over it")
	}
	var aligned []bool // aligned[i]: every arm so far selects its key as column i
	arms := 0
	var visit func(s *pg_query.SelectStmt) error
	visit = func(s *pg_query.SelectStmt) error {
		if setOperation(s) {
			if s != sel && (s.WithClause != nil || len(s.SortClause) > 0 || s.LimitCount != nil || s.LimitOffset != nil) {
				return refuse("no nested set operation orders or cuts its rows")
			}
			if err := visit(s.Larg); err != nil {
				return err
			}
			return visit(s.Rarg)
		}
		keys, why := armKeyColumns(s, a, env)
		if why != "" {
			return refuse(why)
		}
		if arms == 0 {
			aligned = keys
		}
		if len(keys) != len(aligned) {
			return refuse("every arm has as many columns") // PostgreSQL will say so
		}
		for i := range aligned {
			aligned[i] = aligned[i] && keys[i]
		}
		arms++
		return nil
	}
	if err := visit(sel); err != nil {
		return err
	}
	for _, ok := range aligned {
		if ok {
			return nil
		}
	}
	return refuse("every arm selects its table's partition column in the same output column")
}

// armKeyColumns returns, for one arm of a set operation, which of its
// output columns are the partition column of the one distributed table it
// reads, or why the arm cannot run shard by shard.
func armKeyColumns(s *pg_query.SelectStmt, a *analyzer, env Env) ([]bool, string) {
	if s.WithClause != nil || len(s.SortClause) > 0 || s.LimitCount != nil || s.LimitOffset != nil || len(s.GroupClause) > 0 ||
		s.HavingClause != nil || len(s.DistinctClause) > 0 || len(s.WindowClause) > 0 || len(s.LockingClause) > 0 || s.ValuesLists != nil {
		return nil, "no arm has WITH, ORDER BY, LIMIT, GROUP BY, HAVING, DISTINCT, WINDOW or VALUES"
	}
	if len(s.FromClause) != 1 || s.FromClause[0].GetRangeVar() == nil {
		return nil, "every arm reads one distributed table in its FROM"
	}
	var ref *tableRef
	for _, r := range a.refs {
		if r.rv == s.FromClause[0].GetRangeVar() {
			ref = r
		}
	}
	if ref == nil {
		return nil, "every arm reads one distributed table in its FROM"
	}
	others := false
	walk(s, func(m protoreflect.ProtoMessage) bool {
		if rv, ok := m.(*pg_query.RangeVar); ok && rv != ref.rv {
			for _, r := range a.refs {
				others = others || r.rv == rv
			}
		}
		return !others
	})
	if others {
		return nil, "no arm reads another distributed table in a subquery"
	}
	var keys []bool
	for _, t := range s.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			return nil, "every arm has a plain select list"
		}
		if containsAggregate(rt.Val, env) || windowCall(rt.Val) {
			return nil, "no arm has an aggregate or window function"
		}
		if hasStar(rt.Val) {
			cr := rt.Val.GetColumnRef()
			if len(cr.Fields) > 2 || (len(cr.Fields) == 2 && stringOf(cr.Fields[0]) != ref.name) {
				return nil, "every arm has a plain select list"
			}
			for _, c := range ref.table.Columns {
				keys = append(keys, c.Name == ref.table.KeyColumn)
			}
			continue
		}
		keys = append(keys, isKeyColumn(rt.Val, ref))
	}
	return keys, ""
}

// isKeyColumn reports whether n is a reference to ref's partition column.
func isKeyColumn(n *pg_query.Node, ref *tableRef) bool {
	cr := n.GetColumnRef()
	if cr == nil {
		return false
	}
	var col string
	switch len(cr.Fields) {
	case 1:
		col = stringOf(cr.Fields[0])
	case 2:
		if stringOf(cr.Fields[0]) != ref.name {
			return false
		}
		col = stringOf(cr.Fields[1])
	default:
		return false
	}
	return col != "" && ref.column(col) == ref.table.KeyColumn
}
