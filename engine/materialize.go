package engine

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// Materialize runs some of a statement's subqueries first, each through
// pgshard on its own (Cursor.Statement: routed, merged or combined as any
// statement), and then the rest of the statement, through pgshard again,
// over the subqueries' rows passed as one array parameter per column and
// cast back to their column types, which the metadata database reports for
// the subquery (planner.MaterializePlan).
//
// The values travel exactly, whatever the session's settings, as the
// partial rows of Combine do: a column of a type in binaryTypes is
// selected through its type's binary output function (timestamptz_send,
// float8send, ...; bytea, which every path returns as it is) and passed as
// a binaryArray; other columns are selected as text, and refused (0A000)
// when their text would not read back as the same value under the
// session's settings (checkTextTransport). Arrays of timestamptz, float4
// and float8, and these types themselves when the connections do not
// describe statements (Cursor.TextResults: the simple protocol, whose
// parameters are text, and the exec mode), are selected through their
// send function in base64 and travel as the text pgshard writes of them
// (canonicalBase64Column), which reads back exactly, as do tstzmultirange,
// arrays of tstzrange and the user types pgshard can write (ServerTypes);
// other columns go as text then. The
// subqueries' rows are held in memory, at most MaxMaterializedBytes.
type Materialize struct {
	Plan *planner.Plan
}

// MaxMaterializedBytes bounds the text a statement's materialized
// subqueries may hold in memory: beyond it the statement fails (54000)
// rather than exhausting the process's memory. Tests lower it; it is read
// without a lock, so change it only while no statement runs.
var MaxMaterializedBytes = 256 << 20

func (m Materialize) Inputs() []Primitive { return nil }

func (m Materialize) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(m.Query(ctx, vc, nargs))
}

func (m Materialize) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	mp := m.Plan.Materialize
	args := plainArgs(nargs)
	n := len(mp.Subqueries)
	in := planner.MaterializeInput{Names: make([][]string, n), Types: make([][]string, n), Binary: make([][]bool, n)}
	var arrays []any
	budget := MaxMaterializedBytes
	binaryOK := !vc.TextResults()
	for i, sq := range mp.Subqueries {
		names, refs, infos, err := describeSubquery(ctx, vc, sq.TypedSQL)
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
		// exact: binary, or a value whose canonical text pgshard writes
		// (canonical[j], its type: an array of timestamptz or floats, or
		// without binary parameters one of them).
		exact := make([]bool, len(infos))
		canonical := make([]uint32, len(infos))
		anyBinary := false
		for j, ti := range infos {
			types[j] = ti.Name
			if _, ok := binaryTypes[refs[j].OID]; ok && binaryOK && ti.Send != "" {
				binary[j], exact[j], sends[j], anyBinary = true, true, ti.Send, true
			} else if canonicalBuiltinTypes[refs[j].OID] && ti.Send != "" {
				canonical[j], exact[j], sends[j], anyBinary = refs[j].OID, true, ti.Send+planner.Base64Suffix, true
			} else if canonicalScalarTypes[refs[j].OID] && ti.Send != "" {
				// Without binary parameters (the simple protocol).
				canonical[j], exact[j], sends[j], anyBinary = refs[j].OID, true, ti.Send+planner.Base64Suffix, true
			}
		}
		// The metadata session's settings are the session's. User types
		// whose values pgshard writes the text of are the metadata
		// server's (its OIDs, which describeSubquery reported).
		st := builtinTypes
		err = vc.OnSession(ctx, func(conn *pgx.Conn) error {
			for j := range infos {
				if exact[j] || refs[j].OID < firstNormalOID {
					continue
				}
				if st == builtinTypes {
					var err error
					if st, err = serverTypesOf(ctx, conn); err != nil {
						return err
					}
				}
				// A composite's send function is record_send, a domain's
				// its base type's, an array's array_send.
				if st.canonical(refs[j].OID) && infos[j].Send != "" {
					canonical[j], exact[j], sends[j], anyBinary = refs[j].OID, true, infos[j].Send+planner.Base64Suffix, true
				}
			}
			return checkTextTransport(ctx, conn, infos, exact)
		})
		if err != nil {
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
		cols, err := readColumns(ctx, vc, sql, sargs, len(types), &budget)
		if err != nil {
			return nil, err
		}
		for j, c := range cols {
			if canonical[j] != 0 {
				if err := st.canonicalBase64Column(canonical[j], c); err != nil {
					return nil, err
				}
			}
			if binary[j] {
				arrays = append(arrays, newBinaryArray(refs[j].OID, c))
			} else {
				arrays = append(arrays, textArray(c))
			}
		}
	}
	sql, params, err := mp.SQL(in)
	if err != nil {
		return nil, err
	}
	all := make([]any, mp.Args, mp.Args+len(arrays))
	copy(all, args)
	all = append(all, arrays...)
	outer := make([]driver.NamedValue, len(params))
	for j, n := range params {
		outer[j] = driver.NamedValue{Ordinal: j + 1, Value: all[n-1]}
	}
	return vc.Statement(ctx, sql, outer)
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

// readColumns runs a query through pgshard whose columns are all text or
// bytea and returns them column by column (nil for NULL). budget is what
// the statement's subqueries may still hold, in bytes; the rows read are
// taken off it.
func readColumns(ctx context.Context, vc Cursor, sql string, args []driver.NamedValue, width int, budget *int) ([][][]byte, error) {
	rows, err := vc.Statement(ctx, sql, args)
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
			return nil, sqlerr.New("54000", "a subquery pgshard runs first for this statement returned more than %d MB; filter it, or fix its partition column by equality", MaxMaterializedBytes>>20)
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

// describeSubquery returns the result columns' names and types, and what
// carrying their values needs (TypeCache), of a query as the metadata
// database describes it in the session.
func describeSubquery(ctx context.Context, vc Cursor, sql string) (names []string, refs []TypeRef, infos []TypeInfo, err error) {
	err = vc.OnSession(ctx, func(conn *pgx.Conn) error {
		sd, err := conn.PgConn().Prepare(ctx, "", sql, nil)
		if err != nil {
			return fmt.Errorf("pgshard: describing a subquery: %w", err)
		}
		refs = make([]TypeRef, len(sd.Fields))
		names = make([]string, len(sd.Fields))
		for i, f := range sd.Fields {
			refs[i] = TypeRef{f.DataTypeOID, f.TypeModifier}
			names[i] = f.Name
		}
		infos, err = vc.ResultTypes().Infos(ctx, conn, refs)
		return err
	})
	return names, refs, infos, err
}
