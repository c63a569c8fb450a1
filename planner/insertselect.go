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
)

// InsertSelectPlan runs INSERT INTO t SELECT ...: shard by shard on the
// workers when Pushdown is set and the placements allow it; otherwise (the
// client path) the SELECT (SelectSQL, taking the statement's parameters
// SelectParams) runs once through pgshard — on the metadata database for
// ordinary tables and functions, on the shards for distributed ones — and
// each of its rows goes to the shard of its key, in batches, within one
// transaction. The shard SQL (Plan.ShardSQL)
// is `INSERT INTO t_<shard> (columns) SELECT * FROM unnest($1::type[], ...)`,
// one array per column: the SELECT's columns, then Defaults' columns.
type InsertSelectPlan struct {
	SelectSQL    string
	SelectParams []int
	// Columns is the number of columns the SELECT must return.
	Columns int
	// KeyIndex is the key column's position among the SELECT's columns and
	// then Defaults' (Columns + i).
	KeyIndex int
	// Defaults, when not empty, computes per row the columns the INSERT
	// leaves out whose defaults pgshard computes (sequences; volatile
	// defaults of replicated tables): run with $1 = the number of rows.
	Defaults      string
	DefaultsCount int
	// Pushdown, when not nil, runs the statement shard by shard instead
	// (see InsertSelectPushdown); the client path above stays the fallback
	// for when the placements do not line up at execute time.
	Pushdown *InsertSelectPushdown
	// ClientReason says why the statement cannot run shard by shard, when
	// Pushdown is nil.
	ClientReason string

	// sel and defaults are the trees of SelectSQL and Defaults
	// (SelectSending); plan the INSERT's tree (ShardSQLFor).
	sel, defaults *pg_query.Node
	plan          *Plan
	mu            sync.Mutex
	cache         map[string]string
}

// SelectSending returns SelectSQL (or, with defaults, Defaults) read
// through a wrapping SELECT that passes its output column i to the send
// function sends[i] (with Base64Suffix, in base64), or casts it to text
// where sends[i] is "", as Subquery.SQLSending does: so that the client
// path reads each value exactly. len(sends) is the number of columns the
// SELECT returns. It is built once per list.
func (ip *InsertSelectPlan) SelectSending(defaults bool, sends []string) (string, error) {
	sel := ip.sel
	if defaults {
		sel = ip.defaults
	}
	key := fmt.Sprintf("s\x01%v\x01%s", defaults, strings.Join(sends, "\x00"))
	ip.mu.Lock()
	defer ip.mu.Unlock()
	if s, ok := ip.cache[key]; ok {
		return s, nil
	}
	if sel == nil {
		return "", sqlerr.New(sqlerr.InternalError, "INSERT ... SELECT has no defaults to send")
	}
	out := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE}
	var names []*pg_query.Node
	for i, send := range sends {
		u := "c" + strconv.Itoa(i+1)
		names = append(names, pg_query.MakeStrNode(u))
		out.TargetList = append(out.TargetList, resTarget(u, sending(columnRef("pgshard_sel", u), send)))
	}
	out.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
		Subquery: proto.Clone(sel).(*pg_query.Node),
		Alias:    &pg_query.Alias{Aliasname: "pgshard_sel", Colnames: names},
	}}}}
	text, err := pg_query.Deparse(wrapSelect(out))
	if err != nil {
		return "", sqlerr.New(sqlerr.InternalError, "deparsing the SELECT of an INSERT: %v", err)
	}
	ip.put(key, text)
	return text, nil
}

