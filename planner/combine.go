package planner

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/internal/sqlerr"
	plantypes "github.com/pgshard/pgshard/plan"
)

// CombinePlan answers a multi-shard SELECT in two steps: every shard runs a
// partial query (the plan's shard SQL), and one PostgreSQL server then runs
// the combine query over all the shards' partial rows, passed to it as one
// text array per partial column. The final step is PostgreSQL's own, so
// collations, numeric precision, NULL ordering and every function behave
// exactly as on a single server.
//
// Two kinds of partial query are made. When every aggregate can be split
// (count, sum, min, max, avg, bool_and, bool_or, every), shards group and
// aggregate and the combine query aggregates the partial aggregates. Otherwise
// (count(DISTINCT), window functions, ordered aggregates, DISTINCT ON, ...)
// shards return the rows and columns the query needs (filtered, and sorted
// and limited when the query is), and the combine query is the original
// query over them.
type CombinePlan struct {
	// Params lists the statement's parameters the combine query takes, in
	// its numbering; the arrays of partial columns follow them.
	Params []int
	// Columns is the number of partial columns.
	Columns int
	// Mode is "partial aggregate" or "rows", for EXPLAIN and tests.
	Mode string

	build func(CombineInput) (*pg_query.SelectStmt, error)
	// names are the partial columns' names in the partial query.
	names      []string
	mu         sync.Mutex
	cache      map[string]string
	collations []string
	collKnown  bool
}

// ColumnName is the name of partial column i in the shard SQL.
func (c *CombinePlan) ColumnName(i int) string { return c.names[i] }

// Collations returns the partial columns' collations once known.
func (c *CombinePlan) Collations() ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.collations, c.collKnown
}

// SetCollations records the partial columns' collations.
func (c *CombinePlan) SetCollations(cs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.collations, c.collKnown = cs, true
}

// arrayParamBase numbers the array parameters while the combine query is
// built; SQL renumbers them after the statement's own parameters.
const arrayParamBase = 1 << 20

// CombineInput is what the combine query needs to know of the partial
// columns, learnt from the shards (plan.CombineInput).
type CombineInput = plantypes.CombineInput

// SQL returns the combine query for partial columns of the given types and
// collations. It is built once per input.
func (c *CombinePlan) SQL(in CombineInput) (string, error) {
	if len(in.Types) != c.Columns {
		return "", sqlerr.New(sqlerr.InternalError, "combine: %d partial columns, expected %d", len(in.Types), c.Columns)
	}
	key := strings.Join(in.Types, "\x00") + "\x01" + strings.Join(in.Collations, "\x00") + "\x01" + fmt.Sprint(in.Binary)
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.cache[key]; ok {
		return s, nil
	}
	sel, err := c.build(in)
	if err != nil {
		return "", err
	}
	renum := map[int32]int32{}
	for i, n := range c.Params {
		renum[int32(n)] = int32(i + 1)
	}
	walk(sel, func(m protoreflect.ProtoMessage) bool {
		if pr, ok := m.(*pg_query.ParamRef); ok {
			if pr.Number >= arrayParamBase {
				pr.Number = int32(len(c.Params)) + pr.Number - arrayParamBase + 1
			} else {
				pr.Number = renum[pr.Number]
			}
		}
		return true
	})
	text, err := pg_query.Deparse(wrapSelect(sel))
	if err != nil {
		return "", sqlerr.New(sqlerr.InternalError, "deparsing combine query: %v", err)
	}
	if c.cache == nil {
		c.cache = map[string]string{}
	}
	c.cache[key] = text
	return text, nil
}

