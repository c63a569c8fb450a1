package merge

import (
	"bytes"
	"cmp"
	"database/sql/driver"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// CompareFunc returns a comparison with PostgreSQL's default btree ordering for
// non-NULL values of the database type named dbType (as pgx's database/sql
// driver reports it: "INT4", "NUMERIC", "TIMESTAMPTZ", ...), in the
// representation that driver produces. NULL (nil) compares greater than every
// other value, as with ASC NULLS LAST; MergeSort never passes it.
//
// ok is false for types whose order Go cannot reproduce exactly (json, inet,
// arrays, ranges, money, citext, timetz, unknown types, ...). The collatable
// text types (text, varchar, bpchar, name) are only ok when
// textOrderIsBytewise: the collation PostgreSQL sorts the values with orders
// them by their bytes (libc C or POSIX, C.UTF-8 by code point, which for UTF-8
// is byte order; never ICU nor a nondeterministic collation). The caller
// decides that from the sort key's collation and its provider. "char" has no
// collation and is always ok.
//
// The orders: integers and oid numerically; float4/float8 with NaN greater
// than everything (and equal to itself) and -0 equal to 0; numeric exactly,
// with NaN greatest and ±Infinity; bool false first; bpchar ignoring trailing
// spaces; bytea and uuid by bytes; date, timestamp and timestamptz by instant
// with "-infinity" first and "infinity" last; time by time of day; interval by
// its span with months of 30 days and days of 24 hours (so '1 mon' equals
// '30 days', as in PostgreSQL).
//
// A value not of the type's representation is compared by its Go type, so the
// comparison is total but meaningless for it.
func CompareFunc(dbType string, textOrderIsBytewise bool) (cmp func(a, b driver.Value) int, ok bool) {
	switch strings.ToUpper(dbType) {
	case "INT2", "INT4", "INT8", "OID":
		return compareInt, true
	case "FLOAT4", "FLOAT8":
		return compareFloat, true
	case "NUMERIC":
		return compareNumeric, true
	case "BOOL":
		return compareBool, true
	case "TEXT", "VARCHAR":
		if textOrderIsBytewise {
			return compareText, true
		}
	case "BPCHAR":
		if textOrderIsBytewise {
			return compareBpchar, true
		}
	case "NAME":
		// name's own collation is C, but a COLLATE clause can change it.
		if textOrderIsBytewise {
			return compareText, true
		}
	case "CHAR":
		return compareText, true
	case "UUID":
		return compareUUID, true
	case "BYTEA":
		return compareBytea, true
	case "DATE", "TIMESTAMP", "TIMESTAMPTZ":
		return compareTimestamp, true
	case "TIME":
		return compareTimeOfDay, true
	case "INTERVAL":
		return compareInterval, true
	}
	return nil, false
}

// nullOrder orders a NULL (nil) after everything; ok is false when neither
// value is NULL.
func nullOrder(a, b driver.Value) (c int, ok bool) {
	switch {
	case a == nil && b == nil:
		return 0, true
	case a == nil:
		return 1, true
	case b == nil:
		return -1, true
	}
	return 0, false
}

func compareInt(a, b driver.Value) int {
	if x, ok := a.(int64); ok {
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
	}
	return compareAny(a, b)
}

func compareFloat(a, b driver.Value) int {
	if x, ok := a.(float64); ok {
		if y, ok := b.(float64); ok {
			return compareFloat64(x, y)
		}
	}
	return compareAny(a, b)
}

// compareFloat64 is PostgreSQL's float8 order: NaN after everything and equal
// to itself, -0 equal to 0.
func compareFloat64(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	case x == y:
		return 0
	}
	// at least one NaN
	xn, yn := math.IsNaN(x), math.IsNaN(y)
	switch {
	case xn && yn:
		return 0
	case xn:
		return 1
	default:
		return -1
	}
}

func compareBool(a, b driver.Value) int {
	if x, ok := a.(bool); ok {
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			default:
				return 1
			}
		}
	}
	return compareAny(a, b)
}

