package engine

import (
	"context"
	"database/sql/driver"

	"github.com/pgshard/pgshard/planner"
)

// Combine is a Scatter plan whose answer PostgreSQL combines from the
// shards' partial rows (planner.CombinePlan: GROUP BY, DISTINCT, window
// functions, avg, ...): the shards' partial rows are gathered and one
// statement on the metadata database combines them. The work is still
// done in package pgshard this round (Strategies.CombineQuery).
type Combine struct {
	Plan *planner.Plan
}

func (c Combine) Inputs() []Primitive { return nil }

func (c Combine) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(c.Query(ctx, vc, nargs))
}

func (c Combine) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	args, _, err := vc.Bind(ctx, c.Plan, nargs)
	if err != nil {
		return nil, err
	}
	return vc.CombineQuery(ctx, c.Plan, args)
}

func (c Combine) queryBound(ctx context.Context, vc Cursor, sc *scatterCall) (driver.Rows, error) {
	return vc.CombineQuery(ctx, c.Plan, sc.args)
}

func (c Combine) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	return describeScatter(ctx, vc, c.Plan, nargs, d)
}
