package engine

import (
	"context"
	"database/sql/driver"

	"github.com/pgshard/pgshard/planner"
)

// Materialize runs some of a statement's subqueries first, each through
// pgshard on its own, and then the statement over their rows
// (planner.MaterializePlan). The work is still done in package pgshard this
// round (Strategies.MaterializeQuery).
type Materialize struct {
	Plan *planner.Plan
}

func (m Materialize) Inputs() []Primitive { return nil }

func (m Materialize) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(m.Query(ctx, vc, nargs))
}

func (m Materialize) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	return vc.MaterializeQuery(ctx, m.Plan, nargs)
}

func (m Materialize) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	mp := m.Plan.Materialize
	if mp.Broadcast != "" {
		d.Add("pgshard: Broadcast: distributed table %s cannot be joined shard by shard with the rest of the statement: it is read first, with the conditions about it alone; the rest then runs over its rows, sent to every shard as array parameters (or in PostgreSQL on the metadata database when the rest reads no other distributed table)", mp.Broadcast)
	}
	d.Add("pgshard: Materialize: %d subqueries run first, each through pgshard on its own (their rows held in memory, within the statement's bound); then the statement runs through pgshard over their rows (array parameters, binary where exact, cast back to the subqueries' column types)", len(mp.Subqueries))
	for i, sq := range mp.Subqueries {
		d.Add("  subquery %d: %s", i+1, sq.TypedSQL)
	}
	if o := mp.Outline(); o != "" {
		d.Add("  then: %s", o)
	}
	return nil
}
