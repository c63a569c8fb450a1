package planner

import (
	"strconv"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/internal/sqlerr"
	plantypes "github.com/pgshard/pgshard/plan"
)

// SortMergePlan answers a multi-shard SELECT that only orders and cuts rows
// (ORDER BY, LIMIT, OFFSET; no aggregate, GROUP BY, DISTINCT or window
// function) by streaming. Every shard runs the query sorted, cut to
// LIMIT+OFFSET rows and without OFFSET, with each ORDER BY key that is not a
// plain select-list column appended as an extra output column; the driver
// merges the sorted shard streams (a k-way merge), skips OFFSET rows, stops
// after LIMIT rows and drops the extra columns. Memory is a few rows per
// shard, whatever the result size.
//
// The driver can merge only when Go compares every key's values exactly as
// PostgreSQL does (merge.CompareFunc: numbers, timestamps, uuid, bytea, text
// under a bytewise collation, ...). Otherwise it falls back to the plan's
// CombinePlan, where PostgreSQL sorts. A SortMergePlan is immutable but for
// its caches, which are safe for concurrent use.
type SortMergePlan struct {
	// Keys are the ORDER BY keys, in order; none for a LIMIT without ORDER BY
	// (the shards' rows are then concatenated and cut).
	Keys []SortMergeKey
	// Extra is how many key columns follow the select list in the shard
	// rows; the caller sees the others.
	Extra int
	// Limit and Offset are the statement's LIMIT and OFFSET.
	Limit, Offset Bound
	// Params lists, for each parameter $i of the shard SQL, the statement
	// parameter (after Eval's values) it takes: Params[i-1].
	Params []int

	plan     *Plan
	tree     *pg_query.ParseResult
	shardSQL []shardText

	mu    sync.Mutex
	state MergeState
}

// SortMergeKey is one ORDER BY key of a SortMergePlan (plan.SortMergeKey).
type SortMergeKey = plantypes.SortMergeKey

// Bound is a LIMIT or OFFSET (plan.Bound).
type Bound = plantypes.Bound

// MergeState is what the driver learnt, on a first execution, about merging
// a SortMergePlan's rows in Go (plan.MergeState).
type MergeState = plantypes.MergeState

// State returns what the driver recorded about merging.
func (m *SortMergePlan) State() MergeState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// SetState records what the driver learnt about merging.
func (m *SortMergePlan) SetState(s MergeState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = s
}

// ShardSQL returns the SQL shard index i runs: the query, sorted by its keys
// and cut to LIMIT+OFFSET rows, on the shard's tables.
func (m *SortMergePlan) ShardSQL(i int) (string, error) {
	st := &m.shardSQL[i]
	st.once.Do(func() {
		tree := proto.Clone(m.tree).(*pg_query.ParseResult)
		m.plan.renameTables(tree, i)
		text, err := pg_query.Deparse(tree)
		if err != nil {
			st.err = sqlerr.New(sqlerr.InternalError, "deparsing statement for shard %d: %v", m.plan.Table.Shards[i].ID, err)
			return
		}
		st.sql = text
	})
	return st.sql, st.err
}

// TemplateSQL returns the shard SQL on the distributed tables' own names, as
// the metadata database (where they are empty templates) can run it.
func (m *SortMergePlan) TemplateSQL() (string, error) {
	text, err := pg_query.Deparse(m.tree)
	if err != nil {
		return "", sqlerr.New(sqlerr.InternalError, "deparsing merge statement: %v", err)
	}
	return text, nil
}

// ShardArgs picks the shard SQL's arguments from the statement's (after
// Eval's values).
func (m *SortMergePlan) ShardArgs(args []any) []any {
	return plantypes.PickArgs(m.Params, args)
}

// extraKeyName names the extra output column of ORDER BY key i.
func extraKeyName(i int) string { return "?pgshard_sort" + strconv.Itoa(i+1) }

