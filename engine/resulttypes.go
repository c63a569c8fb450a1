package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// The result types of the values Combine and Materialize carry from one
// server to another, and how they travel: in binary for the built-in types
// in binaryTypes, else as text, refused where text would not read back as
// the same value (checkTextTransport).

// TypeRef is a result column's type: its OID and modifier (bit(3),
// char(4), numeric(10,2) keep theirs from one server to the next).
type TypeRef struct {
	OID    uint32
	Typmod int32
}

// TypeInfo is what carrying values of a result type needs to know.
type TypeInfo struct {
	Name       string // format_type, with the modifier
	Collatable bool
	// Timestamptz and Float tell whether the type is or holds (as array
	// element, domain base, composite attribute or range subtype) a
	// timestamptz or a float4/float8: the types whose text does not read
	// back as the same value under some settings (checkTextTransport).
	Timestamptz, Float bool
	// Send is the type's binary output function, qualified
	// (pg_catalog.timestamptz_send), when it is a built-in one.
	Send string
}

// TypeCache holds the TypeInfo of the result types seen, asked of a server
// once per type. The zero value is ready; it is safe for concurrent use
// (one is shared by all the connections of a Connector: the Cursor's
// ResultTypes).
type TypeCache struct {
	mu    sync.Mutex
	types map[TypeRef]TypeInfo
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
	EXISTS (SELECT 1 FROM parts WHERE t IN (700, 701, 600, 601, 602, 603, 604, 628, 718)), -- floats, and the geometric types made of float8s
	coalesce((SELECT 'pg_catalog.' || p.proname FROM pg_catalog.pg_type ty JOIN pg_catalog.pg_proc p ON p.oid = ty.typsend
		WHERE ty.oid = $1::oid AND p.pronamespace = 'pg_catalog'::regnamespace), '')`

// Infos returns the TypeInfo of each type, asking conn for those not in
// the cache yet. It holds the cache's lock while it asks.
func (tc *TypeCache) Infos(ctx context.Context, conn *pgx.Conn, types []TypeRef) ([]TypeInfo, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.types == nil {
		tc.types = map[TypeRef]TypeInfo{}
	}
	for _, t := range types {
		if _, ok := tc.types[t]; ok {
			continue
		}
		var ti TypeInfo
		if err := conn.QueryRow(ctx, typeInfoSQL, t.OID, t.Typmod).Scan(&ti.Name, &ti.Collatable, &ti.Timestamptz, &ti.Float, &ti.Send); err != nil {
			return nil, fmt.Errorf("pgshard: naming result type %d: %w", t.OID, err)
		}
		tc.types[t] = ti
	}
	out := make([]TypeInfo, len(types))
	for i, t := range types {
		out[i] = tc.types[t]
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
func checkTextTransport(ctx context.Context, conn *pgx.Conn, infos []TypeInfo, binary []bool) error {
	var tz, float bool
	for i, ti := range infos {
		if !binary[i] {
			tz = tz || ti.Timestamptz
			float = float || ti.Float
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
		if ti.Timestamptz && !strings.HasPrefix(dateStyle, "ISO") {
			return sqlerr.Unsupported("values of type %s cannot travel exactly between servers as text under DateStyle %q (time zone abbreviations do not read back); use DateStyle ISO, or select the column as a plain timestamptz", ti.Name, dateStyle)
		}
		if ti.Float && digits < 1 {
			return sqlerr.Unsupported("values of type %s cannot travel exactly between servers as text with extra_float_digits %d; set extra_float_digits to 1 or more, or select the column as a plain float", ti.Name, digits)
		}
	}
	return nil
}

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
	if DescribesStatements(c.Config().DefaultQueryExecMode) {
		return args
	}
	return append([]any{pgx.QueryExecModeDescribeExec}, args...)
}

// DescribesStatements reports whether pgx describes a statement before
// running it in mode: it then knows the result and parameter types, and
// sends and reads values in binary where asked.
func DescribesStatements(mode pgx.QueryExecMode) bool {
	switch mode {
	case pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec:
		return true
	}
	return false
}

// valueArena copies values read off the wire into shared chunks: one
// allocation per chunk rather than per value. Chunks grow from 512 bytes
// to 64 KB, so a shard with few rows takes little. A copy is never moved
// or changed. It is not safe for concurrent use (one per shard read).
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

// textArray is a column of values as a text array parameter (nil for
// NULL): how the values of a type outside binaryTypes travel.
func textArray(col [][]byte) []*string {
	texts := make([]*string, len(col))
	for r, raw := range col {
		if raw != nil {
			s := string(raw)
			texts[r] = &s
		}
	}
	return texts
}
