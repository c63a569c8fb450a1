package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// tableRef is one reference to a distributed table in a statement: one
// RangeVar, with the key value it is pinned to (if any).
type tableRef struct {
	table *catalog.Table
	rv    *pg_query.RangeVar
	// name is what columns are qualified with: the alias, or the table name.
	name string
	// pin is the key value every row this reference reads or writes has;
	// nil when the statement does not fix it.
	pin *Value
	// set, when pin is nil, is a list of key values one of which every row
	// has (key IN (...), key = ANY($1), key = a OR key = b): the shards to
	// run on.
	set   *KeySet
	scope *scope
	// target is set for the table an INSERT, UPDATE or DELETE modifies.
	target bool
	// renamed maps column names given by an alias column list
	// (FROM t AS a(x, y)) to the table's own; nil without such a list.
	renamed map[string]string
}

// column returns the table's column that name denotes through this
// reference (its alias column list, if any), or "".
func (r *tableRef) column(name string) string {
	if r.renamed != nil {
		if orig, ok := r.renamed[name]; ok {
			return orig
		}
		// A column renamed by the list is no longer visible by its own name.
		for alias, orig := range r.renamed {
			if orig == name && alias != name {
				return ""
			}
		}
	}
	if r.table.Column(name) != nil {
		return name
	}
	return ""
}

// scope is one query level: the FROM items whose columns its expressions see.
type scope struct {
	parent *scope
	refs   []*tableRef
	// others counts FROM items that are not distributed tables (ordinary
	// tables, subqueries, functions, CTEs): their columns are unknown here.
	others int
	// names are the range names (aliases) of the non-distributed items.
	names map[string]bool
	ctes  map[string]bool
	// equalities collected from this level's WHERE and inner-join quals.
	keyEqs   [][2]*tableRef
	valueEqs []refValue
	setEqs   []refSet
}

type refSet struct {
	ref *tableRef
	set *KeySet
}

type refValue struct {
	ref *tableRef
	val Value
}

// analyzer walks a statement, scope by scope, and records every distributed
// table reference with its pin.
type analyzer struct {
	snap *catalog.Snapshot
	refs []*tableRef
	// visited holds every RangeVar the structured walk saw, so that a
	// distributed table in a place it does not understand is refused.
	visited  map[*pg_query.RangeVar]bool
	modifies bool
	// ordinaryWrite names a table that is not distributed which the
	// statement writes (INSERT, UPDATE, DELETE target or SELECT INTO): it
	// lives on the metadata database, not on the shards.
	ordinaryWrite string
	err           error
	// links are key-to-key equalities anywhere in the statement (WHERE,
	// the ON of any join, correlated subqueries): references linked to each
	// other only ever meet rows with equal keys, so a co-located join of
	// them can run shard by shard.
	links [][2]*tableRef
	// root is the statement's own query level.
	root *scope
	// insertSelect is set for INSERT ... SELECT into a distributed table.
	insertSelect bool
	// ordinaryRead names an ordinary table (on the metadata database only)
	// the statement reads; it cannot be combined with distributed tables.
	ordinaryRead string
	// references are the references to reference tables (see
	// planner/reference.go): in their scope's refs, so that column names
	// resolve, but not in refs, which route the statement.
	references []*tableRef
}

// topLevelPin reports whether a reference of the statement's own level
// (not a subquery or CTE) is pinned: its WHERE then keeps only that
// shard's rows.
func (a *analyzer) topLevelPin() bool {
	for _, r := range a.refs {
		if r.scope == a.root && r.pin != nil {
			return true
		}
	}
	return false
}

func (a *analyzer) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

func (s *scope) cteVisible(name string) bool {
	for ; s != nil; s = s.parent {
		if s.ctes[name] {
			return true
		}
	}
	return false
}

// newScope makes a query level below parent that inherits the CTE names
// visible there.
func newScope(parent *scope) *scope {
	return &scope{parent: parent, names: map[string]bool{}, ctes: map[string]bool{}}
}

