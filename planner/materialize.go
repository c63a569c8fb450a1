package planner

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	plantypes "github.com/pgshard/pgshard/plan"
)

// MaterializePlan answers a SELECT whose CTEs, FROM subqueries or
// uncorrelated subquery expressions read distributed tables in a way the
// shards cannot split (LIMIT, aggregates, window functions inside them):
// each such subquery runs first, on its own,
// through pgshard, and its rows are then passed to the rest of the statement
// as a relation built from arrays (one parameter per column, each value
// cast back to the subquery's own column type), which pgshard plans and runs
// like any statement. The subquery's values travel in PostgreSQL's own
// binary form (the subquery passes a column to its type's send function,
// Subquery.SQLSending) or text form (it casts the column to text), as the
// executor chooses per column type, so nothing is converted in Go.
//
// Each subquery's rows are held in memory while the statement runs.
type MaterializePlan struct {
	// Subqueries run first, in order.
	Subqueries []*Subquery
	// Args is the number of the statement's own parameters (its highest $n);
	// the arrays are numbered after them.
	Args int
	// Broadcast, when set, names the distributed table reference (planBroadcast)
	// whose rows the one subquery reads: "visits (as v)".
	Broadcast string

	outer *pg_query.ParseResult
	// holes are the nodes of outer that the subqueries' relations replace.
	holes []materializeHole
	mu    sync.Mutex
	cache map[string]materializedSQL
}

// Subquery is one subquery a MaterializePlan runs first.
type Subquery struct {
	// SQL is the subquery with every output column cast to text; TypedSQL
	// the subquery itself, which the metadata database describes for the
	// column types. Both take Params (statement parameters, in order).
	SQL, TypedSQL string
	Params        []int
	// Names are the column names the rest of the statement sees it by (its
	// alias list), or nil for the subquery's own.
	Names []string

	// tree is the subquery as SQL's, before its columns are cast.
	tree *pg_query.ParseResult
	// literals, for the arm of a set operation, hold the untyped literals
	// ('x', NULL) of its select list by column: the statement over its rows
	// selects them as written, so that PostgreSQL resolves their type
	// against the other arms' as it would have.
	literals []*pg_query.Node
	mu       sync.Mutex
	sends    map[string]string
}

// SQLSending returns the subquery with output column i passed to the
// function sends[i] (a type's binary output function, such as
// pg_catalog.timestamptz_send, returning bytea) or, where sends[i] is "",
// cast to text as in SQL. A function name followed by Base64Suffix
// ("pg_catalog.array_send|base64") has its bytes encoded in base64, as
// text, which reads the same in every protocol mode and bytea_output. It
// is built once per list.
func (sq *Subquery) SQLSending(sends []string) (string, error) {
	key := strings.Join(sends, "\x00")
	sq.mu.Lock()
	defer sq.mu.Unlock()
	if s, ok := sq.sends[key]; ok {
		return s, nil
	}
	tree := proto.Clone(sq.tree).(*pg_query.ParseResult)
	targets := tree.Stmts[0].Stmt.GetSelectStmt().TargetList
	if len(sends) != len(targets) {
		return "", sqlerr.New(sqlerr.InternalError, "materialized subquery has %d columns, %d sent", len(targets), len(sends))
	}
	for i, t := range targets {
		rt := t.GetResTarget()
		rt.Val = sending(rt.Val, sends[i])
	}
	text, err := pg_query.Deparse(tree)
	if err != nil {
		return "", sqlerr.New(sqlerr.InternalError, "deparsing materialized subquery: %v", err)
	}
	if sq.sends == nil {
		sq.sends = map[string]string{}
	}
	sq.sends[key] = text
	return text, nil
}

// sending returns v passed to the send function send ("schema.name",
// optionally followed by Base64Suffix: its bytes then encoded in base64),
// or cast to text where send is "" (Subquery.SQLSending).
func sending(v *pg_query.Node, send string) *pg_query.Node {
	if send == "" {
		return typeCast(v, "text")
	}
	send, base64 := strings.CutSuffix(send, Base64Suffix)
	schema, fn, _ := strings.Cut(send, ".")
	v = &pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: &pg_query.FuncCall{
		Funcname: []*pg_query.Node{pg_query.MakeStrNode(schema), pg_query.MakeStrNode(fn)},
		Args:     []*pg_query.Node{v}, Location: -1}}}
	if base64 {
		v = &pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: &pg_query.FuncCall{
			Funcname: []*pg_query.Node{pg_query.MakeStrNode("pg_catalog"), pg_query.MakeStrNode("encode")},
			Args:     []*pg_query.Node{v, pg_query.MakeAConstStrNode("base64", -1)}, Location: -1}}}
	}
	return v
}