// asText returns a string or []byte value as a string without copying when
// it is a string.
func asText(v driver.Value) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	}
	return "", false
}

func compareText(a, b driver.Value) int {
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	}
	if x, ok := asText(a); ok {
		if y, ok := asText(b); ok {
			return strings.Compare(x, y)
		}
	}
	return compareAny(a, b)
}

// compareBpchar compares character(n) values, whose trailing spaces are
// insignificant.
func compareBpchar(a, b driver.Value) int {
	if x, ok := asText(a); ok {
		if y, ok := asText(b); ok {
			return strings.Compare(strings.TrimRight(x, " "), strings.TrimRight(y, " "))
		}
	}
	return compareAny(a, b)
}

func compareBytea(a, b driver.Value) int {
	if x, ok := a.([]byte); ok {
		if y, ok := b.([]byte); ok {
			return bytes.Compare(x, y)
		}
	}
	if x, ok := asText(a); ok {
		if y, ok := asText(b); ok {
			return strings.Compare(x, y)
		}
	}
	return compareAny(a, b)
}

// compareUUID compares uuids by their bytes: their canonical text (lower-case
// hex, dashes at fixed places) in byte order, ignoring the case of hex digits.
func compareUUID(a, b driver.Value) int {
	x, ok1 := a.(string)
	y, ok2 := b.(string)
	if !ok1 || !ok2 {
		xb, ok1 := uuidBytes(a)
		yb, ok2 := uuidBytes(b)
		if ok1 && ok2 {
			return bytes.Compare(xb, yb)
		}
		return compareAny(a, b)
	}
	for i := 0; i < len(x) && i < len(y); i++ {
		c, d := lowerASCII(x[i]), lowerASCII(y[i])
		if c != d {
			return cmp.Compare(c, d)
		}
	}
	return cmp.Compare(len(x), len(y))
}

func uuidBytes(v driver.Value) ([]byte, bool) {
	switch v := v.(type) {
	case [16]byte:
		return v[:], true
	case []byte:
		return v, true
	}
	return nil, false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// compareTimestamp compares dates and timestamps: time.Time by instant, the
// strings "-infinity" and "infinity" before and after every time.
func compareTimestamp(a, b driver.Value) int {
	x, ok1 := a.(time.Time)
	y, ok2 := b.(time.Time)
	if ok1 && ok2 {
		return x.Compare(y)
	}
	rx, ok1 := infinityRank(a)
	ry, ok2 := infinityRank(b)
	if ok1 && ok2 {
		return cmp.Compare(rx, ry)
	}
	return compareAny(a, b)
}

// infinityRank is -1 for "-infinity", 0 for a time.Time, 1 for "infinity".
func infinityRank(v driver.Value) (int, bool) {
	switch v := v.(type) {
	case time.Time:
		return 0, true
	case string:
		switch v {
		case "infinity":
			return 1, true
		case "-infinity":
			return -1, true
		}
	}
	return 0, false
}

// compareTimeOfDay compares time (without time zone) values: pgx gives them
// as "HH:MM:SS[.ffffff]" text.
func compareTimeOfDay(a, b driver.Value) int {
	x, ok1 := timeOfDay(a)
	y, ok2 := timeOfDay(b)
	if ok1 && ok2 {
		return cmp.Compare(x, y)
	}
	return compareAny(a, b)
}

// timeOfDay is the microseconds since midnight of a time value.
func timeOfDay(v driver.Value) (int64, bool) {
	switch v := v.(type) {
	case time.Time:
		h, m, s := v.Clock()
		return ((int64(h)*60+int64(m))*60+int64(s))*1e6 + int64(v.Nanosecond()/1e3), true
	case int64: // microseconds, as some drivers give it
		return v, true
	case []byte:
		return parseTimeOfDay(string(v))
	case string:
		return parseTimeOfDay(v)
	}
	return 0, false
}

// parseTimeOfDay parses [-]H+:MM[:SS[.ffffff]] into microseconds.
func parseTimeOfDay(s string) (int64, bool) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	h, s, ok := cutInt(s)
	if !ok || s == "" || s[0] != ':' {
		return 0, false
	}
	m, s, ok := cutInt(s[1:])
	if !ok {
		return 0, false
	}
	var sec, frac int64
	if s != "" && s[0] == ':' {
		if sec, s, ok = cutInt(s[1:]); !ok {
			return 0, false
		}
		if s != "" && s[0] == '.' {
			s = s[1:]
			digits := 0
			for digits < len(s) && '0' <= s[digits] && s[digits] <= '9' {
				digits++
			}
			if digits == 0 {
				return 0, false
			}
			for i := range 6 {
				frac *= 10
				if i < digits {
					frac += int64(s[i] - '0')
				}
			}
			s = s[digits:]
		}
	}
	if s != "" {
		return 0, false
	}
	us := ((h*60+m)*60+sec)*1e6 + frac
	if neg {
		us = -us
	}
	return us, true
}

