package planner

import (
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
)

// planBroadcast makes the plan of a SELECT whose distributed tables cannot
// be joined shard by shard (tables of different co-location groups, a join
// or a self-join not on the partition columns, a correlated subquery over
// another table, a distributed table on the null-extended side of an outer
// join, an ordinary table of the metadata database): one distributed table
// reference is read first, on its own, through pgshard, with the
// conditions of the statement's WHERE that concern it alone, and the rest
// of the statement runs over its rows (a MaterializePlan whose subquery is
// the table). When the rest still reads a distributed table, its shards
// each get the table's rows as array parameters (the smaller side is
// broadcast to every shard of the bigger one); when it reads none, it runs
// in PostgreSQL on the metadata database. A rest that still cannot run is
// planned the same way in turn, one table at a time.
//
// The reference read first is, in order: one on the null-extended side of
// an outer join (the rest must not be), one whose conditions fix its
// partition column (one shard, few rows), one with conditions of its own,
// the last one written. Its rows are held in memory within the
// statement's materialization bound (MaterializePlan: past it the
// statement fails with 54000). nil when the statement is not a plain
// SELECT (locking, INTO, a data-modifying CTE, system columns) or reads no
// distributed table.
func planBroadcast(sql string, snap *catalog.Snapshot, env Env) *MaterializePlan {
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return nil
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || sel.IntoClause != nil {
		return nil
	}
	if call, err := adminCall(tree); call != nil || err != nil {
		return nil
	}
	if cmd, err := sessionCommand(tree); cmd != nil || err != nil {
		return nil
	}
	ok := true
	ctes := map[string]bool{}
	walk(tree, func(m protoreflect.ProtoMessage) bool {
		switch x := m.(type) {
		case *pg_query.SelectStmt:
			ok = ok && len(x.LockingClause) == 0 && x.IntoClause == nil
		case *pg_query.CommonTableExpr:
			ok = ok && x.Ctequery.GetSelectStmt() != nil
			ctes[x.Ctename] = true
		case *pg_query.ColumnRef:
			ok = ok && !(len(x.Fields) > 0 && systemColumns[stringOf(x.Fields[len(x.Fields)-1])])
		}
		return ok
	})
	if !ok {
		return nil
	}
	if !broadcastableSublinks(tree, snap, ctes, env) {
		return nil
	}
	var refs []*broadcastRef
	nullableSel := map[*pg_query.SelectStmt]bool{}
	var fromItem func(s *pg_query.SelectStmt, item *pg_query.Node, nullable bool)
	fromItem = func(s *pg_query.SelectStmt, item *pg_query.Node, nullable bool) {
		switch x := item.Node.(type) {
		case *pg_query.Node_RangeVar:
			rv := x.RangeVar
			if rv.Schemaname == "" && ctes[rv.Relname] {
				return
			}
			if t := snap.Lookup(rv.Schemaname, rv.Relname); t != nil {
				refs = append(refs, &broadcastRef{item: item, rv: rv, table: t, sel: s, nullable: nullable, order: len(refs)})
			}
		case *pg_query.Node_JoinExpr:
			j := x.JoinExpr
			l, r := nullable, nullable
			switch j.Jointype {
			case pg_query.JoinType_JOIN_LEFT:
				r = true
			case pg_query.JoinType_JOIN_RIGHT:
				l = true
			case pg_query.JoinType_JOIN_FULL:
				l, r = true, true
			}
			fromItem(s, j.Larg, l)
			fromItem(s, j.Rarg, r)
		case *pg_query.Node_RangeSubselect:
			if inner := x.RangeSubselect.Subquery.GetSelectStmt(); inner != nil {
				nullableSel[inner] = nullable
			}
		}
	}
	walk(tree, func(m protoreflect.ProtoMessage) bool {
		if s, ok := m.(*pg_query.SelectStmt); ok {
			for _, item := range s.FromClause {
				fromItem(s, item, nullableSel[s])
			}
		}
		return true
	})
	if len(refs) == 0 {
		return nil
	}
	for _, r := range refs {
		r.filters, r.pinned = ownConditions(r, snap, env)
	}
	chosen := slices.MinFunc(refs, func(a, b *broadcastRef) int {
		for _, c := range [][2]bool{{a.nullable, b.nullable}, {a.pinned, b.pinned}, {len(a.filters) > 0, len(b.filters) > 0}} {
			if c[0] != c[1] {
				if c[0] {
					return -1
				}
				return 1
			}
		}
		return b.order - a.order
	})

	from := &pg_query.RangeVar{Schemaname: chosen.rv.Schemaname, Relname: chosen.rv.Relname, Inh: chosen.rv.Inh, Relpersistence: "p", Location: -1}
	if a := chosen.rv.Alias; a != nil && len(a.Colnames) == 0 {
		from.Alias = &pg_query.Alias{Aliasname: a.Aliasname}
	}
	read := &pg_query.SelectStmt{
		Op:         pg_query.SetOperation_SETOP_NONE,
		TargetList: []*pg_query.Node{resTarget("", &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{Fields: []*pg_query.Node{{Node: &pg_query.Node_AStar{AStar: &pg_query.A_Star{}}}}}}})},
		FromClause: []*pg_query.Node{{Node: &pg_query.Node_RangeVar{RangeVar: from}}},
	}
	switch len(chosen.filters) {
	case 0:
	case 1:
		read.WhereClause = cloneNode(chosen.filters[0])
	default:
		read.WhereClause = &pg_query.Node{Node: &pg_query.Node_BoolExpr{BoolExpr: &pg_query.BoolExpr{Boolop: pg_query.BoolExprType_AND_EXPR, Args: cloneNodes(chosen.filters), Location: -1}}}
	}
	sub, ok := materializableSubquery(&pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: read}}, snap, env)
	if !ok {
		return nil
	}
	alias := chosen.rv.Alias
	if alias == nil {
		alias = &pg_query.Alias{Aliasname: chosen.rv.Relname}
	}
	alias = proto.Clone(alias).(*pg_query.Alias)
	return &MaterializePlan{
		Args:       maxParam(tree),
		Subqueries: []*Subquery{sub},
		Broadcast:  chosen.table.Name + " (as " + alias.Aliasname + ")",
		outer:      tree,
		holes:      []materializeHole{{node: chosen.item, subquery: 0, alias: alias}},
	}
}

