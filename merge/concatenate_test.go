package merge

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"
)

func ints(rows [][]driver.Value, col int) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r[col].(int64)
	}
	return out
}

func TestConcatenateSequential(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sources [][]int64
	}{
		{"no source", nil},
		{"one empty", [][]int64{{}}},
		{"one", [][]int64{{1, 2, 3}}},
		{"several", [][]int64{{1, 2}, {}, {3}, {4, 5, 6}, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakes := make([]*fakeRows, len(tc.sources))
			srcs := make([]driver.Rows, len(tc.sources))
			var want []int64
			for i, vs := range tc.sources {
				fakes[i] = intRows(vs...)
				srcs[i] = fakes[i]
				want = append(want, vs...)
			}
			c := Concatenate(srcs)
			if len(srcs) > 0 {
				checkColumnTypes(t, c, fakes[0])
			}
			got := ints(readAll(t, c), 0)
			if !slices.Equal(got, want) && len(got)+len(want) > 0 {
				t.Fatalf("rows %v, want %v", got, want)
			}
			for i, f := range fakes {
				if f.closes.Load() != 1 {
					t.Errorf("source %d closed %d times at EOF", i, f.closes.Load())
				}
			}
			if err := c.Next(make([]driver.Value, 1)); err != io.EOF {
				t.Fatalf("Next after EOF = %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			for i, f := range fakes {
				if f.closes.Load() != 1 {
					t.Errorf("source %d closed %d times", i, f.closes.Load())
				}
			}
		})
	}
}

func TestConcatenateCloseEarlyAndErrors(t *testing.T) {
	a, b, c := intRows(1, 2), intRows(3, 4), intRows(5, 6)
	b.failAt = 1
	r := Concatenate([]driver.Rows{a, b, c})
	rows, err := readAllErr(r)
	if !errors.Is(err, errFake) || !slices.Equal(ints(rows, 0), []int64{1, 2, 3}) {
		t.Fatalf("got %v, %v", ints(rows, 0), err)
	}
	if a.closes.Load() != 1 || b.closes.Load() != 0 || c.closes.Load() != 0 {
		t.Fatalf("closes before Close: %d %d %d", a.closes.Load(), b.closes.Load(), c.closes.Load())
	}
	if err := r.Next(make([]driver.Value, 1)); !errors.Is(err, errFake) {
		t.Fatalf("Next after error = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for i, f := range []*fakeRows{a, b, c} {
		if f.closes.Load() != 1 {
			t.Errorf("source %d closed %d times", i, f.closes.Load())
		}
	}
	if c.nexts.Load() != 0 {
		t.Errorf("source after the failing one read")
	}
	// A source's Close error is reported in place of io.EOF.
	closeErr := errors.New("close failed")
	a, b = intRows(1), intRows(2)
	a.closeErr = closeErr
	rows, err = readAllErr(Concatenate([]driver.Rows{a, b}))
	if err != closeErr || len(rows) != 2 {
		t.Fatalf("got %d rows and %v, want 2 and %v", len(rows), err, closeErr)
	}
}

// With the shards of one Parallel call, Concatenate takes rows from the shards
// that have them rather than waiting for a slow one.
func TestConcatenateReadyFirst(t *testing.T) {
	checkLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fakes := []*fakeRows{shardData(0, 5), shardData(1, 5), shardData(2, 5)}
	fakes[0].gate = make(chan struct{}, 10)
	fakes[0].gate <- struct{}{} // one row, then Next waits for the gate
	shards, err := Parallel(ctx, 3, 2, openFakes(fakes))
	if err != nil {
		t.Fatal(err)
	}
	c := Concatenate(shards)
	defer c.Close()
	checkColumnTypes(t, c, fakes[0])
	got := map[int64]int{}
	readOne := func() {
		t.Helper()
		row := make([]driver.Value, 3)
		errc := make(chan error, 1)
		go func() { errc <- c.Next(row) }()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			cancel() // unblock Next so the test ends
			<-errc
			t.Fatalf("Concatenate waited for the slow shard with rows ready elsewhere (got %v)", got)
		}
		if want := fmt.Sprintf("%d/%d", row[0], row[1]); string(row[2].([]byte)) != want {
			t.Fatalf("row %v", row)
		}
		got[row[0].(int64)]++
	}
	for range 11 {
		readOne()
	}
	if got[0] != 1 || got[1] != 5 || got[2] != 5 {
		t.Fatalf("rows per shard %v, want shard 0's first and all of the others", got)
	}
	for range 9 {
		fakes[0].gate <- struct{}{}
	}
	for range 4 {
		readOne()
	}
	if err := c.Next(make([]driver.Value, 3)); err != io.EOF {
		t.Fatalf("Next = %v, want EOF", err)
	}
	for i, f := range fakes {
		if f.closes.Load() != 1 {
			t.Errorf("shard %d closed %d times", i, f.closes.Load())
		}
	}
}

func TestConcatenateParallelCancel(t *testing.T) {
	checkLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	fakes := []*fakeRows{shardData(0, 1), shardData(1, 1)}
	for _, f := range fakes {
		f.gate = make(chan struct{}, 1)
		f.gate <- struct{}{}
	}
	shards, err := Parallel(ctx, 2, 2, openFakes(fakes))
	if err != nil {
		t.Fatal(err)
	}
	c := Concatenate(shards)
	defer c.Close()
	row := make([]driver.Value, 3)
	for range 2 {
		if err := c.Next(row); err != nil {
			t.Fatal(err)
		}
	}
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := c.Next(row); err != context.Canceled {
		t.Fatalf("Next = %v, want context.Canceled", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i, f := range fakes {
		if f.closes.Load() != 1 {
			t.Errorf("shard %d closed %d times", i, f.closes.Load())
		}
	}
}

func TestConcatenateMixedSources(t *testing.T) {
	checkLeaks(t)
	// Shards of two Parallel calls and plain rows: read one after the other.
	p1, err := Parallel(context.Background(), 1, 2, openFakes([]*fakeRows{intRows(1, 2)}))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Parallel(context.Background(), 1, 2, openFakes([]*fakeRows{intRows(3)}))
	if err != nil {
		t.Fatal(err)
	}
	c := Concatenate([]driver.Rows{p1[0], p2[0], intRows(4, 5)})
	if got := ints(readAll(t, c), 0); !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
		t.Fatalf("rows %v", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
