package catalog

// This file computes, in Go, the hash PostgreSQL's default hash operator class
// gives a shard key value, bit for bit, so that pgshard routes a row to the
// shard whose [Min, Max] range holds the same hash pg_shard (and PostgreSQL
// itself) would compute.
//
// The hash functions are those of PostgreSQL's default hash opclasses:
//
//	bool                        hashchar     hash_uint32(0 or 1)
//	int2, int4                  hashint2/4   hash_uint32(int32 value)
//	int8                        hashint8     hash_uint32(lo ^ (v >= 0 ? hi : ^hi))
//	text, varchar               hashtext     hash_any(bytes)
//	bpchar                      hashbpchar   hash_any(bytes without trailing spaces)
//	name                        hashname     hash_any(bytes, at most 63)
//	uuid                        uuid_hash    hash_any(16 bytes)
//	date                        hashint4     days since 2000-01-01
//	timestamp, timestamptz      hashint8     microseconds since 2000-01-01 00:00 (UTC)
//
// hash_any and hash_uint32 are Bob Jenkins' lookup3 hash as adapted in
// PostgreSQL's src/common/hashfn.c (hash_bytes, hash_bytes_uint32), ported
// for little-endian servers (every platform pgshard targets: on a big-endian
// server PostgreSQL's hash_any of the same bytes differs).
//
// Assumptions, all true of a default PostgreSQL installation:
//   - text, varchar and bpchar keys use a deterministic collation (hashtext
//     hashes a nondeterministic ICU collation's sort key instead);
//   - client and server encodings are both UTF8, so the bytes of a Go string
//     are the bytes the server stores (Hash does not validate the encoding:
//     a value the server rejects fails there, whatever its hash);
//   - a varchar(n) or char(n) value is no longer than n characters (the server
//     silently truncates excess trailing spaces of such a value; Hash knows no
//     type modifier, but for char(n) trailing spaces never change the hash);
//   - timestamptz text without an explicit time zone is in UTC (the server
//     would use the session's TimeZone setting).