// partialRelation builds `(SELECT u.c1::T1 AS name1, ... FROM unnest($a1::text[], ...)
// AS u(c1, ...)) AS alias`: the shards' partial rows as a relation. A column
// that travels in binary is unnested from `$a1::T1[]` instead.
func partialRelation(alias string, names []string, in CombineInput) *pg_query.Node {
	inner := &pg_query.SelectStmt{}
	var unnestArgs []*pg_query.Node
	var colAliases []*pg_query.Node
	for i, name := range names {
		u := "c" + strconv.Itoa(i+1)
		binary := i < len(in.Binary) && in.Binary[i]
		// Cast in binary too: unnest drops the type modifier (numeric(12,2),
		// varchar(3)), which the values already satisfy.
		val := typeCast(columnRef("u", u), in.Types[i])
		if i < len(in.Collations) && in.Collations[i] != "" {
			val = &pg_query.Node{Node: &pg_query.Node_CollateClause{CollateClause: &pg_query.CollateClause{
				Arg: val, Collname: []*pg_query.Node{pg_query.MakeStrNode(in.Collations[i])}, Location: -1}}}
		}
		inner.TargetList = append(inner.TargetList, resTarget(name, val))
		arrayType := "text[]"
		if binary {
			arrayType = in.Types[i] + "[]"
		}
		unnestArgs = append(unnestArgs, typeCast(pg_query.MakeParamRefNode(int32(arrayParamBase+i), -1), arrayType))
		colAliases = append(colAliases, pg_query.MakeStrNode(u))
	}
	inner.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeFunction{RangeFunction: &pg_query.RangeFunction{
		Functions: []*pg_query.Node{pg_query.MakeListNode([]*pg_query.Node{funcCall("unnest", unnestArgs...), {}})},
		Alias:     &pg_query.Alias{Aliasname: "u", Colnames: colAliases},
	}}}}
	return &pg_query.Node{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
		Subquery: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: inner}},
		Alias:    &pg_query.Alias{Aliasname: alias},
	}}}
}

// paramsIn lists the parameter numbers used in m, ascending.
func paramsIn(ms ...protoreflect.ProtoMessage) []int {
	seen := map[int]bool{}
	for _, m := range ms {
		walk(m, func(x protoreflect.ProtoMessage) bool {
			if pr, ok := x.(*pg_query.ParamRef); ok && pr.Number < arrayParamBase {
				seen[int(pr.Number)] = true
			}
			return true
		})
	}
	var out []int
	for n := 1; len(out) < len(seen); n++ {
		if seen[n] {
			out = append(out, n)
		}
	}
	return out
}

// parserVersion is the parse tree version Deparse needs on trees built here.
var parserVersion = func() int32 {
	t, err := pg_query.Parse("SELECT 1")
	if err != nil {
		return 0
	}
	return t.Version
}()

func wrapSelect(sel *pg_query.SelectStmt) *pg_query.ParseResult {
	return &pg_query.ParseResult{Version: parserVersion, Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}}}}
}

// neededColumns returns the table's columns the query reads outside its
// WHERE clause (all of them for * or a whole-row reference), in table order.
func neededColumns(sel *pg_query.SelectStmt, ref *tableRef) []string {
	need := map[string]bool{}
	all := false
	var parts []protoreflect.ProtoMessage
	for _, n := range nodesOf(sel.TargetList, sel.GroupClause, sel.SortClause, sel.DistinctClause, sel.WindowClause, []*pg_query.Node{sel.HavingClause}) {
		parts = append(parts, n)
	}
	for _, part := range parts {
		walk(part, func(m protoreflect.ProtoMessage) bool {
			cr, ok := m.(*pg_query.ColumnRef)
			if !ok {
				return true
			}
			f := cr.Fields
			if len(f) > 0 && f[len(f)-1].GetAStar() != nil {
				all = true
				return true
			}
			switch len(f) {
			case 1:
				name := stringOf(f[0])
				if ref.table.Column(name) != nil {
					need[name] = true
				} else if name == ref.name {
					all = true // whole-row reference
				}
			default:
				need[stringOf(f[len(f)-1])] = true
			}
			return true
		})
	}
	var out []string
	for _, c := range ref.table.Columns {
		if all || need[c.Name] {
			out = append(out, c.Name)
		}
	}
	return out
}

