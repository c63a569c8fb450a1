package pgshard

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/planner"
)

// sortMergeQuery answers a Scatter plan that only orders and cuts rows by
// streaming (planner.SortMergePlan): the shards' sorted rows are merged in a
// k-way merge as they arrive, OFFSET rows are skipped, the shard queries stop
// once LIMIT rows are out, and memory stays at a small buffer per shard.
//
// handled is false when the rows cannot be merged exactly in Go — a key of a
// type whose order Go does not reproduce (merge.CompareFunc), text under a
// collation that is not bytewise, a LIMIT value that is not an integer, or
// several shards inside a transaction, whose one connection per node cannot
// hold several open queries — and the caller then lets PostgreSQL combine
// the rows (combineQuery). Nothing has been sent to the shards then but, the
// first time, the collation probe.
func (cn *conn) sortMergeQuery(ctx context.Context, p *planner.Plan, args []any) (rows driver.Rows, handled bool, err error) {
	m := p.SortMerge
	state := m.State()
	if state.Refused {
		return nil, false, nil
	}
	shards, err := cn.targetShards(p, args)
	if err != nil {
		return nil, true, err
	}
	if cn.tx != nil && len(shards) > 1 {
		return nil, false, nil
	}
	offset, ok, err := boundValue(m.Offset, args, "OFFSET", sqlerr.InvalidRowCountInResultOffset)
	if err != nil || !ok {
		return nil, ok, err
	}
	count, ok, err := boundValue(m.Limit, args, "LIMIT", sqlerr.InvalidRowCountInLimit)
	if err != nil || !ok {
		return nil, ok, err
	}
	shardArgs := make([]driver.NamedValue, len(m.Params))
	for i, a := range m.ShardArgs(args) {
		shardArgs[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	if !state.Known && len(m.Keys) > 0 {
		if state, err = cn.learnMergeState(ctx, p, shards[0], shardArgs); err != nil {
			return nil, true, err
		}
		m.SetState(state)
	}
	open := func(ctx context.Context, i int) (driver.Rows, error) {
		sql, err := m.ShardSQL(shards[i])
		if err != nil {
			return nil, err
		}
		return cn.readShard(ctx, p, shards[i], sql, shardArgs)
	}
	var sources []driver.Rows
	release := func() {}
	if len(shards) == 1 {
		src, err := open(ctx, 0)
		if err != nil {
			return nil, true, err
		}
		sources = []driver.Rows{src}
	} else {
		fp := cn.planFanout(p, shards)
		if fp.split {
			// A node has more shards than its pool has connections: they
			// cannot all stream at once.
			return nil, false, nil
		}
		if sources, release, err = cn.streamShards(ctx, fp, open); err != nil {
			return nil, true, err
		}
	}
	keys, ok := mergeKeys(m, state, sources[0])
	if !ok {
		m.SetState(planner.MergeState{Known: true, Refused: true})
		err := merge.CloseAll(sources)
		release()
		if err != nil && ctx.Err() != nil {
			return nil, true, err
		}
		return nil, false, nil
	}
	visible := len(sources[0].Columns()) - m.Extra
	switch {
	case len(sources) == 1:
		rows = sources[0]
	case len(keys) == 0:
		rows = merge.Concatenate(sources)
	default:
		rows = merge.MergeSort(sources, keys)
	}
	if offset > 0 || count >= 0 {
		rows = merge.Limit(rows, offset, count)
	}
	return merge.OnClose(merge.Project(rows, visible), release), true, nil
}

// mergeKeys builds the merge's sort keys from the shard rows' column types;
// ok is false when Go cannot compare some key exactly as PostgreSQL does.
func mergeKeys(m *planner.SortMergePlan, state planner.MergeState, src driver.Rows) ([]merge.SortKey, bool) {
	width := len(src.Columns())
	visible := width - m.Extra
	typed, _ := src.(driver.RowsColumnTypeDatabaseTypeName)
	if typed == nil || visible < 0 {
		return nil, false
	}
	keys := make([]merge.SortKey, len(m.Keys))
	for i, k := range m.Keys {
		col := k.Column
		if k.Extra {
			col += visible
		} else if col >= visible {
			return nil, false
		}
		bytewise := i < len(state.Bytewise) && state.Bytewise[i]
		compare, ok := merge.CompareFunc(typed.ColumnTypeDatabaseTypeName(col), bytewise)
		if !ok {
			return nil, false
		}
		keys[i] = merge.SortKey{Column: col, Desc: k.Desc, NullsFirst: k.NullsFirst, Compare: compare}
	}
	return keys, true
}

// boundValue reads a LIMIT or OFFSET's value from the arguments: -1 when
// there is none (absent, ALL, NULL). ok is false for a value that is not an
// integer (PostgreSQL then judges it). A negative value is PostgreSQL's error.
func boundValue(b planner.Bound, args []any, clause, code string) (n int64, ok bool, err error) {
	if !b.Set {
		return -1, true, nil
	}
	if b.Param == 0 {
		n = b.Const
	} else {
		if b.Param > len(args) {
			return 0, false, nil
		}
		switch v := args[b.Param-1].(type) {
		case nil:
			return -1, true, nil
		case int64:
			n = v
		case int:
			n = int64(v)
		case int32:
			n = int64(v)
		case int16:
			n = int64(v)
		case int8:
			n = int64(v)
		case uint32:
			n = int64(v)
		case uint16:
			n = int64(v)
		case uint8:
			n = int64(v)
		case uint64:
			if v > math.MaxInt64 {
				return 0, false, nil
			}
			n = int64(v)
		case uint:
			if uint64(v) > math.MaxInt64 {
				return 0, false, nil
			}
			n = int64(v)
		case string:
			if n, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
				return 0, false, nil
			}
		default:
			return 0, false, nil
		}
	}
	if n < 0 {
		return 0, true, sqlerr.New(code, "%s must not be negative", clause)
	}
	return n, true, nil
}

// learnMergeState asks PostgreSQL, on a placement of shard index shard,
// which collation each sort key's values have, without running the query
// (LIMIT 0; as text, so that every type has one: a text key keeps its own),
// and the database's default collation: the merge compares text
// in Go only where PostgreSQL orders it by bytes.
func (cn *conn) learnMergeState(ctx context.Context, p *planner.Plan, shard int, args []driver.NamedValue) (planner.MergeState, error) {
	m := p.SortMerge
	sql, err := m.ShardSQL(shard)
	if err != nil {
		return planner.MergeState{}, err
	}
	visibleKeys := 0
	for _, k := range m.Keys {
		if !k.Extra {
			visibleKeys = max(visibleKeys, k.Column+1)
		}
	}
	alias := "s"
	if visibleKeys > 0 {
		names := make([]string, visibleKeys)
		for i := range names {
			names[i] = "a" + strconv.Itoa(i+1)
		}
		alias += "(" + strings.Join(names, ", ") + ")"
	}
	q := "SELECT (SELECT datcollate FROM pg_database WHERE datname = current_database())::text"
	for i, k := range m.Keys {
		col := "a" + strconv.Itoa(k.Column+1)
		if k.Extra {
			col = pgx.Identifier{fmt.Sprintf("?pgshard_sort%d", k.Column+1)}.Sanitize()
		}
		q += fmt.Sprintf(", pg_collation_for((SELECT s.%s::text FROM (%s) %s LIMIT 0)) AS k%d", col, sql, alias, i)
	}
	values := make([]any, len(args))
	for i, a := range args {
		values[i] = a.Value
	}
	var state planner.MergeState
	err = cn.onPlacement(ctx, p, shard, func(dc *stdlib.Conn) error {
		row, err := dc.Conn().Query(ctx, q, values...)
		if err != nil {
			return err
		}
		defer row.Close()
		if !row.Next() {
			if err := row.Err(); err != nil {
				return err
			}
			return sqlerr.New(sqlerr.InternalError, "collation probe returned no row")
		}
		vals, err := row.Values()
		if err != nil {
			return err
		}
		datcollate, _ := vals[0].(string)
		state = planner.MergeState{Known: true, Bytewise: make([]bool, len(m.Keys))}
		for i := range m.Keys {
			coll, collatable := vals[i+1].(string)
			state.Bytewise[i] = !collatable || bytewiseCollation(coll, datcollate)
		}
		return row.Err()
	})
	if err != nil {
		return planner.MergeState{}, fmt.Errorf("pgshard: reading the collations of ORDER BY keys: %w", err)
	}
	return state, nil
}

// bytewiseCollation reports whether text under collation (as
// pg_collation_for names it; "default" is the database's, datcollate) is
// ordered by its bytes: C and POSIX, ucs_basic, and C.UTF-8, whose order is
// by code point.
func bytewiseCollation(collation, datcollate string) bool {
	name := collation
	if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
		name = strings.ReplaceAll(name[1:len(name)-1], `""`, `"`)
	}
	if name == "default" {
		name = datcollate
	}
	switch name {
	case "C", "POSIX", "ucs_basic", "C.UTF-8", "C.utf8":
		return true
	}
	return false
}