// planSortMerge makes the streaming plan of a SELECT that only orders and
// cuts rows; nil when its ORDER BY or LIMIT is of a form the driver does not
// merge (USING operators, WITH TIES, LIMIT expressions other than constants
// and parameters), which the combine plan then answers.
func planSortMerge(p *Plan, sel *pg_query.SelectStmt) *SortMergePlan {
	if sel.LimitOption == pg_query.LimitOption_LIMIT_OPTION_WITH_TIES {
		return nil
	}
	limit, ok := boundOf(sel.LimitCount)
	if !ok {
		return nil
	}
	offset, ok := boundOf(sel.LimitOffset)
	if !ok {
		return nil
	}
	out := proto.Clone(sel).(*pg_query.SelectStmt)
	m := &SortMergePlan{Limit: limit, Offset: offset, plan: p}
	// Select-list positions are known up to the first *.
	known := len(out.TargetList)
	for i, t := range out.TargetList {
		if rt := t.GetResTarget(); rt == nil || hasStar(rt.Val) {
			known = i
			break
		}
	}
	unchecked := false
	keyOf := func(n *pg_query.Node) string { return nodeKey(canonicalColumns(n, p.refs)) }
	out.SortClause = nil
	for _, s := range sel.SortClause {
		sb := s.GetSortBy()
		if sb == nil || sb.SortbyDir == pg_query.SortByDir_SORTBY_USING {
			return nil
		}
		k := SortMergeKey{Desc: sb.SortbyDir == pg_query.SortByDir_SORTBY_DESC}
		switch sb.SortbyNulls {
		case pg_query.SortByNulls_SORTBY_NULLS_FIRST:
			k.NullsFirst = true
		case pg_query.SortByNulls_SORTBY_NULLS_LAST:
			k.NullsFirst = false
		default:
			k.NullsFirst = k.Desc
		}
		// The shard sorts by the very column the driver compares: a
		// select-list column by its position, or an extra column by name (so
		// a volatile key is computed once).
		var ref *pg_query.Node
		if c := sb.Node.GetAConst(); c != nil {
			iv, isInt := c.Val.(*pg_query.A_Const_Ival)
			if !isInt {
				return nil
			}
			// A position counts the columns a * expands to: it is the
			// same in the shard rows, but only checkable by PostgreSQL.
			k.Column = int(iv.Ival.Ival) - 1
			if k.Column < 0 || (known == len(sel.TargetList) && k.Column >= known) {
				return nil
			}
			unchecked = unchecked || k.Column >= known
			ref = aConstInt(int64(k.Column + 1))
		} else {
			if ambiguousOutputName(sel, sb.Node) {
				return nil
			}
			e := resolveSortExpr(sel, nil, sb.Node)
			k.Column = -1
			for i := 0; i < known; i++ {
				if keyOf(sel.TargetList[i].GetResTarget().Val) == keyOf(e) {
					k.Column = i
					break
				}
			}
			if k.Column >= 0 {
				ref = aConstInt(int64(k.Column + 1))
			} else {
				k.Column, k.Extra = m.Extra, true
				name := extraKeyName(m.Extra)
				m.Extra++
				out.TargetList = append(out.TargetList, resTarget(name, cloneNode(e)))
				ref = columnRef("", name)
			}
		}
		psb := proto.Clone(sb).(*pg_query.SortBy)
		psb.Node = ref
		out.SortClause = append(out.SortClause, &pg_query.Node{Node: &pg_query.Node_SortBy{SortBy: psb}})
		m.Keys = append(m.Keys, k)
	}
	if unchecked && m.Extra > 0 {
		// The extra columns would make a position past the select list
		// valid on the shards.
		return nil
	}
	out.LimitOffset = nil
	out.LimitCount = nil
	out.LimitOption = pg_query.LimitOption_LIMIT_OPTION_DEFAULT
	if sel.LimitCount != nil && limit.Set {
		out.LimitCount = limitPlusOffset(sel)
		out.LimitOption = pg_query.LimitOption_LIMIT_OPTION_COUNT
	}
	m.tree = wrapSelect(out)
	m.Params = compactParamsOf(m.tree)
	m.shardSQL = make([]shardText, len(p.Table.Shards))
	return m
}

// boundOf reads a LIMIT or OFFSET: absent, NULL or ALL (no bound), an
// integer constant, or a parameter; ok is false for anything else.
func boundOf(n *pg_query.Node) (Bound, bool) {
	if n == nil {
		return Bound{}, true
	}
	if c := n.GetAConst(); c != nil {
		if c.Isnull {
			return Bound{}, true
		}
		if iv, ok := c.Val.(*pg_query.A_Const_Ival); ok {
			return Bound{Set: true, Const: int64(iv.Ival.Ival)}, true
		}
		return Bound{}, false
	}
	if pr := n.GetParamRef(); pr != nil {
		return Bound{Set: true, Param: int(pr.Number)}, true
	}
	return Bound{}, false
}

// ambiguousOutputName reports whether an ORDER BY item is a bare name that
// several select-list aliases have (an error PostgreSQL reports).
func ambiguousOutputName(sel *pg_query.SelectStmt, n *pg_query.Node) bool {
	cr := n.GetColumnRef()
	if cr == nil || len(cr.Fields) != 1 {
		return false
	}
	name, count := stringOf(cr.Fields[0]), 0
	for _, t := range sel.TargetList {
		if rt := t.GetResTarget(); rt != nil && rt.Name == name {
			count++
		}
	}
	return count > 1
}

// hasStar reports whether a select-list expression is a * or t.*.
func hasStar(n *pg_query.Node) bool {
	cr := n.GetColumnRef()
	return cr != nil && cr.Fields[len(cr.Fields)-1].GetAStar() != nil
}

// compactParamsOf renumbers the parameters tree uses as $1..$n, keeping
// their order, and returns the original number of each.
func compactParamsOf(tree *pg_query.ParseResult) []int {
	used := map[int32]bool{}
	max := int32(0)
	walk(tree, func(m protoreflect.ProtoMessage) bool {
		if pr, ok := m.(*pg_query.ParamRef); ok {
			used[pr.Number] = true
			if pr.Number > max {
				max = pr.Number
			}
		}
		return true
	})
	renum := map[int32]int32{}
	params := []int{}
	for n := int32(1); n <= max; n++ {
		if used[n] {
			renum[n] = int32(len(params) + 1)
			params = append(params, int(n))
		}
	}
	walk(tree, func(m protoreflect.ProtoMessage) bool {
		if pr, ok := m.(*pg_query.ParamRef); ok {
			pr.Number = renum[pr.Number]
		}
		return true
	})
	return params
}

// KeysString renders the keys for plan descriptions and EXPLAIN, as
// "[column 2 desc nulls first, extra 1]".
func (m *SortMergePlan) KeysString() string { return plantypes.KeysString(m.Keys) }