// resolveSortExpr returns the expression an ORDER BY item sorts by: the
// select-list entry for an ordinal or an output name, else the item itself.
//
// A position counts the columns a * expands to: with ref (the query's one
// table) a * is expanded to its columns; without, a position at or past a *
// is left as it is.
func resolveSortExpr(sel *pg_query.SelectStmt, ref *tableRef, n *pg_query.Node) *pg_query.Node {
	if c := n.GetAConst(); c != nil {
		if iv, ok := c.Val.(*pg_query.A_Const_Ival); ok {
			i := int(iv.Ival.Ival)
			var expanded []*pg_query.Node
			for _, t := range sel.TargetList {
				val := t.GetResTarget().GetVal()
				if !hasStar(val) {
					expanded = append(expanded, val)
					continue
				}
				if ref == nil {
					break
				}
				for _, col := range ref.table.Columns {
					expanded = append(expanded, columnRef(ref.name, col.Name))
				}
			}
			if i >= 1 && i <= len(expanded) {
				return expanded[i-1]
			}
		}
		return n
	}
	if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) == 1 {
		name := stringOf(cr.Fields[0])
		for _, t := range sel.TargetList {
			if rt := t.GetResTarget(); rt != nil && rt.Name == name {
				return rt.Val
			}
		}
	}
	return n
}

// planRawCombine makes the partial query return the rows and columns the
// query needs, and the combine query the original over them. With pushdown
// (no aggregation, DISTINCT or window), ORDER BY and LIMIT+OFFSET also go to
// the shards, so each returns at most LIMIT+OFFSET rows.
func planRawCombine(sel *pg_query.SelectStmt, ref *tableRef, pushdown bool) (*CombinePlan, *pg_query.ParseResult, error) {
	if ref.renamed != nil {
		return nil, nil, sqlerr.Unsupported("a column alias list on distributed table \"%s\" is not supported in this multi-shard query", ref.table.Name)
	}
	cols := neededColumns(sel, ref)
	partial := &pg_query.SelectStmt{
		FromClause:  []*pg_query.Node{proto.Clone(sel.FromClause[0]).(*pg_query.Node)},
		WhereClause: cloneNode(sel.WhereClause),
		Op:          pg_query.SetOperation_SETOP_NONE,
	}
	names := cols
	for _, c := range cols {
		partial.TargetList = append(partial.TargetList, resTarget(c, columnRef(ref.name, c)))
	}
	if len(cols) == 0 {
		names = []string{"?pgshard_row"}
		partial.TargetList = append(partial.TargetList, resTarget(names[0], aConstInt(1)))
	}
	if pushdown {
		for _, s := range sel.SortClause {
			sb := proto.Clone(s.GetSortBy()).(*pg_query.SortBy)
			sb.Node = cloneNode(resolveSortExpr(sel, ref, s.GetSortBy().Node))
			partial.SortClause = append(partial.SortClause, &pg_query.Node{Node: &pg_query.Node_SortBy{SortBy: sb}})
		}
		if sel.LimitCount != nil && sel.LimitOption != pg_query.LimitOption_LIMIT_OPTION_WITH_TIES {
			partial.LimitCount = limitPlusOffset(sel)
			partial.LimitOption = pg_query.LimitOption_LIMIT_OPTION_COUNT
		}
	} else if plainDistinct(sel) && len(sel.WindowClause) == 0 {
		partial.DistinctClause = []*pg_query.Node{{}}
	}
	template := proto.Clone(sel).(*pg_query.SelectStmt)
	template.WhereClause = nil
	template.FromClause = nil
	groupByPrimaryKey(template, ref, cols)
	c := &CombinePlan{Columns: len(names), Mode: "rows", Params: paramsIn(template), names: names}
	c.build = func(in CombineInput) (*pg_query.SelectStmt, error) {
		out := proto.Clone(template).(*pg_query.SelectStmt)
		out.FromClause = []*pg_query.Node{partialRelation(ref.name, names, in)}
		return out, nil
	}
	return c, wrapSelect(partial), nil
}

