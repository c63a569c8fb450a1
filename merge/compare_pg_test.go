package merge

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// randomLiterals makes n SQL literals of a type, random but rich in ties and
// in the values whose order is easy to get wrong.
type literalGen func(rng *rand.Rand) string

func pick(rng *rand.Rand, xs ...string) string { return xs[rng.IntN(len(xs))] }

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func randomText(rng *rand.Rand, maxLen int) string {
	alphabet := []string{"a", "b", "A", "B", "z", "Z", "e", "E", "é", "É", "è", "ê", "ü", "ß", "ñ", "Ñ", " ", "-", "_", "0", "9", "日", "本", "😀", "ǅ", "ﬁ", "\u0301"}
	var b strings.Builder
	for range rng.IntN(maxLen + 1) {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

func randomDigits(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte('0' + rng.IntN(10)))
	}
	return b.String()
}

var pgTypes = []struct {
	sqlType string
	gen     literalGen
}{
	{"int2", func(rng *rand.Rand) string {
		return pick(rng, "-32768", "32767", "0", "-1", "1", fmt.Sprint(rng.IntN(65536)-32768), fmt.Sprint(rng.IntN(7)-3))
	}},
	{"int4", func(rng *rand.Rand) string {
		return pick(rng, "-2147483648", "2147483647", "0", fmt.Sprint(rng.Int32()-rng.Int32()), fmt.Sprint(rng.IntN(5)))
	}},
	{"int8", func(rng *rand.Rand) string {
		return pick(rng, "-9223372036854775808", "9223372036854775807", "0", "255", "256", fmt.Sprint(rng.Int64()-rng.Int64()), fmt.Sprint(rng.IntN(5)))
	}},
	{"oid", func(rng *rand.Rand) string {
		return pick(rng, "0", "4294967295", "2147483648", fmt.Sprint(rng.Uint32()), fmt.Sprint(rng.IntN(5)))
	}},
	{"float4", func(rng *rand.Rand) string {
		return pick(rng, "'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "0", "1.1", "-1.1", "1e-45", "3.4e38",
			fmt.Sprintf("%g", rng.NormFloat64()*1e3), fmt.Sprint(rng.IntN(5)))
	}},
	{"float8", func(rng *rand.Rand) string {
		return pick(rng, "'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "0", "1.1", "1.10", "-1.1", "5e-324", "1.7976931348623157e308",
			fmt.Sprintf("%g", rng.NormFloat64()*1e6), fmt.Sprintf("%g", rng.ExpFloat64()*1e-300), fmt.Sprint(rng.IntN(5)))
	}},
	{"numeric", func(rng *rand.Rand) string {
		switch rng.IntN(3) {
		case 0:
			return quote(pick(rng, "NaN", "Infinity", "-Infinity", "-0", "0.000", "0", "1.10", "1.1", "1.100", "1", "1.0", "-1.1", "-1.10",
				"0.0000000000000000000000001", "-0.0000000000000000000000001", "123456789012345678901234567890.123456789",
				"-123456789012345678901234567890.123456789", "1e-30", "1e30", "99.99", "100"))
		default:
			s := randomDigits(rng, rng.IntN(25))
			if f := randomDigits(rng, rng.IntN(25)); f != "" {
				s += "." + f
			}
			if s == "" || s[0] == '.' {
				s = "0" + s
			}
			return quote(pick(rng, "", "-") + s)
		}
	}},
	{"bool", func(rng *rand.Rand) string { return pick(rng, "true", "false") }},
	{"text", func(rng *rand.Rand) string { return quote(randomText(rng, 4)) }},
	{"varchar(10)", func(rng *rand.Rand) string { return quote(randomText(rng, 4)) }},
	{"char(4)", func(rng *rand.Rand) string { return quote(randomText(rng, 4) + pick(rng, "", " ", "  ")) }},
	{"name", func(rng *rand.Rand) string { return quote(randomText(rng, 4)) }},
	{`"char"`, func(rng *rand.Rand) string { return quote(pick(rng, "", " ", "a", "A", "z", "0", "~", "!")) }},
	{"uuid", func(rng *rand.Rand) string {
		h := pick(rng, "0", "1", "9", "a", "A", "f", "F") + pick(rng, "0", "f") + "000000-0000-4000-8000-" + fmt.Sprintf("%012x", rng.IntN(3))
		if rng.IntN(4) == 0 {
			h = fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<16), rng.IntN(1<<16), rng.Int64N(1<<48))
		}
		return quote(h)
	}},
	{"bytea", func(rng *rand.Rand) string {
		var b strings.Builder
		b.WriteString(`'\x`)
		for range rng.IntN(4) {
			b.WriteString(pick(rng, "00", "01", "7f", "80", "ff", "41", "61"))
		}
		return b.String() + "'"
	}},
	{"date", func(rng *rand.Rand) string {
		switch rng.IntN(6) {
		case 0:
			return pick(rng, "'infinity'", "'-infinity'", "'0044-03-15 BC'", "'4713-01-01 BC'", "'5874897-12-31'", "'1970-01-01'")
		}
		d := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(80000))
		return quote(d.Format("2006-01-02"))
	}},
	{"timestamp", func(rng *rand.Rand) string {
		switch rng.IntN(6) {
		case 0:
			return pick(rng, "'infinity'", "'-infinity'", "'0044-03-15 12:00 BC'", "'2000-01-01 00:00:00'", "'2000-01-01 00:00:00.000001'")
		}
		d := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(200*365*24*time.Hour))) / time.Microsecond * time.Microsecond)
		return quote(d.Format("2006-01-02 15:04:05.999999"))
	}},
	{"timestamptz", func(rng *rand.Rand) string {
		switch rng.IntN(6) {
		case 0:
			return pick(rng, "'infinity'", "'-infinity'", "'2000-01-01 00:00:00+00'", "'2000-01-01 02:00:00+02'", "'1999-12-31 19:00:00-05'")
		}
		d := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(200*365*24*time.Hour))) / time.Microsecond * time.Microsecond)
		return quote(d.Format("2006-01-02 15:04:05.999999") + pick(rng, "+00", "+05:30", "-08"))
	}},
	{"time", func(rng *rand.Rand) string {
		switch rng.IntN(5) {
		case 0:
			return pick(rng, "'00:00:00'", "'24:00:00'", "'12:00:00.5'", "'12:00:00.500000'", "'23:59:59.999999'")
		}
		return quote(fmt.Sprintf("%02d:%02d:%02d.%06d", rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(3)*rng.IntN(1000000)))
	}},
	{"interval", func(rng *rand.Rand) string {
		switch rng.IntN(4) {
		case 0:
			return quote(pick(rng, "1 mon", "30 days", "720 hours", "1 day", "24 hours", "1 year", "360 days", "12 mons", "-1 day 25 hours", "0", "-1 mon", "1 microsecond", "-1 microsecond"))
		}
		return quote(fmt.Sprintf("%d mons %d days %d hours %d minutes %d microseconds",
			rng.IntN(5)-2, rng.IntN(61)-30, rng.IntN(49)-24, rng.IntN(121)-60, rng.Int64N(2000001)-1000000))
	}},
}