import (
	"database/sql/driver"
	"math"
	"math/bits"
	"reflect"
	"strconv"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Type OIDs of the shard key types Hash supports.
const (
	hashOIDBool        uint32 = 16
	hashOIDName        uint32 = 19
	hashOIDInt8        uint32 = 20
	hashOIDInt2        uint32 = 21
	hashOIDInt4        uint32 = 23
	hashOIDText        uint32 = 25
	hashOIDBPChar      uint32 = 1042
	hashOIDVarchar     uint32 = 1043
	hashOIDDate        uint32 = 1082
	hashOIDTimestamp   uint32 = 1114
	hashOIDTimestamptz uint32 = 1184
	hashOIDUUID        uint32 = 2950
)

// SQLSTATEs PostgreSQL raises for date/time values that internal/sqlerr has no
// name for.
const (
	hashCodeDatetimeOverflow = "22008" // datetime_field_overflow
	hashCodeTZDisplacement   = "22009" // invalid_time_zone_displacement_value
)

// Date/time constants of PostgreSQL's datatype/timestamp.h.
const (
	pgEpochJDate     = 2451545 // date2j(2000, 1, 1)
	unixEpochJDate   = 2440588 // date2j(1970, 1, 1)
	usecsPerDay      = 86400000000
	usecsPerSec      = 1000000
	pgUnixEpochSecs  = (pgEpochJDate - unixEpochJDate) * 86400
	julianMinYear    = -4713
	julianMinMonth   = 11
	julianMaxYear    = 5874898
	dateEndJulian    = 2147483494
	minTimestamp     = -211813488000000000 // 4714-11-24 00:00:00 BC, inclusive
	endTimestamp     = 9223371331200000000 // 294277-01-01 00:00:00, exclusive
	maxTZDispHour    = 15
	nameMaxBytes     = 63 // NAMEDATALEN - 1
	maxValuerUnwraps = 32
)

// HashSupported reports whether pgshard can hash keys of the type with this OID.
func HashSupported(typeOID uint32) bool {
	switch typeOID {
	case hashOIDBool, hashOIDName, hashOIDInt8, hashOIDInt2, hashOIDInt4,
		hashOIDText, hashOIDBPChar, hashOIDVarchar, hashOIDUUID,
		hashOIDDate, hashOIDTimestamp, hashOIDTimestamptz:
		return true
	}
	return false
}

// Hash returns PostgreSQL's default hash-opclass hash (int32, as PostgreSQL's
// hash functions return) of v taken as a value of type typeOID.
//
// v may be what database/sql arguments and SQL literals give:
//   - string or []byte: the value's text form, parsed as the type's input
//     function does (integers with optional sign and surrounding white space;
//     booleans as true/false/yes/no/on/off/1/0 and their prefixes; uuids with
//     or without hyphens and braces; dates as YYYY-MM-DD; timestamps as
//     'YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][ ][Z|UTC|GMT|+-HH[:MM[:SS]]|+-HHMM][ BC]';
//     'infinity', '-infinity' and 'epoch' for the date/time types). A
//     timestamp's zone is ignored, as PostgreSQL ignores it; a timestamptz
//     without a zone is taken in UTC. For uuid, a []byte of exactly 16 bytes
//     is the raw uuid, as pgx sends it;
//   - any Go integer kind and, for the integer types, a float with an integral
//     value; an out-of-range value is an error, never a wrapped hash;
//   - bool for boolean; [16]byte for uuid;
//   - time.Time: for timestamp its wall clock, location ignored (as pgx sends
//     it); for timestamptz its instant; for date its wall-clock date;
//   - a driver.Valuer, whose Value is hashed; a pointer, which is followed;
//     a named type of one of the kinds above.
//
// The text forms are a subset of what PostgreSQL accepts: other forms
// ('now', 'Jan 8 1999', named time zones, PostgreSQL 16's 0x10 and 1_000)
// are refused with an error, never hashed as something else.
//
// Errors are *pgconn.PgError values with PostgreSQL's SQLSTATEs: 23502 for a
// NULL key, 22P02 (22007 for dates and times) for bad syntax, 22003 (22008,
// 22009) for out-of-range values, 42804 for a Go value that cannot be a
// value of the type, 0A000 for an unsupported type or time zone name.
//
// Hash itself does not allocate for a key of a builtin Go type (string,
// []byte, integer, bool, [16]byte, time.Time) on success. As v escapes (a
// driver.Valuer's Value method is called through it), a caller boxing a
// string or a large integer into v for the call pays that one allocation;
// driver arguments arrive already boxed.
func Hash(typeOID uint32, v any) (int32, error) {
	if !HashSupported(typeOID) {
		return 0, sqlerr.Unsupported("pgshard cannot hash a shard key of type with OID %d", typeOID)
	}
	v, err := hashNormalize(typeOID, v)
	if err != nil {
		return 0, err
	}
	var h uint32
	switch typeOID {
	case hashOIDText, hashOIDVarchar, hashOIDBPChar, hashOIDName:
		h, err = hashTextKey(typeOID, v)
	case hashOIDInt2, hashOIDInt4:
		var n int64
		n, err = hashIntKey(typeOID, v)
		h = hashUint32(uint32(int32(n)))
	case hashOIDInt8:
		var n int64
		n, err = hashIntKey(typeOID, v)
		h = hashInt64(n)
	case hashOIDBool:
		var b bool
		b, err = hashBoolKey(v)
		if b {
			h = hashUint32(1)
		} else {
			h = hashUint32(0)
		}
	case hashOIDUUID:
		var u [16]byte
		u, err = hashUUIDKey(v)
		h = hashBytes(u[:])
	case hashOIDDate:
		var d int32
		d, err = hashDateKey(v)
		h = hashUint32(uint32(d))
	case hashOIDTimestamp, hashOIDTimestamptz:
		var ts int64
		ts, err = hashTimestampKey(typeOID, v)
		h = hashInt64(ts)
	}
	if err != nil {
		return 0, err
	}
	return int32(h), nil
}

// hashTypeName is the SQL name of a supported type, as PostgreSQL's messages
// spell it.
func hashTypeName(typeOID uint32) string {
	switch typeOID {
	case hashOIDBool:
		return "boolean"
	case hashOIDName:
		return "name"
	case hashOIDInt8:
		return "bigint"
	case hashOIDInt2:
		return "smallint"
	case hashOIDInt4:
		return "integer"
	case hashOIDText:
		return "text"
	case hashOIDBPChar:
		return "character"
	case hashOIDVarchar:
		return "character varying"
	case hashOIDUUID:
		return "uuid"
	case hashOIDDate:
		return "date"
	case hashOIDTimestamp:
		return "timestamp"
	case hashOIDTimestamptz:
		return "timestamp with time zone"
	}
	return "oid " + strconv.FormatUint(uint64(typeOID), 10)
}

// hashNormalize reduces v to one of the Go types the per-type functions
// accept (string, []byte, bool, the integer and float kinds, time.Time,
// [16]byte): it calls driver.Valuers, follows pointers and converts named
// types to their underlying kind, as database/sql's default converter does.
func hashNormalize(typeOID uint32, v any) (any, error) {
	for range maxValuerUnwraps {
		switch x := v.(type) {
		case nil:
			return nil, hashNullError(typeOID)
		case string, []byte, bool, int, int8, int16, int32, int64,
			uint, uint8, uint16, uint32, uint64, uintptr, float32, float64,
			time.Time, [16]byte:
			return v, nil
		case driver.Valuer:
			nv, err := hashCallValuer(x)
			if err != nil {
				return nil, err
			}
			v = nv
		default:
			nv, ok := hashReflectNormalize(v)
			if !ok {
				return nil, hashMismatch(typeOID, v)
			}
			v = nv
		}
	}
	return nil, sqlerr.New(sqlerr.DatatypeMismatch, "shard key value of Go type %s does not resolve to a value of type %s", reflect.TypeOf(v).String(), hashTypeName(typeOID))
}

var hashValuerType = reflect.TypeFor[driver.Valuer]()

// hashCallValuer calls vr.Value, treating a nil pointer whose element type has
// a value-receiver Value method as NULL, as database/sql does.
func hashCallValuer(vr driver.Valuer) (any, error) {
	if rv := reflect.ValueOf(vr); rv.Kind() == reflect.Pointer && rv.IsNil() &&
		rv.Type().Elem().Implements(hashValuerType) {
		return nil, nil
	}
	val, err := vr.Value()
	if err != nil {
		if pgErr, ok := err.(*pgconn.PgError); ok {
			return nil, pgErr
		}
		return nil, sqlerr.New(sqlerr.DatatypeMismatch, "shard key value: %v", err)
	}
	return val, nil
}

// hashReflectNormalize follows a pointer or converts a named type to its
// kind's builtin type; ok is false for a kind Hash cannot use.
func hashReflectNormalize(v any) (out any, ok bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, true
		}
		return rv.Elem().Interface(), true
	case reflect.String:
		return rv.String(), true
	case reflect.Bool:
		return rv.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint(), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return rv.Bytes(), true
		}
	case reflect.Array:
		if rv.Len() == 16 && rv.Type().Elem().Kind() == reflect.Uint8 {
			var u [16]byte
			reflect.Copy(reflect.ValueOf(&u).Elem(), rv)
			return u, true
		}
	case reflect.Struct:
		if rv.Type().ConvertibleTo(reflect.TypeFor[time.Time]()) {
			return rv.Convert(reflect.TypeFor[time.Time]()).Interface(), true
		}
	}
	return nil, false
}