// ShardSQLFor returns shard i's statement (Plan.ShardSQL) with the values
// of column j cast to types[j] (format_type's name of what the SELECT, or
// Defaults, returns there) instead of to the target column's type, where
// types[j] is not "": the value then reaches the column by PostgreSQL's
// own assignment cast from its type, as in a plain INSERT ... SELECT. It
// is built once per shard and list.
func (ip *InsertSelectPlan) ShardSQLFor(i int, types []string) (string, error) {
	key := fmt.Sprintf("i\x01%d\x01%s", i, strings.Join(types, "\x00"))
	ip.mu.Lock()
	defer ip.mu.Unlock()
	if s, ok := ip.cache[key]; ok {
		return s, nil
	}
	p := ip.plan
	tree := proto.Clone(p.tree).(*pg_query.ParseResult)
	targets := tree.Stmts[0].Stmt.GetInsertStmt().GetSelectStmt().GetSelectStmt().GetTargetList()
	if len(types) > len(targets) {
		return "", sqlerr.New(sqlerr.InternalError, "INSERT ... SELECT has %d columns, %d types", len(targets), len(types))
	}
	for j, typ := range types {
		if typ == "" {
			continue
		}
		tc := targets[j].GetResTarget().GetVal().GetTypeCast()
		if tc == nil {
			return "", sqlerr.New(sqlerr.InternalError, "INSERT ... SELECT column %d is not a cast", j+1)
		}
		tc.TypeName = typeNameOf(typ)
	}
	p.renameTables(tree, i)
	text, err := pg_query.Deparse(tree)
	if err != nil {
		return "", sqlerr.New(sqlerr.InternalError, "deparsing the shard statement of an INSERT: %v", err)
	}
	ip.put(key, text)
	return text, nil
}

// put caches text under key; the caller holds ip.mu.
func (ip *InsertSelectPlan) put(key, text string) {
	if ip.cache == nil {
		ip.cache = map[string]string{}
	}
	ip.cache[key] = text
}

