package difftest

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// TestDifferential loads the dataset into a plain database (the oracle) and,
// through pgshard, into every layout, runs the corpus and the generated
// queries on both and fails when pgshard answers any query wrongly or fails
// with an error other than a 0A000 refusal (or when the oracle rejects a
// query: a corpus bug). With -short it runs one layout (16 shards × 2).
//
// DIFFTEST_LAYOUTS="1x1,3x2" picks other layouts.
func TestDifferential(t *testing.T) {
	layouts := DefaultLayouts
	if testing.Short() {
		layouts = []Layout{{16, 2}}
	}
	if s := os.Getenv("DIFFTEST_LAYOUTS"); s != "" {
		layouts = parseLayouts(t, s)
	}
	c := pgtest.StartTB(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, Config{
		Nodes:      c.Nodes,
		Layouts:    layouts,
		Seed:       20240601,
		CorpusFile: "../../testdata/differential/queries.sql",
		Generated:  200,
		Logf:       func(f string, a ...any) { t.Logf("[%s] "+f, append([]any{time.Since(start).Round(time.Second)}, a...)...) },
	})
	if rep != nil {
		t.Log("\n" + rep.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.CorpusQueries < 300 {
		t.Errorf("the corpus has %d queries, want at least 300", rep.CorpusQueries)
	}
	if len(rep.CorpusBugs) > 0 {
		t.Errorf("the oracle rejected %d queries: fix the corpus", len(rep.CorpusBugs))
	}
	c2 := rep.Counts()
	if c2[Wrong] > 0 || c2[Error] > 0 {
		t.Errorf("pgshard answered %d query×layout pairs wrongly and failed %d with errors other than 0A000 refusals (see the report above)", c2[Wrong], c2[Error])
	}
}

func parseLayouts(t *testing.T, s string) []Layout {
	var out []Layout
	for _, part := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(part), "x")
		shards, err1 := strconv.Atoi(a)
		replicas, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("DIFFTEST_LAYOUTS: bad layout %q (want SHARDSxREPLICAS)", part)
		}
		out = append(out, Layout{shards, replicas})
	}
	return out
}

// TestCorpusParses checks the corpus file without a server: names unique,
// every entry has SQL, at least 300 entries, and the generator is
// deterministic.
func TestCorpusParses(t *testing.T) {
	qs, err := LoadCorpus("../../testdata/differential/queries.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 300 {
		t.Errorf("%d queries, want at least 300", len(qs))
	}
	a, b := GenerateQueries(7, 50), GenerateQueries(7, 50)
	for i := range a {
		if a[i].SQL != b[i].SQL {
			t.Fatalf("generator is not deterministic: %q vs %q", a[i].SQL, b[i].SQL)
		}
	}
}

func TestCompare(t *testing.T) {
	ns := func(vals ...string) []sql.NullString {
		out := make([]sql.NullString, len(vals))
		for i, v := range vals {
			if v != "NULL" {
				out[i] = sql.NullString{String: v, Valid: true}
			}
		}
		return out
	}
	want := &Result{Columns: []string{"a", "f"}, Types: []string{"TEXT", "FLOAT8"},
		Rows: [][]sql.NullString{ns("x", "1.0000000000001"), ns("y", "NULL"), ns("x", "2")}}
	cases := []struct {
		name    string
		rows    [][]sql.NullString
		ordered bool
		equal   bool
	}{
		{"same", want.Rows, true, true},
		{"permuted multiset", [][]sql.NullString{ns("x", "2"), ns("y", "NULL"), ns("x", "1.0000000000001")}, false, true},
		{"permuted ordered", [][]sql.NullString{ns("x", "2"), ns("y", "NULL"), ns("x", "1.0000000000001")}, true, false},
		{"float within tolerance", [][]sql.NullString{ns("x", "1.0000000000002"), ns("y", "NULL"), ns("x", "2")}, true, true},
		{"float beyond tolerance", [][]sql.NullString{ns("x", "1.00000001"), ns("y", "NULL"), ns("x", "2")}, true, false},
		{"NULL vs empty", [][]sql.NullString{ns("x", "1.0000000000001"), ns("y", ""), ns("x", "2")}, true, false},
		{"missing row", [][]sql.NullString{ns("x", "2"), ns("y", "NULL")}, false, false},
		{"duplicate instead", [][]sql.NullString{ns("x", "2"), ns("x", "2"), ns("y", "NULL")}, false, false},
	}
	for _, c := range cases {
		got := &Result{Columns: want.Columns, Types: want.Types, Rows: c.rows}
		why := Compare(want, got, c.ordered)
		if (why == "") != c.equal {
			t.Errorf("%s: Compare = %q, want equal=%v", c.name, why, c.equal)
		}
	}
	// Text columns compare exactly, whatever they look like.
	tw := &Result{Columns: []string{"t"}, Types: []string{"TEXT"}, Rows: [][]sql.NullString{ns("1.0000000000001")}}
	tg := &Result{Columns: []string{"t"}, Types: []string{"TEXT"}, Rows: [][]sql.NullString{ns("1.0000000000002")}}
	if Compare(tw, tg, true) == "" {
		t.Error("text values compared with a tolerance")
	}
}

func TestParseCorpusDirectives(t *testing.T) {
	qs, err := ParseCorpus(`
-- a comment
-- name: one
-- ordered
-- args: 42, 'it''s, here', NULL, true, 1.5
SELECT $1::bigint, $2::text;

-- name: two
SELECT 1
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || !qs[0].Ordered || qs[1].Ordered || qs[1].SQL != "SELECT 1" {
		t.Fatalf("got %+v", qs)
	}
	want := []any{int64(42), "it's, here", nil, true, 1.5}
	if len(qs[0].Args) != len(want) {
		t.Fatalf("args %v", qs[0].Args)
	}
	for i := range want {
		if qs[0].Args[i] != want[i] {
			t.Fatalf("arg %d = %#v, want %#v", i, qs[0].Args[i], want[i])
		}
	}
}
