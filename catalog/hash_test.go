package catalog

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgshard/pgshard/internal/pgtest"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// hashTestTypes are the supported types with their SQL names.
var hashTestTypes = []struct {
	oid uint32
	sql string
}{
	{hashOIDBool, "bool"},
	{hashOIDName, "name"},
	{hashOIDInt8, "int8"},
	{hashOIDInt2, "int2"},
	{hashOIDInt4, "int4"},
	{hashOIDText, "text"},
	{hashOIDBPChar, "bpchar"},
	{hashOIDVarchar, "varchar"},
	{hashOIDDate, "date"},
	{hashOIDTimestamp, "timestamp"},
	{hashOIDTimestamptz, "timestamptz"},
	{hashOIDUUID, "uuid"},
}

// hashCase is one value of a type: its Go form (nil for a literal-only case)
// and its text literal. When both are set they denote the same value.
type hashCase struct {
	val any
	lit string
}

// TestHashPostgreSQL compares Hash with a real PostgreSQL server's default
// hash for thousands of random values of every supported type, passed both as
// Go values (pgx parameters) and as text literals cast in SQL, and checks
// that pgshard's parsing of edge-case literals agrees with the server's.
func TestHashPostgreSQL(t *testing.T) {
	c := pgtest.StartTB(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.Nodes[0].DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Hash takes a timestamptz literal without a zone in UTC.
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	r := rand.New(rand.NewPCG(seed, seed>>7^0x9e3779b97f4a7c15))

	for _, typ := range hashTestTypes {
		t.Run(typ.sql, func(t *testing.T) {
			proc, callable := hashLookupProc(t, ctx, conn, typ.oid)
			t.Logf("default hash opclass support function 1 of %s: %s (callable directly: %v)", typ.sql, proc, callable)
			cases := hashGenerate(r, typ.oid)
			hashCompareGoValues(t, ctx, conn, typ.oid, typ.sql, proc, callable, cases)
			hashCompareLiterals(t, ctx, conn, typ.oid, typ.sql, proc, callable, cases)
		})
	}

	t.Run("literals", func(t *testing.T) {
		hashCompareEdgeLiterals(t, ctx, conn)
	})
}

// hashLookupProc finds the support function 1 of the type's default hash
// operator class, as GetDefaultOpClass picks it: the opclass for the type
// itself, else one for a type it is binary-coercible to, preferring the
// preferred type of its category (varchar uses text's, not bpchar's). It also
// reports whether the function can be called on the type in SQL.
func hashLookupProc(t *testing.T, ctx context.Context, conn *pgx.Conn, oid uint32) (string, bool) {
	t.Helper()
	const q = `
SELECT p.amproc::regproc::text,
       pr.proargtypes[0] = t.oid OR EXISTS (
           SELECT 1 FROM pg_cast
           WHERE castsource = t.oid AND casttarget = pr.proargtypes[0] AND castmethod = 'b'),
       c.opcintype = t.oid,
       it.typispreferred
FROM pg_type t
JOIN pg_opclass c ON c.opcdefault
    AND c.opcmethod = (SELECT oid FROM pg_am WHERE amname = 'hash')
    AND (c.opcintype = t.oid OR EXISTS (
        SELECT 1 FROM pg_cast
        WHERE castsource = t.oid AND casttarget = c.opcintype AND castmethod = 'b'))
JOIN pg_type it ON it.oid = c.opcintype
JOIN pg_amproc p ON p.amprocfamily = c.opcfamily AND p.amprocnum = 1
    AND p.amproclefttype = c.opcintype AND p.amprocrighttype = c.opcintype
JOIN pg_proc pr ON pr.oid = p.amproc
WHERE t.oid = $1`
	rows, err := conn.Query(ctx, q, oid)
	if err != nil {
		t.Fatal(err)
	}
	type procRow struct {
		Name      string
		Callable  bool
		Exact     bool
		Preferred bool
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[procRow])
	if err != nil {
		t.Fatal(err)
	}
	var exact, preferred []procRow
	for _, f := range found {
		if f.Exact {
			exact = append(exact, f)
		}
		if f.Preferred {
			preferred = append(preferred, f)
		}
	}
	switch {
	case len(exact) == 1:
		return exact[0].Name, exact[0].Callable
	case len(exact) == 0 && len(found) == 1:
		return found[0].Name, found[0].Callable
	case len(exact) == 0 && len(preferred) == 1:
		return preferred[0].Name, preferred[0].Callable
	}
	t.Fatalf("type %d: no single default hash opclass: %v", oid, found)
	return "", false
}

// hashServerQuery is a query hashing every element of $1 with the type's
// default hash function, called by name when SQL allows, and with hash_array
// of a one-element array, which calls it through the type cache whatever its
// argument type. expr turns the unnested element u.e into the value.
func hashServerQuery(sqlType, elemType, expr, proc string, callable bool) string {
	direct := "NULL::int4"
	if callable {
		direct = proc + "(v.x)"
	}
	return fmt.Sprintf(`SELECT %s, hash_array(ARRAY[v.x])
FROM unnest($1::%s[]) WITH ORDINALITY AS u(e, n)
CROSS JOIN LATERAL (SELECT %s AS x) AS v
ORDER BY u.n`, direct, elemType, strings.ReplaceAll(expr, "T", sqlType))
}

// hashServer runs a hashServerQuery and returns the hash of each element:
// hash_array(ARRAY[x]) is 31 + hash(x) in uint32 arithmetic, and the direct
// call, when there is one, must agree.
func hashServer(t *testing.T, ctx context.Context, conn *pgx.Conn, query string, param any, n int) []int32 {
	t.Helper()
	rows, err := conn.Query(ctx, query, param)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			hashFindBadElement(t, ctx, conn, query, param)
		}
	}()
	out := make([]int32, 0, n)
	for rows.Next() {
		var direct *int32
		var arr int32
		if err := rows.Scan(&direct, &arr); err != nil {
			t.Fatal(err)
		}
		h := int32(uint32(arr) - 31)
		if direct != nil && *direct != h {
			t.Fatalf("row %d: direct hash %d, hash_array says %d", len(out), *direct, h)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		t.Error(err)
		return nil
	}
	if len(out) != n {
		t.Fatalf("%d rows for %d values", len(out), n)
	}
	return out
}

// hashFindBadElement reports the first element of the slice param the query
// fails on.
func hashFindBadElement(t *testing.T, ctx context.Context, conn *pgx.Conn, query string, param any) {
	rv := reflect.ValueOf(param)
	for i := range rv.Len() {
		one := reflect.MakeSlice(rv.Type(), 1, 1)
		one.Index(0).Set(rv.Index(i))
		if _, err := conn.Exec(ctx, query, one.Interface()); err != nil {
			t.Fatalf("element %d, %#v: %v", i, rv.Index(i).Interface(), err)
		}
	}
}