func (p *Plan) planInsertSelect(ins *pg_query.InsertStmt, snap *catalog.Snapshot, env Env) error {
	t := p.Table
	orig := proto.Clone(ins).(*pg_query.InsertStmt)
	if len(ins.ReturningList) > 0 {
		return sqlerr.Unsupported("INSERT ... SELECT ... RETURNING into distributed table \"%s\" is not supported", t.Name)
	}
	if ins.WithClause != nil {
		return sqlerr.Unsupported("WITH ... INSERT ... SELECT into distributed table \"%s\" is not supported; put the WITH inside the SELECT", t.Name)
	}
	cols, indirect, err := targetColumns(t, ins.Cols)
	if err != nil {
		return err
	}
	for i, c := range cols {
		if indirect[i] {
			return sqlerr.Unsupported("INSERT ... SELECT into a part of column \"%s\" of a distributed table is not supported", c.Name)
		}
	}
	// The SELECT, with its parameters numbered from $1.
	sel := proto.Clone(ins.SelectStmt).(*pg_query.Node)
	var renum paramRenumbering
	renum.apply(sel)
	ip := &InsertSelectPlan{Columns: len(cols), KeyIndex: -1, SelectParams: renum.params}
	text, err := pg_query.Deparse(&pg_query.ParseResult{Version: parserVersion, Stmts: []*pg_query.RawStmt{{Stmt: sel}}})
	if err != nil {
		return sqlerr.New(sqlerr.InternalError, "deparsing the SELECT of an INSERT: %v", err)
	}
	ip.SelectSQL, ip.sel, ip.plan = text, sel, p
	if len(ins.Cols) == 0 {
		// Without a column list, a SELECT of fewer columns fills the first
		// ones and leaves the rest to their defaults, as in PostgreSQL.
		if desc, err := env.Describe(text); err == nil && len(desc) < len(cols) {
			cols = cols[:len(desc)]
			ip.Columns = len(cols)
		}
	}

	listed := map[string]bool{}
	for i, c := range cols {
		listed[c.Name] = true
		if c.Name == t.KeyColumn {
			ip.KeyIndex = i
		}
	}
	replicated := p.replicated()
	var defaults []*pg_query.Node
	for i := range t.Columns {
		c := &t.Columns[i]
		if listed[c.Name] || c.Default == "" {
			continue
		}
		if !(c.SequenceDefault || c.Name == t.KeyColumn || (replicated && !defaultImmutable(c, env))) {
			continue
		}
		def, err := parseDefault(defaultExpr(t, c))
		if err != nil {
			return err
		}
		if c.Name == t.KeyColumn {
			ip.KeyIndex = len(cols)
		}
		cols = append(cols, c)
		defaults = append(defaults, def)
	}
	if ip.KeyIndex < 0 && !t.Reference() {
		return sqlerr.New(sqlerr.NotNullViolation, "cannot plan INSERT using row with NULL value in partition column \"%s\"", t.KeyColumn)
	}
	if len(defaults) > 0 {
		ds := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE}
		for _, d := range defaults {
			ds.TargetList = append(ds.TargetList, resTarget("", d))
		}
		ds.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeFunction{RangeFunction: &pg_query.RangeFunction{
			Functions: []*pg_query.Node{pg_query.MakeListNode([]*pg_query.Node{funcCall("generate_series", aConstInt(1), pg_query.MakeParamRefNode(1, -1)), {}})},
		}}}}
		dtext, err := pg_query.Deparse(wrapSelect(ds))
		if err != nil {
			return sqlerr.New(sqlerr.InternalError, "deparsing defaults: %v", err)
		}
		ip.Defaults, ip.DefaultsCount = dtext, len(defaults)
		ip.defaults = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: ds}}
	}

	// The shard statement: the INSERT with the SELECT replaced by arrays.
	ins.Cols = nil
	// One text[] per column, cast to the column's type row by row: an
	// array-typed column travels as its text form too.
	unnest := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE}
	var arrays, aliases []*pg_query.Node
	for i, c := range cols {
		ins.Cols = append(ins.Cols, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Name: c.Name}}})
		u := "c" + strconv.Itoa(i+1)
		unnest.TargetList = append(unnest.TargetList, resTarget("", typeCast(columnRef("pgshard_rows", u), c.TypeName)))
		arrays = append(arrays, typeCast(pg_query.MakeParamRefNode(int32(i+1), -1), "text[]"))
		aliases = append(aliases, pg_query.MakeStrNode(u))
	}
	unnest.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeFunction{RangeFunction: &pg_query.RangeFunction{
		Functions: []*pg_query.Node{pg_query.MakeListNode([]*pg_query.Node{funcCall("unnest", arrays...), {}})},
		Alias:     &pg_query.Alias{Aliasname: "pgshard_rows", Colnames: aliases},
	}}}}
	ins.SelectStmt = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: unnest}}
	if occ := ins.OnConflictClause; occ != nil && replicated {
		eb := newEvalBuilder(p.tree)
		if err := p.replicatedSet(t, occ.TargetList, env, eb); err != nil {
			return err
		}
		if len(eb.exprs) > 0 {
			return sqlerr.Unsupported("a non-immutable ON CONFLICT DO UPDATE value in INSERT ... SELECT into replicated table \"%s\" is not supported", t.Name)
		}
	}
	ip.Pushdown, ip.ClientReason = p.planPushdown(orig, cols[:ip.Columns], ip, snap, env)
	p.InsertSelect = ip
	return nil
}

// InsertSelectPushdown runs INSERT INTO t SELECT ... shard by shard: when t
// and every distributed table the SELECT reads are co-located, and the value
// inserted into t's key is the key of a table the SELECT reads (so each row
// stays in the shard it was read from), shard i runs
// `INSERT INTO t_i (columns) SELECT ... FROM s_i ...` on every placement of
// t's shard, all shards in one atomic statement. It is immutable and safe for
// concurrent use, like its Plan.
type InsertSelectPushdown struct {
	// Select is the plan of the SELECT alone (Router, or Scatter whose rows
	// are concatenated), over its text with parameters numbered from $1:
	// its $i is the statement's parameter Params[i-1].
	Select *Plan
	Params []int
	// ConflictParams are the statement's parameters the ON CONFLICT clause
	// uses: in the shard statement they follow the SELECT's shard
	// parameters (ShardArgs of Select), in this order.
	ConflictParams []int
	// Sources are the distributed tables the SELECT reads; at execute time
	// each of t's writable placements must be on a node that holds a
	// finalized placement of their shard, or the statement takes the
	// client path.
	Sources []*catalog.Table

	target *catalog.Table
	// ins is the shard statement before renaming: its SELECT is Select's
	// tree, renamed per shard.
	ins *pg_query.InsertStmt
	sql []shardText
}

