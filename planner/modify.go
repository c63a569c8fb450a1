package planner

import (
	"fmt"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	plantypes "github.com/pgshard/pgshard/plan"
)

// evalBuilder collects the expressions to evaluate once on the metadata
// database and replaces each, in the statement, by a new parameter.
type evalBuilder struct {
	first int
	exprs []*pg_query.Node
	// keyTypes[i] is the shard key type expression i is a value of, or 0;
	// typed[i] is set when expression i is cast to that type.
	keyTypes []uint32
	typed    []bool
	// version is the parse tree version Deparse requires.
	version int32
}

func newEvalBuilder(tree *pg_query.ParseResult) *evalBuilder {
	return &evalBuilder{first: maxParam(tree) + 1, version: tree.Version}
}

// replace moves the expression at *slot into the evaluation list and puts a
// parameter in its place; it returns that parameter's Value.
func (b *evalBuilder) replace(slot **pg_query.Node) Value {
	num := b.first + len(b.exprs)
	b.exprs = append(b.exprs, proto.Clone(*slot).(*pg_query.Node))
	b.keyTypes = append(b.keyTypes, 0)
	b.typed = append(b.typed, false)
	*slot = &pg_query.Node{Node: &pg_query.Node_ParamRef{ParamRef: &pg_query.ParamRef{Number: int32(num)}}}
	return Value{Param: num}
}

// add evaluates a new expression (a column default) and returns the
// parameter node that stands for it.
func (b *evalBuilder) add(expr *pg_query.Node) (*pg_query.Node, Value) {
	num := b.first + len(b.exprs)
	b.exprs = append(b.exprs, expr)
	b.keyTypes = append(b.keyTypes, 0)
	b.typed = append(b.typed, false)
	return &pg_query.Node{Node: &pg_query.Node_ParamRef{ParamRef: &pg_query.ParamRef{Number: int32(num)}}}, Value{Param: num}
}

// markKey records that the evaluated value v (a Value replace or add
// returned) is a shard key of type keyType (EvalPlan.KeyTypes), computed as
// that very type when typed is set (EvalPlan.Typed).
func (b *evalBuilder) markKey(v Value, keyType uint32, typed bool) {
	if i := v.Param - b.first; i >= 0 && i < len(b.keyTypes) {
		b.keyTypes[i], b.typed[i] = keyType, typed
	}
}

// build makes the EvalPlan: SELECT e1, e2, ... with the statement's
// parameters renumbered from $1. It may be called again after more
// expressions were added.
func (b *evalBuilder) build() (*EvalPlan, error) {
	if len(b.exprs) == 0 {
		return nil, nil
	}
	ep := &EvalPlan{First: b.first, Count: len(b.exprs)}
	for i, kt := range b.keyTypes {
		if kt != 0 {
			ep.KeyTypes = append([]uint32(nil), b.keyTypes...)
		}
		if b.typed[i] {
			ep.Typed = append([]bool(nil), b.typed...)
		}
	}
	var renum paramRenumbering
	sel := &pg_query.SelectStmt{}
	for _, e := range b.exprs {
		e = proto.Clone(e).(*pg_query.Node)
		renum.apply(e)
		sel.TargetList = append(sel.TargetList, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: e}}})
	}
	text, err := pg_query.Deparse(&pg_query.ParseResult{Version: b.version, Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}}}})
	if err != nil {
		return nil, sqlerr.New(sqlerr.InternalError, "deparsing evaluated expressions: %v", err)
	}
	ep.SQL = text
	ep.Params = renum.params
	return ep, nil
}

// maxParam is the highest $n in the tree.
func maxParam(tree *pg_query.ParseResult) int {
	max := 0
	for _, raw := range tree.Stmts {
		walk(raw.Stmt, func(m protoreflect.ProtoMessage) bool {
			if pr, ok := m.(*pg_query.ParamRef); ok && int(pr.Number) > max {
				max = int(pr.Number)
			}
			return true
		})
	}
	return max
}

// immutable reports whether expression n yields the same value on every
// replica: it calls only immutable functions and no SQL value functions
// (CURRENT_TIMESTAMP and friends).
func immutable(n protoreflect.ProtoMessage, env Env) bool {
	ok := true
	walk(n, func(m protoreflect.ProtoMessage) bool {
		switch x := m.(type) {
		case *pg_query.FuncCall:
			_, name := funcName(x)
			info, found := env.Function(name)
			if !found || !info.Immutable {
				ok = false
			}
		case *pg_query.SQLValueFunction:
			ok = false
		}
		return ok
	})
	return ok
}

