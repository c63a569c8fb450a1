package engine

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Arrays of timestamptz, float4 and float8 cannot travel as binary array
// parameters (an array of arrays is not a PostgreSQL parameter type), and
// their text as the session prints it does not always read back as the
// same value (checkTextTransport). pgshard reads them from the shards in
// binary (array_send's layout) and writes their text itself, in a form that
// reads back exactly under every setting: instants in ISO form with a
// numeric offset (year first, which no DateStyle field order changes),
// floats with the shortest digits that read back as the same bits
// (strconv's round-trip formatting, as PostgreSQL's own with
// extra_float_digits 1 or more). Dimensions, lower bounds and NULLs are
// kept. The text is then passed as a text array parameter and cast to the
// column's type, as any text column is.

// canonicalArrayTypes maps the array types pgshard writes the text of to
// their element type.
var canonicalArrayTypes = map[uint32]uint32{
	1185: 1184, // timestamptz[]
	1021: 700,  // float4[]
	1022: 701,  // float8[]
}

// canonicalTransport asks the shards for the columns that travel in binary
// (binaryTypes) and for the arrays whose text pgshard writes
// (canonicalArrayTypes) in binary, and for the others in text.
var canonicalTransport = func() pgx.QueryResultFormatsByOID {
	m := pgx.QueryResultFormatsByOID{}
	for oid, f := range binaryTypes {
		m[oid] = f
	}
	for oid := range canonicalArrayTypes {
		m[oid] = pgx.BinaryFormatCode
	}
	return m
}()

// canonicalArrayText appends to buf the text of raw, an array of element
// type elem (a value of canonicalArrayTypes) in array_send's binary layout,
// as array_in reads it back exactly under any session settings.
func canonicalArrayText(buf []byte, elem uint32, raw []byte) ([]byte, error) {
	bad := func(what string) error {
		return sqlerr.New(sqlerr.InternalError, "pgshard: malformed binary array from a shard: %s", what)
	}
	if len(raw) < 12 {
		return nil, bad("short header")
	}
	ndim := int(int32(binary.BigEndian.Uint32(raw)))
	if got := binary.BigEndian.Uint32(raw[8:]); got != elem {
		return nil, bad("element type " + strconv.FormatUint(uint64(got), 10))
	}
	if ndim < 0 || ndim > 6 || len(raw) < 12+8*ndim {
		return nil, bad("dimensions")
	}
	if ndim == 0 {
		return append(buf, "{}"...), nil
	}
	dims := make([]int, ndim)
	lower := false
	for d := range dims {
		dims[d] = int(int32(binary.BigEndian.Uint32(raw[12+8*d:])))
		if dims[d] < 0 {
			return nil, bad("dimension length")
		}
		if int32(binary.BigEndian.Uint32(raw[16+8*d:])) != 1 {
			lower = true
		}
	}
	if lower {
		for d := range dims {
			lb := int64(int32(binary.BigEndian.Uint32(raw[16+8*d:])))
			buf = append(buf, '[')
			buf = strconv.AppendInt(buf, lb, 10)
			buf = append(buf, ':')
			buf = strconv.AppendInt(buf, lb+int64(dims[d])-1, 10)
			buf = append(buf, ']')
		}
		buf = append(buf, '=')
	}
	rest := raw[12+8*ndim:]
	var err error
	var walk func(d int) error
	walk = func(d int) error {
		buf = append(buf, '{')
		for i := 0; i < dims[d]; i++ {
			if i > 0 {
				buf = append(buf, ',')
			}
			if d+1 < ndim {
				if err := walk(d + 1); err != nil {
					return err
				}
				continue
			}
			if len(rest) < 4 {
				return bad("short element")
			}
			n := int(int32(binary.BigEndian.Uint32(rest)))
			rest = rest[4:]
			if n < 0 {
				buf = append(buf, "NULL"...)
				continue
			}
			if len(rest) < n {
				return bad("short element")
			}
			if buf, err = appendCanonicalElem(buf, elem, rest[:n], true); err != nil {
				return err
			}
			rest = rest[n:]
		}
		buf = append(buf, '}')
		return nil
	}
	if err := walk(0); err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, bad("trailing bytes")
	}
	return buf, nil
}

// pgEpochSeconds is 2000-01-01 00:00 UTC, PostgreSQL's timestamp epoch, in
// seconds since the Unix epoch.
const pgEpochSeconds = 946684800