// broadcastRef is a distributed table reference planBroadcast may read
// first.
type broadcastRef struct {
	item  *pg_query.Node // the FROM item, a RangeVar
	rv    *pg_query.RangeVar
	table *catalog.Table
	// sel is the SELECT whose FROM clause (perhaps in a join) holds it.
	sel *pg_query.SelectStmt
	// nullable: it is on the null-extended side of an outer join (or in a
	// FROM subquery that is).
	nullable bool
	// filters are the conjuncts of sel's WHERE about it alone; pinned is
	// set when one fixes its partition column.
	filters []*pg_query.Node
	pinned  bool
	order   int
}

// ownConditions returns the conjuncts of r's SELECT's WHERE that only read
// r's columns (qualified by its name, or unqualified when every FROM item
// of that SELECT is a distributed table none of whose other columns has
// that name), parameters and constants through immutable functions, and
// whether one is an equality or IN on r's partition column. None for a
// reference on the null-extended side of an outer join, whose WHERE
// conditions apply after the join, nor for one whose alias renames its
// columns.
func ownConditions(r *broadcastRef, snap *catalog.Snapshot, env Env) (filters []*pg_query.Node, pinned bool) {
	if r.nullable || r.sel.WhereClause == nil || (r.rv.Alias != nil && len(r.rv.Alias.Colnames) > 0) {
		return nil, false
	}
	name := r.rv.Relname
	if r.rv.Alias != nil {
		name = r.rv.Alias.Aliasname
	}
	// Unqualified names are r's only when every other FROM item is a
	// distributed table that has no column of that name.
	var others []*catalog.Table
	unqualified := true
	var collect func(n *pg_query.Node) bool
	collect = func(n *pg_query.Node) bool {
		switch x := n.Node.(type) {
		case *pg_query.Node_RangeVar:
			if x.RangeVar == r.rv {
				return true
			}
			t := snap.Lookup(x.RangeVar.Schemaname, x.RangeVar.Relname)
			if t == nil {
				return false
			}
			others = append(others, t)
			return true
		case *pg_query.Node_JoinExpr:
			if len(x.JoinExpr.UsingClause) > 0 || x.JoinExpr.IsNatural {
				return false // USING merges columns of both sides under one name
			}
			return collect(x.JoinExpr.Larg) && collect(x.JoinExpr.Rarg)
		}
		return false
	}
	for _, item := range r.sel.FromClause {
		if !collect(item) {
			unqualified = false
		}
	}
	own := func(n *pg_query.Node) bool {
		ok := true
		walk(n, func(m protoreflect.ProtoMessage) bool {
			switch x := m.(type) {
			case *pg_query.SubLink, *pg_query.SQLValueFunction, *pg_query.A_Star, *pg_query.GroupingFunc:
				ok = false
			case *pg_query.ColumnRef:
				var col string
				switch len(x.Fields) {
				case 1:
					col = stringOf(x.Fields[0])
					if !unqualified {
						ok = false
					}
					for _, t := range others {
						if t.Column(col) != nil {
							ok = false
						}
					}
				case 2:
					if stringOf(x.Fields[0]) != name {
						ok = false
					}
					col = stringOf(x.Fields[1])
				default:
					ok = false
				}
				if col == "" || r.table.Column(col) == nil {
					ok = false
				}
			case *pg_query.FuncCall:
				_, fn := funcName(x)
				info, found := env.Function(fn)
				if !found || !info.Immutable || info.Aggregate || info.Window || x.Over != nil {
					ok = false
				}
			}
			return ok
		})
		return ok
	}
	var conjuncts []*pg_query.Node
	if b := r.sel.WhereClause.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		conjuncts = b.Args
	} else {
		conjuncts = []*pg_query.Node{r.sel.WhereClause}
	}
	for _, c := range conjuncts {
		if !own(c) {
			continue
		}
		filters = append(filters, c)
		if e := c.GetAExpr(); e != nil && (e.Kind == pg_query.A_Expr_Kind_AEXPR_OP || e.Kind == pg_query.A_Expr_Kind_AEXPR_IN) &&
			len(e.Name) == 1 && stringOf(e.Name[0]) == "=" {
			if cr := e.Lexpr.GetColumnRef(); cr != nil && stringOf(cr.Fields[len(cr.Fields)-1]) == r.table.KeyColumn {
				pinned = true
			}
		}
	}
	return filters, pinned
}