// cutInt parses the leading decimal digits of s (at most 18).
func cutInt(s string) (n int64, rest string, ok bool) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		n = n*10 + int64(s[i]-'0')
		i++
	}
	if i == 0 || i > 18 {
		return 0, s, false
	}
	return n, s[i:], true
}

// compareInterval compares intervals as PostgreSQL does, by their span with
// a month of 30 days and a day of 24 hours.
func compareInterval(a, b driver.Value) int {
	xd, xus, ok1 := intervalSpan(a)
	yd, yus, ok2 := intervalSpan(b)
	if ok1 && ok2 {
		if c := cmp.Compare(xd, yd); c != 0 {
			return c
		}
		return cmp.Compare(xus, yus)
	}
	return compareAny(a, b)
}

const microsPerDay = 24 * 60 * 60 * 1e6

// intervalSpan parses an interval in pgx's text form ("[N mon ][N day ][-]HH:MM:SS[.ffffff]")
// or PostgreSQL's postgres style ("1 year 2 mons -3 days +04:05:06") into days
// and microseconds in [0, microsPerDay): exact where PostgreSQL's 128-bit span
// would not fit in 64 bits.
func intervalSpan(v driver.Value) (days, micros int64, ok bool) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return 0, 0, false
	}
	var months, d, us int64
	fields := strings.Fields(s)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if strings.Contains(f, ":") {
			t, ok := parseTimeOfDay(f)
			if !ok {
				return 0, 0, false
			}
			us += t
			continue
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || i+1 >= len(fields) {
			return 0, 0, false
		}
		i++
		switch strings.TrimSuffix(fields[i], "s") {
		case "year":
			months += n * 12
		case "mon":
			months += n
		case "day":
			d += n
		default:
			return 0, 0, false
		}
	}
	d += months * 30
	d += us / microsPerDay
	us %= microsPerDay
	if us < 0 {
		us += microsPerDay
		d--
	}
	return d, us, true
}

// compareNumeric compares numeric values exactly: NaN after everything, then
// Infinity; -Infinity first. Values are decimal text; int64 and float64 are
// accepted too.
func compareNumeric(a, b driver.Value) int {
	x, ok1 := parseNumeric(a)
	y, ok2 := parseNumeric(b)
	if !ok1 || !ok2 {
		return compareAny(a, b)
	}
	if x.class != y.class || x.class != finite {
		return cmp.Compare(x.class, y.class)
	}
	if x.exp || y.exp {
		return x.rat().Cmp(y.rat())
	}
	if x.sign != y.sign {
		return cmp.Compare(x.sign, y.sign)
	}
	c := cmp.Compare(len(x.int), len(y.int))
	if c == 0 {
		c = strings.Compare(x.int, y.int)
	}
	if c == 0 {
		c = strings.Compare(x.frac, y.frac)
	}
	return c * x.sign
}

const (
	negInf = iota - 1
	finite
	posInf
	notANumber
)