func hashCompareGoValues(t *testing.T, ctx context.Context, conn *pgx.Conn, oid uint32, sqlType, proc string, callable bool, cases []hashCase) {
	t.Helper()
	var vals []any
	var idx []int
	for i, c := range cases {
		if c.val != nil {
			vals = append(vals, c.val)
			idx = append(idx, i)
		}
	}
	if len(vals) == 0 {
		return
	}
	query := hashServerQuery(sqlType, sqlType, "u.e", proc, callable)
	want := hashServer(t, ctx, conn, query, hashTypedSlice(t, oid, vals), len(vals))
	if want == nil {
		return
	}
	for j, v := range vals {
		got, err := Hash(oid, v)
		if err != nil {
			t.Fatalf("Hash(%s, %#v): %v", sqlType, v, err)
		}
		if got != want[j] {
			t.Fatalf("Hash(%s, %#v) = %d, PostgreSQL says %d (literal %q)", sqlType, v, got, want[j], cases[idx[j]].lit)
		}
	}
	t.Logf("%d Go values agree", len(vals))
}

func hashCompareLiterals(t *testing.T, ctx context.Context, conn *pgx.Conn, oid uint32, sqlType, proc string, callable bool, cases []hashCase) {
	t.Helper()
	lits := make([]string, len(cases))
	for i, c := range cases {
		lits[i] = c.lit
	}
	query := hashServerQuery(sqlType, "text", "u.e::T", proc, callable)
	want := hashServer(t, ctx, conn, query, lits, len(lits))
	if want == nil {
		return
	}
	for i, c := range cases {
		got, err := Hash(oid, c.lit)
		if err != nil {
			t.Fatalf("Hash(%s, %q): %v", sqlType, c.lit, err)
		}
		if got != want[i] {
			t.Fatalf("Hash(%s, %q) = %d, PostgreSQL says %d", sqlType, c.lit, got, want[i])
		}
		gotBytes, err := Hash(oid, []byte(c.lit))
		if err != nil || gotBytes != got {
			t.Fatalf("Hash(%s, []byte(%q)) = %d, %v; as a string %d", sqlType, c.lit, gotBytes, err, got)
		}
		if c.val != nil {
			gotVal, err := Hash(oid, c.val)
			if err != nil || gotVal != got {
				t.Fatalf("Hash(%s, %#v) = %d, %v; its literal %q hashes to %d", sqlType, c.val, gotVal, err, c.lit, got)
			}
		}
	}
	t.Logf("%d literals agree", len(lits))
}

// hashTypedSlice converts Go values to the slice type pgx encodes as an
// array of the type.
func hashTypedSlice(t *testing.T, oid uint32, vals []any) any {
	t.Helper()
	switch oid {
	case hashOIDText, hashOIDVarchar, hashOIDBPChar, hashOIDName:
		return hashConvertSlice[string](t, vals)
	case hashOIDInt2:
		return hashConvertSlice[int16](t, vals)
	case hashOIDInt4:
		return hashConvertSlice[int32](t, vals)
	case hashOIDInt8:
		return hashConvertSlice[int64](t, vals)
	case hashOIDBool:
		return hashConvertSlice[bool](t, vals)
	case hashOIDUUID:
		return hashConvertSlice[[16]byte](t, vals)
	case hashOIDDate, hashOIDTimestamp, hashOIDTimestamptz:
		return hashConvertSlice[time.Time](t, vals)
	}
	t.Fatalf("no slice type for %d", oid)
	return nil
}

func hashConvertSlice[T any](t *testing.T, vals []any) []T {
	out := make([]T, len(vals))
	for i, v := range vals {
		x, ok := v.(T)
		if !ok {
			t.Fatalf("value %#v is a %T", v, v)
		}
		out[i] = x
	}
	return out
}

// ---------------------------------------------------------------------------
// Random values.

const hashCasesPerType = 3000

func hashGenerate(r *rand.Rand, oid uint32) []hashCase {
	var cases []hashCase
	add := func(val any, lit string) { cases = append(cases, hashCase{val, lit}) }
	switch oid {
	case hashOIDText, hashOIDVarchar:
		for n := 0; n <= 40; n++ {
			for range 20 {
				s := hashRandString(r, n)
				add(s, s)
			}
		}
		for len(cases) < hashCasesPerType {
			s := hashRandString(r, r.IntN(600))
			add(s, s)
		}
	case hashOIDBPChar:
		for n := 0; n <= 40; n++ {
			for range 20 {
				s := hashRandString(r, n) + strings.Repeat(" ", r.IntN(4))
				if r.IntN(5) == 0 {
					s = strings.Repeat(" ", r.IntN(3)) + s
				}
				add(s, s)
			}
		}
		for len(cases) < hashCasesPerType {
			s := hashRandString(r, r.IntN(300)) + strings.Repeat(" ", r.IntN(20))
			add(s, s)
		}
	case hashOIDName:
		for len(cases) < hashCasesPerType {
			s := hashRandString(r, r.IntN(100))
			if len(s) > nameMaxBytes {
				// Only the text form of a name is truncated; binary input
				// of a name that long is an error.
				add(nil, s)
				continue
			}
			add(s, s)
		}
	case hashOIDInt2, hashOIDInt4, hashOIDInt8:
		lo, hi := int64(math.MinInt16), int64(math.MaxInt16)
		bitLen := 16
		switch oid {
		case hashOIDInt4:
			lo, hi, bitLen = math.MinInt32, math.MaxInt32, 32
		case hashOIDInt8:
			lo, hi, bitLen = math.MinInt64, math.MaxInt64, 64
		}
		var ns []int64
		for _, n := range []int64{0, 1, -1, 2, -2, 255, 256, -256, lo, hi, lo + 1, hi - 1,
			math.MaxInt16, math.MinInt16, math.MaxInt32, math.MinInt32, 1 << 32, -(1 << 32), 1<<32 - 1, -(1<<32 + 1)} {
			if lo <= n && n <= hi {
				ns = append(ns, n)
			}
		}
		for len(ns) < hashCasesPerType {
			n := int64(r.Uint64() >> (64 - 1 - r.IntN(bitLen)))
			if r.IntN(2) == 0 {
				n = -n - int64(r.IntN(2))
			}
			if lo <= n && n <= hi {
				ns = append(ns, n)
			}
		}
		for _, n := range ns {
			var val any
			switch oid {
			case hashOIDInt2:
				val = int16(n)
			case hashOIDInt4:
				val = int32(n)
			default:
				val = n
			}
			add(val, hashIntLiteral(r, n))
		}
	case hashOIDBool:
		for range 200 {
			b := r.IntN(2) == 0
			add(b, hashBoolLiteral(r, b))
		}
	case hashOIDUUID:
		add([16]byte{}, "00000000-0000-0000-0000-000000000000")
		add([16]byte{0: 0xff, 15: 0xff}, "ff0000000000000000000000000000ff")
		for len(cases) < hashCasesPerType {
			var u [16]byte
			for i := range u {
				u[i] = byte(r.Uint32())
			}
			add(u, hashUUIDLiteral(r, u))
		}
	case hashOIDDate:
		minDay, maxDay := int64(-pgEpochJDate), int64(dateEndJulian-pgEpochJDate-1)
		days := []int64{0, -1, 1, minDay, maxDay, minDay + 1, maxDay - 1,
			unixEpochJDate - pgEpochJDate, -730119, -730120, 2932896} // 0001-01-01, 1 BC, 9999-12-31
		for len(days) < hashCasesPerType {
			switch r.IntN(3) {
			case 0:
				days = append(days, minDay+r.Int64N(maxDay-minDay+1))
			case 1:
				days = append(days, r.Int64N(73050)-36525) // 1900..2100
			default:
				days = append(days, r.Int64N(4000000)-2451545) // up to ~ 6000 AD
			}
		}
		for _, d := range days {
			y, m, dd := hashJ2Date(d + pgEpochJDate)
			tm := time.Date(int(y), time.Month(m), int(dd), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e9), hashRandZone(r))
			add(tm, hashDateLiteral(r, y, m, dd))
		}
		add(nil, "infinity")
		add(nil, " -Infinity ")
		add(nil, "epoch")
	case hashOIDTimestamp, hashOIDTimestamptz:
		usecs := []int64{0, -1, 1, minTimestamp, endTimestamp - 1, minTimestamp + 1, endTimestamp - 2,
			-946684800 * usecsPerSec, 1e6 - 1, -1e6}
		for len(usecs) < hashCasesPerType {
			switch r.IntN(4) {
			case 0:
				lo, span := int64(minTimestamp), uint64(endTimestamp)+uint64(-minTimestamp)
				usecs = append(usecs, lo+int64(r.Uint64N(span)))
			case 1:
				usecs = append(usecs, r.Int64N(200*365*usecsPerDay)-100*365*usecsPerDay)
			case 2:
				usecs = append(usecs, r.Int64N(4*usecsPerDay)-2*usecsPerDay)
			default:
				usecs = append(usecs, r.Int64N(20000*365*usecsPerDay)-6700*365*usecsPerDay)
			}
		}
		for _, us := range usecs {
			lit, val := hashTimestampCase(r, oid, us)
			add(val, lit)
		}
		add(nil, "infinity")
		add(nil, "-infinity")
		add(nil, "EPOCH")
		// Fractional seconds beyond microseconds, rounded as
		// ParseFractionalSecond does, leap seconds and 24:00.
		for range 300 {
			y := 1 + r.IntN(3000)
			frac := fmt.Sprintf("%09d", r.IntN(1e9))[:7+r.IntN(3)]
			if r.IntN(4) == 0 {
				frac = fmt.Sprintf("%06d5", r.IntN(1e6))
			}
			if r.IntN(10) == 0 {
				frac = "9999995"
			}
			add(nil, fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d.%s", y, 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(59), r.IntN(61), frac))
		}
		add(nil, "2020-12-31 24:00:00")
		add(nil, "1999-12-31 23:59:60")
		add(nil, "1999-12-31 23:58:60.999999")
	}
	return cases
}