// Shards returns the indexes of the shards the statement runs on, for the
// SELECT's arguments (after its Eval values): the one shard of a Router
// SELECT, or the (pruned) shards of a Scatter one; possibly none.
func (pd *InsertSelectPushdown) Shards(args []any) ([]int, error) {
	if pd.Select.Kind == Router {
		i, err := pd.Select.Route(args)
		if err != nil {
			return nil, err
		}
		return []int{i}, nil
	}
	return pd.Select.TargetShards(args)
}

// ShardSQL returns the statement for shard index i: INSERT INTO t_i ...
// SELECT ... FROM s_i ...; computed once per shard.
func (pd *InsertSelectPushdown) ShardSQL(i int) (string, error) {
	st := &pd.sql[i]
	st.once.Do(func() {
		ins := proto.Clone(pd.ins).(*pg_query.InsertStmt)
		tree := proto.Clone(pd.Select.tree).(*pg_query.ParseResult)
		pd.Select.renameTables(tree, i)
		ins.SelectStmt = tree.Stmts[0].Stmt
		if ins.Relation.Alias == nil {
			ins.Relation.Alias = &pg_query.Alias{Aliasname: ins.Relation.Relname}
		}
		ins.Relation.Relname = pd.target.ShardTableName(pd.target.Shards[i].ID)
		stmt := &pg_query.Node{Node: &pg_query.Node_InsertStmt{InsertStmt: ins}}
		st.sql, st.err = pg_query.Deparse(&pg_query.ParseResult{Version: tree.Version, Stmts: []*pg_query.RawStmt{{Stmt: stmt}}})
		if st.err != nil {
			st.err = sqlerr.New(sqlerr.InternalError, "deparsing INSERT ... SELECT for shard %d: %v", pd.target.Shards[i].ID, st.err)
		}
	})
	return st.sql, st.err
}