// relation registers a RangeVar of a FROM list (or a statement's target) in
// sc and returns its tableRef when it names a distributed table.
func (a *analyzer) relation(sc *scope, rv *pg_query.RangeVar, target bool) *tableRef {
	a.visited[rv] = true
	alias := rv.Relname
	if rv.Alias != nil && rv.Alias.Aliasname != "" {
		alias = rv.Alias.Aliasname
	}
	// The target of INSERT, UPDATE or DELETE is always a table: a CTE of the
	// same name does not hide it.
	if !target && rv.Schemaname == "" && sc.cteVisible(rv.Relname) {
		sc.others++
		sc.names[alias] = true
		return nil
	}
	t := a.snap.Lookup(rv.Schemaname, rv.Relname)
	if t == nil {
		sc.others++
		sc.names[alias] = true
		if target && a.ordinaryWrite == "" {
			a.ordinaryWrite = rv.Relname
		}
		if !target && a.ordinaryRead == "" && a.snap.IsOrdinary(rv.Schemaname, rv.Relname) {
			a.ordinaryRead = rv.Relname
		}
		return nil
	}
	if rv.Catalogname != "" {
		a.fail(sqlerr.Unsupported("cross-database references are not supported: %s.%s.%s", rv.Catalogname, rv.Schemaname, rv.Relname))
	}
	if t.Invalid != nil {
		a.fail(t.Invalid)
	}
	if len(t.Shards) == 0 {
		a.fail(sqlerr.New(sqlerr.ObjectNotInPrereq, "distributed table \"%s\" has no shards; create them with master_create_worker_shards", t.Name))
	}
	if t.Reference() {
		return a.referenceRelation(sc, rv, t, alias, target)
	}
	if t.KeyIndex < 0 {
		a.fail(sqlerr.New(sqlerr.UndefinedColumn, "partition column \"%s\" of distributed table \"%s\" no longer exists", t.KeyColumn, t.Name))
	}
	ref := &tableRef{table: t, rv: rv, name: alias, scope: sc, target: target}
	if rv.Alias != nil && len(rv.Alias.Colnames) > 0 {
		ref.renamed = map[string]string{}
		for i, cn := range rv.Alias.Colnames {
			if i < len(t.Columns) {
				ref.renamed[stringOf(cn)] = t.Columns[i].Name
			}
		}
	}
	sc.refs = append(sc.refs, ref)
	a.refs = append(a.refs, ref)
	return ref
}

// withClause analyzes the CTEs of a WITH clause and makes their names visible
// in sc.
func (a *analyzer) withClause(sc *scope, w *pg_query.WithClause) {
	if w == nil {
		return
	}
	if w.Recursive {
		for _, c := range w.Ctes {
			sc.ctes[c.GetCommonTableExpr().GetCtename()] = true
		}
	}
	for _, c := range w.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		// A CTE's query sees the enclosing query's outer levels, not its FROM.
		inner := newScope(sc.parent)
		inner.ctes = copySet(sc.ctes)
		a.statement(inner, cte.Ctequery)
		sc.ctes[cte.Ctename] = true
	}
}

