package planner

import (
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgshard/pgshard/catalog"
)

// planLiteralInsert plans an INSERT of literal rows that the scanner
// (scanInsertHead, scanRows) accepts without parsing it whole: the
// statement cut after its first row is parsed and planned as any
// statement (names resolved, columns checked, defaults and replication
// weighed), each row's key constant is read by the scanner and converted
// by constValue and hashed by catalog.Hash as the ordinary planner's are,
// and each shard's statement is the first-row plan's own INSERT rewritten
// for that shard (renameTables, deparsed) with its rows copied verbatim
// from sql. No value is formatted by pgshard: the rows reach the shards as
// the application wrote them.
//
// It returns nil, having changed nothing, when the statement is not of
// that form or its first row's plan does not stand for every row: values
// computed beforehand (sequence or volatile defaults, a key that is not a
// plain constant), a key type whose text the session's settings decide,
// a key the first row's plan reads otherwise than the scanner, a row
// that cannot be routed (a NULL key, a bad value). The caller then plans
// it the ordinary way, which reports what is wrong.
func planLiteralInsert(sql string, snap *catalog.Snapshot, env Env) *Plan {
	if !snap.HasDistributedTables() {
		return nil
	}
	s, ok := scanInsertHead(sql)
	if !ok {
		return nil
	}
	if snap.Lookup(s.schema, s.table) == nil {
		// Not a distributed table (or a name written in a way identifier
		// does not read): parsing its first row would be wasted.
		return nil
	}
	if i := skipWS(sql, s.first.end); i >= len(sql) || sql[i] != ',' {
		// One row: its statement is the whole one, which the caller
		// would parse a second time.
		return nil
	}
	tree, err := pg_query.Parse(sql[:s.first.end])
	if err != nil {
		return nil
	}
	p, err := plan(sql, tree, snap, env)
	if err != nil || p.Kind != Router || p.Eval != nil || p.InsertSelect != nil || len(p.InsertKeys) != 1 ||
		p.Table == nil || p.target != p.Table || len(p.refs) != 1 || p.argCount != 0 || p.ShardParams != nil ||
		catalog.KeyTextDependsOnSettings(p.Table.KeyType) {
		return nil
	}
	ins := tree.Stmts[0].Stmt.GetInsertStmt()
	if ins == nil || ins.OnConflictClause != nil || len(ins.ReturningList) > 0 || ins.WithClause != nil ||
		len(ins.SelectStmt.GetSelectStmt().GetValuesLists()) != 1 {
		return nil
	}
	cols, _, err := targetColumns(p.Table, ins.Cols)
	if err != nil {
		return nil
	}
	keyAt := -1
	for i, c := range cols {
		if c.Name == p.Table.KeyColumn {
			keyAt = i
			break
		}
	}
	if keyAt < 0 || keyAt >= s.width {
		return nil
	}
	// One pass over the rows: every cast suffix checked once, every key
	// read.
	keys := make([]Value, 0, s.estimatedRows(sql))
	casts := map[string]castChain{}
	var scratch constScratch
	ok = s.scanRows(sql, func(row, col int, it scannedItem) bool {
		var chain castChain
		if it.hasCast {
			var seen bool
			if chain, seen = casts[it.cast(sql)]; !seen {
				if len(casts) == maxScannedCasts {
					return false
				}
				if chain, ok = parseCastChain(it.cast(sql)); !ok {
					return false
				}
				casts[it.cast(sql)] = chain
			}
		}
		if col != keyAt {
			return true
		}
		node := scratch.node(sql, it)
		if it.hasCast {
			chain.inner.Arg = node
			node = chain.outer
		}
		v, ok := constValue(node, p.Table.KeyType)
		if it.hasCast {
			chain.inner.Arg = nil
		}
		v.lit = nil // the plan keeps no node
		keys = append(keys, v)
		return ok
	})
	if !ok || len(s.rows) < literalRowsMin {
		return nil
	}
	// The scanner read the first row's key as pg_query's parser did.
	if first := p.InsertKeys[0]; keys[0].Param != first.Param || keys[0].Const != first.Const {
		return nil
	}
	p.InsertKeys = keys
	shards, err := p.RowShards(nil)
	if err != nil {
		return nil
	}
	parts := groupRows(shards)
	prefixes := make([]string, len(parts))
	for i, part := range parts {
		if prefixes[i], ok = p.shardInsertPrefix(part.Shard, s.width); !ok {
			return nil
		}
	}
	if len(parts) == 1 {
		text := prefixes[0] + sql[s.rowsStart:s.rowsEnd]
		st := &p.shardSQL[parts[0].Shard]
		st.once.Do(func() { st.sql = text })
	} else {
		for i := range parts {
			parts[i].SQL = joinRows(prefixes[i], sql, s.rows, parts[i].Rows)
		}
		p.parts, p.partShards = parts, shards
	}
	p.literalRows, p.rowsDropped = true, true
	return p
}