// planPushdown decides whether INSERT ... SELECT can run shard by shard and
// plans it; otherwise it returns why not. orig is the INSERT as written
// (after schema qualifiers were stripped), cols the columns the SELECT
// fills.
func (p *Plan) planPushdown(orig *pg_query.InsertStmt, cols []*catalog.Column, ip *InsertSelectPlan, snap *catalog.Snapshot, env Env) (*InsertSelectPushdown, string) {
	t := p.Table
	if t.Reference() {
		return nil, "the target is a reference table: the SELECT's rows go to every placement of its one shard"
	}
	if ip.Defaults != "" || ip.KeyIndex >= ip.Columns {
		return nil, "pgshard computes the defaults of columns the INSERT leaves out (a sequence, the key, or a volatile default of a replicated table)"
	}
	selNode := proto.Clone(orig.SelectStmt).(*pg_query.Node)
	sel := selNode.GetSelectStmt()
	switch {
	case sel == nil:
		return nil, "the SELECT is not a plain SELECT"
	case sel.Op != pg_query.SetOperation_SETOP_NONE && sel.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED:
		return nil, "the SELECT is a UNION/INTERSECT/EXCEPT"
	case len(sel.ValuesLists) > 0:
		return nil, "the SELECT is a VALUES list"
	case sel.IntoClause != nil:
		return nil, "the SELECT has INTO"
	}
	occ := orig.OnConflictClause
	if occ != nil && occ.Action == pg_query.OnConflictAction_ONCONFLICT_NOTHING && p.replicated() {
		return nil, "ON CONFLICT DO NOTHING keeps the first of the SELECT's rows with one key, and the replicas could read them in different orders"
	}
	if sel.LimitCount == nil && sel.LimitOffset == nil && len(sel.DistinctClause) == 0 && occ == nil {
		// Without LIMIT, DISTINCT ON or ON CONFLICT, ORDER BY does not
		// change which rows are inserted (no default is computed here in
		// pushdown); shards need not sort.
		sel.SortClause = nil
	}
	var renum paramRenumbering
	renum.apply(selNode)
	text, err := pg_query.Deparse(&pg_query.ParseResult{Version: parserVersion, Stmts: []*pg_query.RawStmt{{Stmt: selNode}}})
	if err != nil {
		return nil, "the SELECT cannot be deparsed"
	}
	sub, err := New(text, snap, env)
	if err != nil {
		return nil, "the SELECT does not run shard by shard: " + sqlerr.As(err).Message
	}
	switch {
	case sub.Kind == Materialize:
		return nil, "the SELECT does not run shard by shard: it runs some of its subqueries first"
	case sub.Kind != Router && sub.Kind != Scatter:
		return nil, "the SELECT reads no distributed table"
	case sub.Modifies:
		return nil, "the SELECT writes"
	case sub.Combine != nil || sub.Aggregates != nil || (sub.Kind == Scatter && mergesAcrossShards(sel, env)):
		return nil, "the SELECT's rows are merged across shards (aggregates, DISTINCT, LIMIT, ORDER BY with LIMIT or window functions)"
	}
	var sources []*catalog.Table
	seen := map[*catalog.Table]bool{}
	for _, r := range sub.refs {
		if r.table.KeyType != t.KeyType || !t.ColocatedWith(r.table) || !sameRanges(t, r.table) {
			return nil, fmt.Sprintf("table \"%s\" is not co-located with \"%s\"", r.table.Name, t.Name)
		}
		if !seen[r.table] {
			seen[r.table] = true
			sources = append(sources, r.table)
		}
	}
	if refs := sub.References(); len(refs) > 0 {
		// Each shard's SELECT reads the reference tables' shard on its
		// node: a source like the others (pushdownAligned), but one whose
		// replicas could not be locked in their writers' order.
		if p.replicated() {
			return nil, fmt.Sprintf("the SELECT reads reference table \"%s\" and \"%s\" is replicated: its replicas could read different versions of it", refs[0].Name, t.Name)
		}
		sources = append(sources, refs...)
	}
	if why := shardLocalUnsafe(selNode, env, p.replicated()); why != "" {
		return nil, why
	}
	subSel := sub.tree.Stmts[0].Stmt.GetSelectStmt()
	key := keySource(subSel, sub.root, ip.KeyIndex)
	if key == nil || key.table.KeyType != t.KeyType {
		return nil, fmt.Sprintf("the value inserted into partition column \"%s\" is not the partition column of a co-located table the SELECT reads", t.KeyColumn)
	}
	if nullableRelations(subSel.FromClause)[key.rv] {
		return nil, fmt.Sprintf("the value inserted into partition column \"%s\" comes from the nullable side of an outer join", t.KeyColumn)
	}
	for _, g := range subSel.GroupClause {
		if g.GetGroupingSet() != nil {
			return nil, "the SELECT has GROUPING SETS, ROLLUP or CUBE, which make the key NULL"
		}
	}

	// The shard statement: the INSERT with an explicit column list, the
	// SELECT replaced per shard, the ON CONFLICT parameters after the
	// SELECT's.
	ins := &pg_query.InsertStmt{
		Relation:         proto.Clone(orig.Relation).(*pg_query.RangeVar),
		OnConflictClause: orig.OnConflictClause,
		Override:         orig.Override,
	}
	for _, c := range cols {
		ins.Cols = append(ins.Cols, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Name: c.Name}}})
	}
	pd := &InsertSelectPushdown{Select: sub, Params: renum.params, Sources: sources, target: t, ins: ins, sql: make([]shardText, len(t.Shards))}
	if occ := ins.OnConflictClause; occ != nil {
		occ = proto.Clone(occ).(*pg_query.OnConflictClause)
		first := int32(subShardParams(sub))
		numbers := map[int32]int32{}
		walk(occ, func(m protoreflect.ProtoMessage) bool {
			if pr, ok := m.(*pg_query.ParamRef); ok {
				n, seen := numbers[pr.Number]
				if !seen {
					n = first + int32(len(numbers)) + 1
					numbers[pr.Number] = n
					pd.ConflictParams = append(pd.ConflictParams, int(pr.Number))
				}
				pr.Number = n
			}
			return true
		})
		ins.OnConflictClause = occ
	}
	return pd, ""
}