func containsColumnRef(n protoreflect.ProtoMessage) bool {
	found := false
	walk(n, func(m protoreflect.ProtoMessage) bool {
		switch m.(type) {
		case *pg_query.ColumnRef:
			found = true
		case *pg_query.SubLink:
			return false // a subquery's own columns are its business
		}
		return !found
	})
	return found
}

// readsDistributed reports whether n reads a distributed table: such an
// expression cannot be evaluated on the metadata database.
func readsDistributed(n protoreflect.ProtoMessage, snap func(schema, name string) *catalog.Table) bool {
	found := false
	walk(n, func(m protoreflect.ProtoMessage) bool {
		if rv, ok := m.(*pg_query.RangeVar); ok && snap(rv.Schemaname, rv.Relname) != nil {
			found = true
		}
		return !found
	})
	return found
}

// parseDefault parses a column default's SQL into an expression node.
func parseDefault(expr string) (*pg_query.Node, error) {
	tree, err := pg_query.Parse("SELECT " + expr)
	if err != nil || len(tree.Stmts) != 1 {
		return nil, sqlerr.New(sqlerr.InternalError, "cannot parse column default %q: %v", expr, err)
	}
	tl := tree.Stmts[0].Stmt.GetSelectStmt().GetTargetList()
	if len(tl) != 1 {
		return nil, sqlerr.New(sqlerr.InternalError, "cannot parse column default %q", expr)
	}
	return tl[0].GetResTarget().GetVal(), nil
}

