package engine

import (
	"context"
	"database/sql/driver"

	"github.com/pgshard/pgshard/planner"
)

// InsertSelect is INSERT ... SELECT into a distributed table
// (planner.InsertSelectPlan): shard by shard on the workers when the
// SELECT's tables are co-located with the target, else the SELECT runs once
// through pgshard and its rows go to their shards in batches, committed
// together. The work is still done in package pgshard this round
// (Strategies.InsertSelectExec).
type InsertSelect struct {
	Plan *planner.Plan
}

func (s InsertSelect) Inputs() []Primitive { return nil }

func (s InsertSelect) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return vc.InsertSelectExec(ctx, s.Plan, nargs)
}

// Query runs the statement; it returns no rows.
func (s InsertSelect) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	if _, err := vc.InsertSelectExec(ctx, s.Plan, nargs); err != nil {
		return nil, err
	}
	return &Buffered{}, nil
}

func (s InsertSelect) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	return vc.DescribeInsertSelect(ctx, s.Plan, nargs, d)
}
