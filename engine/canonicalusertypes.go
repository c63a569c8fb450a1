package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// User types whose text may not read back exactly (they hold a timestamptz
// or a float) but whose binary form pgshard can write as exact text: a
// composite whose attributes are all of canonicalFieldTypes, at least one
// of them a timestamptz or float (record_send's layout), and a domain over
// timestamptz, float4 or float8 (its base type's layout). Their OIDs differ
// from server to server, so each server is asked once which of its types
// these are (ServerTypes); a type created later travels as text, refused
// under the settings where its text would not be exact (never answered
// wrongly).

// canonicalFieldTypes are the attribute types of a composite whose binary
// form pgshard writes as text: timestamptz and the floats (canonical
// text), and types whose binary form is their text or a plain integer.
var canonicalFieldTypes = map[uint32]bool{
	1184: true, 700: true, 701: true,
	16: true, 21: true, 23: true, 20: true, // bool, int2, int4, int8
	25: true, 1043: true, 1042: true, // text, varchar, bpchar
	1082: true, 1700: true, // date, numeric
}

// serverTypesSQL lists the server's composite types and domains whose
// values pgshard writes the canonical text of: OID, and for a domain its
// base type (0 for a composite).
const serverTypesSQL = `SELECT t.oid, 0::oid FROM pg_catalog.pg_type t
WHERE t.typtype = 'c' AND t.typrelid <> 0
	AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid IN (1184, 700, 701))
	AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
		AND a.atttypid NOT IN (1184, 700, 701, 16, 21, 23, 20, 25, 1043, 1042, 1082, 1700))
UNION ALL
SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type t WHERE t.typtype = 'd' AND t.typbasetype IN (1184, 700, 701)`

// ServerTypes is one server's user types whose binary form pgshard writes
// as text: OID → 0 for a composite, the base type for a domain; and the
// result formats that ask for them, and for binaryTypes and
// canonicalArrayTypes, in binary. It is immutable once made.
type ServerTypes struct {
	kinds   map[uint32]uint32
	formats pgx.QueryResultFormatsByOID
}

// serverTypeCache holds the ServerTypes of each server (host, port and
// database), asked once. It is safe for concurrent use.
var serverTypeCache struct {
	sync.Mutex
	m map[string]*ServerTypes
}

// serverTypesOf returns conn's server's ServerTypes, asking it the first
// time.
func serverTypesOf(ctx context.Context, conn *pgx.Conn) (*ServerTypes, error) {
	cfg := conn.Config()
	key := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	serverTypeCache.Lock()
	st := serverTypeCache.m[key]
	serverTypeCache.Unlock()
	if st != nil {
		return st, nil
	}
	st = &ServerTypes{kinds: map[uint32]uint32{}, formats: pgx.QueryResultFormatsByOID{}}
	rows, err := conn.Query(ctx, serverTypesSQL, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, fmt.Errorf("pgshard: listing user types: %w", err)
	}
	for rows.Next() {
		var oid, base uint32
		if err := rows.Scan(&oid, &base); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgshard: listing user types: %w", err)
		}
		st.kinds[oid] = base
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgshard: listing user types: %w", err)
	}
	for oid, f := range canonicalTransport {
		st.formats[oid] = f
	}
	for oid := range st.kinds {
		st.formats[oid] = pgx.BinaryFormatCode
	}
	serverTypeCache.Lock()
	if serverTypeCache.m == nil {
		serverTypeCache.m = map[string]*ServerTypes{}
	}
	serverTypeCache.m[key] = st
	serverTypeCache.Unlock()
	return st, nil
}

// canonical reports whether values of type oid, read in binary, are
// written as canonical text (canonicalColumn).
func (st *ServerTypes) canonical(oid uint32) bool {
	if _, ok := canonicalArrayTypes[oid]; ok {
		return true
	}
	_, ok := st.kinds[oid]
	return ok
}

// canonicalColumn replaces each value of col, of type oid in its binary
// format (a type st.canonical reports), by its canonical text.
func (st *ServerTypes) canonicalColumn(oid uint32, col [][]byte) error {
	if elem, ok := canonicalArrayTypes[oid]; ok {
		return canonicalArrayColumn(elem, col)
	}
	base := st.kinds[oid]
	var arena valueArena
	var buf []byte
	for i, raw := range col {
		if raw == nil {
			continue
		}
		var err error
		if base != 0 {
			buf, err = appendCanonicalElem(buf[:0], base, raw, false)
		} else {
			buf, err = appendCanonicalRecord(buf[:0], raw)
		}
		if err != nil {
			return err
		}
		col[i] = arena.copy(buf)
	}
	return nil
}

