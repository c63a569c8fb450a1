package engine

import (
	"context"
	"database/sql/driver"
	"reflect"
)

// Admin is a call of one of pg_shard's administrative functions
// (master_add_node, master_create_distributed_table,
// master_create_worker_shards, master_copy_shard_placement,
// master_move_shard_placement): once with the call's own arguments, or once
// per row of its FROM clause (Cursor.AdminArgs). Each call
// (Cursor.RunAdmin) returns one row with an empty (void) value, as
// PostgreSQL shows a void function. Where they may run (not inside a
// transaction) is the Cursor's to decide.
//
// An Admin is made once per plan (planner.Build), immutable and shared by every
// connection that runs it.
type Admin struct {
	// Function is the administrative function called.
	Function string
	// Args are the arguments of a call without FROM.
	Args []Resolver
	// ArgsSQL, for a call with FROM, selects the arguments of each call.
	ArgsSQL string
}

// Resolver is where a value comes from at execute time: a literal or a
// bind parameter (planner.Value).
type Resolver interface {
	// Resolve returns the value given the statement's arguments.
	Resolve(args []any) (any, error)
}

func (a *Admin) Inputs() []Primitive { return nil }

func (a *Admin) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(a.Query(ctx, vc, nargs))
}

func (a *Admin) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	call := a
	args := plainArgs(nargs)
	var calls [][]any
	if call.ArgsSQL == "" {
		one := make([]any, len(call.Args))
		for i, v := range call.Args {
			val, err := v.Resolve(args)
			if err != nil {
				return nil, err
			}
			one[i] = val
		}
		calls = append(calls, one)
	} else {
		var err error
		if calls, err = vc.AdminArgs(ctx, call.Function, call.ArgsSQL, args); err != nil {
			return nil, err
		}
	}
	out := &Buffered{Cols: []Column{{Name: call.Function, DBType: "VOID", ScanType: reflect.TypeFor[string]()}}}
	for _, c := range calls {
		if err := vc.RunAdmin(ctx, call.Function, c); err != nil {
			return nil, err
		}
		out.Data = append(out.Data, []driver.Value{""})
	}
	return out, nil
}

func (a *Admin) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	d.Add("pgshard: Admin")
	return nil
}

// plainArgs are the values of driver arguments.
func plainArgs(nargs []driver.NamedValue) []any {
	args := make([]any, len(nargs))
	for i, a := range nargs {
		args[i] = a.Value
	}
	return args
}