// hashRandString returns a valid UTF-8 string of about n bytes (exactly n
// when n allows it), mixing ASCII, spaces and 2-, 3- and 4-byte characters.
func hashRandString(r *rand.Rand, n int) string {
	pool := []string{"a", "Z", "0", " ", "~", "'", "\"", "\\", "\t", "é", "ß", "Ж", "日", "本", "€", "😀", "𝄞"}
	var b strings.Builder
	for b.Len() < n {
		p := pool[r.IntN(len(pool))]
		if r.IntN(3) > 0 {
			p = string(rune('!' + r.IntN(94)))
		}
		if b.Len()+len(p) > n {
			p = "x"
		}
		b.WriteString(p)
	}
	return b.String()
}

func hashIntLiteral(r *rand.Rand, n int64) string {
	s := fmt.Sprint(n)
	switch r.IntN(6) {
	case 0:
		if n >= 0 {
			s = "+" + s
		}
	case 1:
		if n >= 0 {
			s = "000" + s
		} else {
			s = "-00" + s[1:]
		}
	case 2:
		s = " \t" + s + "\n "
	}
	return s
}

func hashBoolLiteral(r *rand.Rand, b bool) string {
	words := []string{"f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0", "FALSE", "No", "oFf"}
	if b {
		words = []string{"t", "tr", "tru", "true", "y", "ye", "yes", "on", "1", "TRUE", "Yes", "oN", "T"}
	}
	s := words[r.IntN(len(words))]
	if r.IntN(3) == 0 {
		s = "  " + s + "\t"
	}
	return s
}

func hashUUIDLiteral(r *rand.Rand, u [16]byte) string {
	var b strings.Builder
	upper := r.IntN(3) == 0
	mode := r.IntN(4)
	for i, c := range u {
		fmt.Fprintf(&b, "%02x", c)
		switch mode {
		case 0: // canonical
			if i == 3 || i == 5 || i == 7 || i == 9 {
				b.WriteByte('-')
			}
		case 1: // a hyphen after any group of four digits
			if i%2 == 1 && i < 15 && r.IntN(3) == 0 {
				b.WriteByte('-')
			}
		}
	}
	s := b.String()
	if upper {
		s = strings.ToUpper(s)
	}
	if r.IntN(4) == 0 {
		s = "{" + s + "}"
	}
	return s
}

// hashJ2Date is PostgreSQL's j2date: the astronomical year, month and day of
// a Julian day number.
func hashJ2Date(jd int64) (y, m, d int64) {
	julian := jd + 32044
	quad := julian / 146097
	extra := (julian-quad*146097)*4 + 3
	julian += 60 + quad*3 + extra/146097
	quad = julian / 1461
	julian -= quad * 1461
	y = julian * 4 / 1461
	if y != 0 {
		julian = (julian+305)%365 + 123
	} else {
		julian = (julian+306)%366 + 123
	}
	y += quad * 4
	y -= 4800
	quad = julian * 2141 / 65536
	d = julian - 7834*quad/256
	m = (quad+10)%12 + 1
	return y, m, d
}

// hashEra formats an astronomical year as PostgreSQL does: 1 BC is 0001 BC.
func hashEra(y int64) (display int64, suffix string) {
	if y <= 0 {
		return 1 - y, " BC"
	}
	return y, ""
}

func hashDateLiteral(r *rand.Rand, y, m, d int64) string {
	dy, era := hashEra(y)
	s := fmt.Sprintf("%04d-%02d-%02d", dy, m, d)
	switch r.IntN(6) {
	case 0:
		s = fmt.Sprintf("%04d-%d-%d", dy, m, d)
	case 1:
		s += fmt.Sprintf(" %02d:%02d:%02d", r.IntN(24), r.IntN(60), r.IntN(60))
	case 2:
		s += fmt.Sprintf("T%02d:%02d:%02d.%06d+05:30", r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6))
	case 3:
		s = "  " + s + " "
	}
	return s + era
}

func hashRandZone(r *rand.Rand) *time.Location {
	switch r.IntN(4) {
	case 0:
		return time.UTC
	case 1:
		return time.FixedZone("", (r.IntN(31)-15)*3600)
	case 2:
		return time.FixedZone("", (r.IntN(31)-15)*3600+r.IntN(2)*1800)
	default:
		return time.FixedZone("X", r.IntN(2*(16*3600-1))-(16*3600-1))
	}
}

