package merge

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
)

func TestLimit(t *testing.T) {
	src := []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	for _, tc := range []struct {
		offset, count int64
		want          []int64
		pulls         int64 // calls of the source's Next
		closedEarly   bool  // closed on yielding the last row
	}{
		{0, -1, src, 11, false},
		{0, 0, nil, 0, false},
		{0, 3, []int64{0, 1, 2}, 3, true},
		{2, 3, []int64{2, 3, 4}, 5, true},
		{7, 5, []int64{7, 8, 9}, 11, false},
		{9, 1, []int64{9}, 10, true},
		{10, 1, nil, 11, false},
		{15, -1, nil, 11, false},
		{3, -1, []int64{3, 4, 5, 6, 7, 8, 9}, 11, false},
		{0, 10, src, 10, true},
		{-2, 2, []int64{0, 1}, 2, true}, // a negative offset is 0
	} {
		t.Run(fmt.Sprintf("offset=%d/count=%d", tc.offset, tc.count), func(t *testing.T) {
			f := intRows(src...)
			l := Limit(f, tc.offset, tc.count)
			checkColumnTypes(t, l, f)
			var got []int64
			row := make([]driver.Value, 1)
			for {
				err := l.Next(row)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, row[0].(int64))
				if int64(len(got)) == tc.count && f.closes.Load() != 1 {
					t.Fatalf("source not closed on yielding the last row")
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("rows %v, want %v", got, tc.want)
			}
			if n := f.nexts.Load(); n != tc.pulls {
				t.Errorf("source's Next called %d times, want %d", n, tc.pulls)
			}
			if err := l.Next(row); err != io.EOF {
				t.Fatalf("Next after EOF = %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if n := f.closes.Load(); n != 1 {
				t.Errorf("source closed %d times", n)
			}
			if err := l.Next(row); err != errClosed {
				t.Errorf("Next after Close = %v", err)
			}
		})
	}
}

func TestLimitErrors(t *testing.T) {
	f := intRows(1, 2, 3)
	f.failAt = 1
	if rows, err := readAllErr(Limit(f, 2, 5)); !errors.Is(err, errFake) || len(rows) != 0 {
		t.Fatalf("error while skipping: %v, %v", rows, err)
	}
	f = intRows(1, 2, 3)
	f.failAt = 2
	if rows, err := readAllErr(Limit(f, 1, 5)); !errors.Is(err, errFake) || len(rows) != 1 {
		t.Fatalf("error while yielding: %v, %v", rows, err)
	}
	// The error of the early Close is returned in place of io.EOF.
	closeErr := errors.New("close failed")
	f = intRows(1, 2, 3)
	f.closeErr = closeErr
	l := Limit(f, 0, 2)
	if rows, err := readAllErr(l); err != closeErr || len(rows) != 2 {
		t.Fatalf("got %d rows and %v, want 2 and %v", len(rows), err, closeErr)
	}
	if err := l.Close(); err != nil || f.closes.Load() != 1 {
		t.Fatalf("Close = %v, source closed %d times", err, f.closes.Load())
	}
}

// Limit on MergeSort on the shards of Parallel stops every shard query once
// it has its rows, though the shards have rows without end.
func TestLimitStopsShardsEarly(t *testing.T) {
	checkLeaks(t)
	const n = 4
	fakes := make([]*fakeRows, n)
	for i := range fakes {
		fakes[i] = newFake([]string{"v"})
		fakes[i].gen = func(j int) []driver.Value { return []driver.Value{int64(j*n + i)} }
	}
	shards, err := Parallel(context.Background(), n, 16, openFakes(fakes))
	if err != nil {
		t.Fatal(err)
	}
	l := Limit(MergeSort(shards, []SortKey{{Column: 0}}), 10, 25)
	defer l.Close()
	row := make([]driver.Value, 1)
	for want := int64(10); want < 35; want++ {
		if err := l.Next(row); err != nil || row[0] != want {
			t.Fatalf("Next = %v, %v; want %d", row, err, want)
		}
	}
	for i, f := range fakes {
		if f.closes.Load() != 1 {
			t.Fatalf("shard %d not closed on the last row", i)
		}
		if f.pulled.Load() > 35/n+2+16 {
			t.Errorf("shard %d read %d rows", i, f.pulled.Load())
		}
	}
	if err := l.Next(row); err != io.EOF {
		t.Fatalf("Next = %v, want EOF", err)
	}
}