// Base64Suffix, after a send function's name in Subquery.SQLSending, has
// the subquery return that function's bytes in base64 (plan.Base64Suffix).
const Base64Suffix = plantypes.Base64Suffix

type materializeHole struct {
	node *pg_query.Node
	// arm, when set instead of node, is the arm of a set operation
	// (UNION, INTERSECT, EXCEPT) the subquery's rows replace.
	arm      **pg_query.SelectStmt
	subquery int
	// alias names the relation in a FROM clause; nil for a subquery
	// expression (scalar, IN, EXISTS, ARRAY), whose SELECT is replaced.
	alias *pg_query.Alias
}

type materializedSQL struct {
	sql    string
	params []int
}

// MaterializeInput is what the rest of the statement needs of each
// subquery's columns (plan.MaterializeInput).
type MaterializeInput = plantypes.MaterializeInput

// SQL returns the statement over the subqueries' rows for these column
// types, and for each of its parameters which argument it takes: a
// statement argument (1..Args), or Args+1+i for the i-th array (subquery by
// subquery, column by column).
func (m *MaterializePlan) SQL(in MaterializeInput) (string, []int, error) {
	key := ""
	for i := range in.Types {
		key += strings.Join(in.Names[i], "\x00") + "\x01" + strings.Join(in.Types[i], "\x00") + "\x01" + fmt.Sprint(binaryOf(in.Binary, i)) + "\x02"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.cache[key]; ok {
		return c.sql, c.params, nil
	}
	firstArray := make([]int, len(m.Subqueries))
	next := m.Args + 1
	for i := range m.Subqueries {
		firstArray[i] = next
		next += len(in.Types[i])
	}
	tree := m.fill(func(i int) *pg_query.Node {
		return arrayRelation(in.Names[i], in.Types[i], binaryOf(in.Binary, i), firstArray[i], m.Subqueries[i].literals)
	})
	params := compactParamsOf(tree)
	text, err := pg_query.Deparse(tree)
	if err != nil {
		return "", nil, sqlerr.New(sqlerr.InternalError, "deparsing statement over materialized subqueries: %v", err)
	}
	if m.cache == nil {
		m.cache = map[string]materializedSQL{}
	}
	m.cache[key] = materializedSQL{text, params}
	return text, params, nil
}

// fill returns a copy of the statement with each hole replaced by the
// relation rel(i) builds for subquery i (a SELECT). The caller holds m.mu.
func (m *MaterializePlan) fill(rel func(i int) *pg_query.Node) *pg_query.ParseResult {
	saved := make([]*pg_query.Node, len(m.holes))
	savedArms := make([]*pg_query.SelectStmt, len(m.holes))
	for i, h := range m.holes {
		r := rel(h.subquery)
		if h.arm != nil {
			savedArms[i] = *h.arm
			*h.arm = r.GetSelectStmt()
			continue
		}
		saved[i] = proto.Clone(h.node).(*pg_query.Node)
		if h.alias == nil {
			h.node.Node = r.Node
			continue
		}
		h.node.Node = &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{Subquery: r, Alias: h.alias}}
	}
	tree := proto.Clone(m.outer).(*pg_query.ParseResult)
	for i, h := range m.holes {
		if h.arm != nil {
			*h.arm = savedArms[i]
			continue
		}
		h.node.Node = saved[i].Node
	}
	return tree
}

// Outline returns the statement that runs over the subqueries' rows, each
// subquery's rows written as a relation "subquery N" (as EXPLAIN shows
// it), or "" when it cannot be written.
func (m *MaterializePlan) Outline() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	tree := m.fill(func(i int) *pg_query.Node {
		sel := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE,
			TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{Fields: []*pg_query.Node{{Node: &pg_query.Node_AStar{AStar: &pg_query.A_Star{}}}}}}}}}}},
			FromClause: []*pg_query.Node{{Node: &pg_query.Node_RangeVar{RangeVar: &pg_query.RangeVar{Relname: "subquery " + strconv.Itoa(i+1), Inh: true, Relpersistence: "p", Location: -1}}}},
		}
		return &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}
	})
	text, err := pg_query.Deparse(tree)
	if err != nil {
		return ""
	}
	return text
}