// appendCanonicalElem appends the text of one value of type elem
// (timestamptz, float4 or float8) in its binary format, quoted where
// array_in needs it when quote is set (an array's element).
func appendCanonicalElem(buf []byte, elem uint32, v []byte, quote bool) ([]byte, error) {
	switch elem {
	case 1184: // timestamptz: microseconds since 2000-01-01 UTC
		if len(v) != 8 {
			return nil, sqlerr.New(sqlerr.InternalError, "pgshard: malformed timestamptz from a shard")
		}
		us := int64(binary.BigEndian.Uint64(v))
		switch us {
		case math.MaxInt64:
			return append(buf, "infinity"...), nil
		case math.MinInt64:
			return append(buf, "-infinity"...), nil
		}
		secs, micros := us/1000000, us%1000000
		if micros < 0 {
			secs, micros = secs-1, micros+1000000
		}
		t := time.Unix(secs+pgEpochSeconds, micros*1000).UTC()
		year := t.Year()
		bc := year <= 0
		if bc {
			year = 1 - year // Go's year 0 is 1 BC
		}
		if quote {
			buf = append(buf, '"')
		}
		buf = appendPadded(buf, year, 4)
		buf = append(buf, '-')
		buf = appendPadded(buf, int(t.Month()), 2)
		buf = append(buf, '-')
		buf = appendPadded(buf, t.Day(), 2)
		buf = append(buf, ' ')
		buf = appendPadded(buf, t.Hour(), 2)
		buf = append(buf, ':')
		buf = appendPadded(buf, t.Minute(), 2)
		buf = append(buf, ':')
		buf = appendPadded(buf, t.Second(), 2)
		buf = append(buf, '.')
		buf = appendPadded(buf, t.Nanosecond()/1000, 6)
		buf = append(buf, "+00"...)
		if bc {
			buf = append(buf, " BC"...)
		}
		if quote {
			buf = append(buf, '"')
		}
		return buf, nil
	case 700:
		if len(v) != 4 {
			return nil, sqlerr.New(sqlerr.InternalError, "pgshard: malformed float4 from a shard")
		}
		return appendFloat(buf, float64(math.Float32frombits(binary.BigEndian.Uint32(v))), 32), nil
	case 701:
		if len(v) != 8 {
			return nil, sqlerr.New(sqlerr.InternalError, "pgshard: malformed float8 from a shard")
		}
		return appendFloat(buf, math.Float64frombits(binary.BigEndian.Uint64(v)), 64), nil
	}
	return nil, sqlerr.New(sqlerr.InternalError, "pgshard: no canonical text for element type %d", elem)
}

// appendFloat appends f as float4in/float8in read it back bit for bit.
func appendFloat(buf []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(f, -1):
		return append(buf, "-Infinity"...)
	}
	return strconv.AppendFloat(buf, f, 'g', -1, bits)
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(buf []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		buf = append(buf, '0')
	}
	return append(buf, s...)
}

// canonicalArrayColumn replaces each value of col (arrays of element type
// elem in binary, nil for NULL) by its canonical text, in one buffer.
func canonicalArrayColumn(elem uint32, col [][]byte) error {
	var arena valueArena
	var buf []byte
	for i, raw := range col {
		if raw == nil {
			continue
		}
		var err error
		if buf, err = canonicalArrayText(buf[:0], elem, raw); err != nil {
			return err
		}
		col[i] = arena.copy(buf)
	}
	return nil
}

// canonicalScalarTypes are the types whose values pgshard writes the text
// of, when they cannot travel in binary (canonicalBase64Column).
var canonicalScalarTypes = map[uint32]bool{1184: true, 700: true, 701: true}

// canonicalBase64Column replaces each value of col, of type oid (one of
// canonicalArrayTypes, canonicalScalarTypes or st's user types) in its
// binary format encoded in base64 (a materialized subquery's,
// planner.Base64Suffix), by its canonical text.
func (st *ServerTypes) canonicalBase64Column(oid uint32, col [][]byte) error {
	var raw []byte
	for i, b64 := range col {
		if b64 == nil {
			continue
		}
		raw = slices.Grow(raw[:0], base64.StdEncoding.DecodedLen(len(b64)))[:base64.StdEncoding.DecodedLen(len(b64))]
		n, err := base64.StdEncoding.Decode(raw, b64)
		if err != nil {
			return sqlerr.New(sqlerr.InternalError, "pgshard: malformed base64 value from a subquery: %v", err)
		}
		var text []byte
		base, user := st.kinds[oid]
		if elem, ok := canonicalArrayTypes[oid]; ok {
			text, err = canonicalArrayText(nil, elem, raw[:n])
		} else if user && base == 0 {
			text, err = appendCanonicalRecord(nil, raw[:n])
		} else if user {
			text, err = appendCanonicalElem(nil, base, raw[:n], false)
		} else {
			text, err = appendCanonicalElem(nil, oid, raw[:n], false)
		}
		if err != nil {
			return err
		}
		col[i] = text
	}
	return nil
}