func hashNullError(typeOID uint32) error {
	return sqlerr.New(sqlerr.NotNullViolation, "shard key value of type %s is NULL", hashTypeName(typeOID))
}

func hashMismatch(typeOID uint32, v any) error {
	return sqlerr.New(sqlerr.DatatypeMismatch, "cannot use a Go %s as a shard key value of type %s", reflect.TypeOf(v).String(), hashTypeName(typeOID))
}

// hashSyntax is PostgreSQL's "invalid input syntax" error for type typ.
func hashSyntax(code, typ, input string) error {
	return sqlerr.New(code, "invalid input syntax for type %s: \"%s\"", typ, input)
}

// bytesAsString views b as a string without copying; the result must not
// outlive the call that b was passed to (it is only read).
func bytesAsString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// ---------------------------------------------------------------------------
// Text types.

func hashTextKey(typeOID uint32, v any) (uint32, error) {
	switch x := v.(type) {
	case string:
		return hashTextBytes(typeOID, x), nil
	case []byte:
		return hashTextBytes(typeOID, bytesAsString(x)), nil
	}
	return 0, hashMismatch(typeOID, v)
}

func hashTextBytes(typeOID uint32, s string) uint32 {
	switch typeOID {
	case hashOIDBPChar:
		// hashbpchar hashes the value without its trailing spaces
		// (bcTruncateLen).
		n := len(s)
		for n > 0 && s[n-1] == ' ' {
			n--
		}
		s = s[:n]
	case hashOIDName:
		// namein truncates to NAMEDATALEN-1 bytes on a character boundary
		// (pg_mbcliplen), and hashname hashes up to the first NUL.
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				s = s[:i]
				break
			}
		}
		if len(s) > nameMaxBytes {
			s = s[:utf8ClipLen(s, nameMaxBytes)]
		}
	}
	return hashBytes(s)
}

// utf8ClipLen is pg_mbcliplen for UTF8: the length of the longest prefix of s
// no longer than limit bytes that does not split a character, characters
// being measured by their first byte as pg_utf_mblen does.
func utf8ClipLen(s string, limit int) int {
	n := 0
	for n < len(s) {
		l := 1
		switch c := s[n]; {
		case c&0xe0 == 0xc0:
			l = 2
		case c&0xf0 == 0xe0:
			l = 3
		case c&0xf8 == 0xf0:
			l = 4
		}
		if n+l > limit {
			break
		}
		n += l
	}
	if n > len(s) {
		n = len(s)
	}
	return n
}

// ---------------------------------------------------------------------------
// Integer types.