// binaryOf is bin[i], or nil.
func binaryOf(bin [][]bool, i int) []bool {
	if i < len(bin) {
		return bin[i]
	}
	return nil
}

// arrayRelation builds `SELECT u.c1::T1 AS name1, ... FROM unnest($first::text[],
// ...) AS u(c1, ...)`, with `$n::T[]` for a column that travels in binary
// (binary[i]).
func arrayRelation(names, types []string, binary []bool, first int, literals []*pg_query.Node) *pg_query.Node {
	sel := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE}
	fn := &pg_query.FuncCall{Funcname: []*pg_query.Node{pg_query.MakeStrNode("unnest")}, Location: -1}
	alias := &pg_query.Alias{Aliasname: "u"}
	for i := range types {
		c := "c" + strconv.Itoa(i+1)
		if i < len(literals) && literals[i] != nil {
			sel.TargetList = append(sel.TargetList, resTarget(names[i], cloneNode(literals[i])))
		} else {
			sel.TargetList = append(sel.TargetList, resTarget(names[i], typeCast(columnRef("u", c), types[i])))
		}
		arrayType := "text[]"
		if i < len(binary) && binary[i] {
			arrayType = types[i] + "[]"
		}
		fn.Args = append(fn.Args, typeCast(&pg_query.Node{Node: &pg_query.Node_ParamRef{ParamRef: &pg_query.ParamRef{Number: int32(first + i), Location: -1}}}, arrayType))
		alias.Colnames = append(alias.Colnames, pg_query.MakeStrNode(c))
	}
	sel.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeFunction{RangeFunction: &pg_query.RangeFunction{
		Functions: []*pg_query.Node{pg_query.MakeListNode([]*pg_query.Node{{Node: &pg_query.Node_FuncCall{FuncCall: fn}}, {}})},
		Alias:     alias,
	}}}}
	return &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}
}

