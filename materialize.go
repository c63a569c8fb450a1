package pgshard

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// materializeQuery runs a Materialize plan: each subquery on its own,
// through pgshard (so it is routed, merged or combined as any statement),
// with its columns as PostgreSQL's text; then the rest of the statement,
// through pgshard again, over the subqueries' rows passed as text arrays and
// cast back to their column types, which the metadata database reports for
// the subquery.
func (cn *conn) materializeQuery(ctx context.Context, p *planner.Plan, nargs []driver.NamedValue) (driver.Rows, error) {
	m := p.Materialize
	args := plainArgs(nargs)
	in := planner.MaterializeInput{Names: make([][]string, len(m.Subqueries)), Types: make([][]string, len(m.Subqueries))}
	var arrays []any
	budget := maxMaterializedBytes
	for i, sq := range m.Subqueries {
		names, types, err := cn.describeTypes(ctx, sq.TypedSQL)
		if err != nil {
			return nil, err
		}
		if sq.Names != nil {
			if len(sq.Names) > len(names) {
				return nil, sqlerr.New("42P10", "table has %d columns available but %d columns specified", len(names), len(sq.Names))
			}
			copy(names, sq.Names)
		}
		in.Names[i], in.Types[i] = names, types
		sargs := make([]driver.NamedValue, len(sq.Params))
		for j, n := range sq.Params {
			if n <= len(args) {
				sargs[j] = driver.NamedValue{Ordinal: j + 1, Value: args[n-1]}
			} else {
				sargs[j] = driver.NamedValue{Ordinal: j + 1}
			}
		}
		cols, err := cn.readTextColumns(ctx, sq.SQL, sargs, len(types), &budget)
		if err != nil {
			return nil, err
		}
		for _, c := range cols {
			arrays = append(arrays, c)
		}
	}
	sql, params, err := m.SQL(in)
	if err != nil {
		return nil, err
	}
	all := make([]any, m.Args, m.Args+len(arrays))
	copy(all, args)
	all = append(all, arrays...)
	outer := make([]driver.NamedValue, len(params))
	for j, n := range params {
		outer[j] = driver.NamedValue{Ordinal: j + 1, Value: all[n-1]}
	}
	return cn.QueryContext(ctx, sql, outer)
}

// maxMaterializedBytes bounds the text a statement's materialized
// subqueries may hold in memory: beyond it the statement fails (54000)
// rather than exhausting the process's memory.
var maxMaterializedBytes = 256 << 20

// readTextColumns runs a query whose columns are all text and returns them
// column by column (nil for NULL).
// budget is what the statement's subqueries may still hold, in bytes of
// text; the rows read are taken off it.
func (cn *conn) readTextColumns(ctx context.Context, sql string, args []driver.NamedValue, width int, budget *int) ([][]*string, error) {
	rows, err := cn.QueryContext(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if got := len(rows.Columns()); got != width {
		return nil, sqlerr.New(sqlerr.InternalError, "materialized subquery returned %d columns, described %d", got, width)
	}
	cols := make([][]*string, width)
	for i := range cols {
		cols[i] = []*string{}
	}
	dest := make([]driver.Value, width)
	size := 0
	for {
		if size > *budget {
			return nil, sqlerr.New("54000", "a subquery pgshard runs first for this statement returned more than %d MB; filter it, or fix its partition column by equality", maxMaterializedBytes>>20)
		}
		err := rows.Next(dest)
		if err == io.EOF {
			*budget -= size
			return cols, nil
		}
		if err != nil {
			return nil, err
		}
		for i, v := range dest {
			switch x := v.(type) {
			case nil:
				cols[i] = append(cols[i], nil)
			case string:
				cols[i] = append(cols[i], &x)
				size += len(x)
			case []byte:
				s := string(x)
				cols[i] = append(cols[i], &s)
				size += len(s)
			default:
				return nil, sqlerr.New(sqlerr.InternalError, "materialized subquery returned %T, not text", v)
			}
		}
	}
}

// describeTypes returns the result columns' names and types (format_type,
// with modifiers) of a query, as the metadata database describes it.
func (cn *conn) describeTypes(ctx context.Context, sql string) (names, types []string, err error) {
	pc, done, err := cn.metaConn(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	sd, err := pc.PgConn().Prepare(ctx, "", sql, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("pgshard: describing a subquery: %w", err)
	}
	refs := make([]typeRef, len(sd.Fields))
	names = make([]string, len(sd.Fields))
	for i, f := range sd.Fields {
		refs[i] = typeRef{f.DataTypeOID, f.TypeModifier}
		names[i] = f.Name
	}
	types, _, err = cn.c.typeNames(ctx, pc, refs)
	return names, types, err
}