// hashTimestampCase returns a literal and a time.Time for the timestamp (or
// timestamptz) that is us microseconds after 2000-01-01 00:00:00 (UTC).
func hashTimestampCase(r *rand.Rand, oid uint32, us int64) (string, time.Time) {
	day := us / usecsPerDay
	tod := us % usecsPerDay
	if tod < 0 {
		tod += usecsPerDay
		day--
	}
	y, m, d := hashJ2Date(day + pgEpochJDate)
	utcTime := time.Date(int(y), time.Month(m), int(d), 0, 0, 0, 0, time.UTC).Add(time.Duration(tod) * time.Microsecond)
	sub := time.Duration(r.IntN(1000)) // below a microsecond, discarded
	zone := hashRandZone(r)
	if oid == hashOIDTimestamp {
		// The wall clock counts: the same fields in any location.
		wall := utcTime.Add(sub)
		val := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), zone)
		lit := hashFormatTimestamp(utcTime)
		switch r.IntN(5) {
		case 0: // a zone is ignored
			lit = hashInsertZone(lit, "+03:00")
		case 1:
			lit = strings.Replace(lit, " ", "T", 1)
		}
		return lit, val
	}
	val := utcTime.Add(sub).In(zone)
	var lit string
	switch r.IntN(4) {
	case 0: // no zone: UTC
		lit = hashFormatTimestamp(utcTime)
	case 1:
		lit = hashInsertZone(hashFormatTimestamp(utcTime), "Z")
	default:
		local := utcTime.In(zone)
		_, off := local.Zone()
		lit = hashFormatTimestamp(time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(), local.Second(), local.Nanosecond(), time.UTC))
		lit = hashInsertZone(lit, hashFormatOffset(r, off))
	}
	return lit, val
}

// hashFormatTimestamp formats t's fields (read in UTC) as
// 'YYYY-MM-DD HH:MM:SS[.ffffff][ BC]'.
func hashFormatTimestamp(t time.Time) string {
	dy, era := hashEra(int64(t.Year()))
	s := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", dy, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second())
	if us := t.Nanosecond() / 1000; us != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%06d", us), "0")
	}
	return s + era
}

// hashInsertZone puts zone before the era suffix, if any.
func hashInsertZone(lit, zone string) string {
	if s, ok := strings.CutSuffix(lit, " BC"); ok {
		return s + zone + " BC"
	}
	return lit + zone
}

func hashFormatOffset(r *rand.Rand, off int) string {
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	h, m, s := off/3600, off/60%60, off%60
	switch {
	case s != 0:
		return fmt.Sprintf("%s%02d:%02d:%02d", sign, h, m, s)
	case m != 0 && r.IntN(2) == 0:
		return fmt.Sprintf("%s%02d%02d", sign, h, m)
	case m != 0:
		return fmt.Sprintf(" %s%d:%02d", sign, h, m)
	default:
		return fmt.Sprintf("%s%02d", sign, h)
	}
}

// ---------------------------------------------------------------------------
// Edge-case literals, one by one against the server.

