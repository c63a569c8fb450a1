package engine

import (
	"context"
	"database/sql/driver"

	"github.com/pgshard/pgshard/planner"
)

// Admin is a call of one of pg_shard's administrative functions
// (planner.AdminCall: master_create_distributed_table, ...). The work is
// still done in package pgshard this round (Strategies.AdminQuery).
type Admin struct {
	Plan *planner.Plan
}

func (a Admin) Inputs() []Primitive { return nil }

func (a Admin) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(a.Query(ctx, vc, nargs))
}

func (a Admin) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	return vc.AdminQuery(ctx, a.Plan, nargs)
}

func (a Admin) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	d.Add("pgshard: %s", a.Plan.Kind)
	return nil
}