// planMaterialize makes the MaterializePlan of a SELECT that the shards
// cannot run as it is, or returns nil when it has no CTE or FROM subquery
// that reads distributed tables and can be materialized: a non-recursive
// WITH whose queries are plain SELECTs (not referring to each other), and
// FROM subqueries that are not LATERAL.
func planMaterialize(sql string, snap *catalog.Snapshot, env Env) *MaterializePlan {
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return nil
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || sel.IntoClause != nil || len(sel.LockingClause) > 0 {
		return nil
	}
	m := &MaterializePlan{Args: maxParam(tree), outer: tree}
	dropped := false
	distributed := func(n protoreflect.ProtoMessage) bool {
		found := false
		walk(n, func(x protoreflect.ProtoMessage) bool {
			if rv, ok := x.(*pg_query.RangeVar); ok && snap.Lookup(rv.Schemaname, rv.Relname) != nil {
				found = true
			}
			return !found
		})
		return found
	}
	add := func(q *pg_query.Node, colnames []*pg_query.Node) (int, bool) {
		sub, ok := materializableSubquery(q, snap, env)
		if !ok {
			return 0, false
		}
		for _, c := range colnames {
			sub.Names = append(sub.Names, stringOf(c))
		}
		m.Subqueries = append(m.Subqueries, sub)
		return len(m.Subqueries) - 1, true
	}
	// The arms of a set operation that read distributed tables run first,
	// each on its own; the set operation itself (and the ORDER BY, LIMIT
	// over it) runs over their rows. An arm inside a subquery expression
	// must not refer to the statement's columns (describe says so).
	var armHoles func(s *pg_query.SelectStmt, uncorrelated bool) bool
	armHoles = func(s *pg_query.SelectStmt, uncorrelated bool) bool {
		for _, arm := range []**pg_query.SelectStmt{&s.Larg, &s.Rarg} {
			a := *arm
			if a == nil || !distributed(a) {
				continue
			}
			if setOperation(a) && a.WithClause == nil {
				if !armHoles(a, uncorrelated) {
					return false
				}
				continue
			}
			sub, ok := materializableSubquery(&pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: a}}, snap, env)
			if !ok {
				return false
			}
			if uncorrelated {
				if _, err := env.Describe(sub.TypedSQL); err != nil {
					return false
				}
			}
			sub.literals = untypedLiterals(a)
			m.Subqueries = append(m.Subqueries, sub)
			m.holes = append(m.holes, materializeHole{arm: arm, subquery: len(m.Subqueries) - 1})
		}
		return true
	}
	if setOperation(sel) && !armHoles(sel, false) {
		return nil
	}
	if w := sel.WithClause; w != nil {
		if w.Recursive {
			return nil
		}
		names := map[string]bool{}
		var kept []*pg_query.Node
		for _, c := range w.Ctes {
			cte := c.GetCommonTableExpr()
			if cte == nil || cte.Ctequery.GetSelectStmt() == nil {
				return nil
			}
			// A CTE reading an earlier one would need that one's rows.
			refersToCTE := false
			walk(cte.Ctequery, func(x protoreflect.ProtoMessage) bool {
				if rv, ok := x.(*pg_query.RangeVar); ok && rv.Schemaname == "" && names[rv.Relname] {
					refersToCTE = true
				}
				return !refersToCTE
			})
			if refersToCTE {
				return nil
			}
			names[cte.Ctename] = true
			if !distributed(cte.Ctequery) {
				kept = append(kept, c)
				continue
			}
			q := cte.Ctequery
			if setOperation(q.GetSelectStmt()) {
				// A set operation runs first as a statement of its own.
				if q = wrapSetOperation(q.GetSelectStmt(), env); q == nil {
					return nil
				}
			}
			i, ok := add(q, cte.Aliascolnames)
			if !ok {
				return nil
			}
			// Every reference to the CTE reads the subquery's rows.
			found := false
			walk(sel, func(x protoreflect.ProtoMessage) bool {
				n, ok := x.(*pg_query.Node)
				if !ok {
					return true
				}
				if n.GetCommonTableExpr() != nil || n.GetWithClause() != nil {
					return false
				}
				rv := n.GetRangeVar()
				if rv == nil || rv.Schemaname != "" || rv.Relname != cte.Ctename {
					return true
				}
				alias := rv.Alias
				if alias == nil {
					alias = &pg_query.Alias{Aliasname: cte.Ctename}
				}
				m.holes = append(m.holes, materializeHole{node: n, subquery: i, alias: alias})
				found = true
				return false
			})
			if !found {
				// An unused CTE is still run by PostgreSQL only if it
				// modifies; a SELECT one is not: drop it.
				m.Subqueries = m.Subqueries[:i]
				dropped = true
			}
		}
		if len(kept) == 0 {
			sel.WithClause = nil
		} else {
			w.Ctes = kept
		}
	}
	var fromItem func(n *pg_query.Node) bool
	fromItem = func(n *pg_query.Node) bool {
		switch {
		case n.GetJoinExpr() != nil:
			return fromItem(n.GetJoinExpr().Larg) && fromItem(n.GetJoinExpr().Rarg)
		case n.GetRangeSubselect() != nil:
			rs := n.GetRangeSubselect()
			if !distributed(rs.Subquery) {
				return true
			}
			if rs.Lateral || rs.Alias == nil {
				return false
			}
			if inner := rs.Subquery.GetSelectStmt(); setOperation(inner) {
				return armHoles(inner, false)
			}
			i, ok := add(rs.Subquery, rs.Alias.Colnames)
			if !ok {
				return false
			}
			m.holes = append(m.holes, materializeHole{node: n, subquery: i, alias: &pg_query.Alias{Aliasname: rs.Alias.Aliasname}})
		}
		return true
	}
	for _, f := range sel.FromClause {
		if !fromItem(f) {
			return nil
		}
	}
	// Subquery expressions that read distributed tables and do not refer
	// to the statement's own columns (PostgreSQL can describe them on their
	// own): in the select list, WHERE, HAVING and ORDER BY.
	exprs := []*pg_query.Node{sel.WhereClause, sel.HavingClause}
	for _, t := range sel.TargetList {
		exprs = append(exprs, t.GetResTarget().GetVal())
	}
	for _, o := range sel.SortClause {
		exprs = append(exprs, o.GetSortBy().GetNode())
	}
	failed := false
	for _, e := range exprs {
		if e == nil {
			continue
		}
		walk(e, func(x protoreflect.ProtoMessage) bool {
			sl, ok := x.(*pg_query.SubLink)
			if !ok {
				return true
			}
			switch sl.SubLinkType {
			case pg_query.SubLinkType_EXPR_SUBLINK, pg_query.SubLinkType_ANY_SUBLINK, pg_query.SubLinkType_EXISTS_SUBLINK, pg_query.SubLinkType_ARRAY_SUBLINK:
			default:
				return true
			}
			if !distributed(sl.Subselect) {
				return true
			}
			if inner := sl.Subselect.GetSelectStmt(); setOperation(inner) {
				if !armHoles(inner, true) {
					failed = true
				}
				return false
			}
			sub, ok := materializableSubquery(sl.Subselect, snap, env)
			if !ok {
				return true
			}
			if _, err := env.Describe(sub.TypedSQL); err != nil {
				return true // correlated, or not valid on its own
			}
			m.Subqueries = append(m.Subqueries, sub)
			m.holes = append(m.holes, materializeHole{node: sl.Subselect, subquery: len(m.Subqueries) - 1})
			return false
		})
	}
	if failed || (len(m.Subqueries) == 0 && !dropped) {
		return nil
	}
	return m
}

