package engine

import (
	"context"
	"database/sql/driver"
	"slices"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/plan"
)

// ScatterWrite is a multi-shard UPDATE or DELETE: it runs on its shards as
// one atomic statement, in the caller's transaction or an implicit one that
// commits with two-phase commit (Cursor.Atomically), shard after shard, each
// on every writable placement (Cursor.WriteShard). RETURNING rows are
// gathered whole, shard after shard. When its arguments leave one shard
// (a row-constructor IN list or an OR on the key pinning one value), it runs
// as Route runs a write: that shard's statement alone, with no implicit
// transaction around it.
//
// A ScatterWrite is made once per plan (planner.Build), immutable and shared by
// every connection that runs it.
type ScatterWrite struct {
	// Target is what the statement runs on.
	Target *plan.Target
	// Shards picks the shards the arguments leave and gives their
	// statements.
	Shards ShardQueries
}

func (s *ScatterWrite) Inputs() []Primitive { return nil }

func (s *ScatterWrite) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	res, _, err := s.run(ctx, vc, nargs, false)
	return res, err
}

func (s *ScatterWrite) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	_, rows, err := s.run(ctx, vc, nargs, true)
	return rows, err
}

func (s *ScatterWrite) run(ctx context.Context, vc Cursor, nargs []driver.NamedValue, wantRows bool) (driver.Result, driver.Rows, error) {
	p, q := s.Target, s.Shards
	sc, err := bindScatter(ctx, vc, p, q, nargs)
	if err != nil {
		return nil, nil, err
	}
	if len(sc.shards) == 1 {
		i := sc.shards[0]
		sql, err := q.ShardSQL(i)
		if err != nil {
			return nil, nil, err
		}
		return vc.WriteShard(ctx, p, &p.Table.Shards[i], sql, sc.shard, wantRows)
	}
	var total int64
	out := &Buffered{}
	err = vc.Atomically(ctx, WriteNodes(p.Table, sc.shards), func() error {
		for _, i := range sc.shards {
			sql, err := q.ShardSQL(i)
			if err != nil {
				return err
			}
			res, rows, err := vc.WriteShard(ctx, p, &p.Table.Shards[i], sql, sc.shard, wantRows)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
			if b, ok := rows.(*Buffered); ok && b != nil {
				out.Cols = b.Cols
				out.Data = append(out.Data, b.Data...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return Result{Rows: total}, out, nil
}

func (s *ScatterWrite) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	return describeScatter(ctx, vc, s.Target, s.Shards, nargs, d, written)
}

// WriteNodes lists, each once, the nodes of the writable placements of
// shards (indexes into t's shards): the nodes a write of those shards runs
// on.
func WriteNodes(t *catalog.Table, shards []int) []catalog.Node {
	var nodes []catalog.Node
	for _, idx := range shards {
		for _, pl := range t.Shards[idx].Writable() {
			if !slices.Contains(nodes, pl.Node) {
				nodes = append(nodes, pl.Node)
			}
		}
	}
	return nodes
}
