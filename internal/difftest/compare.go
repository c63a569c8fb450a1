package difftest

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// FloatTolerance is the relative tolerance float8 values are compared with:
// partial sums added in another order may differ in the last bits.
// Float4Tolerance is the same for float4 (24-bit mantissa).
const (
	FloatTolerance  = 1e-12
	Float4Tolerance = 1e-6
)

// Result is one answer: column names, database type names and rows, each
// value in its text form (Valid false for NULL).
type Result struct {
	Columns []string
	Types   []string
	Rows    [][]sql.NullString
}

// queryer is what *sql.DB and *sql.Conn have in common.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// fetch runs q and reads its whole answer; an error at any step (Query,
// Next, Scan, Err, Close) is returned.
func fetch(ctx context.Context, db queryer, q Query) (*Result, error) {
	rows, err := db.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	res := &Result{Columns: cols, Types: make([]string, len(cols))}
	if cts, err := rows.ColumnTypes(); err == nil {
		for i, ct := range cts {
			res.Types[i] = typeDescription(ct)
		}
	}
	for rows.Next() {
		row := make([]sql.NullString, len(cols))
		dest := make([]any, len(cols))
		for i := range row {
			dest[i] = &row[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	return res, nil
}

func isFloatType(t string) bool {
	return strings.HasPrefix(t, "FLOAT8") || strings.HasPrefix(t, "FLOAT4")
}

func tolerance(t string) float64 {
	if strings.HasPrefix(t, "FLOAT4") {
		return Float4Tolerance
	}
	return FloatTolerance
}

// floatsClose reports whether two float texts are equal within the relative
// tolerance tol; texts that do not parse must be equal.
func floatsClose(a, b string, tol float64) bool {
	if a == b {
		return true
	}
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil || math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
		return false
	}
	return math.Abs(x-y) <= tol*math.Max(math.Abs(x), math.Abs(y))
}

// sortKey is a row's text form for sorting a multiset: float columns are
// rounded to 5 significant digits so that values equal within the tolerance
// (almost always) sort alike.
func sortKey(row []sql.NullString, floats []float64) string {
	var b strings.Builder
	for i, v := range row {
		if i > 0 {
			b.WriteByte(0x1f)
		}
		if !v.Valid {
			b.WriteString("\x00NULL")
			continue
		}
		if floats[i] > 0 {
			if f, err := strconv.ParseFloat(v.String, 64); err == nil {
				b.WriteString(strconv.FormatFloat(f, 'e', 4, 64))
				continue
			}
		}
		b.WriteString(v.String)
	}
	return b.String()
}

// Compare compares pgshard's answer got with the oracle's want. Unless
// ordered, both are compared as multisets. It returns "" when they are equal,
// otherwise why not.
func Compare(want, got *Result, ordered bool) string {
	if len(want.Columns) != len(got.Columns) {
		return fmt.Sprintf("%d columns, want %d", len(got.Columns), len(want.Columns))
	}
	for i := range want.Columns {
		if want.Columns[i] != got.Columns[i] {
			return fmt.Sprintf("column %d is named %q, want %q", i+1, got.Columns[i], want.Columns[i])
		}
	}
	for i := range want.Types {
		if i < len(got.Types) && want.Types[i] != got.Types[i] {
			return fmt.Sprintf("column %s has type %s, want %s", want.Columns[i], got.Types[i], want.Types[i])
		}
	}
	if len(want.Rows) != len(got.Rows) {
		return fmt.Sprintf("%d rows, want %d", len(got.Rows), len(want.Rows))
	}
	floats := make([]float64, len(want.Types)) // tolerance per column, 0: exact
	for i, t := range want.Types {
		if isFloatType(t) {
			floats[i] = tolerance(t)
		}
	}
	w, g := want.Rows, got.Rows
	if !ordered {
		w, g = sortedRows(w, floats), sortedRows(g, floats)
	}
	why := compareRows(want.Columns, w, g, floats)
	if why != "" && !ordered && slices.ContainsFunc(floats, func(t float64) bool { return t > 0 }) && matchWithTolerance(w, g, floats) {
		// Rounding put two float values equal within the tolerance on
		// different sides of a digit; the rows still pair up.
		return ""
	}
	return why
}

func compareRows(columns []string, w, g [][]sql.NullString, floats []float64) string {
	for r := range w {
		for c := range w[r] {
			a, b := w[r][c], g[r][c]
			if a.Valid != b.Valid {
				return fmt.Sprintf("row %d column %s: %s, want %s", r+1, columns[c], showValue(b), showValue(a))
			}
			if !a.Valid || a.String == b.String || (floats[c] > 0 && floatsClose(a.String, b.String, floats[c])) {
				continue
			}
			return fmt.Sprintf("row %d column %s: %s, want %s", r+1, columns[c], showValue(b), showValue(a))
		}
	}
	return ""
}

// matchWithTolerance pairs every row of w with a distinct row of g that
// equals it (floats within the tolerance), greedily among the rows whose
// other columns are equal.
func matchWithTolerance(w, g [][]sql.NullString, floats []float64) bool {
	exact := func(row []sql.NullString) string {
		masked := slices.Clone(row)
		for i := range masked {
			if floats[i] > 0 {
				masked[i] = sql.NullString{}
			}
		}
		return sortKey(masked, floats)
	}
	pool := map[string][][]sql.NullString{}
	for _, row := range g {
		k := exact(row)
		pool[k] = append(pool[k], row)
	}
	for _, row := range w {
		k := exact(row)
		cands := pool[k]
		found := -1
		for i, c := range cands {
			if compareRows(make([]string, len(row)), [][]sql.NullString{row}, [][]sql.NullString{c}, floats) == "" {
				found = i
				break
			}
		}
		if found < 0 {
			return false
		}
		pool[k] = append(cands[:found], cands[found+1:]...)
	}
	return true
}

func sortedRows(rows [][]sql.NullString, floats []float64) [][]sql.NullString {
	type keyed struct {
		key string
		row []sql.NullString
	}
	ks := make([]keyed, len(rows))
	for i, r := range rows {
		ks[i] = keyed{sortKey(r, floats), r}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	out := make([][]sql.NullString, len(rows))
	for i, k := range ks {
		out[i] = k.row
	}
	return out
}

var controlChars = strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`)

func showValue(v sql.NullString) string {
	if !v.Valid {
		return "NULL"
	}
	return strconv.Quote(v.String)
}

// Show renders an answer for a report: the column names and at most maxRows
// rows, each cut to a reasonable width.
func (r *Result) Show(maxRows int) string {
	if r == nil {
		return "(none)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d row(s) [%s]", len(r.Rows), strings.Join(r.Columns, ", "))
	for i, row := range r.Rows {
		if i == maxRows {
			fmt.Fprintf(&b, "\n      ... %d more", len(r.Rows)-maxRows)
			break
		}
		vals := make([]string, len(row))
		for j, v := range row {
			if v.Valid {
				vals[j] = controlChars.Replace(v.String)
			} else {
				vals[j] = "NULL"
			}
		}
		line := cut(strings.Join(vals, " | "), 160)
		b.WriteString("\n      " + line)
	}
	return b.String()
}

// typeDescription renders the metadata database/sql reports of a result
// column: its database type name, with its length and its precision and
// scale when the driver knows them ("NUMERIC(12,2)", "TEXT[9223372036854775807]").
func typeDescription(ct *sql.ColumnType) string {
	d := ct.DatabaseTypeName()
	if d != "" && strings.Trim(d, "0123456789") == "" {
		// pgx names a type it does not know (a table's row type, an enum)
		// by its OID, which differs between the oracle's database and the
		// shards' whatever pgshard does.
		d = "OID"
	}
	if p, s, ok := ct.DecimalSize(); ok {
		d += fmt.Sprintf("(%d,%d)", p, s)
	}
	if n, ok := ct.Length(); ok {
		d += fmt.Sprintf("[%d]", n)
	}
	return d
}