// planInsert finds each VALUES row's key and decides which values must be
// computed once for all replicas (volatile expressions, sequence defaults)
// or to learn the key (a key that is not a literal or parameter).
func (p *Plan) planInsert(ins *pg_query.InsertStmt, env Env) error {
	t := p.Table
	var target *tableRef
	for _, r := range p.refs {
		if r.rv == ins.Relation {
			target = r
		} else if r.pin == nil {
			return sqlerr.Unsupported("an INSERT into a distributed table may read other distributed tables only where their partition column is fixed by equality")
		}
	}
	if target == nil {
		return sqlerr.New(sqlerr.InternalError, "INSERT target of \"%s\" not found", t.Name)
	}
	sel := ins.SelectStmt.GetSelectStmt()
	if sel == nil {
		return sqlerr.Unsupported("INSERT ... DEFAULT VALUES into distributed table \"%s\" is not supported", t.Name)
	}
	cols, indirect, err := targetColumns(t, ins.Cols)
	if err != nil {
		return err
	}
	for i, c := range cols {
		if indirect[i] && c.Name == t.KeyColumn {
			return sqlerr.Unsupported("assigning to a part of partition column \"%s\" is not supported", c.Name)
		}
	}
	replicated := p.replicated()
	eb := p.evalBuilder()
	lookup := func(schema, name string) *catalog.Table { return tableLookup(p, schema, name) }

	needsEval := func(col *catalog.Column, item *pg_query.Node) bool {
		if col.Name == t.KeyColumn && item.GetSetToDefault() != nil {
			return true
		}
		if item.GetSetToDefault() != nil {
			return col.SequenceDefault || (replicated && col.Default != "" && !defaultImmutable(col, env))
		}
		if col.Name == t.KeyColumn {
			v, ok := constValue(item, t.KeyType)
			return !ok || settingDependent(v, t.KeyType)
		}
		return replicated && !immutable(item, env)
	}

	// Columns the statement leaves out but whose default must be computed
	// here: sequences always (shard tables have no sequence), volatile
	// defaults when replicated; and the key, which must be known.
	var added []*catalog.Column
	listed := map[string]bool{}
	for i, c := range cols {
		if len(ins.Cols) == 0 && i >= maxRowLen(sel) {
			break
		}
		listed[c.Name] = true
	}
	for i := range t.Columns {
		c := &t.Columns[i]
		if listed[c.Name] || c.Default == "" {
			if !listed[c.Name] && c.Name == t.KeyColumn {
				return sqlerr.New(sqlerr.NotNullViolation, "cannot plan INSERT using row with NULL value in partition column \"%s\"", c.Name)
			}
			continue
		}
		if c.SequenceDefault || c.Name == t.KeyColumn || (replicated && !defaultImmutable(c, env)) {
			added = append(added, c)
		}
	}
	if len(added) > 0 && len(ins.Cols) == 0 {
		// Name the columns explicitly so the added ones can be appended.
		for _, c := range cols[:maxRowLen(sel)] {
			ins.Cols = append(ins.Cols, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Name: c.Name}}})
		}
		cols = cols[:maxRowLen(sel)]
	}
	for _, c := range added {
		ins.Cols = append(ins.Cols, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Name: c.Name}}})
		cols = append(cols, c)
	}

	for _, row := range sel.ValuesLists {
		list := row.GetList()
		nListed := len(list.Items)
		for _, c := range added {
			def, err := parseDefault(defaultExpr(t, c))
			if err != nil {
				return err
			}
			list.Items = append(list.Items, def)
		}
		var key *Value
		for i := range list.Items {
			if i >= len(cols) {
				return sqlerr.New(sqlerr.SyntaxError, "INSERT has more expressions than target columns")
			}
			col := cols[i]
			item := list.Items[i]
			if i >= nListed || needsEval(col, item) {
				if item.GetSetToDefault() != nil {
					if col.Default == "" {
						if col.Name == t.KeyColumn {
							return sqlerr.New(sqlerr.NotNullViolation, "cannot plan INSERT using row with NULL value in partition column \"%s\"", col.Name)
						}
						continue
					}
					def, err := parseDefault(defaultExpr(t, col))
					if err != nil {
						return err
					}
					list.Items[i] = def
				}
				if readsDistributed(list.Items[i], lookup) {
					return sqlerr.Unsupported("a value inserted into distributed table \"%s\" that reads a distributed table must be a constant for every replica; compute it first", t.Name)
				}
				typed := false
				if v, ok := constValue(list.Items[i], t.KeyType); ok && col.Name == t.KeyColumn && settingDependent(v, t.KeyType) {
					// A literal the session reads: evaluated as the key's
					// type, as the INSERT would read it.
					list.Items[i], typed = castToKeyType(list.Items[i], t.KeyType), true
				}
				v := eb.replace(&list.Items[i])
				if col.Name == t.KeyColumn {
					key = &v
					eb.markKey(v, t.KeyType, typed)
				}
				continue
			}
			if col.Name == t.KeyColumn {
				v, _ := constValue(item, t.KeyType)
				key = &v
			}
		}
		if t.Reference() {
			continue // every row goes to the one shard
		}
		if key == nil {
			return sqlerr.New(sqlerr.NotNullViolation, "cannot plan INSERT using row with NULL value in partition column \"%s\"", t.KeyColumn)
		}
		p.InsertKeys = append(p.InsertKeys, *key)
	}
	if replicated && ins.WithClause != nil && !immutable(ins.WithClause, env) {
		return sqlerr.Unsupported("the WITH clause of an INSERT into replicated table \"%s\" calls a function that is not immutable, so replicas could differ", t.Name)
	}
	if occ := ins.OnConflictClause; occ != nil && replicated {
		if err := p.replicatedSet(t, occ.TargetList, env, eb); err != nil {
			return err
		}
		if occ.WhereClause != nil && !immutable(occ.WhereClause, env) {
			return sqlerr.Unsupported("a non-immutable ON CONFLICT condition on replicated table \"%s\" could differ between replicas", t.Name)
		}
	}
	ep, err := eb.build()
	if err != nil {
		return err
	}
	p.Eval = ep
	return nil
}

func maxRowLen(sel *pg_query.SelectStmt) int {
	n := 0
	for _, row := range sel.ValuesLists {
		if l := len(row.GetList().GetItems()); l > n {
			n = l
		}
	}
	return n
}

// defaultExpr is the SQL computing the default of column c of table t, on
// the metadata database (its template table); an identity column (whose
// Default the catalog records as "identity") uses the sequence behind it.
func defaultExpr(t *catalog.Table, c *catalog.Column) string {
	if c.Default == "identity" && c.SequenceDefault {
		return fmt.Sprintf("pg_catalog.nextval(pg_catalog.pg_get_serial_sequence(%s, %s))", quoteLiteral(pgx.Identifier{t.Schema, t.Name}.Sanitize()), quoteLiteral(c.Name))
	}
	return c.Default
}

func defaultImmutable(c *catalog.Column, env Env) bool {
	if c.SequenceDefault {
		return false
	}
	def, err := parseDefault(c.Default)
	if err != nil {
		return false
	}
	return immutable(def, env)
}