// TestCompareFuncAgainstPostgres checks CompareFunc against PostgreSQL's
// ORDER BY on random values of every type, read through pgx's database/sql
// driver: for each pair, the sign of the comparison is that of the difference
// of their dense_rank.
func TestCompareFuncAgainstPostgres(t *testing.T) {
	c := pgtest.StartTB(t, 1)
	db, err := sql.Open("pgx", c.Nodes[0].DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var collate string
	if err := db.QueryRowContext(ctx, "SELECT datcollate FROM pg_database WHERE datname = current_database()").Scan(&collate); err != nil {
		t.Fatal(err)
	}
	bytewise := collate == "C" || collate == "POSIX" || strings.EqualFold(collate, "C.UTF-8") || strings.EqualFold(collate, "C.utf8")
	if !bytewise {
		t.Fatalf("database collation %q: the test cluster should use C.UTF-8", collate)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	const n = 250
	for _, typ := range pgTypes {
		t.Run(typ.sqlType, func(t *testing.T) {
			lits := make([]string, n)
			for i := range lits {
				lits[i] = "((" + typ.gen(rng) + ")::" + typ.sqlType + ")"
			}
			q := fmt.Sprintf("SELECT v, dense_rank() OVER (ORDER BY v) FROM (VALUES %s) AS t(v) ORDER BY v", strings.Join(lits, ", "))
			rows, err := db.QueryContext(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			cts, err := rows.ColumnTypes()
			if err != nil {
				t.Fatal(err)
			}
			dbType := cts[0].DatabaseTypeName()
			cmp, ok := CompareFunc(dbType, bytewise)
			if !ok {
				t.Fatalf("CompareFunc(%q) not ok", dbType)
			}
			var vs []driver.Value
			var ranks []int64
			for rows.Next() {
				var v any
				var r int64
				if err := rows.Scan(&v, &r); err != nil {
					t.Fatal(err)
				}
				vs = append(vs, v)
				ranks = append(ranks, r)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				if !representationOK(dbType, v) {
					t.Fatalf("%s value %#v is not in the representation CompareFunc expects", dbType, v)
				}
			}
			distinct := ranks[len(ranks)-1]
			bad := 0
			for i := range vs {
				for j := range vs {
					if got, want := sign(cmp(vs[i], vs[j])), sign(int(ranks[i]-ranks[j])); got != want {
						if bad++; bad <= 10 {
							t.Errorf("%s: compare(%#v, %#v) = %d; PostgreSQL orders them %d", dbType, vs[i], vs[j], got, want)
						}
					}
				}
			}
			t.Logf("%s: %d values, %d distinct, Go type %T", dbType, len(vs), distinct, vs[0])
		})
	}
}

// representationOK reports whether v is in the representation of pgx's
// database/sql driver that CompareFunc's comparison for dbType reads (rather
// than falling back to comparing by Go type).
func representationOK(dbType string, v driver.Value) bool {
	switch dbType {
	case "INT2", "INT4", "INT8", "OID":
		_, ok := v.(int64)
		return ok
	case "FLOAT4", "FLOAT8":
		_, ok := v.(float64)
		return ok
	case "BOOL":
		_, ok := v.(bool)
		return ok
	case "NUMERIC":
		_, ok := v.(string)
		_, ok2 := parseNumeric(v)
		return ok && ok2
	case "BYTEA":
		_, ok := v.([]byte)
		return ok
	case "DATE", "TIMESTAMP", "TIMESTAMPTZ":
		_, ok := infinityRank(v)
		return ok
	case "TIME":
		_, ok := v.(string)
		_, ok2 := timeOfDay(v)
		return ok && ok2
	case "INTERVAL":
		_, _, ok := intervalSpan(v)
		return ok
	case "UUID":
		s, ok := v.(string)
		return ok && len(s) == 36 && s == strings.ToLower(s)
	}
	_, ok := v.(string)
	return ok
}