// limitPlusOffset is the LIMIT a shard gets for a query that it sorts and
// cuts before the rows are merged: the query's LIMIT plus its OFFSET (the
// OFFSET rows are skipped after the merge), a constant when both are.
func limitPlusOffset(sel *pg_query.SelectStmt) *pg_query.Node {
	if sel.LimitOffset == nil {
		return cloneNode(sel.LimitCount)
	}
	limit, lok := boundOf(sel.LimitCount)
	offset, ook := boundOf(sel.LimitOffset)
	if lok && ook && limit.Set && offset.Set && limit.Param == 0 && offset.Param == 0 &&
		limit.Const >= 0 && offset.Const >= 0 && limit.Const <= math.MaxInt64-offset.Const {
		return aConstInt(limit.Const + offset.Const)
	}
	return pg_query.MakeAExprNode(pg_query.A_Expr_Kind_AEXPR_OP, []*pg_query.Node{pg_query.MakeStrNode("+")},
		typeCast(cloneNode(sel.LimitCount), "bigint"), typeCast(cloneNode(sel.LimitOffset), "bigint"), -1)
}

func cloneNodes(ns []*pg_query.Node) []*pg_query.Node {
	out := make([]*pg_query.Node, len(ns))
	for i, n := range ns {
		out[i] = cloneNode(n)
	}
	return out
}

func cloneNode(n *pg_query.Node) *pg_query.Node {
	if n == nil {
		return nil
	}
	return proto.Clone(n).(*pg_query.Node)
}

// splittable are the aggregates whose partial results combine exactly.
var splittable = map[string]bool{"count": true, "sum": true, "min": true, "max": true, "avg": true, "bool_and": true, "bool_or": true, "every": true}

// partialAgg is one aggregate call of the query and its partial columns.
type partialAgg struct {
	name string
	cols []int // indexes of its partial columns (sum and count for avg)
}

