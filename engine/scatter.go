package engine

import (
	"context"
	"database/sql/driver"

	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/plan"
)

// Scatter is a read that runs on every shard of its plan's table (or those
// Prune leaves) and passes their rows on in no particular order: every
// shard at once outside a transaction (as many at once per node as the
// fan-out reservation grants), each read ahead into a small buffer, so that
// rows reach the caller as shards produce them in bounded memory; one shard
// after the other inside a transaction. Closing the rows (or ctx ending)
// stops every shard query.
//
// A Scatter is made once per plan (planner.Build), immutable and shared by every
// connection that runs it.
type Scatter struct {
	// Target is what the statement runs on.
	Target *plan.Target
	// Shards picks the shards the arguments leave and gives their
	// statements.
	Shards ShardQueries
}

// ShardQueries is how a multi-shard primitive finds its shards and the
// statement each one gets: the planner's rewriting of the statement
// (*planner.Plan). Implementations are immutable and safe for concurrent
// use.
type ShardQueries interface {
	// TargetShards returns the indexes of the shards the arguments (after
	// Eval's values) leave, ascending; empty when no shard can have rows.
	TargetShards(args []any) ([]int, error)
	// ShardSQL returns the statement for shard index idx.
	ShardSQL(idx int) (string, error)
}

// ScatterBuffer is how many rows each shard of a multi-shard query reads
// ahead of the caller.
const ScatterBuffer = 256

func (s *Scatter) Inputs() []Primitive { return nil }

func (s *Scatter) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(s.Query(ctx, vc, nargs))
}

func (s *Scatter) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	sc, err := bindScatter(ctx, vc, s.Target, s.Shards, nargs)
	if err != nil {
		return nil, err
	}
	return s.queryBound(ctx, vc, sc)
}

func (s *Scatter) queryBound(ctx context.Context, vc Cursor, sc *scatterCall) (driver.Rows, error) {
	if vc.InTransaction() || len(sc.shards) == 1 {
		// A transaction has one connection per node: shards run one after
		// the other on it.
		first, err := sc.open(ctx, vc, 0)
		if err != nil {
			return nil, err
		}
		return NewConcat(first, len(sc.shards), func(i int) (driver.Rows, error) { return sc.open(ctx, vc, i) }), nil
	}
	sources, release, _, err := vc.Fanout(ctx, s.Target, sc.shards, false, func(ctx context.Context, i int) (driver.Rows, error) {
		return sc.open(ctx, vc, i)
	})
	if err != nil {
		return nil, err
	}
	return merge.OnClose(merge.Concatenate(sources), release), nil
}

func (s *Scatter) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	return describeScatter(ctx, vc, s.Target, s.Shards, nargs, d, s.merged)
}

func (s *Scatter) merged(vc Cursor, shards []int, args []any) (string, func(int) (string, error), []driver.NamedValue) {
	return concatenated(vc, shards, args)
}

// ScatterInput is a read of several shards that can run on arguments
// already bound: SortMerge's fallback, which must not run Eval twice.
// Its methods are unexported: only Scatter, Combine and Aggregate
// implement it; the planner names it to build a SortMerge.
type ScatterInput interface {
	Primitive
	queryBound(ctx context.Context, vc Cursor, sc *scatterCall) (driver.Rows, error)
	// merged is how it merges the shards' answers, for EXPLAIN.
	merged(vc Cursor, shards []int, args []any) (merge string, shardSQL func(int) (string, error), bound []driver.NamedValue)
}

// scatterCall is one execution of a multi-shard plan: its arguments bound
// (Eval run), the shards it runs on, and the shard arguments.
type scatterCall struct {
	t      *plan.Target
	q      ShardQueries
	args   []any               // the statement's, Eval's appended
	bound  []driver.NamedValue // the same as driver values
	shards []int               // indexes into t.Table.Shards, never empty
	shard  []driver.NamedValue // the shard statement's arguments
	shapes *Shapes
}

// bindScatter binds a multi-shard statement's arguments and picks its
// shards.
func bindScatter(ctx context.Context, vc Cursor, t *plan.Target, q ShardQueries, nargs []driver.NamedValue) (*scatterCall, error) {
	args, bound, err := vc.Bind(ctx, t, nargs)
	if err != nil {
		return nil, err
	}
	return newScatterCall(t, q, args, bound)
}

func newScatterCall(t *plan.Target, q ShardQueries, args []any, bound []driver.NamedValue) (*scatterCall, error) {
	shards, err := targetShards(q, args)
	if err != nil {
		return nil, err
	}
	return &scatterCall{t: t, q: q, args: args, bound: bound, shards: shards, shard: renumber(plan.ShardArgs(t.ShardParams, bound)), shapes: NewShapes(t)}, nil
}

// open starts the read of the call's shard at position i, its rows checked
// against the other shards' (Shapes).
func (sc *scatterCall) open(ctx context.Context, vc Cursor, i int) (driver.Rows, error) {
	idx := sc.shards[i]
	sql, err := sc.q.ShardSQL(idx)
	if err != nil {
		return nil, err
	}
	r, err := vc.ReadShard(ctx, sc.t, idx, sql, sc.shard)
	if err != nil {
		return nil, err
	}
	return sc.shapes.Checked(idx, r)
}

// targetShards is the list of shard indexes a multi-shard statement runs
// on; never empty (a statement that matches no key still answers, with no
// rows, from one).
func targetShards(q ShardQueries, args []any) ([]int, error) {
	shards, err := q.TargetShards(args)
	if err != nil {
		return nil, err
	}
	if len(shards) == 0 {
		shards = []int{0}
	}
	return shards, nil
}

// renumber sets the ordinals of arguments picked out of a longer list.
func renumber(args []driver.NamedValue) []driver.NamedValue {
	for i := range args {
		if args[i].Ordinal != i+1 {
			out := make([]driver.NamedValue, len(args))
			for j, a := range args {
				out[j] = driver.NamedValue{Ordinal: j + 1, Value: a.Value}
			}
			return out
		}
	}
	return args
}

// Renumber sets the ordinals of arguments picked out of a longer list
// (1, 2, ...), copying them only when they are not so already.
func Renumber(args []driver.NamedValue) []driver.NamedValue { return renumber(args) }

// execRows is Exec of a read: its rows are read to the end and counted.
func execRows(rows driver.Rows, err error) (driver.Result, error) {
	if err != nil {
		return nil, err
	}
	return Drain(rows)
}
