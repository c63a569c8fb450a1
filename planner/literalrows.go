package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Literal rows: a multi-row INSERT ... VALUES whose rows are all literals
// (a bulk loader's statement: thousands of rows, hundreds of KB of text) is
// planned from its first row alone, and its rows are then only read for
// their keys. Every planning step walks the whole parse tree, several
// times; with literal rows each walk would find nothing in them, and took
// most of a large INSERT's time. The rows stay in the plan's tree, shared
// (not copied) by the statements rewritten for the shards: renaming tables
// and renumbering parameters never touch a literal.

// literalRowsMin is the smallest VALUES list planned this way.
const literalRowsMin = 2

// literalRows returns the VALUES rows of tree when it is one INSERT ...
// VALUES with at least literalRowsMin rows of equal length, each item a
// constant or a cast constant; nil otherwise.
func literalRows(tree *pg_query.ParseResult) []*pg_query.Node {
	if len(tree.Stmts) != 1 {
		return nil
	}
	ins := tree.Stmts[0].Stmt.GetInsertStmt()
	if ins == nil || ins.SelectStmt == nil {
		return nil
	}
	sel := ins.SelectStmt.GetSelectStmt()
	if sel == nil || len(sel.ValuesLists) < literalRowsMin || sel.Op > pg_query.SetOperation_SETOP_NONE {
		return nil
	}
	width := -1
	for _, row := range sel.ValuesLists {
		items := row.GetList().GetItems()
		if width >= 0 && len(items) != width {
			return nil
		}
		width = len(items)
		for _, item := range items {
			if !isLiteral(item) {
				return nil
			}
		}
	}
	return sel.ValuesLists
}

// isLiteral reports whether n is a constant or a constant cast to a type
// (12, 'a', NULL, '2020-01-01'::date).
func isLiteral(n *pg_query.Node) bool {
	if n.GetAConst() != nil {
		return true
	}
	if tc := n.GetTypeCast(); tc != nil {
		return tc.Arg.GetAConst() != nil
	}
	return false
}

// planLiteralRows plans a statement of literal rows (see literalRows) from
// its first row, then reads every row's key. It returns nil when the
// statement is not of that form, or when the first row's plan does not
// stand for all rows (values computed beforehand, a key that is not a
// plain literal); the caller then plans it the ordinary way, from tree,
// which it leaves as it was.
func planLiteralRows(sql string, tree *pg_query.ParseResult, snap *catalog.Snapshot, env Env) *Plan {
	rows := literalRows(tree)
	if rows == nil || !snap.HasDistributedTables() {
		return nil
	}
	sel := tree.Stmts[0].Stmt.GetInsertStmt().SelectStmt.GetSelectStmt()
	// Plan a copy of the statement with only the first row, so that tree is
	// intact whatever planning does.
	sel.ValuesLists = rows[:1]
	first := proto.Clone(tree).(*pg_query.ParseResult)
	sel.ValuesLists = rows
	if n, ok := minParam(first); ok && n < 1 {
		return nil // refused by the ordinary way ($0)
	}
	p, err := plan(sql, first, snap, env)
	if err != nil || p.Kind != Router || p.Eval != nil || p.InsertSelect != nil || len(p.InsertKeys) != 1 || p.Table == nil {
		return nil
	}
	ins := first.Stmts[0].Stmt.GetInsertStmt()
	cols, _, err := targetColumns(p.Table, ins.Cols)
	if err != nil {
		return nil
	}
	keyAt := -1
	for i, c := range cols {
		if c.Name == p.Table.KeyColumn && i < len(rows[0].GetList().GetItems()) {
			keyAt = i
			break
		}
	}
	if keyAt < 0 {
		return nil
	}
	keys := make([]Value, len(rows))
	for i, row := range rows {
		v, ok := constValue(row.GetList().Items[keyAt], p.Table.KeyType)
		if !ok {
			return nil
		}
		v.lit = nil // the plan keeps no node of the rows it may drop
		keys[i] = v
	}
	if first := p.InsertKeys[0]; keys[0].Param != first.Param || keys[0].Const != first.Const {
		return nil
	}
	// The plan's tree holds every row: the first row's copy was planned,
	// the others are as parsed. Planning the copy changed nothing in its
	// row (no value to compute beforehand, no parameter in it).
	ins.SelectStmt.GetSelectStmt().ValuesLists = append([]*pg_query.Node{ins.SelectStmt.GetSelectStmt().ValuesLists[0]}, rows[1:]...)
	p.InsertKeys = keys
	p.literalRows = true
	if p.argCount == 0 {
		p.rewriteRowsNow()
	}
	return p
}

