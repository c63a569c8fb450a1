package engine

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/plan"
)

// Combine is a Scatter plan whose answer PostgreSQL combines from the
// shards' partial rows (planner.CombinePlan: GROUP BY, DISTINCT, window
// functions, avg, ...): the plan's partial query runs on every shard (in
// parallel outside a transaction), then the combine query over all partial
// rows on a placement of the first shard.
//
// Partial values travel exactly, whatever the session's settings: a
// column of a built-in type with binary I/O (binaryTypes) is read from the
// shards in binary and passed to the combine query as a binary array
// parameter (binaryArray), which no DateStyle, TimeZone, IntervalStyle,
// extra_float_digits or lc_monetary can change. Text, as PostgreSQL prints
// it in the session, would not do: a timestamptz printed "... IST" under
// DateStyle SQL reads back as Israel time, a float8 printed with
// extra_float_digits 0 loses digits. Arrays of timestamptz, float4 and
// float8, tstzmultirange, and the user types of ServerTypes (composites,
// domains, enums and their arrays, at any depth) are read in binary too
// and travel as the text pgshard writes of them (canonicalWriter), which
// reads back exactly. Other columns (other arrays, user types built of
// types canonicalWriter does not write) still travel as text, which is
// exact unless they hold a timestamptz or a float under such settings;
// then the query is refused (0A000, see checkTextTransport).
//
// The partial rows are held in memory, at most MaxCombineBytes of them for
// all shards together.
//
// A Combine is made once per plan (planner.Build), immutable but for what Step
// learns (the partial columns' collations, under its own lock), and shared
// by every connection that runs it.
type Combine struct {
	// Target is what the statement runs on.
	Target *plan.Target
	// Shards picks the shards the arguments leave and gives their partial
	// queries.
	Shards ShardQueries
	// Step is the combine query.
	Step CombineStep
	// Params lists the statement's parameters the combine query takes, in
	// its numbering; the arrays of partial columns follow them.
	Params []int
	// Columns is the number of partial columns.
	Columns int
	// Mode is "partial aggregate" or "rows", for EXPLAIN.
	Mode string
}

// CombineStep is the query that combines the shards' partial rows on one
// placement (*planner.CombinePlan). Implementations are safe for
// concurrent use.
type CombineStep interface {
	// SQL returns the combine query for partial columns of the given
	// types, collations and transport.
	SQL(in plan.CombineInput) (string, error)
	// ColumnName is the name of partial column i in the partial query.
	ColumnName(i int) string
	// Collations returns the partial columns' collations once known.
	Collations() ([]string, bool)
	// SetCollations records the partial columns' collations.
	SetCollations(cs []string)
}

// MaxCombineBytes bounds the partial rows a multi-shard query whose answer
// PostgreSQL combines (GROUP BY, DISTINCT, window functions, ...) holds in
// memory, all shards together: beyond it the statement fails (54000) rather
// than exhausting the process's memory. The combine query's arguments
// encode them once more while it is sent. Tests lower it; it is read
// without a lock, so change it only while no statement runs.
var MaxCombineBytes = 256 << 20

// partialValueOverhead is what one partial value costs besides its text: a
// string header and a pointer to it.
const partialValueOverhead = 24

func (c Combine) Inputs() []Primitive { return nil }

func (c Combine) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(c.Query(ctx, vc, nargs))
}

func (c Combine) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	args, _, err := vc.Bind(ctx, c.Target, nargs)
	if err != nil {
		return nil, err
	}
	return c.query(ctx, vc, args)
}

func (c Combine) queryBound(ctx context.Context, vc Cursor, sc *scatterCall) (driver.Rows, error) {
	return c.query(ctx, vc, sc.args)
}

func (c Combine) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	return describeScatter(ctx, vc, c.Target, c.Shards, nargs, d, c.merged)
}