// planPartialAggregate splits a grouped or aggregating query: shards return
// one row per group with the group keys and partial aggregates; the combine
// query groups those and combines the partials. ok is false when an
// aggregate or a construct does not split (the caller then ships rows).
func planPartialAggregate(sql string, sel *pg_query.SelectStmt, refs []*tableRef, env Env) (*CombinePlan, *pg_query.ParseResult, bool, error) {
	ref := refs[0]
	key := func(n *pg_query.Node) string { return nodeKey(canonicalColumns(n, refs)) }
	isInput := func(name string) bool {
		for _, r := range refs {
			if r.column(name) != "" {
				return true
			}
		}
		return false
	}
	for _, g := range sel.GroupClause {
		if g.GetGroupingSet() != nil {
			return nil, nil, false, nil
		}
	}
	// The grouping expressions, by ordinal, output name or themselves (an
	// input column wins over an output name, as in PostgreSQL).
	var groups []*pg_query.Node
	groupIndex := map[string]int{}
	for _, g := range sel.GroupClause {
		e := g
		if c := g.GetAConst(); c != nil {
			e = resolveSortExpr(sel, ref, g)
		} else if cr := g.GetColumnRef(); cr != nil && len(cr.Fields) == 1 && !isInput(stringOf(cr.Fields[0])) {
			e = resolveSortExpr(sel, ref, g)
		}
		if containsAggregate(e, env) {
			return nil, nil, false, nil
		}
		if hasRowExpr(e) {
			return nil, nil, false, nil
		}
		k := key(e)
		if _, dup := groupIndex[k]; !dup {
			groupIndex[k] = len(groups)
			groups = append(groups, e)
		}
	}

	partial := &pg_query.SelectStmt{
		FromClause:  cloneNodes(sel.FromClause),
		WhereClause: cloneNode(sel.WhereClause),
		Op:          pg_query.SetOperation_SETOP_NONE,
	}
	var names []string
	addColumn := func(val *pg_query.Node) int {
		name := "p" + strconv.Itoa(len(names)+1)
		names = append(names, name)
		partial.TargetList = append(partial.TargetList, resTarget(name, val))
		return len(names) - 1
	}
	for i, g := range groups {
		addColumn(cloneNode(g))
		partial.GroupClause = append(partial.GroupClause, aConstInt(int64(i+1)))
	}
	float4Avg := float4Averages(sel, env, key)
	aggs := map[string]*partialAgg{}
	var order []string
	ok := true
	// transform replaces, in an expression of the combine query, grouping
	// expressions by their partial columns and aggregates by combinations of
	// theirs.
	transform := func(n *pg_query.Node) *pg_query.Node {
		if i, found := groupIndex[key(n)]; found {
			return columnRef("p", names[i])
		}
		switch x := n.Node.(type) {
		case *pg_query.Node_SubLink:
			if containsColumnRef(x.SubLink) {
				ok = false
			}
			return nil
		case *pg_query.Node_ColumnRef:
			// Not grouped: an error, unless the column depends on a grouped
			// primary key; either way the rows must go to the combine step.
			ok = false
			return n
		case *pg_query.Node_FuncCall:
			fc := x.FuncCall
			schema, name := funcName(fc)
			info, known := env.Function(name)
			isAgg := fc.AggStar || fc.AggDistinct || len(fc.AggOrder) > 0 || fc.AggFilter != nil || fc.AggWithinGroup || (known && info.Aggregate && fc.Over == nil)
			if !isAgg {
				return nil
			}
			if (schema != "" && schema != "pg_catalog") || !splittable[name] || fc.AggDistinct || len(fc.AggOrder) > 0 || fc.AggWithinGroup || fc.FuncVariadic || fc.Over != nil || (name != "count" && len(fc.Args) != 1) {
				ok = false
				return n
			}
			k := key(n)
			pa := aggs[k]
			if pa == nil {
				pa = &partialAgg{name: name}
				mk := func(fn string) *pg_query.Node {
					c := proto.Clone(fc).(*pg_query.FuncCall)
					c.Funcname = []*pg_query.Node{pg_query.MakeStrNode(fn)}
					return &pg_query.Node{Node: &pg_query.Node_FuncCall{FuncCall: c}}
				}
				if name == "avg" {
					sum := mk("sum")
					if float4Avg[k] {
						// PostgreSQL adds up float4 values in float8.
						sfc := sum.GetFuncCall()
						sfc.Args = []*pg_query.Node{typeCast(sfc.Args[0], "double precision")}
					}
					pa.cols = []int{addColumn(sum), addColumn(mk("count"))}
				} else {
					pa.cols = []int{addColumn(mk(name))}
				}
				aggs[k] = pa
				order = append(order, k)
			}
			// A placeholder the build step turns into the typed combination.
			return funcCall("pgshard_combine_"+name, aConstInt(int64(pa.cols[0])))
		}
		return nil
	}
	apply := func(n *pg_query.Node) *pg_query.Node {
		if n == nil {
			return nil
		}
		holder := &pg_query.ResTarget{Val: cloneNode(n)}
		if r := transform(holder.Val); r != nil {
			holder.Val = r
		} else {
			rewriteNodes(holder.ProtoReflect(), transform)
		}
		return holder.Val
	}

	template := &pg_query.SelectStmt{
		DistinctClause: sel.DistinctClause,
		LimitCount:     cloneNode(sel.LimitCount),
		LimitOffset:    cloneNode(sel.LimitOffset),
		LimitOption:    sel.LimitOption,
		Op:             pg_query.SetOperation_SETOP_NONE,
	}
	outNames := outputNames(sql, sel, env)
	for i, t := range sel.TargetList {
		rt := t.GetResTarget()
		if cr := rt.Val.GetColumnRef(); cr != nil && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			return nil, nil, false, nil
		}
		template.TargetList = append(template.TargetList, resTarget(outNames[i], apply(rt.Val)))
	}
	template.HavingClause = apply(sel.HavingClause)
	for _, s := range sel.SortClause {
		sb := proto.Clone(s.GetSortBy()).(*pg_query.SortBy)
		// Ordinals and output names keep their meaning in the combine query.
		if sb.Node.GetAConst() == nil && !isOutputName(sel, sb.Node) {
			sb.Node = apply(sb.Node)
		}
		template.SortClause = append(template.SortClause, &pg_query.Node{Node: &pg_query.Node_SortBy{SortBy: sb}})
	}
	if !ok {
		return nil, nil, false, nil
	}
	for i := range groups {
		template.GroupClause = append(template.GroupClause, columnRef("p", names[i]))
	}
	if len(names) == 0 {
		// SELECT 1 FROM t GROUP BY () and the like: nothing to combine.
		return nil, nil, false, nil
	}
	c := &CombinePlan{Columns: len(names), Mode: "partial aggregate", Params: paramsIn(template), names: names}
	c.build = func(in CombineInput) (*pg_query.SelectStmt, error) {
		types := in.Types
		out := proto.Clone(template).(*pg_query.SelectStmt)
		var err error
		fill := func(n *pg_query.Node) *pg_query.Node {
			fc := n.GetFuncCall()
			if fc == nil {
				return nil
			}
			_, name := funcName(fc)
			agg, isPlaceholder := strings.CutPrefix(name, "pgshard_combine_")
			if !isPlaceholder {
				return nil
			}
			col := int(fc.Args[0].GetAConst().GetIval().GetIval())
			var r *pg_query.Node
			r, err = combineAggregate(agg, columnRef("p", names[col]), col, names, types)
			return r
		}
		rewriteNodes(out.ProtoReflect(), fill)
		if err != nil {
			return nil, err
		}
		out.FromClause = []*pg_query.Node{partialRelation("p", names, in)}
		return out, nil
	}
	return c, wrapSelect(partial), true, nil
}

