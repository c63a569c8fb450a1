package merge

import (
	"context"
	"database/sql/driver"
	"io"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Sources whose rows are described differently (a shard table altered on
// its own) are never merged: Concatenate and MergeSort, over plain sources
// and over Parallel's, fail with 42804 before the first row, naming the
// column.
func TestMergeRefusesSourcesThatDiffer(t *testing.T) {
	withTypes := func(f *fakeRows, types ...string) *fakeRows { f.types = types; return f }
	row := func(vs ...driver.Value) []driver.Value { return vs }
	for _, tc := range []struct {
		name  string
		other func() *fakeRows
		want  string // in the error; "" when the sources match
	}{
		{"same", func() *fakeRows { return newFake([]string{"k", "v"}, row(int64(2), int64(20))) }, ""},
		{"extra column", func() *fakeRows {
			return withTypes(newFake([]string{"k", "v", "x"}, row(int64(2), int64(20), int64(7))), "INT8", "INT8", "INT4")
		}, `3 columns instead of 2: column 3 "x" is extra`},
		{"missing column", func() *fakeRows { return newFake([]string{"k"}, row(int64(2))) }, `1 columns instead of 2: column 2 "v" is missing`},
		{"renamed column", func() *fakeRows { return newFake([]string{"k", "w"}, row(int64(2), int64(20))) }, `column 2 is "w" instead of "v"`},
		{"other type", func() *fakeRows {
			return withTypes(newFake([]string{"k", "v"}, row(int64(2), "20")), "INT8", "TEXT")
		}, `column 2 "v" is of type text instead of int8`},
		{"user type against a built-in one", func() *fakeRows {
			return withTypes(newFake([]string{"k", "v"}, row(int64(2), "x")), "INT8", "16390")
		}, `column 2 "v" is of type OID 16390 instead of int8`},
	} {
		for _, how := range []string{"Concatenate", "MergeSort", "Concatenate over Parallel", "MergeSort over Parallel"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				first := newFake([]string{"k", "v"}, row(int64(1), int64(10)))
				other := tc.other()
				srcs := []driver.Rows{first, other}
				if strings.HasSuffix(how, "Parallel") {
					var err error
					srcs, err = Parallel(context.Background(), 2, 4, func(_ context.Context, i int) (driver.Rows, error) {
						return []driver.Rows{first, other}[i], nil
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				var m driver.Rows
				if strings.HasPrefix(how, "Concatenate") {
					m = Concatenate(srcs)
				} else {
					m = MergeSort(srcs, []SortKey{{Column: 0}})
				}
				defer m.Close()
				rows, err := readAllErr(m)
				if tc.want == "" {
					if err != nil || len(rows) != 2 {
						t.Fatalf("got %d rows, %v; want 2 rows", len(rows), err)
					}
					return
				}
				if len(rows) != 0 || err == nil || err == io.EOF {
					t.Fatalf("got %d rows, %v; want no row and an error", len(rows), err)
				}
				if sqlerr.Code(err) != sqlerr.DatatypeMismatch || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %q (SQLSTATE %s); want 42804 with %q", err, sqlerr.Code(err), tc.want)
				}
			})
		}
	}
}

func TestRowDescriptionMismatch(t *testing.T) {
	want := RowDescription{Names: []string{"k", "e"}, Types: []string{"INT8", "16390"}}
	for _, tc := range []struct {
		got        RowDescription
		sameServer bool
		mismatch   bool
	}{
		{RowDescription{Names: []string{"k", "e"}, Types: []string{"INT8", "16390"}}, true, false},
		// Another server's enum has its own OID.
		{RowDescription{Names: []string{"k", "e"}, Types: []string{"INT8", "16501"}}, false, false},
		{RowDescription{Names: []string{"k", "e"}, Types: []string{"INT8", "16501"}}, true, true},
		{RowDescription{Names: []string{"k", "e"}, Types: []string{"INT8", "TEXT"}}, false, true},
		// Built-in types pgx does not name are compared by OID.
		{RowDescription{Names: []string{"k", "e"}, Types: []string{"INT8", "3220"}}, false, true},
		{RowDescription{Names: []string{"k", "e"}, Types: []string{"", ""}}, false, false},
		{RowDescription{Names: []string{"k", "e", "x"}, Types: []string{"INT8", "16390", "INT4"}}, true, true},
	} {
		if got := tc.got.Mismatch(want, tc.sameServer) != ""; got != tc.mismatch {
			t.Errorf("%v.Mismatch(%v, %v) = %q", tc.got, want, tc.sameServer, tc.got.Mismatch(want, tc.sameServer))
		}
	}
}
