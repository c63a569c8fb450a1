package engine

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/plan"
)

// SortMerge answers a Scatter plan that only orders and cuts rows by
// streaming (planner.SortMergePlan): the shards' sorted rows are merged in a
// k-way merge as they arrive (merge.MergeSort), OFFSET rows are skipped, the
// shard queries stop once LIMIT rows are out (merge.Limit), and memory stays
// at a small buffer per shard.
//
// When the rows cannot be merged exactly in Go — a key of a type whose
// order Go does not reproduce (merge.CompareFunc), text under a collation
// that is not bytewise, a LIMIT value that is not an integer, several shards
// inside a transaction (whose one connection per node cannot hold several
// open queries), or more shards on a node than the fan-out grants — the
// statement runs as its fallback instead (Combine, or the plain Scatter), on
// the same bound arguments. Nothing has been sent to the shards then but,
// the first time, the collation probe (learnMergeState).
//
// A SortMerge is made once per plan (planner.Build), with its fallback, immutable
// but for what Merge learns (MergeState, under its own lock), and shared
// by every connection that runs it.
type SortMerge struct {
	// Target is what the statement runs on.
	Target *plan.Target
	// Shards picks the shards the arguments leave (and gives the
	// fallback's statements).
	Shards ShardQueries
	// Merge gives the shards' sorted statements and keeps what is learnt
	// of merging them.
	Merge MergeQueries
	// Keys are the ORDER BY keys, in order; none for a LIMIT without ORDER
	// BY (the shards' rows are then concatenated and cut).
	Keys []plan.SortMergeKey
	// Extra is how many key columns follow the select list in the shard
	// rows; the caller sees the others.
	Extra int
	// Limit and Offset are the statement's LIMIT and OFFSET.
	Limit, Offset plan.Bound
	// Params lists, for each parameter $i of the shards' sorted
	// statements, the statement parameter (after Eval's values) it takes.
	Params []int
	// Fallback is the read that answers when the merge cannot (Combine,
	// or the plain Scatter).
	Fallback ScatterInput
}

// MergeQueries is how a SortMerge finds the sorted statement of each shard
// and keeps what it learnt of merging (*planner.SortMergePlan). Safe for
// concurrent use.
type MergeQueries interface {
	// ShardSQL returns the sorted statement of shard index idx.
	ShardSQL(idx int) (string, error)
	// State returns what was recorded about merging.
	State() plan.MergeState
	// SetState records what was learnt about merging.
	SetState(plan.MergeState)
}

// Inputs is the fallback.
func (s *SortMerge) Inputs() []Primitive { return []Primitive{s.Fallback} }

// fallback is the read that answers when the merge cannot.
func (s *SortMerge) fallback() ScatterInput { return s.Fallback }

func (s *SortMerge) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(s.Query(ctx, vc, nargs))
}

func (s *SortMerge) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	args, bound, err := vc.Bind(ctx, s.Target, nargs)
	if err != nil {
		return nil, err
	}
	rows, handled, err := s.merge(ctx, vc, args)
	if handled {
		return rows, err
	}
	sc, err := newScatterCall(s.Target, s.Shards, args, bound)
	if err != nil {
		return nil, err
	}
	return s.fallback().queryBound(ctx, vc, sc)
}

// Describe: the merge, or (described by what Merge recorded) the fallback.
func (s *SortMerge) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	return describeScatter(ctx, vc, s.Target, s.Shards, nargs, d, s.merged)
}