func copySet(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// statement analyzes any statement that may appear as a query: SELECT,
// INSERT, UPDATE, DELETE. sc is its own (fresh) scope.
func (a *analyzer) statement(sc *scope, n *pg_query.Node) {
	switch {
	case n.GetSelectStmt() != nil:
		a.selectStmt(sc, n.GetSelectStmt())
	case n.GetInsertStmt() != nil:
		a.insertStmt(sc, n.GetInsertStmt())
	case n.GetUpdateStmt() != nil:
		a.updateStmt(sc, n.GetUpdateStmt())
	case n.GetDeleteStmt() != nil:
		a.deleteStmt(sc, n.GetDeleteStmt())
	default:
		// Anything else nested in a query (rare) is checked by the generic
		// walk for distributed tables.
	}
}

func (a *analyzer) selectStmt(sc *scope, s *pg_query.SelectStmt) {
	if s == nil {
		return
	}
	a.withClause(sc, s.WithClause)
	if s.Op != pg_query.SetOperation_SETOP_NONE && s.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED {
		for _, arm := range []*pg_query.SelectStmt{s.Larg, s.Rarg} {
			inner := newScope(sc.parent)
			inner.ctes = copySet(sc.ctes)
			a.selectStmt(inner, arm)
		}
		a.subqueries(sc, nodesOf(s.SortClause, []*pg_query.Node{s.LimitCount, s.LimitOffset}))
		return
	}
	if s.IntoClause != nil {
		a.modifies = true
		if a.ordinaryWrite == "" && s.IntoClause.Rel != nil {
			a.ordinaryWrite = s.IntoClause.Rel.Relname
		}
	}
	for _, item := range s.FromClause {
		a.fromItem(sc, item)
	}
	a.conjuncts(sc, s.WhereClause)
	a.resolvePins(sc)
	var exprs []*pg_query.Node
	for _, row := range s.ValuesLists {
		exprs = append(exprs, row.GetList().GetItems()...)
	}
	exprs = append(exprs, s.TargetList...)
	exprs = append(exprs, s.WhereClause, s.HavingClause, s.LimitCount, s.LimitOffset)
	exprs = append(exprs, s.GroupClause...)
	exprs = append(exprs, s.SortClause...)
	exprs = append(exprs, s.DistinctClause...)
	exprs = append(exprs, s.WindowClause...)
	a.subqueries(sc, nodesOf(exprs))
	a.fromSubqueries(sc, s.FromClause)
}

// fromItem registers one FROM item in sc; the subqueries inside it are
// analyzed after sc's pins are known (fromSubqueries).
func (a *analyzer) fromItem(sc *scope, item *pg_query.Node) {
	switch x := item.Node.(type) {
	case *pg_query.Node_RangeVar:
		a.relation(sc, x.RangeVar, false)
	case *pg_query.Node_JoinExpr:
		j := x.JoinExpr
		a.fromItem(sc, j.Larg)
		a.fromItem(sc, j.Rarg)
		if j.Jointype == pg_query.JoinType_JOIN_INNER {
			a.conjuncts(sc, j.Quals)
			a.usingEqualities(sc, j)
		} else {
			a.joinLinks(sc, j)
		}
		if j.Alias != nil {
			sc.names[j.Alias.Aliasname] = true
		}
	case *pg_query.Node_RangeSubselect:
		sc.others++
		if x.RangeSubselect.Alias != nil {
			sc.names[x.RangeSubselect.Alias.Aliasname] = true
		}
	case *pg_query.Node_RangeFunction:
		sc.others++
		if x.RangeFunction.Alias != nil {
			sc.names[x.RangeFunction.Alias.Aliasname] = true
		}
	default:
		sc.others++
	}
}

// fromSubqueries analyzes the subqueries, functions and join quals of FROM
// items, once sc's own pins are known.
func (a *analyzer) fromSubqueries(sc *scope, items []*pg_query.Node) {
	for _, item := range items {
		switch x := item.Node.(type) {
		case *pg_query.Node_JoinExpr:
			a.fromSubqueries(sc, []*pg_query.Node{x.JoinExpr.Larg, x.JoinExpr.Rarg})
			a.subqueries(sc, nodesOf([]*pg_query.Node{x.JoinExpr.Quals}))
		case *pg_query.Node_RangeSubselect:
			parent := sc.parent
			if x.RangeSubselect.Lateral {
				parent = sc
			}
			inner := newScope(parent)
			inner.ctes = copySet(sc.ctes)
			a.statement(inner, x.RangeSubselect.Subquery)
		case *pg_query.Node_RangeFunction:
			a.subqueries(sc, x.RangeFunction.Functions)
		}
	}
}

// usingEqualities adds `a JOIN b USING (key)` as an equality of the two keys
// when both sides are single distributed tables.
func (a *analyzer) usingEqualities(sc *scope, j *pg_query.JoinExpr) {
	if len(j.UsingClause) == 0 {
		return
	}
	l, r := j.Larg.GetRangeVar(), j.Rarg.GetRangeVar()
	if l == nil || r == nil {
		return
	}
	lref, rref := sc.refFor(l), sc.refFor(r)
	if lref == nil || rref == nil || lref.table.Reference() || rref.table.Reference() {
		return
	}
	for _, u := range j.UsingClause {
		col := stringOf(u)
		if lref.column(col) == lref.table.KeyColumn && rref.column(col) == rref.table.KeyColumn {
			sc.keyEqs = append(sc.keyEqs, [2]*tableRef{lref, rref})
			a.links = append(a.links, [2]*tableRef{lref, rref})
		}
	}
}

func (sc *scope) refFor(rv *pg_query.RangeVar) *tableRef {
	for _, r := range sc.refs {
		if r.rv == rv {
			return r
		}
	}
	return nil
}

// subqueries analyzes every SubLink in exprs as a query level below sc.
func (a *analyzer) subqueries(sc *scope, exprs []*pg_query.Node) {
	for _, e := range exprs {
		walk(e, func(m protoreflect.ProtoMessage) bool {
			switch x := m.(type) {
			case *pg_query.SubLink:
				inner := newScope(sc)
				a.statement(inner, x.Subselect)
				// The test expression belongs to sc.
				a.subqueries(sc, nodesOf([]*pg_query.Node{x.Testexpr}))
				return false
			case *pg_query.SelectStmt, *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt:
				inner := newScope(sc)
				a.statement(inner, wrapStatement(x))
				return false
			}
			return true
		})
	}
}

func wrapStatement(m protoreflect.ProtoMessage) *pg_query.Node {
	switch x := m.(type) {
	case *pg_query.SelectStmt:
		return &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: x}}
	case *pg_query.InsertStmt:
		return &pg_query.Node{Node: &pg_query.Node_InsertStmt{InsertStmt: x}}
	case *pg_query.UpdateStmt:
		return &pg_query.Node{Node: &pg_query.Node_UpdateStmt{UpdateStmt: x}}
	case *pg_query.DeleteStmt:
		return &pg_query.Node{Node: &pg_query.Node_DeleteStmt{DeleteStmt: x}}
	}
	return &pg_query.Node{}
}

