package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Reference tables (catalog.Table.Reference) are copied whole to every
// worker, in one shard. The planner treats them as co-located with every
// distributed table:
//
//   - a statement that reads or writes only reference tables runs whole on
//     their one shard (Router): a read on one placement, a write on every
//     placement;
//   - a statement on distributed tables that also reads reference tables is
//     planned as if they were not there (they pin nothing and route
//     nothing), and each shard's statement reads the reference table's
//     shard on the node where it runs (renameTables, ShardAt);
//   - running shard by shard is only right when each output row comes from
//     one shard: a multi-shard statement is refused (0A000, so that
//     Materialize may run it instead) when a query level reads reference
//     tables but no distributed table in its own FROM while a distributed
//     table is read below it, or when a reference table is on the
//     preserved side of an outer join whose other side reads a distributed
//     table (each shard would add the unmatched reference rows again).
//     A statement pinned to one shard runs whole there and is always right.

// referenceRelation registers a reference to a reference table: in sc's
// refs (columns resolve through it; it is never a key column) and in
// a.references.
func (a *analyzer) referenceRelation(sc *scope, rv *pg_query.RangeVar, t *catalog.Table, alias string, target bool) *tableRef {
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
	a.references = append(a.references, ref)
	return ref
}

// References returns the reference tables the statement reads besides
// Table's shards (a statement on distributed tables); nil when none. The
// slice belongs to the plan.
func (p *Plan) References() []*catalog.Table {
	var out []*catalog.Table
	for _, t := range p.tables {
		if t.Reference() && t != p.Table {
			out = append(out, t)
		}
	}
	return out
}

// checkReferenceReads refuses a multi-shard statement on distributed tables
// whose reference tables would make shard-by-shard execution wrong (see the
// package comment above).
func checkReferenceReads(stmt *pg_query.Node, a *analyzer) error {
	dist := map[*pg_query.RangeVar]*catalog.Table{}
	for _, r := range a.refs {
		dist[r.rv] = r.table
	}
	refs := map[*pg_query.RangeVar]*catalog.Table{}
	for _, r := range a.references {
		refs[r.rv] = r.table
	}
	reads := func(n protoreflect.ProtoMessage, set map[*pg_query.RangeVar]*catalog.Table) *catalog.Table {
		var found *catalog.Table
		walk(n, func(m protoreflect.ProtoMessage) bool {
			if rv, ok := m.(*pg_query.RangeVar); ok && set[rv] != nil {
				found = set[rv]
			}
			return found == nil
		})
		return found
	}
	var err error
	level := func(m protoreflect.ProtoMessage, from []*pg_query.Node, extra ...*pg_query.RangeVar) {
		var direct []*pg_query.RangeVar
		direct = append(direct, extra...)
		for _, item := range from {
			direct = append(direct, directRelations(item)...)
		}
		var ref *catalog.Table
		for _, rv := range direct {
			if dist[rv] != nil {
				return
			}
			if refs[rv] != nil && ref == nil {
				ref = refs[rv]
			}
		}
		if ref == nil {
			return
		}
		if t := reads(m, dist); t != nil {
			err = sqlerr.Unsupported("a query level that reads reference table \"%s\" and no distributed table in its FROM cannot read distributed table \"%s\" below it shard by shard (each shard would return the reference rows again)", ref.Name, t.Name)
		}
	}
	walk(stmt, func(m protoreflect.ProtoMessage) bool {
		if err != nil {
			return false
		}
		switch x := m.(type) {
		case *pg_query.SelectStmt:
			level(x, x.FromClause)
		case *pg_query.UpdateStmt:
			level(x, x.FromClause, x.Relation)
		case *pg_query.DeleteStmt:
			level(x, x.UsingClause, x.Relation)
		case *pg_query.JoinExpr:
			var sides [][2]*pg_query.Node
			switch x.Jointype {
			case pg_query.JoinType_JOIN_LEFT:
				sides = [][2]*pg_query.Node{{x.Larg, x.Rarg}}
			case pg_query.JoinType_JOIN_RIGHT:
				sides = [][2]*pg_query.Node{{x.Rarg, x.Larg}}
			case pg_query.JoinType_JOIN_FULL:
				sides = [][2]*pg_query.Node{{x.Larg, x.Rarg}, {x.Rarg, x.Larg}}
			}
			for _, s := range sides {
				kept, other := s[0], s[1]
				if ref := reads(kept, refs); ref != nil && reads(kept, dist) == nil {
					if t := reads(other, dist); t != nil {
						err = sqlerr.Unsupported("reference table \"%s\" on the preserved side of an outer join with distributed table \"%s\" cannot run shard by shard (each shard would add the unmatched reference rows)", ref.Name, t.Name)
						return false
					}
				}
			}
		}
		return true
	})
	return err
}

