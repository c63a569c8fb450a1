package engine

import (
	"encoding/base64"
	"slices"

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
// extra_float_digits 1 or more), intervals in ISO 8601 form with
// designators (which interval_in reads the same under every
// IntervalStyle). Dimensions, lower bounds and NULLs are kept. The text is
// then passed as a text array parameter and cast to the column's type, as
// any text column is. The same holds for the other built-in types holding
// an instant or a float that are not in binaryTypes (arrays of tstzrange,
// tstzmultirange and its arrays), and for user types (ServerTypes). The
// writer itself is canonicalWriter.

// canonicalBuiltinTypes are the built-in types outside binaryTypes whose
// values pgshard reads in binary and writes the canonical text of: the
// arrays and multiranges holding a timestamptz or a float (the geometric
// types are float8s).
var canonicalBuiltinTypes = map[uint32]bool{
	1185: true, // timestamptz[]
	1021: true, // float4[]
	1022: true, // float8[]
	3911: true, // tstzrange[]
	4534: true, // tstzmultirange
	6153: true, // tstzmultirange[]
	// Arrays of the geometric types, made of float8s.
	1017: true, 1018: true, 1019: true, 1020: true, 1027: true, 629: true, 719: true,
}

// carriableScalars are the built-in scalar types whose binary form
// appendCanonicalScalar writes as canonical text: the date and time types,
// interval, the floats, the geometric types (float8s), and types whose
// text depends on no setting but which a composite or array may hold
// beside one whose text does: types whose binary form is their text, raw
// bytes or a plain number, the network types, bit strings and tsvector.
// money is not among them: its text's scale and symbols are the reading
// session's lc_monetary's, which the writer does not know.
var carriableScalars = map[uint32]bool{
	1184: true, 1114: true, 1082: true, 1083: true, 1266: true, 1186: true, // timestamptz, timestamp, date, time, timetz, interval
	700: true, 701: true, 1700: true, // float4, float8, numeric
	16: true, 21: true, 23: true, 20: true, // bool, int2, int4, int8
	25: true, 1043: true, 1042: true, 19: true, 18: true, 26: true, // text, varchar, bpchar, name, "char", oid
	17: true, 2950: true, 114: true, 3802: true, 142: true, // bytea, uuid, json, jsonb, xml
	600: true, 601: true, 602: true, 603: true, 604: true, 628: true, 718: true, // point, lseg, path, box, polygon, line, circle
	869: true, 650: true, 829: true, 774: true, // inet, cidr, macaddr, macaddr8
	1560: true, 1562: true, 3614: true, // bit, varbit, tsvector
}

// builtinRanges maps the built-in range types to their subtypes, and
// builtinMultiranges the built-in multirange types to their range types.
var (
	builtinRanges      = map[uint32]uint32{3904: 23, 3906: 1700, 3908: 1114, 3910: 1184, 3912: 1082, 3926: 20}
	builtinMultiranges = map[uint32]uint32{4451: 3904, 4532: 3906, 4533: 3908, 4534: 3910, 4535: 3912, 4536: 3926}
)

// builtinArrayElems maps the built-in array types canonicalWriter writes
// to their element types: arrays of carriableScalars, of the built-in
// ranges and of the built-in multiranges.
var builtinArrayElems = map[uint32]uint32{
	1185: 1184, 1115: 1114, 1182: 1082, 1183: 1083, 1270: 1266, 1187: 1186,
	1021: 700, 1022: 701, 1231: 1700,
	1000: 16, 1005: 21, 1007: 23, 1016: 20,
	1009: 25, 1015: 1043, 1014: 1042, 1003: 19, 1002: 18, 1028: 26,
	1001: 17, 2951: 2950, 199: 114, 3807: 3802, 143: 142,
	1017: 600, 1018: 601, 1019: 602, 1020: 603, 1027: 604, 629: 628, 719: 718,
	1041: 869, 651: 650, 1040: 829, 775: 774,
	1561: 1560, 1563: 1562, 3643: 3614,
	3905: 3904, 3907: 3906, 3909: 3908, 3911: 3910, 3913: 3912, 3927: 3926,
	6150: 4451, 6151: 4532, 6152: 4533, 6153: 4534, 6155: 4535, 6157: 4536,
}

// canonicalTransport asks the shards for the columns that travel in binary
// (binaryTypes) and for the built-in types whose text pgshard writes
// (canonicalBuiltinTypes) in binary, and for the others in text.
var canonicalTransport = func() pgx.QueryResultFormatsByOID {
	m := pgx.QueryResultFormatsByOID{}
	for oid, f := range binaryTypes {
		m[oid] = f
	}
	for oid := range canonicalBuiltinTypes {
		m[oid] = pgx.BinaryFormatCode
	}
	return m
}()

// canonicalArrayText appends to buf the text of raw, an array of element
// type elem (a built-in type canonicalWriter writes) in array_send's
// binary layout, as array_in reads it back exactly under any session
// settings.
func canonicalArrayText(buf []byte, elem uint32, raw []byte) ([]byte, error) {
	w := canonicalWriter{}
	return w.array(buf, 0, elem, raw, 0)
}

// canonicalScalarTypes are the types whose values pgshard writes the text
// of, when they cannot travel in binary (canonicalBase64Column).
// tstzrange among them: its bounds' text depends on DateStyle and TimeZone.
var canonicalScalarTypes = map[uint32]bool{1184: true, 700: true, 701: true, 3910: true}

// canonicalBase64Column replaces each value of col, of type oid (one of
// canonicalBuiltinTypes, canonicalScalarTypes or st's user types) in its
// binary format encoded in base64 (a materialized subquery's,
// planner.Base64Suffix), by its canonical text.
func (st *ServerTypes) canonicalBase64Column(oid uint32, col [][]byte) error {
	w := canonicalWriter{st: st}
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
		text, err := w.value(nil, oid, raw[:n], 0)
		if err != nil {
			return err
		}
		col[i] = text
	}
	return nil
}
