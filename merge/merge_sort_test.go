package merge

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// rowsOf makes a fake of two columns (key, tag) from pairs; a key of -1 is NULL.
func rowsOf(pairs ...int64) *fakeRows {
	var rows [][]driver.Value
	for i := 0; i+1 < len(pairs); i += 2 {
		var k driver.Value = pairs[i]
		if pairs[i] == -1 {
			k = nil
		}
		rows = append(rows, []driver.Value{k, pairs[i+1]})
	}
	return newFake([]string{"k", "tag"}, rows...)
}

func TestMergeSort(t *testing.T) {
	intCmp, _ := CompareFunc("INT8", false)
	asc := []SortKey{{Column: 0, Compare: intCmp}}
	desc := []SortKey{{Column: 0, Desc: true, NullsFirst: true, Compare: intCmp}}
	for _, tc := range []struct {
		name    string
		sources []*fakeRows
		keys    []SortKey
		want    []int64 // tags
	}{
		{"no source", nil, asc, nil},
		{"empty sources", []*fakeRows{rowsOf(), rowsOf()}, asc, nil},
		{"one source", []*fakeRows{rowsOf(1, 10, 2, 11, 3, 12)}, asc, []int64{10, 11, 12}},
		{"interleaved",
			[]*fakeRows{rowsOf(1, 10, 4, 11, 7, 12), rowsOf(2, 20, 5, 21), rowsOf(), rowsOf(3, 30, 6, 31, 8, 32, 9, 33)},
			asc, []int64{10, 20, 30, 11, 21, 31, 12, 32, 33}},
		{"ties by source index, then source order",
			[]*fakeRows{rowsOf(1, 10, 2, 11, 2, 12), rowsOf(1, 20, 2, 21), rowsOf(0, 30, 2, 31)},
			asc, []int64{30, 10, 20, 11, 12, 21, 31}},
		{"descending",
			[]*fakeRows{rowsOf(9, 10, 5, 11, 1, 12), rowsOf(8, 20, 5, 21, 0, 22)},
			desc, []int64{10, 20, 11, 21, 12, 22}},
		{"NULLS LAST ascending (default)",
			[]*fakeRows{rowsOf(1, 10, -1, 11), rowsOf(2, 20, -1, 21, -1, 22)},
			asc, []int64{10, 20, 11, 21, 22}},
		{"NULLS FIRST ascending",
			[]*fakeRows{rowsOf(-1, 10, 1, 11), rowsOf(-1, 20, 0, 21)},
			[]SortKey{{Column: 0, NullsFirst: true, Compare: intCmp}}, []int64{10, 20, 21, 11}},
		{"NULLS FIRST descending (default)",
			[]*fakeRows{rowsOf(-1, 10, 3, 11, 1, 12), rowsOf(2, 20)},
			desc, []int64{10, 11, 20, 12}},
		{"NULLS LAST descending",
			[]*fakeRows{rowsOf(3, 10, -1, 11), rowsOf(4, 20, -1, 21)},
			[]SortKey{{Column: 0, Desc: true, Compare: intCmp}}, []int64{20, 10, 11, 21}},
		{"two keys",
			[]*fakeRows{rowsOf(1, 9, 1, 7, 2, 8), rowsOf(1, 8, 2, 9)},
			[]SortKey{{Column: 0, Compare: intCmp}, {Column: 1, Desc: true, Compare: intCmp}}, []int64{9, 8, 7, 9, 8}},
		{"no Compare: by Go type",
			[]*fakeRows{rowsOf(1, 10, 3, 11), rowsOf(2, 20)},
			[]SortKey{{Column: 0}}, []int64{10, 20, 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcs := make([]driver.Rows, len(tc.sources))
			for i, f := range tc.sources {
				srcs[i] = f
			}
			m := MergeSort(srcs, tc.keys)
			if len(srcs) > 0 {
				checkColumnTypes(t, m, srcs[0])
			}
			got := ints(readAll(t, m), 1)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("tags %v, want %v", got, tc.want)
			}
			for i, f := range tc.sources {
				if f.closes.Load() != 1 {
					t.Errorf("source %d closed %d times at EOF", i, f.closes.Load())
				}
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			for i, f := range tc.sources {
				if f.closes.Load() != 1 {
					t.Errorf("source %d closed %d times", i, f.closes.Load())
				}
			}
		})
	}
}

