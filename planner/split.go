package planner

import (
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/internal/sqlerr"
	plantypes "github.com/pgshard/pgshard/plan"
)

// InsertPart is the part of a multi-row INSERT that goes to one shard: the
// statement with only that shard's rows, its own arguments, and the
// positions (in the original VALUES list) of its rows.
type InsertPart = plantypes.InsertPart

// RowShards returns the shard index of every VALUES row of an INSERT plan.
func (p *Plan) RowShards(args []any) ([]int, error) {
	out := make([]int, len(p.InsertKeys))
	for i, k := range p.InsertKeys {
		v, err := k.Resolve(args)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, sqlerr.New(sqlerr.NotNullViolation, "cannot plan INSERT using row with NULL value in partition column \"%s\"", p.Table.KeyColumn)
		}
		if out[i], err = ShardIndex(p.Table, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SplitInsert splits a multi-row INSERT whose rows fall in different shards
// into one statement per shard, in the order shards first appear. Parameters
// are renumbered per part. With RETURNING, every part must return exactly its
// rows (ON CONFLICT DO NOTHING could drop some), so that the caller can put
// returned rows back in VALUES order. A plan of literal rows makes its
// parts once, when planned, and returns those: callers must not modify them.
func (p *Plan) SplitInsert(args []any, rowShards []int) ([]InsertPart, error) {
	if p.rowsDropped {
		if p.parts == nil || !slices.Equal(rowShards, p.partShards) {
			return nil, p.errRowsDropped()
		}
		return p.parts, nil
	}
	ins := p.tree.Stmts[0].Stmt.GetInsertStmt()
	if ins == nil || len(p.InsertKeys) == 0 {
		return nil, sqlerr.New(sqlerr.InternalError, "not a multi-row INSERT")
	}
	if len(ins.ReturningList) > 0 && ins.OnConflictClause != nil && ins.OnConflictClause.Action == pg_query.OnConflictAction_ONCONFLICT_NOTHING {
		return nil, sqlerr.Unsupported("a multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING whose rows fall in different shards of \"%s\" is not supported", p.Table.Name)
	}
	if ins.WithClause != nil {
		return nil, sqlerr.Unsupported("a multi-row INSERT with WITH whose rows fall in different shards of \"%s\" is not supported", p.Table.Name)
	}
	parts := groupRows(rowShards)
	for i := range parts {
		var tree *pg_query.ParseResult
		var sel, rows *pg_query.SelectStmt
		if p.literalRows {
			// The rows are attached, shared, once the rest is rewritten.
			tree, sel = p.cloneWithoutRows()
			rows = p.tree.Stmts[0].Stmt.GetInsertStmt().SelectStmt.GetSelectStmt()
		} else {
			tree = proto.Clone(p.tree).(*pg_query.ParseResult)
			sel = tree.Stmts[0].Stmt.GetInsertStmt().SelectStmt.GetSelectStmt()
			rows = sel
		}
		kept := make([]*pg_query.Node, 0, len(parts[i].Rows))
		for _, r := range parts[i].Rows {
			kept = append(kept, rows.ValuesLists[r])
		}
		if !p.literalRows {
			sel.ValuesLists = kept
		}
		// Renumber the parameters this part uses, in order of appearance.
		renum := map[int32]int32{}
		walk(tree.Stmts[0].Stmt, func(m protoreflect.ProtoMessage) bool {
			if pr, ok := m.(*pg_query.ParamRef); ok {
				n, seen := renum[pr.Number]
				if !seen {
					orig := int(pr.Number)
					if p.ShardParams != nil && orig <= len(p.ShardParams) {
						orig = p.ShardParams[orig-1]
					}
					if orig > len(args) {
						return true
					}
					n = int32(len(renum) + 1)
					renum[pr.Number] = n
					parts[i].Args = append(parts[i].Args, args[orig-1])
				}
				pr.Number = n
			}
			return true
		})
		p.renameTables(tree, parts[i].Shard)
		if p.literalRows {
			sel.ValuesLists = kept
		}
		text, err := pg_query.Deparse(tree)
		if err != nil {
			return nil, sqlerr.New(sqlerr.InternalError, "deparsing INSERT part: %v", err)
		}
		parts[i].SQL = text
	}
	return parts, nil
}