// conjuncts records the key equalities among the top-level AND terms of a
// qualification.
func (a *analyzer) conjuncts(sc *scope, qual *pg_query.Node) {
	if qual == nil {
		return
	}
	if b := qual.GetBoolExpr(); b != nil {
		switch b.Boolop {
		case pg_query.BoolExprType_AND_EXPR:
			for _, arg := range b.Args {
				a.conjuncts(sc, arg)
			}
		case pg_query.BoolExprType_OR_EXPR:
			if ref, set := sc.keySet(qual); ref != nil {
				sc.setEqs = append(sc.setEqs, refSet{ref, set})
			}
		}
		return
	}
	e := qual.GetAExpr()
	if pairs := rowEqualityPairs(e); pairs != nil {
		// (a, b) = (1, 2) is a = 1 AND b = 2.
		for _, pair := range pairs {
			a.conjuncts(sc, pair)
		}
		return
	}
	if e != nil && (e.Kind == pg_query.A_Expr_Kind_AEXPR_IN || e.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ANY) {
		if ref, set := sc.keySet(qual); ref != nil {
			sc.setEqs = append(sc.setEqs, refSet{ref, set})
		}
		return
	}
	if e == nil || e.Kind != pg_query.A_Expr_Kind_AEXPR_OP || !isEqualsOperator(e.Name) {
		return
	}
	lref, rref := sc.keyColumn(e.Lexpr), sc.keyColumn(e.Rexpr)
	switch {
	case lref != nil && rref != nil:
		if lref.table.KeyType == rref.table.KeyType {
			sc.keyEqs = append(sc.keyEqs, [2]*tableRef{lref, rref})
			a.links = append(a.links, [2]*tableRef{lref, rref})
		}
	case lref != nil:
		if v, ok := constValue(e.Rexpr, lref.table.KeyType); ok {
			sc.valueEqs = append(sc.valueEqs, refValue{lref, v})
		}
	case rref != nil:
		if v, ok := constValue(e.Lexpr, rref.table.KeyType); ok {
			sc.valueEqs = append(sc.valueEqs, refValue{rref, v})
		}
	}
}

