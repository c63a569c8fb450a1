package pgshard

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// partialRows are one shard's answer to a partial query, column by column:
// each value in the format its column travels in (formats; nil for NULL).
type partialRows struct {
	types   []typeRef
	formats []int16
	cols    [][][]byte
}

// combineQuery runs a plan's partial query on every shard (in parallel
// outside a transaction), then the combine query over all partial rows on
// one worker: PostgreSQL computes the final answer.
//
// Partial values travel exactly, whatever the session's settings: a
// column of a built-in type with binary I/O (binaryTransport) is read from
// the shards in binary and passed to the combine query as a binary array
// parameter (binaryArray), which no DateStyle, TimeZone, IntervalStyle,
// extra_float_digits or lc_monetary can change. Text, as PostgreSQL prints
// it in the session, would not do: a timestamptz printed "... IST" under
// DateStyle SQL reads back as Israel time, a float8 printed with
// extra_float_digits 0 loses digits. Other columns (arrays, user types)
// still travel as text, which is exact unless they hold a timestamptz or a
// float under such settings; then the query is refused (0A000, see
// checkTextTransport).
//
// args are the statement's, bound (bindArgs).
func (cn *conn) combineQuery(ctx context.Context, p *planner.Plan, args []any) (driver.Rows, error) {
	shardArgs := append([]any{binaryTransport}, planner.ShardArgs(p, args)...)
	shards, err := cn.targetShards(p, args)
	if err != nil {
		return nil, err
	}
	n := len(shards)
	parts := make([]partialRows, n)
	shapes := newShardShapes(p)
	limit := int64(maxCombineBytes)
	var held atomic.Int64 // bytes of partial rows read, all shards together
	err = cn.eachShard(n, func(i int) error {
		sql, err := p.ShardSQL(shards[i])
		if err != nil {
			return err
		}
		return cn.onPlacement(ctx, p, shards[i], func(dc *stdlib.Conn) error {
			rows, err := dc.Conn().Query(ctx, sql, extendedProtocol(dc.Conn(), shardArgs)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			fds := rows.FieldDescriptions()
			if err := shapes.check(shardShape{idx: shards[i], desc: fieldsDescription(dc.Conn().TypeMap(), fds)}); err != nil {
				return err
			}
			part := partialRows{types: make([]typeRef, len(fds)), formats: make([]int16, len(fds)), cols: make([][][]byte, len(fds))}
			for j, fd := range fds {
				part.types[j] = typeRef{fd.DataTypeOID, fd.TypeModifier}
				part.formats[j] = fd.Format
			}
			var arena valueArena
			read := int64(0) // this attempt's, given back if it fails over
			for rows.Next() {
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
					return combineLimitError(limit)
				}
			}
			if err := rows.Err(); err != nil {
				held.Add(-read)
				return err
			}
			parts[i] = part
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	k := len(parts[0].types)
	for _, part := range parts[1:] {
		for j := range k {
			if part.formats[j] != parts[0].formats[j] {
				return nil, sqlerr.New(sqlerr.InternalError, "combine: partial column %d came in different formats from different shards", j+1)
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
	var sql string
	homeSQL, err := p.ShardSQL(shards[0])
	if err != nil {
		return nil, err
	}
	binaryCols := make([]bool, k)
	for j, f := range parts[0].formats {
		binaryCols[j] = f == pgx.BinaryFormatCode
	}
	err = cn.onPlacement(ctx, p, home, func(dc *stdlib.Conn) error {
		infos, err := cn.c.typeInfos(ctx, dc.Conn(), parts[0].types)
		if err != nil {
			return err
		}
		if err := checkTextTransport(ctx, dc.Conn(), infos, binaryCols); err != nil {
			return err
		}
		types := make([]string, k)
		collatable := make([]bool, k)
		for j, ti := range infos {
			types[j], collatable[j] = ti.name, ti.collatable
		}
		collations, err := partialCollations(ctx, dc.Conn(), p, homeSQL, collatable, shardArgs)
		if err != nil {
			return err
		}
		sql, err = p.Combine.SQL(planner.CombineInput{Types: types, Collations: collations, Binary: binaryCols})
		return err
	})
	if err != nil {
		return nil, err
	}
	cargs := make([]driver.NamedValue, 0, len(p.Combine.Params)+k+1)
	if !describesStatements(cn.c.poolConfig.ConnConfig.DefaultQueryExecMode) {
		// Binary parameters need a described statement; the answer stays in
		// text, as the connections' mode returns it (replacing the binary
		// formats stdlib asks for).
		cargs = append(cargs, driver.NamedValue{Value: pgx.QueryExecModeDescribeExec}, driver.NamedValue{Value: pgx.QueryResultFormatsByOID{}})
	}
	for _, pn := range p.Combine.Params {
		var v any
		if pn <= len(args) {
			v = args[pn-1]
		}
		cargs = append(cargs, driver.NamedValue{Ordinal: len(cargs) + 1, Value: v})
	}
	for j, col := range columns {
		var v any
		if binaryCols[j] {
			v = newBinaryArray(parts[0].types[j].oid, col)
		} else {
			texts := make([]*string, len(col))
			for r, raw := range col {
				if raw != nil {
					s := string(raw)
					texts[r] = &s
				}
			}
			v = texts
		}
		cargs = append(cargs, driver.NamedValue{Ordinal: len(cargs) + 1, Value: v})
	}
	return cn.readShard(ctx, p, home, sql, cargs)
}

// binaryTransport asks the shards for every partial column of a type in
// binaryTypes in binary, and for the others in text.
var binaryTransport = pgx.QueryResultFormatsByOID(binaryTypes)

// binaryTypes are the built-in types whose values travel between servers in
// binary: each has binary I/O (typsend, typreceive) whose bytes hold no
// server-specific OID, and an array type, so that the values of a partial
// column make one binary array parameter. They are the types whose text the
// session's settings change (date and time types, interval, float4,
// float8, money, bytea, numeric) and the common ones, for speed. Arrays and
// user types (whose OIDs differ between servers) travel as text.
var binaryTypes = func() map[uint32]int16 {
	m := map[uint32]int16{}
	for _, oid := range []uint32{
		pgtype.BoolOID, pgtype.ByteaOID, pgtype.QCharOID, pgtype.NameOID, pgtype.Int8OID, pgtype.Int2OID, pgtype.Int4OID,
		pgtype.TextOID, pgtype.OIDOID, pgtype.JSONOID, pgtype.XMLOID, pgtype.PointOID, pgtype.LsegOID, pgtype.PathOID,
		pgtype.BoxOID, pgtype.PolygonOID, pgtype.LineOID, pgtype.CIDROID, pgtype.Float4OID, pgtype.Float8OID,
		pgtype.CircleOID, pgtype.Macaddr8OID, 790 /* money */, pgtype.MacaddrOID, pgtype.InetOID, pgtype.BPCharOID,
		pgtype.VarcharOID, pgtype.DateOID, pgtype.TimeOID, pgtype.TimestampOID, pgtype.TimestamptzOID,
		pgtype.IntervalOID, pgtype.TimetzOID, pgtype.BitOID, pgtype.VarbitOID, pgtype.NumericOID, pgtype.UUIDOID,
		pgtype.JSONBOID, pgtype.Int4rangeOID, pgtype.NumrangeOID, pgtype.TsrangeOID, pgtype.TstzrangeOID,
		pgtype.DaterangeOID, pgtype.Int8rangeOID, pgtype.XID8OID, 3220 /* pg_lsn */, 3614 /* tsvector */, 3615, /* tsquery */
	} {
		m[oid] = pgx.BinaryFormatCode
	}
	return m
}()

// extendedProtocol prepends to args a mode that describes the statement
// (pgx.QueryExecModeDescribeExec) when c's default does not: the simple
// protocol returns and takes only text, and QueryExecModeExec, which does
// not know the result types, asks for text.
func extendedProtocol(c *pgx.Conn, args []any) []any {
	if describesStatements(c.Config().DefaultQueryExecMode) {
		return args
	}
	return append([]any{pgx.QueryExecModeDescribeExec}, args...)
}

// describesStatements reports whether pgx describes a statement before
// running it in mode: it then knows the result and parameter types, and
// sends and reads values in binary where asked.
func describesStatements(mode pgx.QueryExecMode) bool {
	switch mode {
	case pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec:
		return true
	}
	return false
}

// valueArena copies partial values into shared chunks: one allocation per
// chunk rather than per value. Chunks grow from 512 bytes to 64 KB, so a
// shard with few partial rows takes little. A copy is never moved or
// changed.
type valueArena struct {
	chunk []byte
}

const (
	arenaFirstChunk = 512
	arenaMaxChunk   = 64 << 10
)

func (a *valueArena) copy(raw []byte) []byte {
	if len(raw) > arenaMaxChunk/8 {
		v := make([]byte, len(raw))
		copy(v, raw)
		return v
	}
	if a.chunk == nil || cap(a.chunk)-len(a.chunk) < len(raw) {
		size := min(max(2*cap(a.chunk), arenaFirstChunk), arenaMaxChunk)
		for size < len(raw) {
			size *= 2
		}
		a.chunk = make([]byte, 0, size)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, raw...)
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

// maxCombineBytes bounds the partial rows a multi-shard query whose answer
// PostgreSQL combines (GROUP BY, DISTINCT, window functions, ...) holds in
// memory, all shards together: beyond it the statement fails (54000) rather
// than exhausting the process's memory. The combine query's arguments
// encode them once more while it is sent.
var maxCombineBytes = 256 << 20

// partialValueOverhead is what one partial value costs besides its text: a
// string header and a pointer to it.
const partialValueOverhead = 24

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

// onPlacement calls fn with a connection to the first reachable placement
// a read of plan p's shard index idx may use (readPlacements), failing over
// as reads do, and releases it after.
func (cn *conn) onPlacement(ctx context.Context, p *planner.Plan, idx int, fn func(dc *stdlib.Conn) error) error {
	var lastErr error
	placements := cn.readPlacements(p, idx)
	for _, pl := range placements {
		dc, release, err := cn.workerConn(ctx, pl.Node, false)
		if err == nil {
			err = fn(dc)
			release()
			if err == nil {
				return nil
			}
		}
		if !cn.failoverAllowed(ctx, pl.Node, err) {
			return cn.txFailed(noBadConn(err))
		}
		lastErr = err
	}
	if len(placements) == 0 {
		return noReadPlacement(p, idx)
	}
	return unreachable(&p.Table.Shards[idx], lastErr)
}

// typeRef is a result column's type: its OID and modifier (bit(3),
// char(4), numeric(10,2) keep theirs through the combine step).
type typeRef struct {
	oid    uint32
	typmod int32
}

// typeInfo is what the combine step needs of a result type.
type typeInfo struct {
	name       string // format_type, with the modifier
	collatable bool
	// timestamptz and float tell whether the type is or holds (as array
	// element, domain base, composite attribute or range subtype) a
	// timestamptz or a float4/float8: the types whose text does not read
	// back as the same value under some settings (checkTextTransport).
	timestamptz, float bool
	// send is the type's binary output function, qualified
	// (pg_catalog.timestamptz_send), when it is a built-in one.
	send string
}

// typeInfoSQL describes type $1 with modifier $2: its name, whether it is
// collatable, whether it holds a timestamptz (1184) or a float (700,
// 701) at any depth, and its built-in binary output function.
const typeInfoSQL = `WITH RECURSIVE parts(t) AS (
	SELECT $1::oid
	UNION
	SELECT s.x FROM parts p JOIN pg_catalog.pg_type ty ON ty.oid = p.t,
	LATERAL (SELECT ty.typelem WHERE ty.typelem <> 0
		UNION ALL SELECT ty.typbasetype WHERE ty.typbasetype <> 0
		UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE ty.typrelid <> 0 AND a.attrelid = ty.typrelid AND a.attnum > 0 AND NOT a.attisdropped
		UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = ty.oid
		UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = ty.oid) s(x)
)
SELECT pg_catalog.format_type($1::oid, $2::int),
	coalesce((SELECT typcollation <> 0 FROM pg_catalog.pg_type WHERE oid = $1::oid), false),
	EXISTS (SELECT 1 FROM parts WHERE t = 1184),
	EXISTS (SELECT 1 FROM parts WHERE t IN (700, 701)),
	coalesce((SELECT 'pg_catalog.' || p.proname FROM pg_catalog.pg_type ty JOIN pg_catalog.pg_proc p ON p.oid = ty.typsend
		WHERE ty.oid = $1::oid AND p.pronamespace = 'pg_catalog'::regnamespace), '')`

// typeInfos returns what the combine step needs of each type, from a
// cache filled by asking the server once per type.
func (c *Connector) typeInfos(ctx context.Context, conn *pgx.Conn, types []typeRef) ([]typeInfo, error) {
	c.typeMu.Lock()
	defer c.typeMu.Unlock()
	if c.types == nil {
		c.types = map[typeRef]typeInfo{}
	}
	for _, t := range types {
		if _, ok := c.types[t]; ok {
			continue
		}
		var ti typeInfo
		if err := conn.QueryRow(ctx, typeInfoSQL, t.oid, t.typmod).Scan(&ti.name, &ti.collatable, &ti.timestamptz, &ti.float, &ti.send); err != nil {
			return nil, fmt.Errorf("pgshard: naming result type %d: %w", t.oid, err)
		}
		c.types[t] = ti
	}
	out := make([]typeInfo, len(types))
	for i, t := range types {
		out[i] = c.types[t]
	}
	return out, nil
}

// checkTextTransport refuses (0A000) values that would travel between
// servers as text (binary false) and not read back as themselves under the
// session's settings on conn: a timestamptz (at any depth: an array of
// them, a composite holding one) unless DateStyle prints ISO, whose zone
// is a numeric offset (other styles print an abbreviation such as IST,
// which PostgreSQL reads as Israel time), and a float4/float8 when
// extra_float_digits is below 1 (fewer digits than the value needs). Every
// other type's text reads back exactly under the same settings: date and
// timestamp in the same DateStyle, interval in the same IntervalStyle,
// money in the same lc_monetary, bytea in either bytea_output. It asks the
// server only when such a column travels as text.
func checkTextTransport(ctx context.Context, conn *pgx.Conn, infos []typeInfo, binary []bool) error {
	var tz, float bool
	for i, ti := range infos {
		if !binary[i] {
			tz = tz || ti.timestamptz
			float = float || ti.float
		}
	}
	if !tz && !float {
		return nil
	}
	var dateStyle string
	var digits int
	if err := conn.QueryRow(ctx, "SELECT current_setting('DateStyle'), current_setting('extra_float_digits')::int").Scan(&dateStyle, &digits); err != nil {
		return fmt.Errorf("pgshard: reading the session's output settings: %w", err)
	}
	for i, ti := range infos {
		if binary[i] {
			continue
		}
		if ti.timestamptz && !strings.HasPrefix(dateStyle, "ISO") {
			return sqlerr.Unsupported("values of type %s cannot travel exactly between servers as text under DateStyle %q (time zone abbreviations do not read back); use DateStyle ISO, or select the column as a plain timestamptz", ti.name, dateStyle)
		}
		if ti.float && digits < 1 {
			return sqlerr.Unsupported("values of type %s cannot travel exactly between servers as text with extra_float_digits %d; set extra_float_digits to 1 or more, or select the column as a plain float", ti.name, digits)
		}
	}
	return nil
}

// partialCollations returns the collation of each partial column ("" for
// the database default or a type without collation), so that the combine
// query sorts, groups and compares text as the shards did (COLLATE clauses,
// columns with their own collation). It asks PostgreSQL once per plan,
// without running the partial query (LIMIT 0).
func partialCollations(ctx context.Context, conn *pgx.Conn, p *planner.Plan, partialSQL string, collatable []bool, args []any) ([]string, error) {
	if got, ok := p.Combine.Collations(); ok {
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
		q += fmt.Sprintf("pg_collation_for((SELECT s.%s FROM (%s) s LIMIT 0))", pgx.Identifier{p.Combine.ColumnName(i)}.Sanitize(), partialSQL)
	}
	if len(asked) == 0 {
		p.Combine.SetCollations(out)
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
	p.Combine.SetCollations(out)
	return out, nil
}
