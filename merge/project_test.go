package merge

import (
	"database/sql/driver"
	"errors"
	"slices"
	"testing"
)

func TestProject(t *testing.T) {
	data := [][]driver.Value{{int64(1), "a", int64(10)}, {int64(2), "b", int64(20)}}
	for _, tc := range []struct {
		n    int
		cols []string
		want [][]driver.Value
		same bool // src itself
	}{
		{0, []string{}, [][]driver.Value{{}, {}}, false},
		{1, []string{"x"}, [][]driver.Value{{int64(1)}, {int64(2)}}, false},
		{2, []string{"x", "y"}, [][]driver.Value{{int64(1), "a"}, {int64(2), "b"}}, false},
		{3, []string{"x", "y", "hidden"}, data, true},
		{5, []string{"x", "y", "hidden"}, data, true},
	} {
		f := newFake([]string{"x", "y", "hidden"}, data...)
		p := Project(f, tc.n)
		if (p == driver.Rows(f)) != tc.same {
			t.Errorf("n=%d: returned src itself: %v", tc.n, p == driver.Rows(f))
		}
		if !slices.Equal(p.Columns(), tc.cols) {
			t.Fatalf("n=%d: Columns %v, want %v", tc.n, p.Columns(), tc.cols)
		}
		g := forward{p}
		for i := range tc.cols {
			if g.ColumnTypeDatabaseTypeName(i) != f.types[i] {
				t.Errorf("n=%d: column %d type %q", tc.n, i, g.ColumnTypeDatabaseTypeName(i))
			}
			if l, ok := g.ColumnTypeLength(i); !ok || l != int64(100+i) {
				t.Errorf("n=%d: column %d length %d %v", tc.n, i, l, ok)
			}
		}
		rows := readAll(t, p)
		if len(rows) != len(tc.want) {
			t.Fatalf("n=%d: %d rows", tc.n, len(rows))
		}
		for i := range rows {
			if !slices.Equal(rows[i], tc.want[i]) {
				t.Fatalf("n=%d: row %d = %v, want %v", tc.n, i, rows[i], tc.want[i])
			}
		}
		if err := p.Close(); err != nil || f.closes.Load() != 1 {
			t.Fatalf("n=%d: Close = %v, source closed %d times", tc.n, err, f.closes.Load())
		}
	}
	f := newFake([]string{"x", "y", "z"}, data...)
	f.failAt = 1
	if rows, err := readAllErr(Project(f, 1)); !errors.Is(err, errFake) || len(rows) != 1 {
		t.Fatalf("error: %v, %v", rows, err)
	}
}

// Every primitive reports its first source's column types, or nothing for a
// source without them.
func TestColumnTypesForwarded(t *testing.T) {
	for _, bare := range []bool{false, true} {
		f := newFake([]string{"a", "b", "c"})
		f.types = []string{"INT8", "TEXT", "NUMERIC"}
		var first driver.Rows = f
		if bare {
			first = bareRows{f}
		}
		second := newFake([]string{"a", "b", "c"})
		second.types = []string{"X", "Y", "Z"}
		for name, r := range map[string]driver.Rows{
			"Concatenate": Concatenate([]driver.Rows{first, second}),
			"MergeSort":   MergeSort([]driver.Rows{first, second}, []SortKey{{Column: 0}}),
			"Limit":       Limit(first, 1, 2),
			"Project":     Project(newFake([]string{"a", "b", "c", "hidden"}), 3),
		} {
			want := first
			if name == "Project" {
				want = newFake([]string{"a", "b", "c"})
			}
			t.Run(name, func(t *testing.T) { checkColumnTypes(t, r, want) })
			if bare {
				if _, ok := r.(columnTyper).ColumnTypeNullable(0); ok && name != "Project" {
					t.Errorf("%s: nullability invented", name)
				}
			}
		}
	}
}