// appendCanonicalRecord appends the text of raw, a composite value in
// record_send's layout whose attributes are all of canonicalFieldTypes, as
// record_in reads it back exactly: each non-NULL attribute quoted, NULL as
// nothing.
func appendCanonicalRecord(buf []byte, raw []byte) ([]byte, error) {
	bad := func(what string) error {
		return sqlerr.New(sqlerr.InternalError, "pgshard: malformed binary composite from a server: %s", what)
	}
	if len(raw) < 4 {
		return nil, bad("short header")
	}
	n := int(int32(binary.BigEndian.Uint32(raw)))
	rest := raw[4:]
	buf = append(buf, '(')
	for i := 0; i < n; i++ {
		if i > 0 {
			buf = append(buf, ',')
		}
		if len(rest) < 8 {
			return nil, bad("short attribute")
		}
		oid := binary.BigEndian.Uint32(rest)
		size := int(int32(binary.BigEndian.Uint32(rest[4:])))
		rest = rest[8:]
		if size < 0 {
			continue // NULL
		}
		if len(rest) < size {
			return nil, bad("short attribute")
		}
		v := rest[:size]
		rest = rest[size:]
		if !canonicalFieldTypes[oid] {
			// The type changed since the server was asked (ALTER TYPE).
			return nil, sqlerr.Unsupported("a composite value with an attribute of type %d cannot travel exactly between servers; select its attributes as columns", oid)
		}
		buf = append(buf, '"')
		var err error
		switch oid {
		case 1184, 700, 701:
			buf, err = appendCanonicalElem(buf, oid, v, false)
		case 16:
			if len(v) != 1 {
				return nil, bad("bool")
			}
			buf = append(buf, "ft"[min(v[0], 1)])
		case 21, 23, 20:
			if len(v) != 2 && len(v) != 4 && len(v) != 8 {
				return nil, bad("integer")
			}
			var x int64
			switch len(v) {
			case 2:
				x = int64(int16(binary.BigEndian.Uint16(v)))
			case 4:
				x = int64(int32(binary.BigEndian.Uint32(v)))
			default:
				x = int64(binary.BigEndian.Uint64(v))
			}
			buf = strconv.AppendInt(buf, x, 10)
		case 1082:
			buf, err = appendCanonicalDate(buf, v)
		case 1700:
			buf, err = appendCanonicalNumeric(buf, v)
		default: // text, varchar, bpchar: their text
			for _, c := range v {
				if c == '"' || c == '\\' {
					buf = append(buf, c)
				}
				buf = append(buf, c)
			}
		}
		if err != nil {
			return nil, err
		}
		buf = append(buf, '"')
	}
	if len(rest) != 0 {
		return nil, bad("trailing bytes")
	}
	return append(buf, ')'), nil
}

// appendCanonicalDate appends a date in its binary format (days since
// 2000-01-01) as ISO text, year first, which every DateStyle reads back.
func appendCanonicalDate(buf []byte, v []byte) ([]byte, error) {
	if len(v) != 4 {
		return nil, sqlerr.New(sqlerr.InternalError, "pgshard: malformed date from a server")
	}
	days := int32(binary.BigEndian.Uint32(v))
	switch days {
	case math.MaxInt32:
		return append(buf, "infinity"...), nil
	case math.MinInt32:
		return append(buf, "-infinity"...), nil
	}
	t := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(days))
	year := t.Year()
	bc := year <= 0
	if bc {
		year = 1 - year
	}
	buf = appendPadded(buf, year, 4)
	buf = append(buf, '-')
	buf = appendPadded(buf, int(t.Month()), 2)
	buf = append(buf, '-')
	buf = appendPadded(buf, t.Day(), 2)
	if bc {
		buf = append(buf, " BC"...)
	}
	return buf, nil
}

// appendCanonicalNumeric appends a numeric in its binary format (numeric_send:
// ndigits, weight, sign, dscale, base-10000 digits) as numeric_out prints it.
func appendCanonicalNumeric(buf []byte, v []byte) ([]byte, error) {
	bad := sqlerr.New(sqlerr.InternalError, "pgshard: malformed numeric from a server")
	if len(v) < 8 {
		return nil, bad
	}
	ndigits := int(binary.BigEndian.Uint16(v))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	dscale := int(binary.BigEndian.Uint16(v[6:]))
	if len(v) != 8+2*ndigits {
		return nil, bad
	}
	switch sign {
	case 0xC000:
		return append(buf, "NaN"...), nil
	case 0xD000:
		return append(buf, "Infinity"...), nil
	case 0xF000:
		return append(buf, "-Infinity"...), nil
	case 0x4000:
		buf = append(buf, '-')
	case 0x0000:
	default:
		return nil, bad
	}
	// group g is 10000^g's digit: digits[weight-g].
	group := func(g int) int {
		if i := weight - g; i >= 0 && i < ndigits {
			return int(binary.BigEndian.Uint16(v[8+2*i:]))
		}
		return 0
	}
	if weight < 0 {
		buf = append(buf, '0')
	} else {
		buf = strconv.AppendInt(buf, int64(group(weight)), 10)
		for g := weight - 1; g >= 0; g-- {
			buf = appendPadded(buf, group(g), 4)
		}
	}
	if dscale > 0 {
		buf = append(buf, '.')
		start := len(buf)
		for g := -1; len(buf)-start < dscale; g-- {
			buf = appendPadded(buf, group(g), 4)
		}
		buf = buf[:start+dscale]
	}
	return buf, nil
}
