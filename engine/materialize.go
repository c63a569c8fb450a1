package engine

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/plan"
)

// Materialize runs some of a statement's subqueries first, each through
// pgshard on its own (Cursor.Statement: routed, merged or combined as any
// statement), and then the rest of the statement, through pgshard again,
// over the subqueries' rows passed as one array parameter per column and
// cast back to their column types, which the metadata database reports for
// the subquery.
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
//
// A Materialize is made once per plan (planner.Build), immutable but for the
// statements Outer and the subqueries cache (under their own locks), and
// shared by every connection that runs it.
type Materialize struct {
	// Subqueries run first, in order.
	Subqueries []MaterializedSubquery
	// Outer is the rest of the statement, over the subqueries' rows.
	Outer MaterializeStep
	// Args is the number of the statement's own parameters (its highest
	// $n); the arrays are numbered after them.
	Args int
	// Broadcast, when set, names the distributed table reference whose
	// rows the one subquery reads: "visits (as v)".
	Broadcast string
}

// MaterializedSubquery is one subquery a Materialize runs first.
type MaterializedSubquery struct {
	// SQL is the subquery with every output column cast to text; TypedSQL
	// the subquery itself, which the metadata database describes for the
	// column types. Both take Params (statement parameters, in order).
	SQL, TypedSQL string
	Params        []int
	// Names are the column names the rest of the statement sees it by (its
	// alias list), or nil for the subquery's own.
	Names []string
	// Sending gives the subquery with columns passed to send functions.
	Sending SubquerySender
}

// SubquerySender gives a materialized subquery with output column i
// passed to the function sends[i] (a type's binary output function; with
// plan.Base64Suffix, its bytes in base64), "" for a column left as text
// (*planner.Subquery). Safe for concurrent use.
type SubquerySender interface {
	SQLSending(sends []string) (string, error)
}

// MaterializeStep is the rest of a materialized statement
// (*planner.MaterializePlan). Safe for concurrent use.
type MaterializeStep interface {
	// SQL returns the statement over the subqueries' rows for these
	// columns, and for each of its parameters which argument it takes: a
	// statement argument (1..Args), or Args+1+i for the i-th array.
	SQL(in plan.MaterializeInput) (string, []int, error)
	// Outline describes the statement for EXPLAIN; "" when there is
	// nothing to add.
	Outline() string
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
	mp := m
	args := plainArgs(nargs)
	n := len(mp.Subqueries)
	in := plan.MaterializeInput{Names: make([][]string, n), Types: make([][]string, n), Binary: make([][]bool, n)}
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
		for j, ti := range infos {
			types[j] = ti.Name
		}
		ex, err := exactTransport(ctx, vc, refs, infos, binaryOK, canonicalScalarTypes)
		if err != nil {
			return nil, err
		}
		binary, canonical, sends, anyBinary, st := ex.binary, ex.canonical, ex.sends, ex.anySent, ex.st
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
			var err error
			if sql, err = sq.Sending.SQLSending(sends); err != nil {
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
	sql, params, err := mp.Outer.SQL(in)
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
	mp := m
	if mp.Broadcast != "" {
		d.Add("pgshard: Broadcast: distributed table %s cannot be joined shard by shard with the rest of the statement: it is read first, with the conditions about it alone; the rest then runs over its rows, sent to every shard as array parameters (or in PostgreSQL on the metadata database when the rest reads no other distributed table)", mp.Broadcast)
	}
	d.Add("pgshard: Materialize: %d subqueries run first, each through pgshard on its own (their rows held in memory, within the statement's bound); then the statement runs through pgshard over their rows (array parameters, binary where exact, cast back to the subqueries' column types)", len(mp.Subqueries))
	for i, sq := range mp.Subqueries {
		d.Add("  subquery %d: %s", i+1, sq.TypedSQL)
	}
	if o := mp.Outer.Outline(); o != "" {
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

// transport is how each column of a query's result travels exactly
// between servers (exactTransport).
type transport struct {
	// binary: selected through its send function, passed as a binaryArray.
	binary []bool
	// canonical, when not 0, is the column's type: selected through its
	// send function in base64 (plan.Base64Suffix), whose canonical text
	// pgshard writes (ServerTypes.canonicalBase64Column).
	canonical []uint32
	// sends are the send functions to select each column through ("" for
	// text); anySent reports whether any is not "".
	sends   []string
	anySent bool
	// st holds the metadata server's user types, for canonical columns.
	st *ServerTypes
}

// exactTransport decides, for the result columns refs (described as
// infos) of a query run through pgshard, how each travels exactly: in
// binary where binaryOK and its type is in binaryTypes; as canonical text
// when its type is in canonicalBuiltinTypes or scalars, or a user type
// pgshard writes the text of (the metadata server's, through the
// session's connection); otherwise as the session's text, refused (0A000)
// when that text would not read back as the same value
// (checkTextTransport). Materialize and InsertSelect share it.
func exactTransport(ctx context.Context, vc Cursor, refs []TypeRef, infos []TypeInfo, binaryOK bool, scalars map[uint32]bool) (transport, error) {
	t := transport{binary: make([]bool, len(infos)), canonical: make([]uint32, len(infos)), sends: make([]string, len(infos)), st: builtinTypes}
	// exact: binary, or a value whose canonical text pgshard writes.
	exact := make([]bool, len(infos))
	for j, ti := range infos {
		if ti.Send == "" {
			continue
		}
		oid := refs[j].OID
		if _, ok := binaryTypes[oid]; ok && binaryOK {
			t.binary[j], exact[j], t.sends[j] = true, true, ti.Send
		} else if canonicalBuiltinTypes[oid] || scalars[oid] {
			t.canonical[j], exact[j], t.sends[j] = oid, true, ti.Send+plan.Base64Suffix
		}
		t.anySent = t.anySent || exact[j]
	}
	// The metadata session's settings are the session's. User types whose
	// values pgshard writes the text of are the metadata server's (its
	// OIDs, which the caller's description reported).
	err := vc.OnSession(ctx, func(conn *pgx.Conn) error {
		for j := range infos {
			if exact[j] || refs[j].OID < firstNormalOID {
				continue
			}
			if t.st == builtinTypes {
				var err error
				if t.st, err = serverTypesOf(ctx, conn); err != nil {
					return err
				}
			}
			// A composite's send function is record_send, a domain's its
			// base type's, an array's array_send.
			if t.st.canonical(refs[j].OID) && infos[j].Send != "" {
				t.canonical[j], exact[j], t.sends[j], t.anySent = refs[j].OID, true, infos[j].Send+plan.Base64Suffix, true
			}
		}
		return checkTextTransport(ctx, conn, infos, exact)
	})
	return t, err
}