// broadcastableSublinks reports whether every subquery expression that
// reads a distributed table is one PostgreSQL runs as a join once the
// table's rows are an array relation without an index: a plain EXISTS or
// NOT EXISTS (a semi- or anti-join, even when correlated), or an IN that
// refers to nothing outside it (then planMaterialize usually takes it
// first). A correlated scalar subquery, NOT IN, ALL or ARRAY would scan the
// array again for every outer row; such statements stay refused.
func broadcastableSublinks(tree *pg_query.ParseResult, snap *catalog.Snapshot, ctes map[string]bool, env Env) bool {
	distributed := func(n protoreflect.ProtoMessage) bool {
		found := false
		walk(n, func(x protoreflect.ProtoMessage) bool {
			if rv, ok := x.(*pg_query.RangeVar); ok && !(rv.Schemaname == "" && ctes[rv.Relname]) && snap.Lookup(rv.Schemaname, rv.Relname) != nil {
				found = true
			}
			return !found
		})
		return found
	}
	ok := true
	walk(tree, func(m protoreflect.ProtoMessage) bool {
		switch x := m.(type) {
		case *pg_query.BoolExpr:
			if x.Boolop == pg_query.BoolExprType_NOT_EXPR {
				for _, a := range x.Args {
					if sl := a.GetSubLink(); sl != nil && sl.SubLinkType == pg_query.SubLinkType_ANY_SUBLINK && distributed(sl.Subselect) {
						ok = false // NOT IN
					}
				}
			}
		case *pg_query.SubLink:
			if !distributed(x.Subselect) {
				return true
			}
			sub := x.Subselect.GetSelectStmt()
			switch x.SubLinkType {
			case pg_query.SubLinkType_EXISTS_SUBLINK:
				ok = ok && sub != nil && !setOperation(sub) && len(sub.GroupClause) == 0 && sub.HavingClause == nil &&
					sub.LimitCount == nil && sub.LimitOffset == nil && len(sub.DistinctClause) == 0 && len(sub.WindowClause) == 0
				for _, t := range sub.GetTargetList() {
					ok = ok && !containsAggregate(t.GetResTarget().GetVal(), env)
				}
			case pg_query.SubLinkType_ANY_SUBLINK:
				probe := wrapSelect(proto.Clone(sub).(*pg_query.SelectStmt))
				var renum paramRenumbering
				renum.apply(probe)
				text, err := pg_query.Deparse(probe)
				if err == nil {
					_, err = env.Describe(text)
				}
				ok = ok && err == nil
			default:
				ok = false
			}
		}
		return ok
	})
	return ok
}