func isOutputName(sel *pg_query.SelectStmt, n *pg_query.Node) bool {
	cr := n.GetColumnRef()
	if cr == nil || len(cr.Fields) != 1 {
		return false
	}
	name := stringOf(cr.Fields[0])
	for _, t := range sel.TargetList {
		if rt := t.GetResTarget(); rt != nil && rt.Name == name {
			return true
		}
	}
	return false
}

// combineAggregate is the combine query's expression for one aggregate over
// its partial column(s), cast back to the partial's type so that the result
// type is the original aggregate's.
func combineAggregate(agg string, p *pg_query.Node, col int, names, types []string) (*pg_query.Node, error) {
	typ := types[col]
	switch agg {
	case "count", "sum":
		return typeCast(funcCall("sum", p), typ), nil
	case "min", "max", "bool_and", "bool_or", "every":
		return funcCall(agg, p), nil
	case "avg":
		count := funcCall("sum", columnRef("p", names[col+1]))
		nonzero := &pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: &pg_query.A_Expr{
			Kind: pg_query.A_Expr_Kind_AEXPR_NULLIF, Name: []*pg_query.Node{pg_query.MakeStrNode("=")},
			Lexpr: count, Rexpr: aConstInt(0), Location: -1}}}
		div := func(l, r *pg_query.Node) *pg_query.Node {
			return pg_query.MakeAExprNode(pg_query.A_Expr_Kind_AEXPR_OP, []*pg_query.Node{pg_query.MakeStrNode("/")}, l, r, -1)
		}
		switch typ {
		case "double precision", "real":
			return div(typeCast(funcCall("sum", p), "double precision"), typeCast(nonzero, "double precision")), nil
		case "interval":
			return div(funcCall("sum", p), typeCast(nonzero, "double precision")), nil
		case "bigint", "numeric":
			return div(typeCast(funcCall("sum", p), "numeric"), typeCast(nonzero, "numeric")), nil
		}
		return nil, sqlerr.Unsupported("avg over values of type %s across shards is not supported", typ)
	}
	return nil, fmt.Errorf("planner: no combination for %s", agg)
}

