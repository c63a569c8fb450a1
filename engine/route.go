package engine

import (
	"context"
	"database/sql/driver"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/plan"
)

// Route is a statement that goes whole to the one shard its keys pin
// (planner.Router), chosen at execute time from literals and arguments: a
// read on the first readable placement that answers, a write on every
// writable placement. A multi-row INSERT whose rows fall in different
// shards is split into one statement per shard, run as one atomic
// statement (Cursor.Atomically).
//
// A Route is made once per plan (planner.Build) and shared by every connection that
// runs it; it is immutable, and runs as a *Route, so that the single-shard
// execute of a cached plan allocates nothing for it.
type Route struct {
	// Target is what the statement runs on (its table, Eval step, the
	// parameters the shard statement takes) and whether it writes.
	Target *plan.Target
	// Shards picks the shard the arguments pin and gives its statement.
	Shards RouteShards
	// InsertRows is the number of VALUES rows of an INSERT (0 for other
	// statements): with more than one, the rows may fall in different
	// shards and the INSERT is split.
	InsertRows int
}

// RouteShards is how a Route finds its shard and the statement it sends
// there: the planner's rewriting of the statement (*planner.Plan).
// Implementations are immutable and safe for concurrent use.
type RouteShards interface {
	// Route returns the index of the one shard the arguments pin (args
	// after Eval's values).
	Route(args []any) (int, error)
	// ShardSQL returns the statement for shard index idx.
	ShardSQL(idx int) (string, error)
	// RowShards returns the shard index of every VALUES row.
	RowShards(args []any) ([]int, error)
	// SplitInsert returns the statements of a multi-row INSERT whose rows
	// (rowShards, as RowShards returns) fall in different shards.
	SplitInsert(args []any, rowShards []int) ([]plan.InsertPart, error)
}

func (r *Route) Inputs() []Primitive { return nil }

func (r *Route) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	p := r.Target
	rt, err := r.route(ctx, vc, nargs)
	if err != nil {
		return nil, err
	}
	if rt.parts != nil {
		res, _, err := r.insertParts(ctx, vc, rt.parts, false)
		return res, err
	}
	if p.Modifies {
		res, _, err := vc.WriteShard(ctx, p, rt.shard, rt.sql, rt.args, false)
		return res, err
	}
	return execRows(vc.ReadShard(ctx, p, rt.index, rt.sql, rt.args))
}

func (r *Route) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	p := r.Target
	rt, err := r.route(ctx, vc, nargs)
	if err != nil {
		return nil, err
	}
	if rt.parts != nil {
		_, rows, err := r.insertParts(ctx, vc, rt.parts, true)
		return rows, err
	}
	if p.Modifies {
		_, rows, err := vc.WriteShard(ctx, p, rt.shard, rt.sql, rt.args, true)
		if err != nil {
			return nil, err
		}
		return rows, nil
	}
	return vc.ReadShard(ctx, p, rt.index, rt.sql, rt.args)
}

// routed is a Route bound to its arguments: the one shard it runs on, or,
// for a multi-row INSERT whose rows fall in different shards, the parts.
type routed struct {
	shard *catalog.Shard
	index int // of shard in Target.Table.Shards
	sql   string
	args  []driver.NamedValue
	parts []plan.InsertPart
}

// route binds the arguments (running the plan's Eval once) and picks the
// shard.
func (r *Route) route(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (*routed, error) {
	p, q := r.Target, r.Shards
	args, bound, err := vc.Bind(ctx, p, nargs)
	if err != nil {
		return nil, err
	}
	if r.InsertRows > 1 {
		shards, err := q.RowShards(args)
		if err != nil {
			return nil, err
		}
		for _, s := range shards[1:] {
			if s != shards[0] {
				parts, err := q.SplitInsert(args, shards)
				if err != nil {
					return nil, err
				}
				return &routed{parts: parts}, nil
			}
		}
	}
	idx, err := q.Route(args)
	if err != nil {
		return nil, err
	}
	sql, err := q.ShardSQL(idx)
	if err != nil {
		return nil, err
	}
	return &routed{shard: &p.Table.Shards[idx], index: idx, sql: sql, args: renumber(plan.ShardArgs(p.ShardParams, bound))}, nil
}

// insertParts runs the parts of a multi-row INSERT that spans shards as one
// atomic statement: inside the caller's transaction, or an implicit one
// (two-phase commit across the shards). RETURNING rows come back in VALUES
// order.
func (r *Route) insertParts(ctx context.Context, vc Cursor, parts []plan.InsertPart, wantRows bool) (driver.Result, driver.Rows, error) {
	p := r.Target
	var total int64
	out := &Buffered{Data: make([][]driver.Value, r.InsertRows)}
	shards := make([]int, len(parts))
	for i, part := range parts {
		shards[i] = part.Shard
	}
	err := vc.Atomically(ctx, WriteNodes(p.Table, shards), func() error {
		for _, part := range parts {
			nargs := make([]driver.NamedValue, len(part.Args))
			for i, a := range part.Args {
				nargs[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
			}
			res, rows, err := vc.WriteShard(ctx, p, &p.Table.Shards[part.Shard], part.SQL, nargs, wantRows)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
			if b, _ := rows.(*Buffered); wantRows && len(b.Cols) > 0 {
				// Only a RETURNING has columns: without one, Query of the
				// INSERT returns no rows.
				if len(b.Data) != len(part.Rows) {
					return sqlerr.New(sqlerr.InternalError, "a shard returned %d rows for %d inserted", len(b.Data), len(part.Rows))
				}
				out.Cols = b.Cols
				for j, r := range part.Rows {
					out.Data[r] = b.Data[j]
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if out.Cols == nil {
		out.Data = nil // no RETURNING: no rows
	}
	return Result{Rows: total}, out, nil
}

// Describe shows the shard the arguments pin, its placements, the SQL it
// gets and its own EXPLAIN; or the statements of a split INSERT.
func (r *Route) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	in := r.Target
	rt, err := r.route(ctx, vc, nargs)
	if err != nil {
		return err
	}
	if rt.parts != nil {
		d.Add("pgshard: INSERT split by shard into %d statements of %s, committed together", len(rt.parts), in.Table.Name)
		for _, part := range rt.parts {
			s := &in.Table.Shards[part.Shard]
			d.Add("  shard %d (rows %v) on %s", s.ID, part.Rows, d.Placements(in, s))
			d.Add("    SQL: %s", part.SQL)
		}
		return nil
	}
	verb := "reads from the first reachable finalized placement"
	if in.Modifies {
		verb = "writes every finalized placement, committed together"
	}
	d.Add("pgshard: Router to shard %d of %s (%d shards); %s", rt.shard.ID, in.Table.Name, len(in.Table.Shards), verb)
	d.Add("  placements: %s", d.Placements(in, rt.shard))
	d.Add("  SQL: %s", rt.sql)
	return d.ShardLines(ctx, vc, in, rt.index, rt.sql, rt.args, "  ")
}