// untypedLiterals returns, by column of s's select list, its string
// literals and NULLs written without a cast, or nil when it has none (or a
// *, whose columns are not known here).
func untypedLiterals(s *pg_query.SelectStmt) []*pg_query.Node {
	var out []*pg_query.Node
	found := false
	for _, t := range s.TargetList {
		v := t.GetResTarget().GetVal()
		if hasStar(v) {
			return nil
		}
		var lit *pg_query.Node
		if c := v.GetAConst(); c != nil && (c.Isnull || c.GetSval() != nil) {
			lit, found = v, true
		}
		out = append(out, lit)
	}
	if !found {
		return nil
	}
	return out
}

// setOperation reports whether s is a UNION, INTERSECT or EXCEPT.
func setOperation(s *pg_query.SelectStmt) bool {
	return s != nil && s.Op != pg_query.SetOperation_SETOP_NONE && s.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED
}

// wrapSetOperation returns `SELECT s.c1 AS name1, ... FROM (s) s(c1, ...)`,
// the set operation as a plain SELECT a MaterializePlan can run first (its
// arms are then materialized in turn when it runs), or nil when the
// metadata database cannot describe it.
func wrapSetOperation(s *pg_query.SelectStmt, env Env) *pg_query.Node {
	var renum paramRenumbering
	probe := wrapSelect(proto.Clone(s).(*pg_query.SelectStmt))
	renum.apply(probe)
	text, err := pg_query.Deparse(probe)
	if err != nil {
		return nil
	}
	cols, err := env.Describe(text)
	if err != nil || len(cols) == 0 {
		return nil
	}
	alias := &pg_query.Alias{Aliasname: "s"}
	sel := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE}
	for i, c := range cols {
		name := "c" + strconv.Itoa(i+1)
		alias.Colnames = append(alias.Colnames, pg_query.MakeStrNode(name))
		sel.TargetList = append(sel.TargetList, resTarget(c.Name, columnRef("s", name)))
	}
	sel.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
		Subquery: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: proto.Clone(s).(*pg_query.SelectStmt)}},
		Alias:    alias,
	}}}}
	return &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}
}

// materializedName is the name of column i of a subquery as it runs first:
// the rest of the statement knows the columns by the names TypedSQL has.
func materializedName(i int) string { return "?pgshard_c" + strconv.Itoa(i+1) }