func hashCompareEdgeLiterals(t *testing.T, ctx context.Context, conn *pgx.Conn) {
	type lit struct {
		typ string
		in  string
		// refuse marks input the server accepts that pgshard refuses rather
		// than risk a wrong hash.
		refuse bool
	}
	lits := []lit{
		{typ: "int2", in: "32767"}, {typ: "int2", in: "32768"}, {typ: "int2", in: "-32768"}, {typ: "int2", in: "-32769"},
		{typ: "int2", in: " 12 "}, {typ: "int2", in: "1 2"}, {typ: "int2", in: ""}, {typ: "int2", in: "-"}, {typ: "int2", in: "+"},
		{typ: "int2", in: "0x10"}, {typ: "int2", in: "1.0"}, {typ: "int2", in: "99999999999999999999x"},
		{typ: "int4", in: "2147483647"}, {typ: "int4", in: "2147483648"}, {typ: "int4", in: "-2147483648"}, {typ: "int4", in: "-2147483649"},
		{typ: "int4", in: "abc"}, {typ: "int4", in: "\v\f7\r"}, {typ: "int4", in: "--1"}, {typ: "int4", in: "1e3"},
		{typ: "int8", in: "9223372036854775807"}, {typ: "int8", in: "9223372036854775808"},
		{typ: "int8", in: "-9223372036854775808"}, {typ: "int8", in: "-9223372036854775809"}, {typ: "int8", in: "00000000000000000000000042"},
		{typ: "bool", in: "t"}, {typ: "bool", in: "o"}, {typ: "bool", in: "of"}, {typ: "bool", in: "onn"}, {typ: "bool", in: "truee"},
		{typ: "bool", in: ""}, {typ: "bool", in: " "}, {typ: "bool", in: "10"}, {typ: "bool", in: " YES\n"}, {typ: "bool", in: "2"},
		{typ: "uuid", in: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}, {typ: "uuid", in: "{a0eebc999c0b4ef8bb6d6bb9bd380a11}"},
		{typ: "uuid", in: "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11"}, {typ: "uuid", in: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-"},
		{typ: "uuid", in: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"}, {typ: "uuid", in: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111"},
		{typ: "uuid", in: "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}, {typ: "uuid", in: " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{typ: "uuid", in: "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11"}, {typ: "uuid", in: "a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{typ: "uuid", in: "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}, {typ: "uuid", in: ""},
		{typ: "date", in: "2000-01-01"}, {typ: "date", in: "1999-12-31"}, {typ: "date", in: "2020-02-29"}, {typ: "date", in: "2021-02-29"},
		{typ: "date", in: "1900-02-29"}, {typ: "date", in: "2000-02-30"}, {typ: "date", in: "2020-13-01"}, {typ: "date", in: "2020-00-10"},
		{typ: "date", in: "2020-01-00"}, {typ: "date", in: "0000-01-01"}, {typ: "date", in: "0001-01-01 BC"}, {typ: "date", in: "0000-01-01 BC"},
		{typ: "date", in: "4714-11-24 BC"}, {typ: "date", in: "4714-11-23 BC"}, {typ: "date", in: "4714-10-31 BC"},
		{typ: "date", in: "5874897-12-31"}, {typ: "date", in: "5874898-01-01"}, {typ: "date", in: "infinity"}, {typ: "date", in: "-INFINITY"},
		{typ: "date", in: "epoch"}, {typ: "date", in: "2020-01-01 23:59:59.999999"}, {typ: "date", in: "2020-01-01 24:00:00"},
		{typ: "date", in: "2020-01-01 25:00:00"}, {typ: "date", in: "2020-01-01T10:00Z"}, {typ: "date", in: "2020-01-01 ad"},
		{typ: "date", in: "2020-01-01x"}, {typ: "date", in: "2020-01-01BC"}, {typ: "timestamp", in: "2020-01-01 10:00UTC"},
		{typ: "timestamp", in: "2020-01-01 10:00:00+05BC"}, {typ: "date", in: "2020-1-1"}, {typ: "date", in: "not a date"}, {typ: "date", in: ""},
		{typ: "date", in: "2020-01-01 10:00:00+16"}, {typ: "date", in: "2020-01-01 10:00:00-15:59"},
		{typ: "date", in: "today", refuse: true}, {typ: "date", in: "Jan 8, 1999", refuse: true}, {typ: "date", in: "0099-01-08"},
		{typ: "date", in: "20200101", refuse: true},
		{typ: "timestamp", in: "2000-01-01 00:00:00"}, {typ: "timestamp", in: "2000-01-01"}, {typ: "timestamp", in: "2000-01-01T12:34"},
		{typ: "timestamp", in: "2000-01-01 12:34:56.5"}, {typ: "timestamp", in: "2000-01-01 12:34:56.0000005"},
		{typ: "timestamp", in: "2000-01-01 12:34:56.0000015"}, {typ: "timestamp", in: "2000-01-01 12:34:56.9999995"},
		{typ: "timestamp", in: "2000-01-01 12:34:56."}, {typ: "timestamp", in: "2000-01-01 12:34:60"}, {typ: "timestamp", in: "2000-01-01 12:34:61"},
		{typ: "timestamp", in: "2000-01-01 12:60:00"}, {typ: "timestamp", in: "2000-01-01 24:00:00"}, {typ: "timestamp", in: "2000-01-01 24:00:01"},
		{typ: "timestamp", in: "2000-01-01 24:00:00.5"}, {typ: "timestamp", in: "2000-01-01 23:59:60.5"},
		{typ: "timestamp", in: "2000-01-01 23:59:59.9999996"}, {typ: "timestamp", in: "2000-01-01 23:59:60.0000001"}, {typ: "timestamp", in: "2000-01-01 1:2:3"}, {typ: "timestamp", in: "2000-01-01 12"},
		{typ: "timestamp", in: "2000-01-01 12:34:56+05"}, {typ: "timestamp", in: "2000-01-01 12:34:56 -08:00"}, {typ: "timestamp", in: "2000-01-01 12:34:56Z"},
		{typ: "timestamp", in: "2000-01-01 12:34:56+16"}, {typ: "timestamp", in: "2000-01-01 12:34:56 UTC"}, {typ: "timestamp", in: "2000-01-01 12:34:56 BC"},
		{typ: "timestamp", in: "4714-11-24 00:00:00 BC"}, {typ: "timestamp", in: "4714-11-23 23:59:59.999999 BC"},
		{typ: "timestamp", in: "294276-12-31 23:59:59.999999"}, {typ: "timestamp", in: "294277-01-01 00:00:00"},
		{typ: "timestamp", in: "5874897-12-31"}, {typ: "timestamp", in: "infinity"}, {typ: "timestamp", in: "-infinity"}, {typ: "timestamp", in: "+infinity", refuse: true},
		{typ: "timestamp", in: "epoch"}, {typ: "timestamp", in: "2000-01-01 12:34:56.123456789"}, {typ: "timestamp", in: "2000-01-01T"},
		{typ: "timestamp", in: "now", refuse: true}, {typ: "timestamp", in: "2000-01-01 12:34:56 America/New_York", refuse: true},
		{typ: "timestamp", in: "2000-01-01 12:34:56 PST", refuse: true}, {typ: "timestamp", in: "January 8 04:05:06 1999", refuse: true},
		{typ: "timestamptz", in: "2000-01-01 00:00:00+00"}, {typ: "timestamptz", in: "2000-01-01 00:00:00+05:30"},
		{typ: "timestamptz", in: "2000-01-01 00:00:00-0530"}, {typ: "timestamptz", in: "2000-01-01 00:00:00 +530"},
		{typ: "timestamptz", in: "2000-01-01 00:00:00+5"}, {typ: "timestamptz", in: "2000-01-01 00:00:00+15:59:59"},
		{typ: "timestamptz", in: "2000-01-01 00:00:00+16"}, {typ: "timestamptz", in: "2000-01-01 00:00:00+05:60"},
		{typ: "timestamptz", in: "2000-01-01 00:00:00+05:30:60"}, {typ: "timestamptz", in: "2000-01-01 00:00:00+053000"},
		{typ: "timestamptz", in: "2000-01-01 00:00:00+05:30x"}, {typ: "timestamptz", in: "2000-01-01 00:00:00 z"},
		{typ: "timestamptz", in: "2000-01-01 00:00:00 Zulu"}, {typ: "timestamptz", in: "2000-01-01 00:00:00 GMT"},
		{typ: "timestamptz", in: "2000-01-01T00:00:00.000001Z"}, {typ: "timestamptz", in: "0044-03-15 12:00:00Z BC"},
		{typ: "timestamptz", in: "4714-11-24 00:00:00+00 BC"}, {typ: "timestamptz", in: "4714-11-24 00:00:00+01 BC"},
		{typ: "timestamptz", in: "4714-11-24 00:00:00-01 BC"}, {typ: "timestamptz", in: "294276-12-31 23:59:59.999999+00"},
		{typ: "timestamptz", in: "294277-01-01 00:00:00+01"}, {typ: "timestamptz", in: "294277-01-01 00:00:00-01"},
		{typ: "timestamptz", in: "2000-01-01 00:00:00 Europe/Paris", refuse: true}, {typ: "timestamptz", in: "2000-01-01 00:00:00 EST", refuse: true},
		{typ: "timestamp", in: "2020-01-01\t10:00:00"}, {typ: "timestamp", in: "2020-01-01  10:00:00"}, {typ: "timestamp", in: "2020-01-01 10:00:00 Z BC"},
		{typ: "timestamp", in: "2020-01-01 10:00:00 AD"}, {typ: "timestamptz", in: "2020-01-01 10:00:00+05:"}, {typ: "timestamptz", in: "2020-01-01 10:00:00+"},
		{typ: "timestamptz", in: "2020-01-01 10:00:00-"}, {typ: "timestamptz", in: "2020-01-01 10:00:00+05:30:"}, {typ: "timestamptz", in: "2020-01-01 10:00+05"},
		{typ: "timestamp", in: "00002020-01-01"}, {typ: "timestamp", in: "2020-001-01"}, {typ: "timestamp", in: "2020-01-001", refuse: true}, {typ: "timestamp", in: "2020-01-01 010:00:00"},
		{typ: "timestamp", in: "2020-01-01 10:00:00.123e3", refuse: true}, {typ: "timestamp", in: "2020-01-01 10:00:00 bc"}, {typ: "timestamptz", in: "2020-01-01 10:00:00 +0530"},
		{typ: "timestamptz", in: "2020-01-01 10:00:00-15:59:59 BC"}, {typ: "timestamptz", in: "2020-01-01 10:00:00.5-1"}, {typ: "timestamptz", in: "2020-01-01 10:00:00 utc"},
		{typ: "timestamptz", in: "2020-01-01T10:00:00.999999999Z"}, {typ: "date", in: "2020-01-01T10:00:00"}, {typ: "date", in: "2020-02-29 BC"}, {typ: "date", in: "0005-02-29 BC"},
		{typ: "int4", in: "+-1"}, {typ: "int4", in: "- 1"}, {typ: "int4", in: "1 "}, {typ: "int4", in: "١٢"}, {typ: "bool", in: "TrUe"}, {typ: "bool", in: "of "},
		{typ: "bool", in: "ye s"}, {typ: "uuid", in: "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"}, {typ: "uuid", in: "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"},
		{typ: "uuid", in: "a0eebc999c0b4ef8bb6d6bb9bd380a11}"}, {typ: "uuid", in: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 "},
		{typ: "text", in: ""}, {typ: "bpchar", in: "   "}, {typ: "bpchar", in: "a\t "}, {typ: "varchar", in: "x "},
		{typ: "name", in: strings.Repeat("é", 40)}, {typ: "name", in: strings.Repeat("a", 62) + "é"}, {typ: "name", in: strings.Repeat("a", 63) + "b"},
	}
	oids := map[string]uint32{}
	for _, typ := range hashTestTypes {
		oids[typ.sql] = typ.oid
	}
	for _, l := range lits {
		oid := oids[l.typ]
		got, gotErr := Hash(oid, l.in)
		var want int32
		err := conn.QueryRow(ctx, fmt.Sprintf("SELECT hash_array(ARRAY[$1::text::%s])", l.typ), l.in).Scan(&want)
		want = int32(uint32(want) - 31)
		var pgErr *pgconn.PgError
		switch {
		case err != nil && !errors.As(err, &pgErr):
			t.Fatalf("%s %q: %v", l.typ, l.in, err)
		case err != nil:
			if gotErr == nil {
				t.Errorf("Hash(%s, %q) = %d; PostgreSQL fails with %s: %s", l.typ, l.in, got, pgErr.Code, pgErr.Message)
			} else if sqlerr.Code(gotErr) != pgErr.Code {
				t.Errorf("Hash(%s, %q): %v (SQLSTATE %s); PostgreSQL fails with %s: %s", l.typ, l.in, gotErr, sqlerr.Code(gotErr), pgErr.Code, pgErr.Message)
			}
		case l.refuse:
			if gotErr == nil {
				t.Errorf("Hash(%s, %q) = %d, want pgshard to refuse it", l.typ, l.in, got)
			}
		case gotErr != nil:
			t.Errorf("Hash(%s, %q): %v; PostgreSQL hashes it to %d", l.typ, l.in, gotErr, want)
		case got != want:
			t.Errorf("Hash(%s, %q) = %d, PostgreSQL says %d", l.typ, l.in, got, want)
		}
	}
}

// ---------------------------------------------------------------------------
// Known values, properties and errors (no server needed).

// TestHashKnownValues checks values PostgreSQL 15 computed (SELECT
// hashtext('tomato') and so on).
func TestHashKnownValues(t *testing.T) {
	uuidA := [16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	tests := []struct {
		oid  uint32
		v    any
		want int32
	}{
		{hashOIDText, "tomato", 828595980},
		{hashOIDText, "", -1477818771},
		{hashOIDText, "a", 1075015857},
		{hashOIDText, "hello world", 1021725223},
		{hashOIDText, "abcdefghijkl", -1586087212},
		{hashOIDText, "Ünïcödé 日本 😀", -100505416},
		{hashOIDText, []byte("tomato"), 828595980},
		{hashOIDVarchar, "tomato", 828595980},
		{hashOIDBPChar, "tomato   ", 828595980},
		{hashOIDName, "tomato", 828595980},
		{hashOIDInt2, int16(0), -272711505},
		{hashOIDInt2, int16(-32768), 193646934},
		{hashOIDInt4, int32(0), -272711505},
		{hashOIDInt4, 1, -1905060026},
		{hashOIDInt4, -1, 385747274},
		{hashOIDInt4, int32(math.MaxInt32), -96758253},
		{hashOIDInt4, int32(math.MinInt32), -1524351049},
		{hashOIDInt4, " -2147483648 ", -1524351049},
		{hashOIDInt8, int64(0), -272711505},
		{hashOIDInt8, int64(-1), 385747274},
		{hashOIDInt8, int64(1 << 32), -1905060026},
		{hashOIDInt8, int64(math.MaxInt64), -1524351049},
		{hashOIDInt8, int64(math.MinInt64), -96758253},
		{hashOIDInt8, "9223372036854775807", -1524351049},
		{hashOIDBool, true, -1905060026},
		{hashOIDBool, false, -272711505},
		{hashOIDBool, "on", -1905060026},
		{hashOIDUUID, [16]byte{}, 1353656403},
		{hashOIDUUID, uuidA, 1154666245},
		{hashOIDUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 1154666245},
		{hashOIDUUID, "{A0EEBC999C0B4EF8BB6D6BB9BD380A11}", 1154666245},
		{hashOIDUUID, uuidA[:], 1154666245},
		{hashOIDUUID, pgtype.UUID{Bytes: uuidA, Valid: true}, 1154666245},
		{hashOIDDate, "2000-01-01", -272711505},
		{hashOIDDate, "1970-01-01", -1538670306},
		{hashOIDDate, "infinity", -96758253},
		{hashOIDDate, time.Date(1970, 1, 1, 23, 0, 0, 0, time.FixedZone("", -5*3600)), -1538670306},
		{hashOIDTimestamp, "2000-01-01 00:00:00", -272711505},
		{hashOIDTimestamp, "1970-01-01 00:00:00", 680174221},
		{hashOIDTimestamp, "2021-06-15 12:34:56.789012", 55000852},
		{hashOIDTimestamp, "infinity", -1524351049},
		{hashOIDTimestamp, time.Date(2021, 6, 15, 12, 34, 56, 789012345, time.FixedZone("", 7*3600)), 55000852},
		{hashOIDTimestamp, pgtype.Timestamp{Time: time.Date(2021, 6, 15, 12, 34, 56, 789012000, time.UTC), Valid: true}, 55000852},
		{hashOIDTimestamptz, "2021-06-15 12:34:56.789012+02", -1639618041},
		{hashOIDTimestamptz, "2021-06-15 10:34:56.789012", -1639618041},
		{hashOIDTimestamptz, "2021-06-15T10:34:56.789012Z", -1639618041},
		{hashOIDTimestamptz, time.Date(2021, 6, 15, 5, 34, 56, 789012999, time.FixedZone("", -5*3600)), -1639618041},
		{hashOIDTimestamptz, "2000-01-01 05:30:00+05:30", -272711505},
	}
	for _, tt := range tests {
		got, err := Hash(tt.oid, tt.v)
		if err != nil {
			t.Errorf("Hash(%s, %#v): %v", hashTypeName(tt.oid), tt.v, err)
		} else if got != tt.want {
			t.Errorf("Hash(%s, %#v) = %d, want %d", hashTypeName(tt.oid), tt.v, got, tt.want)
		}
	}
}

// TestHashShardRange places 'tomato' in the third of four shards, as pg_shard
// does.
func TestHashShardRange(t *testing.T) {
	ranges := [][2]int32{
		{-2147483648, -1073741826},
		{-1073741825, -3},
		{-2, 1073741820},
		{1073741821, 2147483647},
	}
	h, err := Hash(hashOIDText, "tomato")
	if err != nil {
		t.Fatal(err)
	}
	shard := -1
	for i, r := range ranges {
		if r[0] <= h && h <= r[1] {
			shard = i
		}
	}
	if shard != 2 {
		t.Fatalf("hash %d of 'tomato' is in shard %d, want shard 2 (the third)", h, shard)
	}
}

type (
	hashNamedString string
	hashNamedInt    int16
	hashNamedBytes  []byte
	hashNamedUUID   [16]byte
	hashNamedTime   time.Time
)

// TestHashGoForms checks that every accepted Go form of a value hashes as its
// canonical form (whose hash TestHashPostgreSQL checks against the server).
func TestHashGoForms(t *testing.T) {
	s := "tomato"
	n := int64(-12345)
	u := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	tm := time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -8*3600))
	groups := []struct {
		oid   uint32
		forms []any
	}{
		{hashOIDText, []any{s, []byte(s), &s, hashNamedString(s), hashNamedBytes(s), hashTestValuer{s},
			pgtype.Text{String: s, Valid: true}, &pgtype.Text{String: s, Valid: true}, hashTestValuer{hashTestValuer{s}}}},
		{hashOIDBPChar, []any{s, s + "   ", []byte(s + " ")}},
		{hashOIDInt4, []any{int32(n), n, int(n), int16(n), float64(n), float32(n), hashNamedInt(n), &n, "-12345", " -0012345\t",
			[]byte("-12345"), pgtype.Int4{Int32: int32(n), Valid: true}, pgtype.Int8{Int64: n, Valid: true}, hashTestValuer{n}}},
		{hashOIDInt8, []any{n, int32(n), float64(n), "-12345"}},
		{hashOIDInt2, []any{uint8(200), uint16(200), uint32(200), uint64(200), uint(200), uintptr(200), "200", float64(200)}},
		{hashOIDBool, []any{true, "t", "TRUE", " yes ", "on", "1", []byte("y"), pgtype.Bool{Bool: true, Valid: true}}},
		{hashOIDUUID, []any{u, u[:], hashNamedUUID(u), pgtype.UUID{Bytes: u, Valid: true}, "01020304-0506-0708-090a-0b0c0d0e0f10",
			"0102-0304-0506-0708-090A-0B0C-0D0E-0F10", []byte("{0102030405060708090a0b0c0d0e0f10}")}},
		{hashOIDDate, []any{tm, time.Date(1999, 12, 31, 1, 0, 0, 0, time.UTC), "1999-12-31", "1999-12-31 12:00", pgtype.Date{Time: tm, Valid: true}, hashNamedTime(tm)}},
		{hashOIDTimestamp, []any{tm, time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), "1999-12-31 23:59:59.999999",
			"1999-12-31T23:59:59.999999-08", pgtype.Timestamp{Time: tm, Valid: true}, &tm}},
		{hashOIDTimestamptz, []any{tm, tm.UTC(), tm.In(time.FixedZone("", 3600)), "2000-01-01 07:59:59.999999", "2000-01-01 07:59:59.999999Z",
			"1999-12-31 23:59:59.999999-08", "2000-01-01 09:29:59.999999+0130", pgtype.Timestamptz{Time: tm, Valid: true}}},
		{hashOIDTimestamptz, []any{"infinity", pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}}},
	}
	for _, g := range groups {
		want, err := Hash(g.oid, g.forms[0])
		if err != nil {
			t.Fatalf("Hash(%s, %#v): %v", hashTypeName(g.oid), g.forms[0], err)
		}
		for _, f := range g.forms[1:] {
			got, err := Hash(g.oid, f)
			if err != nil {
				t.Errorf("Hash(%s, %#v): %v", hashTypeName(g.oid), f, err)
			} else if got != want {
				t.Errorf("Hash(%s, %#v) = %d, want %d as for %#v", hashTypeName(g.oid), f, got, want, g.forms[0])
			}
		}
	}
	// hashint8 is built so that an int8 hashes as the int4 of equal value.
	for _, v := range []int64{0, 1, -1, 42, -42, math.MaxInt32, math.MinInt32} {
		h4, _ := Hash(hashOIDInt4, v)
		h8, _ := Hash(hashOIDInt8, v)
		if h4 != h8 {
			t.Errorf("%d: int4 hash %d, int8 hash %d", v, h4, h8)
		}
	}
}