// planProjectedCombine handles a query that only needs ordering, LIMIT and
// OFFSET, or DISTINCT, over any FROM (joins of co-located tables included):
// shards return the select list (and any ORDER BY expression not in it),
// sorted and limited to LIMIT+OFFSET rows; the combine query sorts, cuts and
// de-duplicates the union. ok is false for a select list it cannot carry
// (a *).
func planProjectedCombine(sql string, sel *pg_query.SelectStmt, refs []*tableRef, env Env) (*CombinePlan, *pg_query.ParseResult, bool, error) {
	names := outputNames(sql, sel, env)
	key := func(n *pg_query.Node) string { return nodeKey(canonicalColumns(n, refs)) }
	for _, t := range sel.TargetList {
		if rt := t.GetResTarget(); rt != nil && hasRowExpr(rt.Val) {
			return nil, nil, false, nil
		}
	}
	partial := &pg_query.SelectStmt{
		FromClause:  cloneNodes(sel.FromClause),
		WhereClause: cloneNode(sel.WhereClause),
		Op:          pg_query.SetOperation_SETOP_NONE,
	}
	if plainDistinct(sel) {
		partial.DistinctClause = []*pg_query.Node{{}}
	}
	var cols []string
	keys := map[string]int{}
	add := func(val *pg_query.Node) int {
		if i, ok := keys[key(val)]; ok {
			return i
		}
		name := "c" + strconv.Itoa(len(cols)+1)
		cols = append(cols, name)
		keys[key(val)] = len(cols) - 1
		partial.TargetList = append(partial.TargetList, resTarget(name, cloneNode(val)))
		return len(cols) - 1
	}
	template := &pg_query.SelectStmt{
		DistinctClause: sel.DistinctClause,
		LimitCount:     cloneNode(sel.LimitCount),
		LimitOffset:    cloneNode(sel.LimitOffset),
		LimitOption:    sel.LimitOption,
		Op:             pg_query.SetOperation_SETOP_NONE,
	}
	for i, t := range sel.TargetList {
		rt := t.GetResTarget()
		if cr := rt.Val.GetColumnRef(); cr != nil && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			return nil, nil, false, nil
		}
		// Each select-list entry is its own column, even when two are equal.
		name := "c" + strconv.Itoa(len(cols)+1)
		cols = append(cols, name)
		if _, seen := keys[key(rt.Val)]; !seen {
			keys[key(rt.Val)] = len(cols) - 1
		}
		partial.TargetList = append(partial.TargetList, resTarget(name, cloneNode(rt.Val)))
		template.TargetList = append(template.TargetList, resTarget(names[i], columnRef("p", name)))
	}
	for _, srt := range sel.SortClause {
		sb := srt.GetSortBy()
		e := resolveSortExpr(sel, nil, sb.Node)
		if plainDistinct(sel) {
			if _, ok := keys[key(e)]; !ok {
				return nil, nil, false, sqlerr.New(sqlerr.InvalidColumnReference, "for SELECT DISTINCT, ORDER BY expressions must appear in select list")
			}
		}
		col := add(e)
		psb := proto.Clone(sb).(*pg_query.SortBy)
		psb.Node = cloneNode(e)
		partial.SortClause = append(partial.SortClause, &pg_query.Node{Node: &pg_query.Node_SortBy{SortBy: psb}})
		csb := proto.Clone(sb).(*pg_query.SortBy)
		csb.Node = columnRef("p", cols[col])
		template.SortClause = append(template.SortClause, &pg_query.Node{Node: &pg_query.Node_SortBy{SortBy: csb}})
	}
	if sel.LimitCount != nil && sel.LimitOption != pg_query.LimitOption_LIMIT_OPTION_WITH_TIES && !plainDistinct(sel) {
		partial.LimitCount = limitPlusOffset(sel)
		partial.LimitOption = pg_query.LimitOption_LIMIT_OPTION_COUNT
	}
	c := &CombinePlan{Columns: len(cols), Mode: "rows", Params: paramsIn(template), names: cols}
	c.build = func(in CombineInput) (*pg_query.SelectStmt, error) {
		out := proto.Clone(template).(*pg_query.SelectStmt)
		out.FromClause = []*pg_query.Node{partialRelation("p", cols, in)}
		return out, nil
	}
	return c, wrapSelect(partial), true, nil
}

// outputNames are the result column names of the query: PostgreSQL's own,
// from describing it on the metadata database, or else the planner's port
// of FigureColname.
func outputNames(sql string, sel *pg_query.SelectStmt, env Env) []string {
	names := make([]string, len(sel.TargetList))
	for i, t := range sel.TargetList {
		if rt := t.GetResTarget(); rt != nil {
			names[i] = outputName(rt)
		}
	}
	if desc, err := env.Describe(sql); err == nil && len(desc) == len(names) {
		for i, d := range desc {
			names[i] = d.Name
		}
	}
	return names
}

