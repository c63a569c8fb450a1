package engine

import (
	"context"
	"database/sql/driver"

	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/planner"
)

// Scatter is a read that runs on every shard of its plan's table (or those
// Prune leaves) and passes their rows on in no particular order: every
// shard at once outside a transaction (as many at once per node as the
// fan-out reservation grants), each read ahead into a small buffer, so that
// rows reach the caller as shards produce them in bounded memory; one shard
// after the other inside a transaction. Closing the rows (or ctx ending)
// stops every shard query.
type Scatter struct {
	Plan *planner.Plan
}

// ScatterBuffer is how many rows each shard of a multi-shard query reads
// ahead of the caller.
const ScatterBuffer = 256

func (s Scatter) Inputs() []Primitive { return nil }

func (s Scatter) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(s.Query(ctx, vc, nargs))
}

func (s Scatter) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	sc, err := bindScatter(ctx, vc, s.Plan, nargs)
	if err != nil {
		return nil, err
	}
	return s.queryBound(ctx, vc, sc)
}

func (s Scatter) queryBound(ctx context.Context, vc Cursor, sc *scatterCall) (driver.Rows, error) {
	if vc.InTransaction() || len(sc.shards) == 1 {
		// A transaction has one connection per node: shards run one after
		// the other on it.
		first, err := sc.open(ctx, vc, 0)
		if err != nil {
			return nil, err
		}
		return NewConcat(first, len(sc.shards), func(i int) (driver.Rows, error) { return sc.open(ctx, vc, i) }), nil
	}
	sources, release, _, err := vc.Fanout(ctx, s.Plan, sc.shards, false, func(ctx context.Context, i int) (driver.Rows, error) {
		return sc.open(ctx, vc, i)
	})
	if err != nil {
		return nil, err
	}
	return merge.OnClose(merge.Concatenate(sources), release), nil
}

func (s Scatter) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	return describeScatter(ctx, vc, s.Plan, nargs, d)
}

// scatterInput is a read of several shards that can run on arguments
// already bound: SortMerge's fallback, which must not run Eval twice.
type scatterInput interface {
	Primitive
	queryBound(ctx context.Context, vc Cursor, sc *scatterCall) (driver.Rows, error)
}

// scatterCall is one execution of a multi-shard plan: its arguments bound
// (Eval run), the shards it runs on, and the shard arguments.
type scatterCall struct {
	p      *planner.Plan
	args   []any               // the statement's, Eval's appended
	bound  []driver.NamedValue // the same as driver values
	shards []int               // indexes into p.Table.Shards, never empty
	shard  []driver.NamedValue // the shard statement's arguments
	shapes *Shapes
}

// bindScatter binds a multi-shard plan's arguments and picks its shards.
func bindScatter(ctx context.Context, vc Cursor, p *planner.Plan, nargs []driver.NamedValue) (*scatterCall, error) {
	args, bound, err := vc.Bind(ctx, p, nargs)
	if err != nil {
		return nil, err
	}
	return newScatterCall(p, args, bound)
}

func newScatterCall(p *planner.Plan, args []any, bound []driver.NamedValue) (*scatterCall, error) {
	shards, err := targetShards(p, args)
	if err != nil {
		return nil, err
	}
	return &scatterCall{p: p, args: args, bound: bound, shards: shards, shard: renumber(planner.ShardArgs(p, bound)), shapes: NewShapes(p)}, nil
}

// open starts the read of the call's shard at position i, its rows checked
// against the other shards' (Shapes).
func (sc *scatterCall) open(ctx context.Context, vc Cursor, i int) (driver.Rows, error) {
	idx := sc.shards[i]
	sql, err := sc.p.ShardSQL(idx)
	if err != nil {
		return nil, err
	}
	r, err := vc.ReadShard(ctx, sc.p, idx, sql, sc.shard)
	if err != nil {
		return nil, err
	}
	return sc.shapes.Checked(idx, r)
}

// targetShards is the list of shard indexes a Scatter plan runs on; never
// empty (a plan that matches no key still answers, with no rows, from one).
func targetShards(p *planner.Plan, args []any) ([]int, error) {
	shards, err := p.TargetShards(args)
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