// A source is read only once its row was consumed: the []byte it returned
// stays valid until the caller's next Next, even if the driver reuses it.
func TestMergeSortReadsLazily(t *testing.T) {
	mk := func(keys ...int64) *fakeRows {
		rows := make([][]driver.Value, len(keys))
		for i, k := range keys {
			rows[i] = []driver.Value{k, []byte(fmt.Sprint("v", k))}
		}
		f := newFake([]string{"k", "b"}, rows...)
		f.reuse = true
		return f
	}
	a, b := mk(1, 3, 5), mk(2, 4)
	m := MergeSort([]driver.Rows{a, b}, []SortKey{{Column: 0}})
	defer m.Close()
	row := make([]driver.Value, 2)
	want := []struct {
		k            int64
		nextA, nextB int64
	}{
		{1, 1, 1}, // first rows of both
		{2, 2, 1}, // a refilled
		{3, 2, 2},
		{4, 3, 2},
		{5, 3, 3}, // b's EOF
	}
	for _, w := range want {
		if err := m.Next(row); err != nil {
			t.Fatal(err)
		}
		if row[0] != w.k || string(row[1].([]byte)) != fmt.Sprint("v", w.k) {
			t.Fatalf("row %v, want %d v%d", row, w.k, w.k)
		}
		if a.nexts.Load() != w.nextA || b.nexts.Load() != w.nextB {
			t.Fatalf("after row %d: Next called %d and %d times, want %d and %d", w.k, a.nexts.Load(), b.nexts.Load(), w.nextA, w.nextB)
		}
	}
	if b.closes.Load() != 1 || a.closes.Load() != 0 {
		t.Fatalf("exhausted source not closed at once (closes %d %d)", a.closes.Load(), b.closes.Load())
	}
	if err := m.Next(row); err != io.EOF {
		t.Fatal(err)
	}
	if a.closes.Load() != 1 {
		t.Fatal("last source not closed at EOF")
	}
}