// merged is how a Combine merges, for EXPLAIN.
func (c Combine) merged(Cursor, []int, []any) (string, func(int) (string, error), []driver.NamedValue) {
	return fmt.Sprintf("PostgreSQL combines the shards' partial rows (%s, %d columns)", c.Mode, c.Columns), nil, nil
}

// partialRows are one shard's answer to a partial query, column by column:
// each value in the format its column travels in (formats; nil for NULL).
type partialRows struct {
	types   []TypeRef
	formats []int16
	cols    [][][]byte
}

// query runs the plan on args, the statement's bound (Cursor.Bind). When a
// partial column of a user type would travel as text that does not read
// back exactly, it runs again asking each shard's server which of its
// user types pgshard can carry exactly (serverTypesOf): a statement that
// needs no user type pays nothing for them.
func (c Combine) query(ctx context.Context, vc Cursor, args []any) (driver.Rows, error) {
	rows, retry, err := c.queryWith(ctx, vc, args, false)
	if retry {
		rows, _, err = c.queryWith(ctx, vc, args, true)
	}
	return rows, err
}

// builtinTypes is a ServerTypes with no user types: the formats of
// binaryTypes and canonicalBuiltinTypes.
var builtinTypes = &ServerTypes{formats: canonicalTransport}

// queryWith runs the plan on args, carrying the user types of
// serverTypesOf when userTypes is set. retry reports that it refused
// (err) a partial column of a user type that serverTypesOf may let travel
// exactly.
func (c Combine) queryWith(ctx context.Context, vc Cursor, args []any, userTypes bool) (rows driver.Rows, retry bool, err error) {
	p, q := c.Target, c.Shards
	shardArgs := append([]any{canonicalTransport}, plan.ShardArgs(p.ShardParams, args)...)
	shards, err := targetShards(q, args)
	if err != nil {
		return nil, false, err
	}
	n := len(shards)
	parts := make([]partialRows, n)
	shapes := NewShapes(p)
	limit := int64(MaxCombineBytes)
	var held atomic.Int64 // bytes of partial rows read, all shards together
	err = eachShard(vc, n, func(i int) error {
		sql, err := q.ShardSQL(shards[i])
		if err != nil {
			return err
		}
		return vc.OnShard(ctx, p, shards[i], func(conn *pgx.Conn) error {
			st, sargs := builtinTypes, shardArgs
			if userTypes {
				var err error
				if st, err = serverTypesOf(ctx, conn); err != nil {
					return err
				}
				sargs = append([]any{st.formats}, shardArgs[1:]...)
			}
			part, read, err := readPartial(ctx, conn, sql, sargs, &held, limit, func(fds []pgconn.FieldDescription) error {
				return shapes.Check(Shape{Idx: shards[i], Desc: fieldsDescription(conn.TypeMap(), fds)})
			})
			if err != nil {
				held.Add(-read) // this attempt's, given back if it fails over
				return err
			}
			// Values pgshard writes the text of are text from here on.
			for j, f := range part.formats {
				if f == pgx.BinaryFormatCode && st.canonical(part.types[j].OID) {
					if err := st.canonicalColumn(part.types[j].OID, part.cols[j]); err != nil {
						return err
					}
					part.formats[j] = canonicalFormat
				}
			}
			parts[i] = part
			return nil
		})
	})
	if err != nil {
		return nil, false, err
	}
	k := len(parts[0].types)
	for _, part := range parts[1:] {
		for j := range k {
			if part.formats[j] != parts[0].formats[j] {
				return nil, false, sqlerr.New(sqlerr.InternalError, "combine: partial column %d came in different formats from different shards", j+1)
			}
		}
	}
	total := 0
	for _, part := range parts {
		if k > 0 {
			total += len(part.cols[0])
		}
	}
	columns := make([][][]byte, k)
	for j := range columns {
		columns[j] = make([][]byte, 0, total)
	}
	for _, part := range parts {
		for j := range columns {
			columns[j] = append(columns[j], part.cols[j]...)
		}
	}
	home := shards[0]
	homeSQL, err := q.ShardSQL(home)
	if err != nil {
		return nil, false, err
	}
	// exact: the column's values read back as themselves (binary, or the
	// canonical text of an array pgshard writes); binaryCols: they travel
	// as a binary array.
	flags := make([]bool, 2*k) // one allocation for both
	binaryCols, exact := flags[:k:k], flags[k:]
	for j, f := range parts[0].formats {
		exact[j] = f == pgx.BinaryFormatCode || f == canonicalFormat
		binaryCols[j] = f == pgx.BinaryFormatCode
	}
	var sql string
	// refused is a refusal the statement retries with user types: it is
	// returned after OnShard, whose failing callback would fail the
	// session's transaction (the retry would then meet 25P02), although
	// the connection's transaction is intact.
	var refused error
	err = vc.OnShard(ctx, p, home, func(conn *pgx.Conn) error {
		infos, err := vc.ResultTypes().Infos(ctx, conn, parts[0].types)
		if err != nil {
			return err
		}
		if err := checkTextTransport(ctx, conn, infos, exact); err != nil {
			// A user type's OID is none of the built-in ones pgshard knows.
			for j, e := range exact {
				if !e && parts[0].types[j].OID >= firstNormalOID && !userTypes {
					retry = true
				}
			}
			if retry {
				refused = err
				return nil
			}
			return err
		}
		types := make([]string, k)
		collatable := make([]bool, k)
		for j, ti := range infos {
			types[j], collatable[j] = ti.Name, ti.Collatable
		}
		collations, err := partialCollations(ctx, conn, c.Step, homeSQL, collatable, shardArgs)
		if err != nil {
			return err
		}
		sql, err = c.Step.SQL(plan.CombineInput{Types: types, Collations: collations, Binary: binaryCols})
		return err
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return nil, retry, err
	}
	cargs := make([]driver.NamedValue, 0, len(c.Params)+k+2)
	if vc.TextResults() {
		// Binary parameters need a described statement; the answer stays in
		// text, as the connections' mode returns it (replacing the binary
		// formats stdlib asks for).
		cargs = append(cargs, driver.NamedValue{Value: pgx.QueryExecModeDescribeExec}, driver.NamedValue{Value: pgx.QueryResultFormatsByOID{}})
	}
	for _, pn := range c.Params {
		var v any
		if pn <= len(args) {
			v = args[pn-1]
		}
		cargs = append(cargs, driver.NamedValue{Ordinal: len(cargs) + 1, Value: v})
	}
	for j, col := range columns {
		var v any
		if binaryCols[j] {
			v = newBinaryArray(parts[0].types[j].OID, col)
		} else {
			v = textArray(col)
		}
		cargs = append(cargs, driver.NamedValue{Ordinal: len(cargs) + 1, Value: v})
	}
	rows, err = vc.ReadShard(ctx, p, home, sql, cargs)
	return rows, false, err
}

// canonicalFormat marks, in partialRows.formats, a column read in binary
// whose values pgshard wrote as canonical text (canonicalColumn).
const canonicalFormat = -1

// firstNormalOID is PostgreSQL's FirstNormalObjectId: the OIDs of objects
// created after initdb (user types) start there.
const firstNormalOID = 16384

// readPartial runs a shard's partial query on conn and reads its rows
// column by column; check sees the row description before any row is
// read. held counts the bytes read by all shards together; past limit it
// fails (54000). read is what this call added to held.
func readPartial(ctx context.Context, conn *pgx.Conn, sql string, args []any, held *atomic.Int64, limit int64, check func([]pgconn.FieldDescription) error) (part partialRows, read int64, err error) {
	rows, err := conn.Query(ctx, sql, extendedProtocol(conn, args)...)
	if err != nil {
		return part, 0, err
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	// pending is a row read ahead: a statement the server refused (such as
	// a cached plan whose result type changed, 0A000) has no field
	// descriptions either, and its error, not a shape mismatch, must be
	// reported; only a result without columns reads ahead to tell.
	pending := false
	if len(fds) == 0 {
		if pending = rows.Next(); !pending {
			if err := rows.Err(); err != nil {
				return part, 0, err
			}
		}
	}
	if err := check(fds); err != nil {
		return part, 0, err
	}
	part = partialRows{types: make([]TypeRef, len(fds)), formats: make([]int16, len(fds)), cols: make([][][]byte, len(fds))}
	for j, fd := range fds {
		part.types[j] = TypeRef{fd.DataTypeOID, fd.TypeModifier}
		part.formats[j] = fd.Format
	}
	var arena valueArena
	for pending || rows.Next() {
		pending = false
		size := int64(0)
		for j, raw := range rows.RawValues() {
			size += partialValueOverhead
			if raw == nil {
				part.cols[j] = append(part.cols[j], nil)
				continue
			}
			size += int64(len(raw))
			part.cols[j] = append(part.cols[j], arena.copy(raw))
		}
		read += size
		if held.Add(size) > limit {
			// Closing the rows reads the rest without keeping it.
			return part, 0, combineLimitError(limit)
		}
	}
	if err := rows.Err(); err != nil {
		return part, read, err
	}
	return part, read, nil
}

// combineLimitError is the error of a query whose partial rows exceed
// limit bytes.
func combineLimitError(limit int64) error {
	return sqlerr.New("54000", "the shards' partial results of this multi-shard query (combined by PostgreSQL: GROUP BY, DISTINCT, window functions, ...) exceed pgshard's limit of %s held in memory; filter the rows, group them more coarsely, or fix its partition column by equality", byteSize(limit))
}

// byteSize formats n bytes in MB when it is a whole number of them.
func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// fieldsDescription describes rows read with pgx as merge.Describe describes
// the database/sql driver's: pgx's type name (upper case) for the types it
// knows, else the OID in decimal.
func fieldsDescription(m *pgtype.Map, fds []pgconn.FieldDescription) merge.RowDescription {
	d := merge.RowDescription{Names: make([]string, len(fds)), Types: make([]string, len(fds))}
	for i, fd := range fds {
		d.Names[i] = fd.Name
		if t, ok := m.TypeForOID(fd.DataTypeOID); ok {
			d.Types[i] = strings.ToUpper(t.Name)
		} else {
			d.Types[i] = strconv.FormatUint(uint64(fd.DataTypeOID), 10)
		}
	}
	return d
}

// partialCollations returns the collation of each partial column ("" for
// the database default or a type without collation), so that the combine
// query sorts, groups and compares text as the shards did (COLLATE clauses,
// columns with their own collation). It asks PostgreSQL once per plan,
// without running the partial query (LIMIT 0).
func partialCollations(ctx context.Context, conn *pgx.Conn, step CombineStep, partialSQL string, collatable []bool, args []any) ([]string, error) {
	if got, ok := step.Collations(); ok {
		return got, nil
	}
	n := len(collatable)
	out := make([]string, n)
	var asked []int
	q := "SELECT "
	for i := 0; i < n; i++ {
		if !collatable[i] {
			continue
		}
		if len(asked) > 0 {
			q += ", "
		}
		asked = append(asked, i)
		q += fmt.Sprintf("pg_collation_for((SELECT s.%s FROM (%s) s LIMIT 0))", pgx.Identifier{step.ColumnName(i)}.Sanitize(), partialSQL)
	}
	if len(asked) == 0 {
		step.SetCollations(out)
		return out, nil
	}
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pgshard: reading collations of partial results: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		for j, v := range vals {
			i := asked[j]
			if s, ok := v.(string); ok && s != "" && s != `"default"` && s != "default" {
				if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
					s = strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
				}
				out[i] = s
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	step.SetCollations(out)
	return out, nil
}