func TestHashErrors(t *testing.T) {
	var nilText *pgtype.Text
	var nilString *string
	tests := []struct {
		oid  uint32
		v    any
		code string
	}{
		{hashOIDText, nil, sqlerr.NotNullViolation},
		{hashOIDInt4, nil, sqlerr.NotNullViolation},
		{hashOIDText, nilString, sqlerr.NotNullViolation},
		{hashOIDText, nilText, sqlerr.NotNullViolation},
		{hashOIDText, pgtype.Text{}, sqlerr.NotNullViolation},
		{hashOIDTimestamp, pgtype.Timestamp{}, sqlerr.NotNullViolation},
		{hashOIDInt2, 32768, sqlerr.NumericOutOfRange},
		{hashOIDInt2, -32769, sqlerr.NumericOutOfRange},
		{hashOIDInt2, uint16(40000), sqlerr.NumericOutOfRange},
		{hashOIDInt2, "32768", sqlerr.NumericOutOfRange},
		{hashOIDInt4, int64(math.MaxInt32) + 1, sqlerr.NumericOutOfRange},
		{hashOIDInt4, int64(math.MinInt32) - 1, sqlerr.NumericOutOfRange},
		{hashOIDInt4, uint32(math.MaxUint32), sqlerr.NumericOutOfRange},
		{hashOIDInt4, "-2147483649", sqlerr.NumericOutOfRange},
		{hashOIDInt4, 3e9, sqlerr.NumericOutOfRange},
		{hashOIDInt8, uint64(math.MaxUint64), sqlerr.NumericOutOfRange},
		{hashOIDInt8, float64(math.MaxInt64), sqlerr.NumericOutOfRange},
		{hashOIDInt8, "9223372036854775808", sqlerr.NumericOutOfRange},
		{hashOIDInt4, "abc", sqlerr.InvalidTextRepr},
		{hashOIDInt4, "", sqlerr.InvalidTextRepr},
		{hashOIDInt4, "1.5", sqlerr.InvalidTextRepr},
		{hashOIDInt4, 1.5, sqlerr.InvalidTextRepr},
		{hashOIDInt4, math.NaN(), sqlerr.InvalidTextRepr},
		{hashOIDInt8, []byte("12a"), sqlerr.InvalidTextRepr},
		{hashOIDBool, "maybe", sqlerr.InvalidTextRepr},
		{hashOIDUUID, "not-a-uuid", sqlerr.InvalidTextRepr},
		{hashOIDUUID, []byte("0102"), sqlerr.InvalidTextRepr},
		{hashOIDDate, "2021-02-30x", sqlerr.DatetimeFormat},
		{hashOIDDate, "yesterday", sqlerr.DatetimeFormat},
		{hashOIDDate, "2021-02-30", "22008"},
		{hashOIDDate, time.Date(5874898, 1, 1, 0, 0, 0, 0, time.UTC), "22008"},
		{hashOIDTimestamp, "2021-01-01 25:00:00", "22008"},
		{hashOIDTimestamp, time.Date(294277, 1, 1, 0, 0, 0, 0, time.UTC), "22008"},
		{hashOIDTimestamptz, time.Date(-4713, 11, 23, 23, 59, 59, 0, time.UTC), "22008"},
		{hashOIDTimestamptz, "2021-01-01 10:00:00+16", "22009"},
		{hashOIDTimestamptz, "2021-01-01 10:00:00 Europe/Paris", sqlerr.FeatureNotSupported},
		{hashOIDText, 42, sqlerr.DatatypeMismatch},
		{hashOIDInt4, true, sqlerr.DatatypeMismatch},
		{hashOIDBool, 1, sqlerr.DatatypeMismatch},
		{hashOIDUUID, 7, sqlerr.DatatypeMismatch},
		{hashOIDDate, 7, sqlerr.DatatypeMismatch},
		{hashOIDTimestamp, struct{}{}, sqlerr.DatatypeMismatch},
		{hashOIDText, time.Now(), sqlerr.DatatypeMismatch},
		{701, 1.5, sqlerr.FeatureNotSupported},   // float8
		{1700, "1", sqlerr.FeatureNotSupported},  // numeric
		{0, "x", sqlerr.FeatureNotSupported},     // no type
		{3802, "{}", sqlerr.FeatureNotSupported}, // jsonb
	}
	for _, tt := range tests {
		h, err := Hash(tt.oid, tt.v)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			t.Errorf("Hash(%d, %#v) = %d, want error %s", tt.oid, tt.v, h, tt.code)
		case !errors.As(err, &pgErr):
			t.Errorf("Hash(%d, %#v): %v is a %T, not a *pgconn.PgError", tt.oid, tt.v, err, err)
		case pgErr.Code != tt.code:
			t.Errorf("Hash(%d, %#v): %v, SQLSTATE %s, want %s", tt.oid, tt.v, err, pgErr.Code, tt.code)
		case pgErr.Message == "":
			t.Errorf("Hash(%d, %#v): no message", tt.oid, tt.v)
		}
	}
	_, err := Hash(hashOIDInt4, "abc")
	if want := `invalid input syntax for type integer: "abc"`; err == nil || err.(*pgconn.PgError).Message != want {
		t.Errorf("Hash(int4, \"abc\"): %v, want message %q", err, want)
	}
	_, err = Hash(hashOIDInt2, 70000)
	if want := `value "70000" is out of range for type smallint`; err == nil || err.(*pgconn.PgError).Message != want {
		t.Errorf("Hash(int2, 70000): %v, want message %q", err, want)
	}
}