func isEqualsOperator(name []*pg_query.Node) bool {
	switch len(name) {
	case 1:
		return stringOf(name[0]) == "="
	case 2:
		return stringOf(name[0]) == "pg_catalog" && stringOf(name[1]) == "="
	}
	return false
}

// keyColumn returns the distributed table reference whose shard key the
// column reference n denotes, resolving names as PostgreSQL would; nil when n
// is not such a column or the name cannot be resolved with certainty.
func (sc *scope) keyColumn(n *pg_query.Node) *tableRef {
	cr := n.GetColumnRef()
	if cr == nil {
		return nil
	}
	var qual, col string
	switch len(cr.Fields) {
	case 1:
		col = stringOf(cr.Fields[0])
	case 2:
		qual, col = stringOf(cr.Fields[0]), stringOf(cr.Fields[1])
	case 3: // schema.table.column
		qual, col = stringOf(cr.Fields[1]), stringOf(cr.Fields[2])
	default:
		return nil
	}
	if col == "" {
		return nil
	}
	for s := sc; s != nil; s = s.parent {
		if qual != "" {
			for _, r := range s.refs {
				if r.name == qual {
					if !r.table.Reference() && r.column(col) == r.table.KeyColumn {
						return r
					}
					return nil
				}
			}
			if s.names[qual] {
				return nil
			}
			continue
		}
		var holders []*tableRef
		for _, r := range s.refs {
			if r.column(col) != "" {
				holders = append(holders, r)
			}
		}
		if len(holders) == 1 && holders[0].column(col) == holders[0].table.KeyColumn {
			return holders[0]
		}
		if len(holders) > 0 || s.others > 0 {
			return nil
		}
	}
	return nil
}

// resolvePins pins this level's references from its equalities: a reference
// equal to a value, or to a reference already pinned (here or in an outer
// level), is pinned. Pins never flow outwards.
func (a *analyzer) resolvePins(sc *scope) {
	for _, rs := range sc.setEqs {
		if rs.ref.scope == sc && rs.ref.set == nil {
			rs.ref.set = rs.set
		}
	}
	for _, rv := range sc.valueEqs {
		if rv.ref.scope == sc && rv.ref.pin == nil {
			v := rv.val
			rv.ref.pin = &v
		}
	}
	for changed := true; changed; {
		changed = false
		for _, eq := range sc.keyEqs {
			l, r := eq[0], eq[1]
			if l.pin != nil && r.pin == nil && r.scope == sc {
				r.pin, changed = l.pin, true
			}
			if r.pin != nil && l.pin == nil && l.scope == sc {
				l.pin, changed = r.pin, true
			}
		}
	}
}

func (a *analyzer) insertStmt(sc *scope, s *pg_query.InsertStmt) {
	a.modifies = true
	a.withClause(sc, s.WithClause)
	ref := a.relation(sc, s.Relation, true)
	if s.SelectStmt != nil {
		sel := s.SelectStmt.GetSelectStmt()
		if ref != nil && (sel == nil || len(sel.ValuesLists) == 0 || sel.Op != pg_query.SetOperation_SETOP_NONE && sel.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED) {
			// INSERT ... SELECT: the SELECT is planned on its own (see
			// planInsertSelect); its references are not part of this plan.
			a.insertSelect = true
			sc.others++
			a.subqueries(sc, s.ReturningList)
			return
		}
		inner := newScope(sc.parent)
		inner.ctes = copySet(sc.ctes)
		a.statement(inner, s.SelectStmt)
	}
	if ref != nil {
		// The key values of VALUES rows are read by planInsert; an INSERT's
		// target is pinned per row, not by a WHERE.
		if occ := s.OnConflictClause; occ != nil {
			a.checkKeyAssignment(ref, occ.TargetList)
		}
	}
	if occ := s.OnConflictClause; occ != nil {
		sc.names["excluded"] = true
		sc.others++
		a.subqueries(sc, nodesOf(occ.TargetList, []*pg_query.Node{occ.WhereClause}))
	}
	a.subqueries(sc, s.ReturningList)
}

