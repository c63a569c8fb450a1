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
// through pgshard (so it is routed, merged or combined as any statement);
// then the rest of the statement, through pgshard again, over the
// subqueries' rows passed as one array parameter per column and cast back
// to their column types, which the metadata database reports for the
// subquery.
//
// The values travel exactly, whatever the session's settings, as partial
// rows of combined queries do (combineQuery): a column of a type in
// binaryTypes is selected through its type's binary output function
// (timestamptz_send, float8send, ...; bytea, which every path returns as
// it is) and passed as a binaryArray; other columns are selected as text,
// and refused (0A000) when their text would not read back as the same
// value under the session's settings (checkTextTransport). When the
// connections do not describe statements (default_query_exec_mode
// simple_protocol or exec), which the rest of the statement's binary
// parameters need, every column goes as text.
func (cn *conn) materializeQuery(ctx context.Context, p *planner.Plan, nargs []driver.NamedValue) (driver.Rows, error) {
	m := p.Materialize
	args := plainArgs(nargs)
	n := len(m.Subqueries)
	in := planner.MaterializeInput{Names: make([][]string, n), Types: make([][]string, n), Binary: make([][]bool, n)}
	var arrays []any
	budget := maxMaterializedBytes
	binaryOK := describesStatements(cn.c.poolConfig.ConnConfig.DefaultQueryExecMode)
	for i, sq := range m.Subqueries {
		names, refs, infos, err := cn.describeTypes(ctx, sq.TypedSQL)
		if err != nil {
			return nil, err
		}
		if sq.Names != nil {
			if len(sq.Names) > len(names) {
				return nil, sqlerr.New("42P10", "table has %d columns available but %d columns specified", len(names), len(sq.Names))
			}
			copy(names, sq.Names)
		}
		types := make([]string, len(infos))
		binary := make([]bool, len(infos))
		sends := make([]string, len(infos))
		anyBinary := false
		for j, ti := range infos {
			types[j] = ti.name
			if _, ok := binaryTypes[refs[j].oid]; ok && binaryOK && ti.send != "" {
				binary[j], sends[j], anyBinary = true, ti.send, true
			}
		}
		if err := cn.checkMetaTextTransport(ctx, infos, binary); err != nil {
			return nil, err
		}
		in.Names[i], in.Types[i], in.Binary[i] = names, types, binary
		sargs := make([]driver.NamedValue, len(sq.Params))
		for j, n := range sq.Params {
			if n <= len(args) {
				sargs[j] = driver.NamedValue{Ordinal: j + 1, Value: args[n-1]}
			} else {
				sargs[j] = driver.NamedValue{Ordinal: j + 1}
			}
		}
		sql := sq.SQL
		if anyBinary {
			if sql, err = sq.SQLSending(sends); err != nil {
				return nil, err
			}
		}
		cols, err := cn.readColumns(ctx, sql, sargs, len(types), &budget)
		if err != nil {
			return nil, err
		}
		for j, c := range cols {
			if binary[j] {
				arrays = append(arrays, newBinaryArray(refs[j].oid, c))
				continue
			}
			texts := make([]*string, len(c))
			for r, raw := range c {
				if raw != nil {
					s := string(raw)
					texts[r] = &s
				}
			}
			arrays = append(arrays, texts)
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

// readColumns runs a query whose columns are all text or bytea and
// returns them column by column (nil for NULL).
// budget is what the statement's subqueries may still hold, in bytes; the
// rows read are taken off it.
func (cn *conn) readColumns(ctx context.Context, sql string, args []driver.NamedValue, width int, budget *int) ([][][]byte, error) {
	rows, err := cn.QueryContext(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if got := len(rows.Columns()); got != width {
		return nil, sqlerr.New(sqlerr.InternalError, "materialized subquery returned %d columns, described %d", got, width)
	}
	cols := make([][][]byte, width)
	for i := range cols {
		cols[i] = [][]byte{}
	}
	dest := make([]driver.Value, width)
	size := 0
	var arena valueArena
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
				cols[i] = append(cols[i], arena.copy([]byte(x)))
				size += len(x)
			case []byte:
				cols[i] = append(cols[i], arena.copy(x))
				size += len(x)
			default:
				return nil, sqlerr.New(sqlerr.InternalError, "materialized subquery returned %T, not text or bytea", v)
			}
		}
	}
}

// checkMetaTextTransport is checkTextTransport in the metadata session,
// whose settings are the session's.
func (cn *conn) checkMetaTextTransport(ctx context.Context, infos []typeInfo, binary []bool) error {
	pc, done, err := cn.metaConn(ctx)
	if err != nil {
		return err
	}
	defer done()
	return checkTextTransport(ctx, pc, infos, binary)
}

// describeTypes returns the result columns' names, types and what the
// executor needs of the types (typeInfos) of a query, as the metadata
// database describes it.
func (cn *conn) describeTypes(ctx context.Context, sql string) (names []string, refs []typeRef, infos []typeInfo, err error) {
	pc, done, err := cn.metaConn(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	defer done()
	sd, err := pc.PgConn().Prepare(ctx, "", sql, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pgshard: describing a subquery: %w", err)
	}
	refs = make([]typeRef, len(sd.Fields))
	names = make([]string, len(sd.Fields))
	for i, f := range sd.Fields {
		refs[i] = typeRef{f.DataTypeOID, f.TypeModifier}
		names[i] = f.Name
	}
	infos, err = cn.c.typeInfos(ctx, pc, refs)
	return names, refs, infos, err
}