// mergesAcrossShards reports whether a SELECT's answer over several shards
// is more than the concatenation of each shard's answer: LIMIT/OFFSET,
// DISTINCT, grouping, aggregates or window functions at its top level. (The
// Scatter plan of such a SELECT merges its rows too; this does not depend on
// how it does.)
func mergesAcrossShards(sel *pg_query.SelectStmt, env Env) bool {
	if sel.LimitCount != nil || sel.LimitOffset != nil || len(sel.DistinctClause) > 0 || len(sel.GroupClause) > 0 || sel.HavingClause != nil || len(sel.WindowClause) > 0 {
		return true
	}
	for _, t := range sel.TargetList {
		if v := t.GetResTarget().GetVal(); v != nil && (containsAggregate(v, env) || windowCall(v)) {
			return true
		}
	}
	for _, n := range sel.SortClause {
		if containsAggregate(n, env) || windowCall(n) {
			return true
		}
	}
	return false
}

// sameRanges reports whether t and u have the same shard ranges, index by
// index: shard i of one holds the keys of shard i of the other.
func sameRanges(t, u *catalog.Table) bool {
	if len(t.Shards) != len(u.Shards) {
		return false
	}
	for i := range t.Shards {
		if t.Shards[i].Min != u.Shards[i].Min || t.Shards[i].Max != u.Shards[i].Max {
			return false
		}
	}
	return true
}

// subShardParams is how many parameters the shard statement of sub takes.
func subShardParams(sub *Plan) int {
	if sub.ShardParams != nil {
		return len(sub.ShardParams)
	}
	if sub.Eval != nil {
		return sub.Eval.First - 1 + sub.Eval.Count
	}
	return sub.argCount
}

// keySource returns the reference of the statement's own level whose
// partition column the SELECT's output column at index i is, written as a
// plain column reference (or as the whole row of the only FROM item, SELECT
// *); nil otherwise.
func keySource(sel *pg_query.SelectStmt, root *scope, i int) *tableRef {
	if root == nil {
		return nil
	}
	if len(sel.TargetList) == 1 {
		if cr := sel.TargetList[0].GetResTarget().GetVal().GetColumnRef(); cr != nil && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			// SELECT * (or t.*) FROM t: the columns are t's.
			if len(sel.FromClause) != 1 || len(cr.Fields) > 2 {
				return nil
			}
			ref := root.refFor(sel.FromClause[0].GetRangeVar())
			if ref == nil || (len(cr.Fields) == 2 && stringOf(cr.Fields[0]) != ref.name) {
				return nil
			}
			if ref.table.KeyIndex != i || ref.column(ref.table.KeyColumn) != ref.table.KeyColumn {
				return nil
			}
			if ref.rv.Alias != nil && len(ref.rv.Alias.Colnames) > 0 {
				return nil
			}
			return ref
		}
	}
	if i >= len(sel.TargetList) {
		return nil
	}
	for _, t := range sel.TargetList[:i+1] {
		if cr := t.GetResTarget().GetVal().GetColumnRef(); cr != nil && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			return nil // a * before the key: positions are unknown here
		}
	}
	ref := root.keyColumn(sel.TargetList[i].GetResTarget().GetVal())
	if ref == nil || ref.scope != root {
		return nil
	}
	return ref
}