// decimal is a parsed numeric: for a finite value without exponent, its sign
// (0 for zero), integer digits without leading zeros and fraction digits
// without trailing zeros.
type decimal struct {
	class     int
	sign      int
	int, frac string
	exp       bool   // has an exponent: compared with big.Rat
	text      string // the whole number
}

func (d decimal) rat() *big.Rat {
	r, ok := new(big.Rat).SetString(d.text)
	if !ok {
		return new(big.Rat)
	}
	return r
}

func parseNumeric(v driver.Value) (decimal, bool) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	case float64:
		switch {
		case math.IsNaN(v):
			return decimal{class: notANumber}, true
		case math.IsInf(v, 1):
			return decimal{class: posInf}, true
		case math.IsInf(v, -1):
			return decimal{class: negInf}, true
		}
		s = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return decimal{}, false
	}
	return parseDecimal(strings.TrimSpace(s))
}

func parseDecimal(s string) (decimal, bool) {
	switch strings.ToLower(s) {
	case "nan":
		return decimal{class: notANumber}, true
	case "infinity", "+infinity", "inf", "+inf":
		return decimal{class: posInf}, true
	case "-infinity", "-inf":
		return decimal{class: negInf}, true
	}
	d := decimal{class: finite, sign: 1, text: s}
	rest := s
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		if rest[0] == '-' {
			d.sign = -1
		}
		rest = rest[1:]
	}
	i := 0
	for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
		i++
	}
	d.int, rest = rest[:i], rest[i:]
	if rest != "" && rest[0] == '.' {
		rest = rest[1:]
		i = 0
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			i++
		}
		d.frac, rest = rest[:i], rest[i:]
	}
	if d.int == "" && d.frac == "" {
		return decimal{}, false
	}
	if rest != "" {
		if rest[0] != 'e' && rest[0] != 'E' {
			return decimal{}, false
		}
		if _, err := strconv.Atoi(rest[1:]); err != nil {
			return decimal{}, false
		}
		d.exp = true
		return d, true
	}
	d.int = strings.TrimLeft(d.int, "0")
	d.frac = strings.TrimRight(d.frac, "0")
	if d.int == "" && d.frac == "" {
		d.sign = 0
	}
	return d, true
}

// compareAny orders values by their Go type: NULL last; then bool, numbers
// (int64 and float64 together, NaN last), time.Time, string and []byte, each
// in its natural order. It is the comparison of a SortKey without Compare.
func compareAny(a, b driver.Value) int {
	if c, ok := nullOrder(a, b); ok {
		return c
	}
	ra, rb := typeRank(a), typeRank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch x := a.(type) {
	case bool:
		return compareBool(x, b)
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
		return compareMixed(a, b)
	case float64:
		if y, ok := b.(float64); ok {
			return compareFloat64(x, y)
		}
		return compareMixed(a, b)
	case time.Time:
		return x.Compare(b.(time.Time))
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
		return strings.Compare(x, string(b.([]byte)))
	case []byte:
		if y, ok := b.([]byte); ok {
			return bytes.Compare(x, y)
		}
		return strings.Compare(string(x), b.(string))
	}
	return 0
}

func typeRank(v driver.Value) int {
	switch v.(type) {
	case bool:
		return 0
	case int64, float64:
		return 1
	case time.Time:
		return 2
	case string, []byte:
		return 3
	}
	return 4
}

// compareMixed compares an int64 with a float64 exactly.
func compareMixed(a, b driver.Value) int {
	toFloat := func(v driver.Value) *big.Float {
		switch v := v.(type) {
		case int64:
			return new(big.Float).SetInt64(v)
		default:
			return new(big.Float).SetFloat64(v.(float64))
		}
	}
	if f, ok := a.(float64); ok && math.IsNaN(f) {
		return 1
	}
	if f, ok := b.(float64); ok && math.IsNaN(f) {
		return -1
	}
	return toFloat(a).Cmp(toFloat(b))
}