// float4Averages finds the avg(x) calls of the query whose x is real
// (float4), by describing their arguments on the metadata database; it
// returns them by nodeKey. Unknown types count as not real.
func float4Averages(sel *pg_query.SelectStmt, env Env, key func(*pg_query.Node) string) map[string]bool {
	var calls []*pg_query.Node
	for _, n := range nodesOf(sel.TargetList, sel.SortClause, []*pg_query.Node{sel.HavingClause}) {
		walk(n, func(m protoreflect.ProtoMessage) bool {
			if node, ok := m.(*pg_query.Node); ok {
				if fc := node.GetFuncCall(); fc != nil && len(fc.Args) == 1 {
					if _, name := funcName(fc); name == "avg" {
						calls = append(calls, node)
					}
				}
			}
			return true
		})
	}
	out := map[string]bool{}
	if len(calls) == 0 {
		return out
	}
	probe := &pg_query.SelectStmt{FromClause: cloneNodes(sel.FromClause), Op: pg_query.SetOperation_SETOP_NONE,
		WhereClause: &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Val: &pg_query.A_Const_Boolval{Boolval: &pg_query.Boolean{Boolval: false}}}}}}
	for _, c := range calls {
		probe.TargetList = append(probe.TargetList, resTarget("", cloneNode(c.GetFuncCall().Args[0])))
	}
	text, err := pg_query.Deparse(wrapSelect(probe))
	if err != nil {
		return out
	}
	desc, err := env.Describe(text)
	if err != nil || len(desc) != len(calls) {
		return out
	}
	for i, d := range desc {
		if d.TypeOID == 700 {
			out[key(calls[i])] = true
		}
	}
	return out
}

// canonicalColumns returns a copy of n whose column references name their
// relation: `dept`, `people.dept` and `p.dept` (p aliasing people) all become
// the same reference when they denote the same column, so that grouping
// expressions are recognized however they are written.
func canonicalColumns(n *pg_query.Node, refs []*tableRef) *pg_query.Node {
	c := cloneNode(n)
	walk(c, func(m protoreflect.ProtoMessage) bool {
		cr, ok := m.(*pg_query.ColumnRef)
		if !ok {
			return true
		}
		f := cr.Fields
		if len(f) == 0 || f[len(f)-1].GetAStar() != nil {
			return true
		}
		col := stringOf(f[len(f)-1])
		var owner *tableRef
		switch len(f) {
		case 1:
			for _, r := range refs {
				if r.column(col) != "" {
					if owner != nil {
						return true // ambiguous: leave it
					}
					owner = r
				}
			}
		case 2, 3:
			for _, r := range refs {
				if r.name == stringOf(f[len(f)-2]) {
					owner = r
				}
			}
		}
		if owner != nil {
			cr.Fields = []*pg_query.Node{pg_query.MakeStrNode(owner.name), pg_query.MakeStrNode(owner.column(col))}
		}
		return true
	})
	return c
}

// hasRowExpr reports whether n is a row constructor, whose value (an
// anonymous record) cannot travel through the combine step.
func hasRowExpr(n *pg_query.Node) bool {
	return n != nil && n.GetRowExpr() != nil
}

// groupByPrimaryKey: PostgreSQL lets a query grouped by a table's primary
// key select the table's other columns, but the combine step reads the rows
// from arrays, where there is no primary key. When the GROUP BY holds every
// primary key column, grouping also by the other columns the query reads
// makes the same groups and lets the combine step select them.
func groupByPrimaryKey(template *pg_query.SelectStmt, ref *tableRef, cols []string) {
	if len(template.GroupClause) == 0 || len(ref.table.PrimaryKey) == 0 {
		return
	}
	grouped := map[string]bool{}
	for _, g := range template.GroupClause {
		cr := canonicalColumns(g, []*tableRef{ref}).GetColumnRef()
		if cr == nil || len(cr.Fields) != 2 || stringOf(cr.Fields[0]) != ref.name {
			continue
		}
		grouped[stringOf(cr.Fields[1])] = true
	}
	for _, pk := range ref.table.PrimaryKey {
		if !grouped[pk] {
			return
		}
	}
	for _, c := range cols {
		if !grouped[c] {
			template.GroupClause = append(template.GroupClause, columnRef(ref.name, c))
		}
	}
}