// directRelations lists the RangeVars of a FROM item that its own query
// level reads: through joins, not into subqueries.
func directRelations(item *pg_query.Node) []*pg_query.RangeVar {
	switch x := item.Node.(type) {
	case *pg_query.Node_RangeVar:
		return []*pg_query.RangeVar{x.RangeVar}
	case *pg_query.Node_JoinExpr:
		return append(directRelations(x.JoinExpr.Larg), directRelations(x.JoinExpr.Rarg)...)
	}
	return nil
}

// planReferenceOnly finishes the plan of a statement that reads and writes
// reference tables only: it runs whole on their one shard (Router), a read
// on one placement, a write on every placement.
func (p *Plan) planReferenceOnly(stmt *pg_query.Node, env Env) error {
	if ins := stmt.GetInsertStmt(); ins != nil && p.target != nil {
		if err := p.planInsert(ins, env); err != nil {
			return err
		}
	} else if p.Modifies && p.replicated() {
		if err := p.planReplicatedModification(stmt, env); err != nil {
			return err
		}
	}
	p.Kind = Router
	p.compactParams()
	return nil
}

// checkReplicatedReferenceWrite refuses a write to a replicated shard of a
// distributed table that reads reference tables: its replicas would each
// read their own node's copy, and keeping those equal while they are read
// takes locks on the reference table's placements in an order (the
// written shard's placements) that differs from the one its writers take
// (the reference table's placements): two writers could wait for each
// other on two servers, with no one to see the deadlock.
func (p *Plan) checkReplicatedReferenceWrite() error {
	refs := p.References()
	if !p.Modifies || len(refs) == 0 || p.Table.Reference() || !p.replicated() {
		return nil
	}
	return sqlerr.Unsupported("a write to replicated distributed table \"%s\" cannot read reference table \"%s\" shard by shard (its replicas could read different versions of it); read the values first, or use INSERT ... SELECT", p.Table.Name, refs[0].Name)
}

// referenceTarget refuses a write to a reference table in a statement that
// reads distributed tables (but INSERT ... SELECT, which runs the SELECT
// first): each of its placements would read other shards.
func (a *analyzer) referenceTarget() error {
	for _, r := range a.references {
		if r.target {
			return sqlerr.Unsupported("a write to reference table \"%s\" cannot read distributed table \"%s\" on its placements; use INSERT ... SELECT, or read the values first", r.table.Name, a.refs[0].table.Name)
		}
	}
	return nil
}

// checkCombineReferences refuses a multi-shard SELECT whose combine step
// (CombinePlan, run on one server over the shards' partial rows) would
// evaluate a subquery reading a reference table: that server holds the
// reference table's empty template, not its rows. Only the clauses the
// combine query may keep are looked at (select list, HAVING, ORDER BY,
// DISTINCT, GROUP BY, WINDOW); FROM and WHERE run on the shards.
func checkCombineReferences(sel *pg_query.SelectStmt, a *analyzer) error {
	if sel == nil {
		return nil
	}
	refs := map[*pg_query.RangeVar]*catalog.Table{}
	for _, r := range a.references {
		refs[r.rv] = r.table
	}
	var found *catalog.Table
	for _, n := range nodesOf(sel.TargetList, []*pg_query.Node{sel.HavingClause}, sel.SortClause, sel.DistinctClause, sel.GroupClause, sel.WindowClause) {
		walk(n, func(m protoreflect.ProtoMessage) bool {
			if rv, ok := m.(*pg_query.RangeVar); ok && refs[rv] != nil {
				found = refs[rv]
			}
			return found == nil
		})
	}
	if found != nil {
		return sqlerr.Unsupported("a subquery reading reference table \"%s\" in a select list, HAVING or ORDER BY that pgshard combines across shards is not supported", found.Name)
	}
	return nil
}
