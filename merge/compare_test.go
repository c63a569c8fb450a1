package merge

import (
	"database/sql/driver"
	"fmt"
	"math"
	"testing"
	"time"
)

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// checkOrder asserts that cmp orders the values of classes as listed: every
// value of a class equal to the others of it, less than those of later
// classes.
func checkOrder(t *testing.T, name string, cmp func(a, b driver.Value) int, classes [][]driver.Value) {
	t.Helper()
	for i, ci := range classes {
		for j, cj := range classes {
			for _, a := range ci {
				for _, b := range cj {
					if got, want := sign(cmp(a, b)), sign(i-j); got != want {
						t.Errorf("%s: compare(%#v, %#v) = %d, want %d", name, a, b, got, want)
					}
				}
			}
		}
	}
}

func vals(vs ...any) []driver.Value {
	out := make([]driver.Value, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

func TestCompareFunc(t *testing.T) {
	utc := time.UTC
	plus2 := time.FixedZone("+02", 2*3600)
	ts := func(y int, m time.Month, d, h int, loc *time.Location) time.Time {
		return time.Date(y, m, d, h, 0, 0, 0, loc)
	}
	tsClasses := [][]driver.Value{
		vals("-infinity"),
		vals(ts(-43, 3, 15, 0, utc)), // 44 BC
		vals(ts(1999, 12, 31, 23, utc)),
		vals(ts(2000, 1, 1, 0, utc), ts(2000, 1, 1, 2, plus2)),
		vals(ts(2000, 1, 1, 0, utc).Add(time.Microsecond)),
		vals(ts(2262, 1, 1, 0, utc)),
		vals("infinity"),
	}
	text := [][]driver.Value{
		vals(""), vals(" "), vals("-"), vals("0"), vals("A"), vals("AB"), vals("B"), vals("Z"),
		vals("a", []byte("a")), vals("a "), vals("ab"), vals("b"), vals("e"), vals("z"),
		vals("É"), vals("é"), vals("ê"), vals("ñ"), vals("ü"), vals("ǅ"), vals("日本"), vals("😀"),
	}
	for _, tc := range []struct {
		types    []string
		bytewise bool
		classes  [][]driver.Value
	}{
		{[]string{"INT2", "INT4", "INT8", "OID", "int4"}, false, [][]driver.Value{
			vals(int64(math.MinInt64)), vals(int64(-1)), vals(int64(0)), vals(int64(1)), vals(int64(255), int64(255)), vals(int64(math.MaxInt64)),
		}},
		{[]string{"FLOAT4", "FLOAT8"}, false, [][]driver.Value{
			vals(math.Inf(-1)), vals(-math.MaxFloat64), vals(-1.5), vals(-math.SmallestNonzeroFloat64),
			vals(0.0, math.Copysign(0, -1)), vals(math.SmallestNonzeroFloat64), vals(1.0), vals(1.1), vals(math.MaxFloat64),
			vals(math.Inf(1)), vals(math.NaN(), -math.NaN()),
		}},
		{[]string{"NUMERIC"}, false, [][]driver.Value{
			vals("-Infinity", "-inf", math.Inf(-1)),
			vals("-1000000000000000000000000000000", "-1e30", "-1E+30"),
			vals("-10", int64(-10)),
			vals("-1.5", -1.5),
			vals("-1.10", "-1.1"),
			vals("-0.000001"),
			vals("0", "0.00", "-0", "-0.0", ".0", "0.", "+0", int64(0), 0.0, "0e5"),
			vals("0.0000000000000000000001", "1e-22"),
			vals("0.000001", "1e-6", "0.0000010"),
			vals("0.1", "0.10"),
			vals("0.12"),
			vals("0.2"),
			vals("1", "1.0", "1.000", int64(1), 1.0, []byte("1.00")),
			vals("1.1", "1.10", "1.100", " 1.1 "),
			vals("1.11"),
			vals("1.5", 1.5, "15e-1"),
			vals("2"),
			vals("10", "10.000", int64(10), "1e1"),
			vals("99999999999999999999999999999.99999"),
			vals("123456789012345678901234567890.5"),
			vals("123456789012345678901234567890.51"),
			vals("Infinity", "inf", "+Infinity", math.Inf(1)),
			vals("NaN", "nan", math.NaN()),
		}},
		{[]string{"BOOL"}, false, [][]driver.Value{vals(false), vals(true)}},
		{[]string{"TEXT", "VARCHAR"}, true, text},
		{[]string{"NAME"}, true, text},
		{[]string{"CHAR"}, false, [][]driver.Value{vals(""), vals(" "), vals("A"), vals("a"), vals("\x7f"), vals("\xe9")}},
		{[]string{"BPCHAR"}, true, [][]driver.Value{
			vals("", " ", "   "), vals("!"), vals("A", "A  "), vals("a", "a ", "a    "), vals("a b", "a b "), vals("ab", "ab  "), vals("b"), vals("é "),
		}},
		{[]string{"UUID"}, false, [][]driver.Value{
			vals("00000000-0000-0000-0000-000000000000"),
			vals("00000000-0000-0000-0000-000000000001"),
			vals("0000000a-0000-0000-0000-000000000000", "0000000A-0000-0000-0000-000000000000"),
			vals("0000000f-0000-0000-0000-000000000000"),
			vals("00000010-0000-0000-0000-000000000000"),
			vals("9fffffff-ffff-ffff-ffff-ffffffffffff"),
			vals("a0000000-0000-0000-0000-000000000000"),
			vals("ffffffff-ffff-ffff-ffff-ffffffffffff", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"),
		}},
		{[]string{"BYTEA"}, false, [][]driver.Value{
			vals([]byte{}), vals([]byte{0}), vals([]byte{0, 0}), vals([]byte{0, 1}), vals([]byte{1}), vals([]byte{0x7f}), vals([]byte{0x80}), vals([]byte{0xff}, []byte{0xff}),
		}},
		{[]string{"DATE", "TIMESTAMP", "TIMESTAMPTZ"}, false, tsClasses},
		{[]string{"TIME"}, false, [][]driver.Value{
			vals("00:00:00", "00:00"), vals("00:00:00.000001"), vals("09:59:59.999999"), vals("10:00:00"),
			vals("12:00:00.5", "12:00:00.500000", "12:00:00.50"), vals("23:59:59.999999"), vals("24:00:00"),
		}},
		{[]string{"INTERVAL"}, false, [][]driver.Value{
			vals("-178956970 years -8 mons"),
			vals("-1 mon", "-30 day 00:00:00", "-30 days", "-29 days -24:00:00"),
			vals("-1 day +01:00:00", "-23:00:00", "-1 days +01:00:00"),
			vals("-00:00:00.000001"),
			vals("00:00:00", "0 mon 0 day 00:00:00"),
			vals("00:00:00.000001"),
			vals("23:59:59.999999"),
			vals("1 day", "24:00:00", "1 day 00:00:00", "2 days -24:00:00", "1 mon -29 day"),
			vals("1 day 00:00:00.000001"),
			vals("29 day 24:00:00", "1 mon", "30 days", "720:00:00"),
			vals("1 year", "12 mon", "360 day", "1 year 0 mons"),
			vals("1 year 2 mons 3 days 04:05:06", "14 mon 3 day 04:05:06"),
			vals("178956970 years 7 mons 2147483647 days 2562047788:00:54.775807"),
		}},
	} {
		for _, typ := range tc.types {
			cmp, ok := CompareFunc(typ, tc.bytewise)
			if !ok {
				t.Errorf("CompareFunc(%q, %v) not ok", typ, tc.bytewise)
				continue
			}
			checkOrder(t, typ, cmp, tc.classes)
			// NULL after everything
			checkOrder(t, typ+" with NULL", cmp, append(tc.classes[len(tc.classes)-1:], vals(nil, nil)))
		}
	}
}

func TestCompareFuncRefuses(t *testing.T) {
	for _, tc := range []struct {
		typ      string
		bytewise bool
	}{
		{"TEXT", false}, {"VARCHAR", false}, {"BPCHAR", false}, {"NAME", false}, {"CITEXT", true},
		{"JSON", true}, {"JSONB", true}, {"XML", true}, {"INET", true}, {"CIDR", true},
		{"MONEY", true}, {"TIMETZ", true}, {"_INT4", true}, {"INT4RANGE", true},
		{"TSVECTOR", true}, {"POINT", true}, {"16394", true}, {"", true},
	} {
		if _, ok := CompareFunc(tc.typ, tc.bytewise); ok {
			t.Errorf("CompareFunc(%q, %v) ok", tc.typ, tc.bytewise)
		}
	}
}

// Without a Compare, a SortKey orders by Go type, totally.
func TestCompareAny(t *testing.T) {
	tm := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	checkOrder(t, "compareAny", compareAny, [][]driver.Value{
		vals(false), vals(true),
		vals(math.Inf(-1)), vals(int64(math.MinInt64)), vals(int64(-1), -1.0), vals(int64(0), 0.0, math.Copysign(0, -1)),
		vals(0.5), vals(int64(1), 1.0), vals(int64(math.MaxInt64)), vals(9.3e18), vals(math.Inf(1)), vals(math.NaN()),
		vals(tm.Add(-1)), vals(tm, tm.In(time.FixedZone("x", 3600))),
		vals(""), vals("a", []byte("a")), vals("b", []byte("b")),
		vals(nil),
	})
}

func ExampleCompareFunc() {
	cmp, ok := CompareFunc("NUMERIC", false)
	fmt.Println(ok, cmp("1.10", "1.1"), cmp("NaN", "Infinity"), cmp("-0", "0.000"))
	_, ok = CompareFunc("TEXT", false)
	fmt.Println(ok)
	// Output:
	// true 0 1 0
	// false
}