func (a *analyzer) updateStmt(sc *scope, s *pg_query.UpdateStmt) {
	a.modifies = true
	a.withClause(sc, s.WithClause)
	ref := a.relation(sc, s.Relation, true)
	for _, item := range s.FromClause {
		a.fromItem(sc, item)
	}
	a.conjuncts(sc, s.WhereClause)
	a.resolvePins(sc)
	if ref != nil {
		a.checkKeyAssignment(ref, s.TargetList)
	}
	a.subqueries(sc, nodesOf(s.TargetList, []*pg_query.Node{s.WhereClause}, s.ReturningList))
	a.fromSubqueries(sc, s.FromClause)
}

func (a *analyzer) deleteStmt(sc *scope, s *pg_query.DeleteStmt) {
	a.modifies = true
	a.withClause(sc, s.WithClause)
	a.relation(sc, s.Relation, true)
	for _, item := range s.UsingClause {
		a.fromItem(sc, item)
	}
	a.conjuncts(sc, s.WhereClause)
	a.resolvePins(sc)
	a.subqueries(sc, nodesOf([]*pg_query.Node{s.WhereClause}, s.ReturningList))
	a.fromSubqueries(sc, s.UsingClause)
}

// checkKeyAssignment refuses SET key = ..., which would move a row to
// another shard.
func (a *analyzer) checkKeyAssignment(ref *tableRef, targets []*pg_query.Node) {
	for _, t := range targets {
		rt := t.GetResTarget()
		if rt == nil {
			continue
		}
		if rt.Name == ref.table.KeyColumn {
			a.fail(sqlerr.Unsupported("modifying the partition value of rows is not allowed: column \"%s\" of distributed table \"%s\"", rt.Name, ref.table.Name))
		}
		// SET (a, b) = (...) lists columns as separate ResTargets too.
	}
}

// checkAllVisited refuses a statement with a distributed table in a place the
// structured walk does not understand.
func (a *analyzer) checkAllVisited(tree protoreflect.ProtoMessage) {
	walk(tree, func(m protoreflect.ProtoMessage) bool {
		rv, ok := m.(*pg_query.RangeVar)
		if !ok || a.visited[rv] {
			return true
		}
		if rv.Relpersistence == "t" {
			return true // a temporary relation being created: never distributed
		}
		if t := a.snap.Lookup(rv.Schemaname, rv.Relname); t != nil {
			a.fail(sqlerr.Unsupported("distributed table \"%s\" is not supported in this position", t.Name))
		}
		return true
	})
}

// KeySet is a list of key values, one of which every row of a table
// reference has: literals and parameters, and array parameters
// (key = ANY($1)) whose elements are the values.
type KeySet struct {
	Values      []Value
	ArrayParams []int
}