// planReplicatedModification makes an UPDATE or DELETE on a replicated table
// compute the same values on every replica: SET expressions that read no
// column are evaluated once; anything else that is not immutable is refused.
func (p *Plan) planReplicatedModification(stmt *pg_query.Node, env Env) error {
	eb := p.evalBuilder()
	var where *pg_query.Node
	switch {
	case stmt.GetUpdateStmt() != nil:
		u := stmt.GetUpdateStmt()
		target := p.Table
		for _, r := range p.refs {
			if r.rv == u.Relation {
				target = r.table
			}
		}
		if err := p.replicatedSet(target, u.TargetList, env, eb); err != nil {
			return err
		}
		where = u.WhereClause
		if !allImmutable(env, u.WithClause, u.FromClause) {
			return sqlerr.Unsupported("the WITH or FROM clause of an UPDATE of replicated table \"%s\" calls a function that is not immutable, so replicas could differ", p.Table.Name)
		}
	case stmt.GetDeleteStmt() != nil:
		d := stmt.GetDeleteStmt()
		where = d.WhereClause
		if !allImmutable(env, d.WithClause, d.UsingClause) {
			return sqlerr.Unsupported("the WITH or USING clause of a DELETE of replicated table \"%s\" calls a function that is not immutable, so replicas could differ", p.Table.Name)
		}
	default:
		if !immutable(stmt, env) || containsDefault(stmt) {
			return sqlerr.Unsupported("a statement that writes to replicated table \"%s\" must not call volatile or stable functions outside of plain values", p.Table.Name)
		}
		return nil
	}
	if where != nil && !immutable(where, env) {
		return sqlerr.Unsupported("the WHERE clause of a modification of replicated table \"%s\" calls a function that is not immutable, so replicas could differ", p.Table.Name)
	}
	ep, err := eb.build()
	if err != nil {
		return err
	}
	p.Eval = ep
	return nil
}

// replicatedSet evaluates once the SET expressions that are not immutable and
// read no column; it refuses those that read a column. SET col = DEFAULT
// evaluates col's default of table tbl when that is not immutable.
func (p *Plan) replicatedSet(tbl *catalog.Table, targets []*pg_query.Node, env Env, eb *evalBuilder) error {
	for _, t := range targets {
		rt := t.GetResTarget()
		if rt == nil || rt.Val == nil {
			continue
		}
		if rt.Val.GetSetToDefault() != nil {
			col := tbl.Column(rt.Name)
			if col == nil || col.Default == "" || len(rt.Indirection) > 0 || defaultImmutable(col, env) {
				continue
			}
			def, err := parseDefault(defaultExpr(tbl, col))
			if err != nil {
				return err
			}
			rt.Val = def
		}
		if immutable(rt.Val, env) {
			continue
		}
		if rt.Val.GetMultiAssignRef() != nil || containsColumnRef(rt.Val) || readsDistributed(rt.Val, func(s, n string) *catalog.Table { return tableLookup(p, s, n) }) {
			return sqlerr.Unsupported("SET %s = ... on replicated table \"%s\" calls a function that is not immutable on column values, so replicas could differ", rt.Name, p.Table.Name)
		}
		eb.replace(&rt.Val)
	}
	return nil
}

// tableLookup resolves a name among the distributed tables the plan knows.
func tableLookup(p *Plan, schema, name string) *catalog.Table {
	for _, r := range p.refs {
		if r.rv.Relname == name && (schema == "" || schema == r.table.Schema) {
			return r.table
		}
	}
	return nil
}

// allImmutable reports whether every clause given is immutable (nil clauses
// are).
func allImmutable(env Env, with *pg_query.WithClause, from []*pg_query.Node) bool {
	if with != nil && !immutable(with, env) {
		return false
	}
	for _, n := range from {
		if !immutable(n, env) {
			return false
		}
	}
	return true
}

// containsDefault reports whether n assigns DEFAULT anywhere (a nested INSERT
// or UPDATE), whose value each replica would compute itself.
func containsDefault(n protoreflect.ProtoMessage) bool {
	found := false
	walk(n, func(m protoreflect.ProtoMessage) bool {
		if _, ok := m.(*pg_query.SetToDefault); ok {
			found = true
		}
		return !found
	})
	return found
}

// compactParams renumbers the parameters of the statement sent to the
// shards so that they have no gap (PostgreSQL cannot type a parameter the
// statement does not use), recording the mapping in ShardParams.
func (p *Plan) compactParams() {
	used := map[int32]bool{}
	for _, raw := range p.tree.Stmts {
		walk(raw.Stmt, func(m protoreflect.ProtoMessage) bool {
			if pr, ok := m.(*pg_query.ParamRef); ok {
				used[pr.Number] = true
			}
			return true
		})
	}
	total := p.argCount
	if p.Eval != nil {
		total = p.Eval.First - 1 + p.Eval.Count
	}
	contiguous := len(used) == total
	for n := int32(1); contiguous && int(n) <= total; n++ {
		contiguous = used[n]
	}
	if contiguous {
		return
	}
	renum := map[int32]int32{}
	p.ShardParams = []int{}
	for n := int32(1); int(n) <= total || len(renum) < len(used); n++ {
		if used[n] {
			renum[n] = int32(len(renum) + 1)
			p.ShardParams = append(p.ShardParams, int(n))
		}
	}
	for _, raw := range p.tree.Stmts {
		walk(raw.Stmt, func(m protoreflect.ProtoMessage) bool {
			if pr, ok := m.(*pg_query.ParamRef); ok {
				pr.Number = renum[pr.Number]
			}
			return true
		})
	}
}