// maxScannedCasts bounds the distinct cast suffixes of one statement, each
// of which pg_query checks once.
const maxScannedCasts = 16

// groupRows groups the rows by shard, in the order shards first appear: the
// parts' Shard and Rows. SplitInsert and the literal scanner share it.
func groupRows(shards []int) []InsertPart {
	var parts []InsertPart
	index := map[int]int{}
	for row, shard := range shards {
		i, ok := index[shard]
		if !ok {
			i = len(parts)
			index[shard] = i
			parts = append(parts, InsertPart{Shard: shard})
		}
		parts[i].Rows = append(parts[i].Rows, row)
	}
	return parts
}

// joinRows returns prefix followed by the rows of sql at the given
// positions, separated by ", ".
func joinRows(prefix, sql string, spans []rowSpan, rows []int) string {
	n := len(prefix) + 2*len(rows)
	for _, r := range rows {
		n += spans[r].end - spans[r].start
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(prefix)
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sql[spans[r].start:spans[r].end])
	}
	return b.String()
}

// shardInsertPrefix returns the plan's INSERT rewritten for shard index i
// up to and including its "VALUES ": the first-row plan's statement,
// renamed for the shard as every shard statement is (renameTables) and
// deparsed with a row of width zeros, which it then cuts off.
func (p *Plan) shardInsertPrefix(i, width int) (string, bool) {
	tree, sel := p.cloneWithoutRows()
	p.renameTables(tree, i)
	items := make([]*pg_query.Node, width)
	for j := range items {
		items[j] = pg_query.MakeAConstIntNode(0, -1)
	}
	sel.ValuesLists = []*pg_query.Node{pg_query.MakeListNode(items)}
	text, err := pg_query.Deparse(tree)
	if err != nil {
		return "", false
	}
	row := "(0" + strings.Repeat(", 0", width-1) + ")"
	if !strings.HasSuffix(text, "VALUES "+row) {
		return "", false
	}
	return text[:len(text)-len(row)], true
}

// castChain is a chain of casts (x::a::b) as pg_query parses it: outer is
// the outermost TypeCast node and inner the innermost, whose Arg is the
// constant cast.
type castChain struct {
	outer *pg_query.Node
	inner *pg_query.TypeCast
}

// parseCastChain parses a scanned cast suffix ("::numeric(4,2)") after
// NULL with pg_query: ok when it is nothing but casts of that constant.
// A suffix the scanner accepts but PostgreSQL reads otherwise (int IS
// NULL, text COLLATE C, an alias) is not.
func parseCastChain(suffix string) (castChain, bool) {
	tree, err := pg_query.Parse("SELECT NULL" + suffix)
	if err != nil || len(tree.Stmts) != 1 {
		return castChain{}, false
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 {
		return castChain{}, false
	}
	rt := sel.TargetList[0].GetResTarget()
	if rt == nil || rt.Name != "" || len(rt.Indirection) > 0 {
		return castChain{}, false
	}
	rest := shallowCopy(sel, "target_list")
	if !proto.Equal(rest, bareSelect()) {
		return castChain{}, false
	}
	chain := castChain{outer: rt.Val}
	for n := rt.Val; ; {
		tc := n.GetTypeCast()
		if tc == nil || tc.TypeName == nil {
			return castChain{}, false
		}
		if c := tc.Arg.GetAConst(); c != nil {
			if !c.Isnull {
				return castChain{}, false
			}
			chain.inner = tc
			break
		}
		n = tc.Arg
	}
	chain.inner.Arg = nil
	return chain, true
}

// bareSelect is "SELECT NULL" as pg_query parses it, without its target
// list: a SELECT of nothing but its list.
var bareSelect = sync.OnceValue(func() *pg_query.SelectStmt {
	tree, err := pg_query.Parse("SELECT NULL")
	if err != nil {
		panic(err)
	}
	return shallowCopy(tree.Stmts[0].Stmt.GetSelectStmt(), "target_list").(*pg_query.SelectStmt)
})