// keySet recognizes key IN (...), key = ANY(array), row constructors that
// hold the key ((key, b) IN ((1, 2), (3, 4)), (key, b) = (1, 2)), and ORs of
// those (or of conjunctions holding one of them) over one reference; it
// returns nil when n is none of those.
func (sc *scope) keySet(n *pg_query.Node) (*tableRef, *KeySet) {
	if b := n.GetBoolExpr(); b != nil {
		if b.Boolop != pg_query.BoolExprType_OR_EXPR {
			return nil, nil
		}
		return sc.orKeySet(b.Args)
	}
	e := n.GetAExpr()
	if e == nil || !isEqualsOperator(e.Name) {
		return nil, nil
	}
	if e.Kind == pg_query.A_Expr_Kind_AEXPR_IN && e.Lexpr.GetRowExpr() != nil {
		return sc.rowInKeySet(e)
	}
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		if ref := sc.keyColumn(e.Lexpr); ref != nil {
			if v, ok := constValue(e.Rexpr, ref.table.KeyType); ok {
				return ref, &KeySet{Values: []Value{v}}
			}
		}
		if ref := sc.keyColumn(e.Rexpr); ref != nil {
			if v, ok := constValue(e.Lexpr, ref.table.KeyType); ok {
				return ref, &KeySet{Values: []Value{v}}
			}
		}
	case pg_query.A_Expr_Kind_AEXPR_IN:
		ref := sc.keyColumn(e.Lexpr)
		list := e.Rexpr.GetList()
		if ref == nil || list == nil {
			return nil, nil
		}
		out := &KeySet{}
		for _, item := range list.Items {
			v, ok := constValue(item, ref.table.KeyType)
			if !ok {
				return nil, nil
			}
			out.Values = append(out.Values, v)
		}
		return ref, out
	case pg_query.A_Expr_Kind_AEXPR_OP_ANY:
		ref := sc.keyColumn(e.Lexpr)
		if ref == nil {
			return nil, nil
		}
		arr := e.Rexpr
		if tc := arr.GetTypeCast(); tc != nil && tc.TypeName != nil && len(tc.TypeName.ArrayBounds) > 0 {
			elem := proto.Clone(tc.TypeName).(*pg_query.TypeName)
			elem.ArrayBounds = nil
			if oid, ok := castTypeOID(elem); !ok || !sameHashFamily(oid, ref.table.KeyType) {
				return nil, nil
			}
			arr = tc.Arg
		}
		if pr := arr.GetParamRef(); pr != nil {
			return ref, &KeySet{ArrayParams: []int{int(pr.Number)}}
		}
		if ae := arr.GetAArrayExpr(); ae != nil {
			out := &KeySet{}
			for _, item := range ae.Elements {
				v, ok := constValue(item, ref.table.KeyType)
				if !ok {
					return nil, nil
				}
				out.Values = append(out.Values, v)
			}
			return ref, out
		}
	}
	return nil, nil
}

// joinLinks records the key-to-key equalities among the top-level AND terms
// of an outer join's ON clause (and its USING columns): they do not pin
// anything, but they keep matching rows within one shard.
func (a *analyzer) joinLinks(sc *scope, j *pg_query.JoinExpr) {
	var visit func(q *pg_query.Node)
	visit = func(q *pg_query.Node) {
		if q == nil {
			return
		}
		if b := q.GetBoolExpr(); b != nil {
			if b.Boolop == pg_query.BoolExprType_AND_EXPR {
				for _, arg := range b.Args {
					visit(arg)
				}
			}
			return
		}
		e := q.GetAExpr()
		if e == nil || e.Kind != pg_query.A_Expr_Kind_AEXPR_OP || !isEqualsOperator(e.Name) {
			return
		}
		l, r := sc.keyColumn(e.Lexpr), sc.keyColumn(e.Rexpr)
		if l != nil && r != nil && l.table.KeyType == r.table.KeyType {
			a.links = append(a.links, [2]*tableRef{l, r})
		}
	}
	visit(j.Quals)
	if len(j.UsingClause) > 0 {
		if l, r := j.Larg.GetRangeVar(), j.Rarg.GetRangeVar(); l != nil && r != nil {
			lref, rref := sc.refFor(l), sc.refFor(r)
			for _, u := range j.UsingClause {
				col := stringOf(u)
				if lref != nil && rref != nil && !lref.table.Reference() && !rref.table.Reference() && lref.column(col) == lref.table.KeyColumn && rref.column(col) == rref.table.KeyColumn {
					a.links = append(a.links, [2]*tableRef{lref, rref})
				}
			}
		}
	}
}

// linked reports whether every reference is linked, through key
// equalities, to the first.
func (a *analyzer) linked() bool {
	parent := map[*tableRef]*tableRef{}
	var find func(r *tableRef) *tableRef
	find = func(r *tableRef) *tableRef {
		if p, ok := parent[r]; ok && p != r {
			root := find(p)
			parent[r] = root
			return root
		}
		return r
	}
	for _, l := range a.links {
		parent[find(l[0])] = find(l[1])
	}
	root := find(a.refs[0])
	for _, r := range a.refs[1:] {
		if find(r) != root {
			return false
		}
	}
	return true
}