func TestMergeSortErrors(t *testing.T) {
	keys := []SortKey{{Column: 0}}
	t.Run("at start", func(t *testing.T) {
		a, b, c := rowsOf(1, 1), rowsOf(2, 2), rowsOf(3, 3)
		b.failAt = 0
		m := MergeSort([]driver.Rows{a, b, c}, keys)
		if _, err := readAllErr(m); !errors.Is(err, errFake) {
			t.Fatalf("err %v", err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		for i, f := range []*fakeRows{a, b, c} {
			if f.closes.Load() != 1 {
				t.Errorf("source %d closed %d times", i, f.closes.Load())
			}
		}
	})
	t.Run("midway", func(t *testing.T) {
		a, b := rowsOf(1, 1, 3, 3, 5, 5), rowsOf(2, 2, 4, 4)
		a.failAt = 2
		m := MergeSort([]driver.Rows{a, b}, keys)
		rows, err := readAllErr(m)
		if !errors.Is(err, errFake) || !slices.Equal(ints(rows, 1), []int64{1, 2, 3}) {
			t.Fatalf("got %v, %v", ints(rows, 1), err)
		}
		if err := m.Next(make([]driver.Value, 2)); !errors.Is(err, errFake) {
			t.Fatalf("Next after error = %v", err)
		}
		m.Close()
		if a.closes.Load() != 1 || b.closes.Load() != 1 {
			t.Fatal("sources not closed")
		}
	})
	t.Run("key out of range", func(t *testing.T) {
		a := rowsOf(1, 1)
		m := MergeSort([]driver.Rows{a}, []SortKey{{Column: 2}})
		if err := m.Next(make([]driver.Value, 2)); err == nil || err == io.EOF {
			t.Fatalf("Next = %v", err)
		}
		m.Close()
		if a.closes.Load() != 1 {
			t.Fatal("source not closed")
		}
	})
	t.Run("sources of different widths", func(t *testing.T) {
		a, b := rowsOf(1, 1), intRows(2)
		m := MergeSort([]driver.Rows{a, b}, keys)
		if err := m.Next(make([]driver.Value, 2)); err == nil || err == io.EOF {
			t.Fatalf("Next = %v", err)
		}
		m.Close()
		if a.closes.Load() != 1 || b.closes.Load() != 1 {
			t.Fatal("sources not closed")
		}
	})
	t.Run("close error", func(t *testing.T) {
		closeErr := errors.New("close failed")
		a, b := rowsOf(1, 1), rowsOf(2, 2)
		a.closeErr = closeErr
		rows, err := readAllErr(MergeSort([]driver.Rows{a, b}, keys))
		if err != closeErr || len(rows) != 2 {
			t.Fatalf("got %d rows and %v, want 2 and %v", len(rows), err, closeErr)
		}
	})
}

// MergeSort over the shards of Parallel, cancelled midway.
func TestMergeSortParallelCancel(t *testing.T) {
	checkLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fakes := []*fakeRows{intRows(1, 3, 5), intRows(2, 4, 6)}
	fakes[1].gate = make(chan struct{}, 2)
	fakes[1].gate <- struct{}{}
	fakes[1].gate <- struct{}{}
	shards, err := Parallel(ctx, 2, 1, openFakes(fakes))
	if err != nil {
		t.Fatal(err)
	}
	m := MergeSort(shards, []SortKey{{Column: 0}})
	defer m.Close()
	row := make([]driver.Value, 1)
	for _, want := range []int64{1, 2, 3} {
		if err := m.Next(row); err != nil || row[0] != want {
			t.Fatalf("Next = %v, %v; want %d", row, err, want)
		}
	}
	cancel() // shard 1 is stuck before its third row
	if err := m.Next(row); err != context.Canceled {
		t.Fatalf("Next = %v, want context.Canceled", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for i, f := range fakes {
		if f.closes.Load() != 1 {
			t.Errorf("shard %d closed %d times", i, f.closes.Load())
		}
	}
}

// TestMergeSortLimitProperty checks MergeSort, with Limit on top, against a
// stable sort of the concatenation of the sources, on random data: plain
// sources and shards of Parallel, random keys with ties and NULLs.
func TestMergeSortLimitProperty(t *testing.T) {
	checkLeaks(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 600 {
		nsrc := rng.IntN(6)
		width := 3
		nkeys := 1 + rng.IntN(2)
		keys := make([]SortKey, nkeys)
		for k := range keys {
			keys[k] = SortKey{Column: rng.IntN(2), Desc: rng.IntN(2) == 0, NullsFirst: rng.IntN(2) == 0}
			if rng.IntN(2) == 0 {
				keys[k].Compare, _ = CompareFunc("INT8", false)
			}
		}
		// the reference order, written out independently of SortKey
		less := func(a, b []driver.Value) int {
			for _, k := range keys {
				x, y := a[k.Column], b[k.Column]
				switch {
				case x == nil && y == nil:
					continue
				case x == nil && k.NullsFirst, y == nil && !k.NullsFirst:
					return -1
				case x == nil, y == nil:
					return 1
				}
				c := 0
				if x.(int64) < y.(int64) {
					c = -1
				} else if x.(int64) > y.(int64) {
					c = 1
				}
				if k.Desc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			return 0
		}
		var all [][]driver.Value
		fakes := make([]*fakeRows, nsrc)
		for s := range fakes {
			rows := make([][]driver.Value, rng.IntN(30))
			for j := range rows {
				row := make([]driver.Value, width)
				for c := range 2 {
					if rng.IntN(6) > 0 {
						row[c] = int64(rng.IntN(5))
					}
				}
				row[2] = fmt.Sprintf("%d/%d", s, j) // identity
				rows[j] = row
			}
			sort.SliceStable(rows, func(i, j int) bool { return less(rows[i], rows[j]) < 0 })
			all = append(all, rows...)
			fakes[s] = newFake([]string{"a", "b", "id"}, rows...)
		}
		want := slices.Clone(all)
		sort.SliceStable(want, func(i, j int) bool { return less(want[i], want[j]) < 0 })
		offset, count := int64(rng.IntN(10)), int64(rng.IntN(40)-5)
		want = want[min(int(offset), len(want)):]
		if count >= 0 {
			want = want[:min(int(count), len(want))]
		}

		srcs := make([]driver.Rows, nsrc)
		parallel := rng.IntN(2) == 0 && nsrc > 0
		if parallel {
			shards, err := Parallel(context.Background(), nsrc, 1+rng.IntN(4), openFakes(fakes))
			if err != nil {
				t.Fatal(err)
			}
			srcs = shards
		} else {
			for s, f := range fakes {
				srcs[s] = f
			}
		}
		r := Limit(MergeSort(srcs, keys), offset, count)
		got := readAll(t, r)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || !reflect.DeepEqual(got, want) && len(got) > 0 {
			t.Fatalf("iteration %d (keys %+v, offset %d, count %d, parallel %v):\ngot  %v\nwant %v", iter, keys, offset, count, parallel, got, want)
		}
		for s, f := range fakes {
			if f.closes.Load() != 1 {
				t.Fatalf("iteration %d: source %d closed %d times", iter, s, f.closes.Load())
			}
		}
	}
}

// BenchmarkMergeSort merges 16 sorted sources of 100k int64 rows each.
func BenchmarkMergeSort(b *testing.B) {
	const nsrc, nrows = 16, 100_000
	data := make([][][]driver.Value, nsrc)
	for s := range data {
		data[s] = make([][]driver.Value, nrows)
		for j := range data[s] {
			// boxed once here, so the sources do not allocate
			data[s][j] = []driver.Value{int64(j*nsrc + s), int64(s)}
		}
	}
	cmp, _ := CompareFunc("INT8", false)
	keys := []SortKey{{Column: 0, Compare: cmp}}
	row := make([]driver.Value, 2)
	b.ReportAllocs()
	for b.Loop() {
		srcs := make([]driver.Rows, nsrc)
		for s := range srcs {
			srcs[s] = &sliceRows{cols: []string{"v", "s"}, data: data[s]}
		}
		m := MergeSort(srcs, keys)
		n := 0
		for m.Next(row) == nil {
			n++
		}
		if n != nsrc*nrows {
			b.Fatalf("%d rows", n)
		}
		m.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nsrc*nrows), "ns/row")
}

// sliceRows is a minimal slice-backed driver.Rows for benchmarks.
type sliceRows struct {
	cols []string
	data [][]driver.Value
	pos  int
}

func (r *sliceRows) Columns() []string { return r.cols }
func (r *sliceRows) Close() error      { return nil }
func (r *sliceRows) Next(dest []driver.Value) error {
	if r.pos >= len(r.data) {
		return io.EOF
	}
	copy(dest, r.data[r.pos])
	r.pos++
	return nil
}

// BenchmarkParallelMergeSort is BenchmarkMergeSort with every source read
// ahead by Parallel: the cost of the goroutines and ring buffers per row.
func BenchmarkParallelMergeSort(b *testing.B) {
	const nsrc, nrows = 16, 100_000
	data := make([][][]driver.Value, nsrc)
	for s := range data {
		data[s] = make([][]driver.Value, nrows)
		for j := range data[s] {
			data[s][j] = []driver.Value{int64(j*nsrc + s), int64(s)}
		}
	}
	cmp, _ := CompareFunc("INT8", false)
	keys := []SortKey{{Column: 0, Compare: cmp}}
	row := make([]driver.Value, 2)
	b.ReportAllocs()
	for b.Loop() {
		open := func(ctx context.Context, i int) (driver.Rows, error) {
			return &sliceRows{cols: []string{"v", "s"}, data: data[i]}, nil
		}
		srcs, err := Parallel(context.Background(), nsrc, 256, open)
		if err != nil {
			b.Fatal(err)
		}
		m := MergeSort(srcs, keys)
		n := 0
		for m.Next(row) == nil {
			n++
		}
		if n != nsrc*nrows {
			b.Fatalf("%d rows", n)
		}
		m.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nsrc*nrows), "ns/row")
}