// materializableSubquery turns a subquery into the statement that returns
// its rows as text: every output column cast to text, its ORDER BY and
// GROUP BY written with the expressions their positions and output names
// stand for (casting must not change them). ok is false for a subquery this
// cannot be done for: a set operation, DISTINCT (equal values may differ as
// text), a * over anything but one distributed table, a GROUP BY or
// DISTINCT ON by position or output name.
func materializableSubquery(q *pg_query.Node, snap *catalog.Snapshot, env Env) (*Subquery, bool) {
	orig := q.GetSelectStmt()
	if orig == nil || (orig.Op != pg_query.SetOperation_SETOP_NONE && orig.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED) ||
		orig.IntoClause != nil || len(orig.LockingClause) > 0 || orig.ValuesLists != nil || len(orig.TargetList) == 0 {
		return nil, false
	}
	sel := proto.Clone(orig).(*pg_query.SelectStmt)
	distinct := plainDistinct(sel)
	// Expand * over a single distributed table, so each column can be cast.
	var targets []*pg_query.Node
	for _, t := range sel.TargetList {
		rt := t.GetResTarget()
		if rt == nil {
			return nil, false
		}
		if !hasStar(rt.Val) {
			targets = append(targets, t)
			continue
		}
		if len(sel.FromClause) != 1 || sel.FromClause[0].GetRangeVar() == nil {
			return nil, false
		}
		rv := sel.FromClause[0].GetRangeVar()
		table := snap.Lookup(rv.Schemaname, rv.Relname)
		if table == nil || (rv.Alias != nil && len(rv.Alias.Colnames) > 0) {
			return nil, false
		}
		rel := rv.Relname
		if rv.Alias != nil {
			rel = rv.Alias.Aliasname
		}
		if cr := rt.Val.GetColumnRef(); len(cr.Fields) > 2 || (len(cr.Fields) == 2 && stringOf(cr.Fields[0]) != rel) {
			return nil, false
		}
		for _, c := range table.Columns {
			targets = append(targets, resTarget(c.Name, columnRef(rel, c.Name)))
		}
	}
	sel.TargetList = targets
	outputName := func(n *pg_query.Node) bool {
		cr := n.GetColumnRef()
		if cr == nil || len(cr.Fields) != 1 {
			return false
		}
		name := stringOf(cr.Fields[0])
		for _, t := range sel.TargetList {
			if t.GetResTarget().Name == name {
				return true
			}
		}
		return false
	}
	isPosition := func(n *pg_query.Node) bool { return n.GetAConst() != nil }
	if distinct {
		// DISTINCT compares the values, not their text (1.0 and 1.00 are
		// one numeric): group by the select list instead, which is the
		// same when nothing else is grouped or aggregated.
		if len(sel.GroupClause) > 0 || sel.HavingClause != nil || len(sel.WindowClause) > 0 {
			return nil, false
		}
		for _, t := range sel.TargetList {
			val := t.GetResTarget().Val
			if containsAggregate(val, env) || windowCall(val) {
				return nil, false
			}
			if _, unknown := unknownFunction(val, env); unknown {
				return nil, false
			}
			sel.GroupClause = append(sel.GroupClause, cloneNode(val))
		}
		sel.DistinctClause = nil
	}
	for i, g := range sel.GroupClause {
		if g.GetGroupingSet() != nil || outputName(g) {
			return nil, false
		}
		if c := g.GetAConst(); c != nil {
			// A position stands for that select-list expression.
			iv, ok := c.Val.(*pg_query.A_Const_Ival)
			if !ok || iv.Ival.Ival < 1 || int(iv.Ival.Ival) > len(sel.TargetList) {
				return nil, false
			}
			sel.GroupClause[i] = cloneNode(sel.TargetList[iv.Ival.Ival-1].GetResTarget().Val)
		}
	}
	for _, d := range sel.DistinctClause {
		if d != nil && d.Node != nil && (isPosition(d) || outputName(d)) {
			return nil, false
		}
	}
	for _, s := range sel.SortClause {
		sb := s.GetSortBy()
		if c := sb.Node.GetAConst(); c != nil {
			if _, ok := c.Val.(*pg_query.A_Const_Ival); !ok {
				return nil, false
			}
		}
		sb.Node = cloneNode(resolveSortExpr(sel, nil, sb.Node))
		if sb.Node.GetAConst() != nil {
			return nil, false // a position past the select list: let PostgreSQL say so
		}
	}
	typed := proto.Clone(sel).(*pg_query.SelectStmt)
	uncast := proto.Clone(sel).(*pg_query.SelectStmt)
	// The cast (or sent) columns get names of their own: an ORDER BY name
	// left in the statement (resolved above to the expression it stands
	// for, often the input column of the same name) must not bind to an
	// output column, whose value is now text or bytea and sorts otherwise.
	for i, t := range sel.TargetList {
		rt := t.GetResTarget()
		sel.TargetList[i] = resTarget(materializedName(i), typeCast(rt.Val, "text"))
	}
	for i, t := range uncast.TargetList {
		t.GetResTarget().Name = materializedName(i)
	}
	var textRenum, typedRenum, uncastRenum paramRenumbering
	textTree, typedTree, uncastTree := wrapSelect(sel), wrapSelect(typed), wrapSelect(uncast)
	textRenum.apply(textTree)
	typedRenum.apply(typedTree)
	uncastRenum.apply(uncastTree)
	if len(textRenum.params) != len(typedRenum.params) {
		return nil, false
	}
	for i := range textRenum.params {
		if textRenum.params[i] != typedRenum.params[i] {
			return nil, false
		}
	}
	text, err := pg_query.Deparse(textTree)
	if err != nil {
		return nil, false
	}
	typedText, err := pg_query.Deparse(typedTree)
	if err != nil {
		return nil, false
	}
	return &Subquery{SQL: text, TypedSQL: typedText, Params: textRenum.params, tree: uncastTree}, true
}