func TestHashSupported(t *testing.T) {
	for _, typ := range hashTestTypes {
		if !HashSupported(typ.oid) {
			t.Errorf("HashSupported(%d) (%s) = false", typ.oid, typ.sql)
		}
	}
	for _, oid := range []uint32{0, 18, 26, 700, 701, 1700, 1083, 114, 3802, 17} {
		if HashSupported(oid) {
			t.Errorf("HashSupported(%d) = true", oid)
		}
	}
}

// TestHashNoAllocs checks that hashing a string or an integer (already in an
// interface, as driver arguments are) does not allocate.
func TestHashNoAllocs(t *testing.T) {
	cases := []struct {
		oid uint32
		v   any
	}{
		{hashOIDText, strings.Repeat("tomato ", 10)},
		{hashOIDText, []byte("tomato")},
		{hashOIDInt8, int64(1234567890123)},
		{hashOIDInt4, int64(123456)},
		{hashOIDInt4, " 123456 "},
		{hashOIDUUID, [16]byte{1}},
		{hashOIDTimestamptz, time.Now()},
		{hashOIDTimestamp, "2021-06-15 12:34:56.789012+02"},
		{hashOIDDate, time.Now()},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(100, func() { _, _ = Hash(c.oid, c.v) }); n != 0 {
			t.Errorf("Hash(%s, %T) allocates %.1f times", hashTypeName(c.oid), c.v, n)
		}
	}
}

