package engine

import (
	"context"
	"database/sql/driver"
	"reflect"

	"github.com/pgshard/pgshard/plan"
)

// Concatenate runs a UNION ALL arm by arm: each
// arm is a statement of the session (Cursor.Statement, planned and run as
// the application's own), opened once the one before it is read to the
// end and closed, so that inside a transaction the arms share its one
// connection per node. Rows stream; nothing is held. The columns are the
// first arm's, as PostgreSQL names a UNION's.
//
// A Concatenate is made once per plan (planner.Build), immutable and shared by
// every connection that runs it.
type Concatenate struct {
	// Arms are the UNION ALL's arms, in order, each a statement with
	// parameters of its own.
	Arms []plan.Arm
}

func (c *Concatenate) Inputs() []Primitive { return nil }

func (c *Concatenate) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(c.Query(ctx, vc, nargs))
}

func (c *Concatenate) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	arms := c.Arms
	open := func(i int) (driver.Rows, error) {
		args := make([]driver.NamedValue, len(arms[i].Params))
		for j, n := range arms[i].Params {
			args[j] = driver.NamedValue{Ordinal: j + 1}
			if n <= len(nargs) {
				args[j].Value = nargs[n-1].Value
			}
		}
		return vc.Statement(ctx, arms[i].SQL, args)
	}
	first, err := open(0)
	if err != nil {
		return nil, err
	}
	return &armRows{Concat: NewConcat(first, len(arms), open), names: first.Columns(), cols: DescribeColumns(first)}, nil
}

func (c *Concatenate) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	arms := c.Arms
	d.Add("pgshard: Concatenate: UNION ALL of %d arms, each run through pgshard on its own, one after the other; their rows stream out as they come (nothing held in memory)", len(arms))
	for i, a := range arms {
		d.Add("  arm %d: %s", i+1, a.SQL)
	}
	return nil
}

// armRows are the rows of a Concatenate: the arms' rows one after the
// other, under the first arm's column names and types.
type armRows struct {
	*Concat
	names []string
	cols  []Column
}

var (
	_ driver.RowsColumnTypeDatabaseTypeName = (*armRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*armRows)(nil)
	_ driver.RowsColumnTypeLength           = (*armRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*armRows)(nil)
)

func (r *armRows) Columns() []string                       { return r.names }
func (r *armRows) ColumnTypeDatabaseTypeName(i int) string { return r.cols[i].DBType }
func (r *armRows) ColumnTypeScanType(i int) reflect.Type   { return r.cols[i].ScanType }
func (r *armRows) ColumnTypeLength(i int) (int64, bool) {
	return r.cols[i].Length, r.cols[i].HasLength
}
func (r *armRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return r.cols[i].Precision, r.cols[i].Scale, r.cols[i].HasPrecision
}