// merged is how a SortMerge merges, for EXPLAIN: in Go, with its own
// sorted statements, unless merging was refused or the shards must run one
// after the other (a transaction), when its fallback answers (and always
// described as its fallback when that adds up aggregates).
func (s *SortMerge) merged(vc Cursor, shards []int, args []any) (string, func(int) (string, error), []driver.NamedValue) {
	if _, agg := s.Fallback.(*Aggregate); agg || s.Merge.State().Refused || (vc.InTransaction() && len(shards) > 1) {
		return s.Fallback.merged(vc, shards, args)
	}
	merge := fmt.Sprintf("merge the shards' sorted rows as they stream in (k-way, keys %s)", plan.KeysString(s.Keys))
	if s.Offset.Set || s.Limit.Set {
		merge += fmt.Sprintf(", then OFFSET %s LIMIT %s", s.Offset, s.Limit)
	}
	if s.Extra > 0 {
		merge += fmt.Sprintf(", dropping %d sort columns", s.Extra)
	}
	merge += "; PostgreSQL combines instead when a key cannot be compared exactly in Go"
	bound := make([]driver.NamedValue, 0, len(s.Params))
	for i, a := range plan.PickArgs(s.Params, args) {
		bound = append(bound, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	return merge, s.Merge.ShardSQL, bound
}

// merge streams the answer; handled is false when the fallback must answer.
func (s *SortMerge) merge(ctx context.Context, vc Cursor, args []any) (rows driver.Rows, handled bool, err error) {
	p, m := s.Target, s.Merge
	state := m.State()
	if state.Refused {
		return nil, false, nil
	}
	shards, err := targetShards(s.Shards, args)
	if err != nil {
		return nil, true, err
	}
	if vc.InTransaction() && len(shards) > 1 {
		return nil, false, nil
	}
	offset, ok, err := boundValue(s.Offset, args, "OFFSET", sqlerr.InvalidRowCountInResultOffset)
	if err != nil || !ok {
		return nil, ok, err
	}
	count, ok, err := boundValue(s.Limit, args, "LIMIT", sqlerr.InvalidRowCountInLimit)
	if err != nil || !ok {
		return nil, ok, err
	}
	shardArgs := make([]driver.NamedValue, len(s.Params))
	for i, a := range plan.PickArgs(s.Params, args) {
		shardArgs[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	if !state.Known && len(s.Keys) > 0 {
		if state, err = learnMergeState(ctx, vc, s, shards[0], shardArgs); err != nil {
			return nil, true, err
		}
		m.SetState(state)
	}
	shapes := NewShapes(p)
	open := func(ctx context.Context, i int) (driver.Rows, error) {
		sql, err := m.ShardSQL(shards[i])
		if err != nil {
			return nil, err
		}
		r, err := vc.ReadShard(ctx, p, shards[i], sql, shardArgs)
		if err != nil {
			return nil, err
		}
		return shapes.Checked(shards[i], r)
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
		var split bool
		if sources, release, split, err = vc.Fanout(ctx, p, shards, true, open); split {
			// A node has more shards than its pool has connections: they
			// cannot all stream at once.
			return nil, false, nil
		}
		if err != nil {
			return nil, true, err
		}
	}
	keys, ok := mergeKeys(s, state, sources[0], vc.TextResults())
	if !ok {
		m.SetState(plan.MergeState{Known: true, Refused: true})
		err := merge.CloseAll(sources)
		release()
		if err != nil && ctx.Err() != nil {
			return nil, true, err
		}
		return nil, false, nil
	}
	visible := len(sources[0].Columns()) - s.Extra
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
//
// Keys whose values arrive as text that the session's settings change are
// not merged in Go: PostgreSQL orders them (Combine, which reads the
// shards' values in binary). Interval always arrives as text (stdlib reads
// it so), printed in the session's IntervalStyle; textResults tells that
// every value arrives as text (the connections' query mode is the simple
// protocol or exec), and then float and date/time keys are not merged
// either (extra_float_digits below 1 rounds floats, so that distinct values
// compare equal; DateStyle changes what there is to parse).
func mergeKeys(m *SortMerge, state plan.MergeState, src driver.Rows, textResults bool) ([]merge.SortKey, bool) {
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
		dbType := typed.ColumnTypeDatabaseTypeName(col)
		if dbType == "INTERVAL" || (textResults && settingDependentText[dbType]) {
			return nil, false
		}
		compare, ok := merge.CompareFunc(dbType, bytewise)
		if !ok {
			return nil, false
		}
		keys[i] = merge.SortKey{Column: col, Desc: k.Desc, NullsFirst: k.NullsFirst, Compare: compare}
	}
	return keys, true
}

// settingDependentText are the key types (as database/sql names them)
// whose text the session's settings change (mergeKeys).
var settingDependentText = map[string]bool{"FLOAT4": true, "FLOAT8": true, "INTERVAL": true, "DATE": true, "TIME": true, "TIMESTAMP": true, "TIMESTAMPTZ": true}

// boundValue reads a LIMIT or OFFSET's value from the arguments: -1 when
// there is none (absent, ALL, NULL). ok is false for a value that is not an
// integer (PostgreSQL then judges it). A negative value is PostgreSQL's error.
func boundValue(b plan.Bound, args []any, clause, code string) (n int64, ok bool, err error) {
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