// rewriteRowsNow makes the statements of a plan of literal rows without
// parameters for the shards its rows go to, now, and then drops the rows
// from the plan's tree. The keys are literals, so the shards are known
// before the statement runs; the rows' parse tree takes about 20 times
// their text, the rewritten statements about once, and a bulk load's
// statement spends most of its life waiting for the shards. When a step
// fails, the plan is left whole, to fail the same way when it runs.
func (p *Plan) rewriteRowsNow() {
	shards, err := p.RowShards(nil)
	if err != nil {
		return
	}
	single := true
	for _, s := range shards[1:] {
		single = single && s == shards[0]
	}
	if single {
		if _, err := p.ShardSQL(shards[0]); err != nil {
			return
		}
	} else {
		parts, err := p.SplitInsert(nil, shards)
		if err != nil {
			return
		}
		p.parts, p.partShards = parts, shards
	}
	sel := p.tree.Stmts[0].Stmt.GetInsertStmt().SelectStmt.GetSelectStmt()
	sel.ValuesLists = []*pg_query.Node{sel.ValuesLists[0]}
	p.rowsDropped = true
}

// errRowsDropped is the error of rewriting a plan whose rows were dropped
// (rewriteRowsNow) for other shards than those its rows go to, which no
// execution asks for.
func (p *Plan) errRowsDropped() error {
	return sqlerr.New(sqlerr.InternalError, "the INSERT into \"%s\" was rewritten for the shards of its rows only", p.Table.Name)
}

// cloneWithoutRows returns a deep copy of the plan's tree without the rows
// of its INSERT's VALUES list, and the copy's SELECT holding them (its
// ValuesLists nil): the caller rewrites the copy, then attaches rows of the
// plan's tree, shared, for Deparse to read. Only for plans of literal rows,
// whose rows no rewriting touches.
func (p *Plan) cloneWithoutRows() (*pg_query.ParseResult, *pg_query.SelectStmt) {
	// Shallow copies along the path to the VALUES list, without it; then
	// one deep copy of them. p.tree itself is never modified (plans are
	// shared by concurrent statements).
	raw := p.tree.Stmts[0]
	ins := shallowCopy(raw.Stmt.GetInsertStmt(), "").(*pg_query.InsertStmt)
	sel := shallowCopy(ins.SelectStmt.GetSelectStmt(), "values_lists").(*pg_query.SelectStmt)
	ins.SelectStmt = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}
	shell := &pg_query.ParseResult{Version: p.tree.Version, Stmts: []*pg_query.RawStmt{{
		Stmt:         &pg_query.Node{Node: &pg_query.Node_InsertStmt{InsertStmt: ins}},
		StmtLocation: raw.StmtLocation,
		StmtLen:      raw.StmtLen,
	}}}
	tree := proto.Clone(shell).(*pg_query.ParseResult)
	return tree, tree.Stmts[0].Stmt.GetInsertStmt().SelectStmt.GetSelectStmt()
}

// shallowCopy returns a new message with m's fields, except the one named
// skip: message, list and map fields share m's values.
func shallowCopy(m proto.Message, skip protoreflect.Name) proto.Message {
	src := m.ProtoReflect()
	dst := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() != skip {
			dst.Set(fd, v)
		}
		return true
	})
	return dst.Interface()
}

// valuesRows returns the rows of the plan's INSERT's VALUES list.
func (p *Plan) valuesRows() []*pg_query.Node {
	return p.tree.Stmts[0].Stmt.GetInsertStmt().SelectStmt.GetSelectStmt().ValuesLists
}