// nullableRelations returns the relations of a FROM list that an outer join
// may fill with NULLs.
func nullableRelations(from []*pg_query.Node) map[*pg_query.RangeVar]bool {
	out := map[*pg_query.RangeVar]bool{}
	var visit func(n *pg_query.Node, nullable bool)
	visit = func(n *pg_query.Node, nullable bool) {
		switch x := n.GetNode().(type) {
		case *pg_query.Node_RangeVar:
			if nullable {
				out[x.RangeVar] = true
			}
		case *pg_query.Node_JoinExpr:
			l, r := nullable, nullable
			switch x.JoinExpr.Jointype {
			case pg_query.JoinType_JOIN_LEFT:
				r = true
			case pg_query.JoinType_JOIN_RIGHT:
				l = true
			case pg_query.JoinType_JOIN_FULL:
				l, r = true, true
			}
			visit(x.JoinExpr.Larg, l)
			visit(x.JoinExpr.Rarg, r)
		}
	}
	for _, n := range from {
		visit(n, false)
	}
	return out
}

// sequenceFunctions read or change a sequence of the server they run on: on
// a shard that is the worker's, not the metadata database's.
var sequenceFunctions = map[string]bool{"nextval": true, "currval": true, "setval": true, "lastval": true}

// systemColumns differ from placement to placement of a shard.
var systemColumns = map[string]bool{"ctid": true, "xmin": true, "xmax": true, "cmin": true, "cmax": true, "tableoid": true}

// shardLocalUnsafe names what in the SELECT would give a different answer
// when each placement of each shard computes it itself: sequence functions
// always; with replicas (replicated), anything that is not the same on every
// replica — functions that are not immutable, SQL value functions
// (CURRENT_TIMESTAMP), row picks that depend on physical order (LIMIT,
// DISTINCT ON, aggregates, window functions), TABLESAMPLE, system columns.
// It returns "" when there is none.
func shardLocalUnsafe(sel *pg_query.Node, env Env, replicated bool) string {
	why := ""
	walk(sel, func(m protoreflect.ProtoMessage) bool {
		switch x := m.(type) {
		case *pg_query.FuncCall:
			_, name := funcName(x)
			if sequenceFunctions[name] {
				why = "the SELECT calls " + name + ", whose sequence lives on the metadata database"
				break
			}
			if !replicated {
				break
			}
			info, found := env.Function(name)
			switch {
			case !found || !info.Immutable:
				why = "the SELECT calls " + name + ", which is not immutable, and the target has replicas that must stay identical"
			case info.Aggregate || info.Window || x.Over != nil || x.AggStar || x.AggDistinct || len(x.AggOrder) > 0 || x.AggFilter != nil || x.AggWithinGroup:
				why = "the SELECT aggregates or calls a window function, whose answer may depend on row order, and the target has replicas that must stay identical"
			}
		case *pg_query.SQLValueFunction:
			if replicated {
				why = "the SELECT reads the clock or session (CURRENT_TIMESTAMP, CURRENT_USER, ...), and the target has replicas that must stay identical"
			}
		case *pg_query.RangeTableSample:
			if replicated {
				why = "the SELECT uses TABLESAMPLE, and the target has replicas that must stay identical"
			}
		case *pg_query.SelectStmt:
			if replicated && (x.LimitCount != nil || x.LimitOffset != nil || (len(x.DistinctClause) > 0 && !plainDistinct(x))) {
				why = "the SELECT picks rows with LIMIT, OFFSET or DISTINCT ON, which may depend on row order, and the target has replicas that must stay identical"
			}
		case *pg_query.ColumnRef:
			if replicated && len(x.Fields) > 0 && systemColumns[stringOf(x.Fields[len(x.Fields)-1])] {
				why = "the SELECT reads system column " + stringOf(x.Fields[len(x.Fields)-1]) + ", which differs between replicas"
			}
		}
		return why == ""
	})
	return why
}