func FuzzHashText(f *testing.F) {
	for _, s := range []string{"", "tomato", "a", "abcdefghijkl", "abcdefghijklm", " ", "Ünïcödé 日本 😀", "\x00", "\xff\xfe",
		"2020-01-01 10:00:00+05:30", "-2147483648", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "true", "of", "+", "2020-01-01 24:00:00 BC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h1, err1 := Hash(hashOIDText, s)
		h2, err2 := Hash(hashOIDText, []byte(s))
		if err1 != nil || err2 != nil {
			t.Fatalf("Hash(text, %q): %v, %v", s, err1, err2)
		}
		if h1 != h2 {
			t.Fatalf("Hash(text, %q) = %d, as []byte %d", s, h1, h2)
		}
		if h3, _ := Hash(hashOIDText, strings.Clone(s)); h3 != h1 {
			t.Fatalf("Hash(text, %q) not deterministic: %d, then %d", s, h1, h3)
		}
		hb, err := Hash(hashOIDBPChar, s)
		if ht, _ := Hash(hashOIDText, strings.TrimRight(s, " ")); err != nil || hb != ht {
			t.Fatalf("Hash(bpchar, %q) = %d, %v; text without trailing spaces %d", s, hb, err, ht)
		}
		if utf8.ValidString(s) && !strings.ContainsRune(s, 0) && len(s) < nameMaxBytes {
			if hn, _ := Hash(hashOIDName, s); hn != h1 {
				t.Fatalf("Hash(name, %q) = %d, text %d", s, hn, h1)
			}
		}
		// The parsers of the other types must not panic, and must answer
		// the same for a string and its bytes.
		for _, typ := range hashTestTypes {
			hs, errS := Hash(typ.oid, s)
			hb, errB := Hash(typ.oid, []byte(s))
			if (errS == nil) != (errB == nil) || hs != hb {
				if typ.oid == hashOIDUUID && len(s) == 16 {
					continue // a 16-byte []byte is a raw uuid
				}
				t.Fatalf("Hash(%s, %q) = %d, %v; as []byte %d, %v", typ.sql, s, hs, errS, hb, errB)
			}
			if errS != nil && sqlerr.Code(errS) == "" {
				t.Fatalf("Hash(%s, %q): %v has no SQLSTATE", typ.sql, s, errS)
			}
		}
	})
}

func BenchmarkHash(b *testing.B) {
	cases := []struct {
		name string
		oid  uint32
		v    any
	}{
		{"text/6", hashOIDText, "tomato"},
		{"text/64", hashOIDText, strings.Repeat("x", 64)},
		{"int8", hashOIDInt8, int64(1234567890123)},
		{"int4", hashOIDInt4, int32(123456)},
		{"int4/string", hashOIDInt4, "123456"},
		{"uuid", hashOIDUUID, [16]byte{1, 2, 3}},
		{"uuid/string", hashOIDUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"timestamptz", hashOIDTimestamptz, time.Now()},
		{"timestamptz/string", hashOIDTimestamptz, "2021-06-15 12:34:56.789012+02"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Hash(c.oid, c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// hashTestValuer is a driver.Valuer for the tests.
type hashTestValuer struct{ v any }

func (v hashTestValuer) Value() (driver.Value, error) { return v.v, nil }