// ShardArgs picks, from the statement's arguments (after Eval's values),
// those the shard statement takes.
func ShardArgs[T any](p *Plan, args []T) []T {
	return plantypes.ShardArgs(p.ShardParams, args)
}

// paramRenumbering numbers the parameters of the trees it is applied to
// from $1, in order of first appearance; params lists their original
// numbers, so that params[i-1] is the argument of the new $i.
type paramRenumbering struct {
	renum  map[int32]int32
	params []int
}

func (r *paramRenumbering) apply(m protoreflect.ProtoMessage) {
	if r.renum == nil {
		r.renum = map[int32]int32{}
	}
	walk(m, func(x protoreflect.ProtoMessage) bool {
		if pr, ok := x.(*pg_query.ParamRef); ok {
			n, seen := r.renum[pr.Number]
			if !seen {
				n = int32(len(r.renum) + 1)
				r.renum[pr.Number] = n
				r.params = append(r.params, int(pr.Number))
			}
			pr.Number = n
		}
		return true
	})
}

// targetColumns resolves an INSERT's column list (all the table's columns
// when it has none) and reports which entries assign to a part of a column
// (col[1], col.field).
func targetColumns(t *catalog.Table, list []*pg_query.Node) ([]*catalog.Column, []bool, error) {
	if len(list) == 0 {
		cols := make([]*catalog.Column, len(t.Columns))
		for i := range t.Columns {
			cols[i] = &t.Columns[i]
		}
		return cols, make([]bool, len(cols)), nil
	}
	cols := make([]*catalog.Column, 0, len(list))
	indirect := make([]bool, 0, len(list))
	for _, c := range list {
		rt := c.GetResTarget()
		col := t.Column(rt.GetName())
		if col == nil {
			return nil, nil, sqlerr.New(sqlerr.UndefinedColumn, "column \"%s\" of relation \"%s\" does not exist", rt.GetName(), t.Name)
		}
		cols = append(cols, col)
		indirect = append(indirect, len(rt.Indirection) > 0)
	}
	return cols, indirect, nil
}

// checkReplicaSystemColumns refuses a write to a table with replicas that
// reads a system column (systemColumns): each placement has its own xmin,
// xmax, cmin, cmax, tableoid and, after a VACUUM on one node, its own ctids,
// so each replica would compute or match something else. The statement's
// own RETURNING list only reports the first placement's values and is
// allowed; a RETURNING list feeding a write (a data-modifying CTE) is not.
// INSERT ... SELECT checks its SELECT itself (shardLocalUnsafe).
func checkReplicaSystemColumns(stmt *pg_query.Node, target *catalog.Table) error {
	if target == nil || !tableReplicated(target) {
		return nil
	}
	stmt = proto.Clone(stmt).(*pg_query.Node)
	switch {
	case stmt.GetInsertStmt() != nil:
		stmt.GetInsertStmt().ReturningList = nil
	case stmt.GetUpdateStmt() != nil:
		stmt.GetUpdateStmt().ReturningList = nil
	case stmt.GetDeleteStmt() != nil:
		stmt.GetDeleteStmt().ReturningList = nil
	}
	name := ""
	walk(stmt, func(m protoreflect.ProtoMessage) bool {
		if cr, ok := m.(*pg_query.ColumnRef); ok && len(cr.Fields) > 0 && systemColumns[stringOf(cr.Fields[len(cr.Fields)-1])] {
			name = stringOf(cr.Fields[len(cr.Fields)-1])
		}
		return name == ""
	})
	if name != "" {
		return sqlerr.Unsupported("a write to replicated table \"%s\" cannot read system column \"%s\": its value differs between the replicas of a shard, so they would diverge", target.Name, name)
	}
	return nil
}

// tableReplicated reports whether any shard of t has more than one placement.
func tableReplicated(t *catalog.Table) bool {
	for _, s := range t.Shards {
		if len(s.Placements) > 1 {
			return true
		}
	}
	return false
}