func hashIntKey(typeOID uint32, v any) (int64, error) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	switch typeOID {
	case hashOIDInt2:
		lo, hi = math.MinInt16, math.MaxInt16
	case hashOIDInt4:
		lo, hi = math.MinInt32, math.MaxInt32
	}
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int8:
		n = int64(x)
	case int16:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	case uint:
		return hashUintInRange(typeOID, uint64(x), hi)
	case uint8:
		n = int64(x)
	case uint16:
		n = int64(x)
	case uint32:
		n = int64(x)
	case uint64:
		return hashUintInRange(typeOID, x, hi)
	case uintptr:
		return hashUintInRange(typeOID, uint64(x), hi)
	case float32:
		return hashFloatToInt(typeOID, float64(x), lo, hi, 32)
	case float64:
		return hashFloatToInt(typeOID, x, lo, hi, 64)
	case string:
		return hashParseInt(typeOID, x, lo, hi)
	case []byte:
		return hashParseInt(typeOID, bytesAsString(x), lo, hi)
	default:
		return 0, hashMismatch(typeOID, v)
	}
	if n < lo || n > hi {
		return 0, hashIntRange(typeOID, strconv.FormatInt(n, 10))
	}
	return n, nil
}

func hashIntRange(typeOID uint32, text string) error {
	return sqlerr.New(sqlerr.NumericOutOfRange, "value \"%s\" is out of range for type %s", text, hashTypeName(typeOID))
}

func hashUintInRange(typeOID uint32, u uint64, hi int64) (int64, error) {
	if u > uint64(hi) {
		return 0, hashIntRange(typeOID, strconv.FormatUint(u, 10))
	}
	return int64(u), nil
}

// hashFloatToInt accepts a float whose value is an integer within [lo, hi].
func hashFloatToInt(typeOID uint32, f float64, lo, hi int64, bitSize int) (int64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) {
		return 0, hashSyntax(sqlerr.InvalidTextRepr, hashTypeName(typeOID), strconv.FormatFloat(f, 'g', -1, bitSize))
	}
	// float64(hi) rounds 2^63-1 up to 2^63, which is out of range: compare
	// with >= for the int8 bound.
	if f < float64(lo) || f > float64(hi) || (hi == math.MaxInt64 && f >= math.MaxInt64) {
		return 0, hashIntRange(typeOID, strconv.FormatFloat(f, 'f', -1, bitSize))
	}
	return int64(f), nil
}

// hashParseInt parses an integer as PostgreSQL's int2in/int4in/int8in do
// (pg_strtoint16/32/64): optional white space, an optional sign, at least one
// decimal digit, optional white space.
func hashParseInt(typeOID uint32, s string, lo, hi int64) (int64, error) {
	i := 0
	for i < len(s) && isPGSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	if i >= len(s) || !isDigit(s[i]) {
		return 0, hashSyntax(sqlerr.InvalidTextRepr, hashTypeName(typeOID), s)
	}
	limit := uint64(hi)
	if neg {
		limit = uint64(-(lo + 1)) + 1
	}
	var acc uint64
	for ; i < len(s) && isDigit(s[i]); i++ {
		d := uint64(s[i] - '0')
		if acc > (limit-d)/10 {
			return 0, hashIntRange(typeOID, s)
		}
		acc = acc*10 + d
	}
	for i < len(s) && isPGSpace(s[i]) {
		i++
	}
	if i != len(s) {
		return 0, hashSyntax(sqlerr.InvalidTextRepr, hashTypeName(typeOID), s)
	}
	if neg {
		return int64(-acc), nil // -2^63 wraps to itself
	}
	return int64(acc), nil
}

// isPGSpace is isspace() in the C locale.
func isPGSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// ---------------------------------------------------------------------------
// Boolean.

func hashBoolKey(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		return hashParseBool(x)
	case []byte:
		return hashParseBool(bytesAsString(x))
	}
	return false, hashMismatch(hashOIDBool, v)
}

// hashParseBool parses a boolean as boolin does: surrounding white space, then
// case-insensitively a nonempty prefix of "true", "false", "yes" or "no", at
// least two letters of "on" or "off", or exactly "1" or "0".
func hashParseBool(in string) (bool, error) {
	s := in
	for len(s) > 0 && isPGSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isPGSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	if len(s) > 0 {
		switch s[0] | 0x20 {
		case 't':
			if asciiPrefixFold(s, "true") {
				return true, nil
			}
		case 'f':
			if asciiPrefixFold(s, "false") {
				return false, nil
			}
		case 'y':
			if asciiPrefixFold(s, "yes") {
				return true, nil
			}
		case 'n':
			if asciiPrefixFold(s, "no") {
				return false, nil
			}
		case 'o':
			if len(s) >= 2 && asciiPrefixFold(s, "on") {
				return true, nil
			}
			if len(s) >= 2 && asciiPrefixFold(s, "off") {
				return false, nil
			}
		case '1':
			if s == "1" {
				return true, nil
			}
		case '0':
			if s == "0" {
				return false, nil
			}
		}
	}
	return false, hashSyntax(sqlerr.InvalidTextRepr, "boolean", in)
}

// asciiPrefixFold reports whether s is a prefix of the lower-case ASCII word w,
// ignoring ASCII case.
func asciiPrefixFold(s, w string) bool {
	if len(s) > len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// UUID.

func hashUUIDKey(v any) ([16]byte, error) {
	switch x := v.(type) {
	case [16]byte:
		return x, nil
	case string:
		return hashParseUUID(x)
	case []byte:
		if len(x) == 16 {
			// pgx sends a []byte argument for a uuid parameter as the raw
			// 16 bytes; a []byte of 16 bytes is never a valid text form.
			return [16]byte(x), nil
		}
		return hashParseUUID(bytesAsString(x))
	}
	return [16]byte{}, hashMismatch(hashOIDUUID, v)
}

// hashParseUUID parses a uuid as uuid_in (string_to_uuid) does: optional
// braces around 32 hex digits, with an optional hyphen after any group of four
// digits but the last.
func hashParseUUID(in string) ([16]byte, error) {
	var u [16]byte
	s := in
	braces := false
	if len(s) > 0 && s[0] == '{' {
		s = s[1:]
		braces = true
	}
	for i := range 16 {
		if len(s) < 2 {
			return u, hashSyntax(sqlerr.InvalidTextRepr, "uuid", in)
		}
		h, ok1 := hexVal(s[0])
		l, ok2 := hexVal(s[1])
		if !ok1 || !ok2 {
			return u, hashSyntax(sqlerr.InvalidTextRepr, "uuid", in)
		}
		u[i] = h<<4 | l
		s = s[2:]
		if len(s) > 0 && s[0] == '-' && i%2 == 1 && i < 15 {
			s = s[1:]
		}
	}
	if braces {
		if len(s) == 0 || s[0] != '}' {
			return u, hashSyntax(sqlerr.InvalidTextRepr, "uuid", in)
		}
		s = s[1:]
	}
	if len(s) != 0 {
		return u, hashSyntax(sqlerr.InvalidTextRepr, "uuid", in)
	}
	return u, nil
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ---------------------------------------------------------------------------
// Date and timestamps.

func hashDateKey(v any) (int32, error) {
	switch x := v.(type) {
	case time.Time:
		y, m, d := x.Date()
		date, ok := hashDateFromYMD(int64(y), int64(m), int64(d))
		if !ok {
			return 0, hashDateRange(x.Format(time.DateOnly))
		}
		return date, nil
	case string:
		return hashParseDate(x)
	case []byte:
		return hashParseDate(bytesAsString(x))
	}
	return 0, hashMismatch(hashOIDDate, v)
}

// hashDateFromYMD is the date of an astronomical year, month and day, as
// date_in computes it; ok is false when the date is out of range.
func hashDateFromYMD(y, m, d int64) (date int32, ok bool) {
	if !isValidJulian(y, m) {
		return 0, false
	}
	days := date2j(y, m, d) - pgEpochJDate
	if days < -pgEpochJDate || days >= dateEndJulian-pgEpochJDate {
		return 0, false
	}
	return int32(days), true
}

func hashDateRange(input string) error {
	return sqlerr.New(hashCodeDatetimeOverflow, "date out of range: \"%s\"", input)
}

func hashParseDate(s string) (int32, error) {
	var dt pgDateTime
	if err := dt.parse(s, "date"); err != nil {
		return 0, err
	}
	switch dt.special {
	case specialInfinity:
		return math.MaxInt32, nil
	case specialNegInfinity:
		return math.MinInt32, nil
	case specialEpoch:
		return unixEpochJDate - pgEpochJDate, nil
	}
	date, ok := hashDateFromYMD(dt.year, dt.month, dt.day)
	if !ok {
		return 0, hashDateRange(s)
	}
	return date, nil
}

func hashTimestampKey(typeOID uint32, v any) (int64, error) {
	switch x := v.(type) {
	case time.Time:
		sec := x.Unix()
		if typeOID == hashOIDTimestamp {
			// pgx sends the wall clock, discarding the location.
			_, off := x.Zone()
			sec += int64(off)
		}
		if sec < minTimestamp/usecsPerSec+pgUnixEpochSecs-1 || sec > endTimestamp/usecsPerSec+pgUnixEpochSecs {
			return 0, hashTimestampRange(typeOID, x.Format(time.RFC3339Nano))
		}
		ts := (sec-pgUnixEpochSecs)*usecsPerSec + int64(x.Nanosecond())/1000
		if ts < minTimestamp || ts >= endTimestamp {
			return 0, hashTimestampRange(typeOID, x.Format(time.RFC3339Nano))
		}
		return ts, nil
	case string:
		return hashParseTimestamp(typeOID, x)
	case []byte:
		return hashParseTimestamp(typeOID, bytesAsString(x))
	}
	return 0, hashMismatch(typeOID, v)
}

func hashTimestampRange(typeOID uint32, input string) error {
	return sqlerr.New(hashCodeDatetimeOverflow, "timestamp out of range: \"%s\"", input)
}

func hashParseTimestamp(typeOID uint32, s string) (int64, error) {
	var dt pgDateTime
	if err := dt.parse(s, hashTypeName(typeOID)); err != nil {
		return 0, err
	}
	switch dt.special {
	case specialInfinity:
		return math.MaxInt64, nil
	case specialNegInfinity:
		return math.MinInt64, nil
	case specialEpoch:
		return (unixEpochJDate - pgEpochJDate) * usecsPerDay, nil
	}
	// tm2timestamp.
	if !isValidJulian(dt.year, dt.month) {
		return 0, hashTimestampRange(typeOID, s)
	}
	date := date2j(dt.year, dt.month, dt.day) - pgEpochJDate
	// Any date outside these bounds is out of range however the time of day
	// and zone shift it; inside them the arithmetic cannot overflow.
	if date < -pgEpochJDate-2 || date > endTimestamp/usecsPerDay+2 {
		return 0, hashTimestampRange(typeOID, s)
	}
	ts := date*usecsPerDay + ((dt.hour*60+dt.minute)*60+dt.second)*usecsPerSec + dt.fsec
	if typeOID == hashOIDTimestamptz {
		ts -= dt.tzEast * usecsPerSec
	}
	if ts < minTimestamp || ts >= endTimestamp {
		return 0, hashTimestampRange(typeOID, s)
	}
	return ts, nil
}

// isValidJulian is IS_VALID_JULIAN: the year and month are within the range
// the Julian-day routines handle.
func isValidJulian(y, m int64) bool {
	return (y > julianMinYear || (y == julianMinYear && m >= julianMinMonth)) && y < julianMaxYear
}

// date2j is PostgreSQL's date2j: the Julian day number of a proleptic
// Gregorian date, y being the astronomical year (1 BC is 0).
func date2j(y, m, d int64) int64 {
	if m > 2 {
		m++
		y += 4800
	} else {
		m += 13
		y += 4799
	}
	century := y / 100
	julian := y*365 - 32167
	julian += y/4 - century + century/4
	julian += 7834*m/256 + d
	return julian
}

func isLeap(y int64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

var daysInMonth = [2][12]int64{
	{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
	{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
}

const (
	specialNone = iota
	specialInfinity
	specialNegInfinity
	specialEpoch
)

// pgDateTime is a parsed date/time literal, in the fields of PostgreSQL's
// struct pg_tm.
type pgDateTime struct {
	special              int
	year, month, day     int64 // astronomical year
	hour, minute, second int64
	fsec                 int64 // microseconds, 0..1000000
	tzEast               int64 // zone offset, seconds east of UTC
	hasZone              bool  // the text gave a zone (else the session's applies)
}

// parse parses the subset of PostgreSQL's date/time input syntax pgshard
// accepts in shard keys: an ISO 8601 date, optionally a time of day and a
// zone, optionally the era; or one of the special values. typ names the type
// in error messages.
func (dt *pgDateTime) parse(in, typ string) error {
	s := in
	for len(s) > 0 && isPGSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isPGSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	bad := func() error {
		return sqlerr.New(sqlerr.DatetimeFormat, "invalid input syntax for type %s: \"%s\"", typ, in)
	}
	overflow := func() error {
		return sqlerr.New(hashCodeDatetimeOverflow, "date/time field value out of range: \"%s\"", in)
	}
	switch {
	case asciiEqualFold(s, "infinity"):
		dt.special = specialInfinity
		return nil
	case asciiEqualFold(s, "-infinity"):
		dt.special = specialNegInfinity
		return nil
	case asciiEqualFold(s, "epoch"):
		dt.special = specialEpoch
		return nil
	}

	// Date: year (at least four digits) '-' month '-' day.
	year, nd, s := leadingDigits(s)
	if nd < 4 || len(s) == 0 || s[0] != '-' {
		return bad()
	}
	month, nm, s := leadingDigits(s[1:])
	if nm < 1 || nm > 2 || len(s) == 0 || s[0] != '-' {
		return bad()
	}
	day, ndd, s := leadingDigits(s[1:])
	if ndd < 1 || ndd > 2 {
		return bad()
	}
	if nd > 9 {
		return overflow()
	}

	// Time of day: 'T' or white space, then hh:mm[:ss[.frac]].
	var hour, minute, second, fsec int64
	hasTime := false
	if len(s) > 0 && (s[0] == 'T' || s[0] == 't' || isPGSpace(s[0])) {
		rest := s[1:]
		if s[0] != 'T' && s[0] != 't' {
			rest = trimPGSpaceLeft(rest)
		}
		if len(rest) > 0 && isDigit(rest[0]) {
			var nh, nmi, ns int
			hour, nh, rest = leadingDigits(rest)
			if len(rest) == 0 || rest[0] != ':' {
				return bad()
			}
			minute, nmi, rest = leadingDigits(rest[1:])
			if nmi == 0 {
				return bad()
			}
			if len(rest) > 0 && rest[0] == ':' {
				second, ns, rest = leadingDigits(rest[1:])
				if ns == 0 {
					return bad()
				}
				if len(rest) > 0 && rest[0] == '.' {
					j := 1
					for j < len(rest) && isDigit(rest[j]) {
						j++
					}
					// ParseFractionalSecond: rint(strtod(".fff") * 1000000);
					// a lone "." is a zero fraction.
					if j > 1 {
						frac, err := strconv.ParseFloat(rest[:j], 64)
						if err != nil {
							return bad()
						}
						fsec = int64(math.RoundToEven(frac * usecsPerSec))
					}
					rest = rest[j:]
				}
			}
			if nh > 9 || nmi > 9 || ns > 9 {
				return overflow()
			}
			s = rest
			hasTime = true
		} else if s[0] == 'T' || s[0] == 't' {
			return bad()
		}
	}

	// Zone, after a time of day: Z, UTC, GMT or a numeric offset, possibly
	// after white space.
	var tzEast int64
	hasZone := false
	if hasTime {
		t := trimPGSpaceLeft(s)
		switch {
		case len(t) > 0 && (t[0] == '+' || t[0] == '-'):
			j := 1
			for j < len(t) && (isDigit(t[j]) || t[j] == ':') {
				j++
			}
			off, err := parseTZOffset(t[:j])
			switch err {
			case errTZSyntax:
				return bad()
			case errTZRange:
				return sqlerr.New(hashCodeTZDisplacement, "time zone displacement out of range: \"%s\"", in)
			}
			tzEast, hasZone = off, true
			s = t[j:]
		case len(t) > 0 && isAlpha(t[0]):
			word, after := alphaWord(t)
			switch {
			case asciiEqualFold(word, "z"), asciiEqualFold(word, "zulu"),
				asciiEqualFold(word, "utc"), asciiEqualFold(word, "gmt"):
				s, hasZone = after, true
			case asciiEqualFold(word, "bc"), asciiEqualFold(word, "ad"):
				// the era, below
			default:
				return sqlerr.Unsupported("time zone \"%s\" is not supported in a shard key value of type %s, use a numeric offset: \"%s\"", t, typ, in)
			}
		}
	}

	// Era: BC or AD.
	bc := false
	if t := trimPGSpaceLeft(s); len(t) > 0 && isAlpha(t[0]) {
		word, after := alphaWord(t)
		switch {
		case asciiEqualFold(word, "bc"):
			bc = true
		case asciiEqualFold(word, "ad"):
		default:
			return bad()
		}
		s = after
	}
	if len(s) != 0 {
		return bad()
	}

	// ValidateDate and the checks of DecodeTime.
	if year == 0 {
		return overflow() // there is no year zero in AD/BC notation
	}
	if bc {
		year = 1 - year
	}
	if month < 1 || month > 12 {
		return overflow()
	}
	leap := 0
	if isLeap(year) {
		leap = 1
	}
	if day < 1 || day > daysInMonth[leap][month-1] {
		return overflow()
	}
	// time_overflows: each field in range, 24:00:00 and a leap second
	// allowed, but no time of day beyond 24:00:00.
	if hour > 24 || minute > 59 || second > 60 || fsec > usecsPerSec ||
		((hour*60+minute)*60+second)*usecsPerSec+fsec > usecsPerDay {
		return overflow()
	}
	*dt = pgDateTime{
		year: year, month: month, day: day,
		hour: hour, minute: minute, second: second, fsec: fsec,
		tzEast: tzEast, hasZone: hasZone,
	}
	return nil
}

type tzError int

const (
	errTZNone tzError = iota
	errTZSyntax
	errTZRange
)

// parseTZOffset is DecodeTimezone: "+h", "+hh", "+hhmm", "+h:mm",
// "+hh:mm:ss" and so on, at most 15:59:59 either way; the result is in
// seconds east of UTC.
func parseTZOffset(s string) (int64, tzError) {
	neg := s[0] == '-'
	hr, nh, rest := leadingDigits(s[1:])
	if nh == 0 {
		return 0, errTZSyntax
	}
	if nh > 9 {
		return 0, errTZRange
	}
	var min, sec int64
	switch {
	case len(rest) > 0 && rest[0] == ':':
		var n int
		min, n, rest = leadingDigits(rest[1:])
		if n > 9 {
			return 0, errTZRange
		}
		if len(rest) > 0 && rest[0] == ':' {
			sec, n, rest = leadingDigits(rest[1:])
			if n > 9 {
				return 0, errTZRange
			}
		}
	case len(rest) == 0 && len(s) > 3:
		min = hr % 100
		hr /= 100
	}
	if hr > maxTZDispHour || min >= 60 || sec >= 60 {
		return 0, errTZRange
	}
	if len(rest) != 0 {
		return 0, errTZSyntax
	}
	off := (hr*60+min)*60 + sec
	if neg {
		off = -off
	}
	return off, errTZNone
}

// leadingDigits parses the decimal digits at the start of s: their value (for
// at most 18 digits; callers reject longer runs), their count and the rest.
func leadingDigits(s string) (val int64, n int, rest string) {
	for n < len(s) && isDigit(s[n]) {
		if n < 18 {
			val = val*10 + int64(s[n]-'0')
		}
		n++
	}
	return val, n, s[n:]
}

func trimPGSpaceLeft(s string) string {
	for len(s) > 0 && isPGSpace(s[0]) {
		s = s[1:]
	}
	return s
}

// alphaWord splits s after its leading ASCII letters.
func alphaWord(s string) (word, rest string) {
	j := 0
	for j < len(s) && isAlpha(s[j]) {
		j++
	}
	return s[:j], s[j:]
}

func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// asciiEqualFold reports whether s equals the lower-case ASCII word w,
// ignoring ASCII case.
func asciiEqualFold(s, w string) bool { return len(s) == len(w) && asciiPrefixFold(s, w) }

// ---------------------------------------------------------------------------
// PostgreSQL's hash_bytes and hash_bytes_uint32 (src/common/hashfn.c): Bob
// Jenkins' lookup3, reading the key as little-endian 32-bit words.

func hashMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

func hashFinal(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// hashBytes is hash_bytes (hash_any): the hash of the bytes of k.
func hashBytes[T string | []byte](k T) uint32 {
	n := len(k)
	a := 0x9e3779b9 + uint32(n) + 3923095
	b, c := a, a
	i := 0
	for ; n-i >= 12; i += 12 {
		a += uint32(k[i]) | uint32(k[i+1])<<8 | uint32(k[i+2])<<16 | uint32(k[i+3])<<24
		b += uint32(k[i+4]) | uint32(k[i+5])<<8 | uint32(k[i+6])<<16 | uint32(k[i+7])<<24
		c += uint32(k[i+8]) | uint32(k[i+9])<<8 | uint32(k[i+10])<<16 | uint32(k[i+11])<<24
		a, b, c = hashMix(a, b, c)
	}
	// The last 0..11 bytes; the lowest byte of c is reserved for the length.
	switch n - i {
	case 11:
		c += uint32(k[i+10]) << 24
		fallthrough
	case 10:
		c += uint32(k[i+9]) << 16
		fallthrough
	case 9:
		c += uint32(k[i+8]) << 8
		fallthrough
	case 8:
		b += uint32(k[i+7]) << 24
		fallthrough
	case 7:
		b += uint32(k[i+6]) << 16
		fallthrough
	case 6:
		b += uint32(k[i+5]) << 8
		fallthrough
	case 5:
		b += uint32(k[i+4])
		fallthrough
	case 4:
		a += uint32(k[i+3]) << 24
		fallthrough
	case 3:
		a += uint32(k[i+2]) << 16
		fallthrough
	case 2:
		a += uint32(k[i+1]) << 8
		fallthrough
	case 1:
		a += uint32(k[i])
	}
	return hashFinal(a, b, c)
}

// hashUint32 is hash_bytes_uint32 (hash_uint32), equal to hashBytes of the
// four little-endian bytes of k.
func hashUint32(k uint32) uint32 {
	a := uint32(0x9e3779b9 + 4 + 3923095)
	b, c := a, a
	a += k
	return hashFinal(a, b, c)
}

// hashInt64 is hashint8: the low word, xor the high word (complemented for a
// negative value, so that int8 values equal to int4 values hash the same),
// through hash_uint32.
func hashInt64(v int64) uint32 {
	lo := uint32(v)
	hi := uint32(uint64(v) >> 32)
	if v >= 0 {
		lo ^= hi
	} else {
		lo ^= ^hi
	}
	return hashUint32(lo)
}
