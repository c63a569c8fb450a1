package merge

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// shardData makes the rows of shard i: (i, j, bytes "i/j") for j < n.
func shardData(i, n int) *fakeRows {
	rows := make([][]driver.Value, n)
	for j := range rows {
		rows[j] = []driver.Value{int64(i), int64(j), []byte(fmt.Sprintf("%d/%d", i, j))}
	}
	f := newFake([]string{"shard", "j", "b"}, rows...)
	f.types[2] = "BYTEA"
	f.reuse = true // Parallel must copy the bytes it reads ahead
	return f
}

func TestParallelReadsEveryShard(t *testing.T) {
	for _, tc := range []struct{ n, buffer, rows int }{
		{1, 1, 0},
		{1, 1, 1},
		{3, 1, 10},
		{4, 3, 100},
		{8, 64, 1000},
		{2, 1000, 5},
		{5, 0, 7}, // buffer < 1 is 1
	} {
		t.Run(fmt.Sprintf("n=%d/buffer=%d/rows=%d", tc.n, tc.buffer, tc.rows), func(t *testing.T) {
			checkLeaks(t)
			fakes := make([]*fakeRows, tc.n)
			for i := range fakes {
				fakes[i] = shardData(i, tc.rows+i)
			}
			shards, err := Parallel(context.Background(), tc.n, tc.buffer, openFakes(fakes))
			if err != nil {
				t.Fatal(err)
			}
			if len(shards) != tc.n {
				t.Fatalf("%d rows, want %d", len(shards), tc.n)
			}
			for i, s := range shards {
				checkColumnTypes(t, s, fakes[i])
			}
			// Read the shards round robin, a row at a time.
			next := make([]int, tc.n)
			done := 0
			for done < tc.n {
				for i, s := range shards {
					if next[i] < 0 {
						continue
					}
					row := make([]driver.Value, 3)
					err := s.Next(row)
					if err == io.EOF {
						if next[i] != tc.rows+i {
							t.Fatalf("shard %d: EOF after %d rows, want %d", i, next[i], tc.rows+i)
						}
						if fakes[i].closes.Load() != 1 {
							t.Fatalf("shard %d: source closed %d times at EOF, want 1", i, fakes[i].closes.Load())
						}
						next[i] = -1
						done++
						continue
					}
					if err != nil {
						t.Fatalf("shard %d: %v", i, err)
					}
					want := fmt.Sprintf("%d/%d", i, next[i])
					if row[0] != int64(i) || row[1] != int64(next[i]) || string(row[2].([]byte)) != want {
						t.Fatalf("shard %d row %d = %v, want %d %d %s", i, next[i], row, i, next[i], want)
					}
					next[i]++
				}
			}
			if err := CloseAll(shards); err != nil {
				t.Fatal(err)
			}
			for i, f := range fakes {
				if n := f.closes.Load(); n != 1 {
					t.Errorf("shard %d closed %d times", i, n)
				}
			}
		})
	}
}

func TestParallelBoundedReadAhead(t *testing.T) {
	const total = 60
	for _, buffer := range []int{1, 2, 7, 50, 100} {
		t.Run(fmt.Sprint("buffer=", buffer), func(t *testing.T) {
			checkLeaks(t)
			f := shardData(0, total)
			shards, err := Parallel(context.Background(), 1, buffer, openFakes([]*fakeRows{f}))
			if err != nil {
				t.Fatal(err)
			}
			defer shards[0].Close()
			row := make([]driver.Value, 3)
			for consumed := 0; ; consumed++ {
				// The reader fills the buffer, and goes no further.
				want := int64(min(total, consumed+buffer))
				eventually(t, fmt.Sprintf("%d rows read ahead", want), func() bool { return f.pulled.Load() >= want })
				time.Sleep(2 * time.Millisecond)
				if got := f.pulled.Load(); got != want {
					t.Fatalf("after %d rows consumed, %d pulled from the source, want %d (buffer %d)", consumed, got, want, buffer)
				}
				err := shards[0].Next(row)
				if err == io.EOF {
					if consumed != total {
						t.Fatalf("EOF after %d rows", consumed)
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if row[1] != int64(consumed) {
					t.Fatalf("row %d = %v", consumed, row)
				}
			}
		})
	}
}

func TestParallelStartsAllAndWaitsForFirstRows(t *testing.T) {
	checkLeaks(t)
	const n = 6
	var opening atomic.Int32
	fakes := make([]*fakeRows, n)
	for i := range fakes {
		fakes[i] = shardData(i, i%3) // some shards are empty
		fakes[i].delay = time.Duration(i) * 5 * time.Millisecond
	}
	open := func(ctx context.Context, i int) (driver.Rows, error) {
		// Every query is started before any returns: a sequential Parallel
		// would time out here.
		opening.Add(1)
		deadline := time.Now().Add(5 * time.Second)
		for opening.Load() < n {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("shard %d: only %d queries started at once", i, opening.Load())
			}
			time.Sleep(time.Millisecond)
		}
		return openFakes(fakes)(ctx, i)
	}
	shards, err := Parallel(context.Background(), n, 4, open)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(shards)
	for i, f := range fakes {
		if f.pulled.Load() == 0 && !f.eof.Load() {
			t.Errorf("shard %d: Parallel returned before its first row or EOF", i)
		}
	}
}

func TestParallelErrorCancelsOthers(t *testing.T) {
	// Shard 2 fails; the others are slow to start, stuck in their first
	// Next, or streaming: all must be cancelled and closed.
	type behaviour int
	const (
		openFails behaviour = iota
		firstNextFails
	)
	for _, tc := range []struct {
		name string
		how  behaviour
	}{
		{"open fails", openFails},
		{"first Next fails", firstNextFails},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			failure := fmt.Errorf("shard 2: %w", errFake)
			fakes := []*fakeRows{
				shardData(0, 1000),
				shardData(1, 5),
				shardData(2, 5),
				shardData(3, 5),
			}
			fakes[1].gate = make(chan struct{}) // never opened: Next waits for the context
			if tc.how == firstNextFails {
				fakes[2].failAt, fakes[2].failErr = 0, failure
			}
			var canceled atomic.Int32
			open := func(ctx context.Context, i int) (driver.Rows, error) {
				switch i {
				case 2:
					if tc.how == openFails {
						return nil, failure
					}
				case 3: // slow to start: returns once cancelled
					<-ctx.Done()
					canceled.Add(1)
					return nil, ctx.Err()
				}
				return openFakes(fakes)(ctx, i)
			}
			shards, err := Parallel(context.Background(), 4, 8, open)
			if !errors.Is(err, errFake) || err != failure {
				t.Fatalf("Parallel error = %v, want %v", err, failure)
			}
			if shards != nil {
				t.Fatalf("rows returned with the error")
			}
			if canceled.Load() != 1 {
				t.Errorf("the slow shard's open was not cancelled")
			}
			for i, f := range fakes[:2] {
				if n := f.closes.Load(); n != 1 {
					t.Errorf("shard %d closed %d times, want 1", i, n)
				}
				if f.ctx.Err() == nil {
					t.Errorf("shard %d's context not cancelled", i)
				}
			}
			if tc.how == firstNextFails && fakes[2].closes.Load() != 1 {
				t.Errorf("failing shard not closed")
			}
			if fakes[0].pulled.Load() > 8 {
				t.Errorf("shard 0 read %d rows ahead, buffer is 8", fakes[0].pulled.Load())
			}
		})
	}
}

func TestParallelErrorMidStream(t *testing.T) {
	checkLeaks(t)
	f := shardData(0, 10)
	f.failAt = 5
	shards, err := Parallel(context.Background(), 1, 3, openFakes([]*fakeRows{f}))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := readAllErr(shards[0])
	if len(rows) != 5 || !errors.Is(err, errFake) {
		t.Fatalf("got %d rows and %v, want 5 rows and %v", len(rows), err, errFake)
	}
	if err := shards[0].Next(make([]driver.Value, 3)); !errors.Is(err, errFake) {
		t.Fatalf("Next after the error = %v", err)
	}
	if err := shards[0].Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if f.closes.Load() != 1 {
		t.Fatalf("source closed %d times", f.closes.Load())
	}
}

func TestParallelCloseError(t *testing.T) {
	checkLeaks(t)
	closeErr := errors.New("close failed")
	// Read to the end: Next reports the error in place of io.EOF.
	f := shardData(0, 3)
	f.closeErr = closeErr
	shards, err := Parallel(context.Background(), 1, 3, openFakes([]*fakeRows{f}))
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := readAllErr(shards[0]); len(rows) != 3 || err != closeErr {
		t.Fatalf("got %d rows and %v, want 3 and %v", len(rows), err, closeErr)
	}
	if err := shards[0].Close(); err != nil {
		t.Fatalf("Close = %v after Next reported it", err)
	}
	// Read ahead to the end but closed early: Close reports it.
	f = shardData(0, 3)
	f.closeErr = closeErr
	shards, err = Parallel(context.Background(), 1, 4, openFakes([]*fakeRows{f}))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the source read to its end", func() bool { return f.closes.Load() == 1 })
	if err := shards[0].Close(); err != closeErr {
		t.Fatalf("Close = %v, want %v", err, closeErr)
	}
	// Cancelled while unfinished: a Close error caused by it is not reported.
	f = shardData(0, 100)
	f.closeErr = closeErr
	shards, err = Parallel(context.Background(), 1, 3, openFakes([]*fakeRows{f}))
	if err != nil {
		t.Fatal(err)
	}
	if err := shards[0].Close(); err != nil {
		t.Fatalf("Close of an unfinished shard = %v", err)
	}
}

func TestParallelCloseEarly(t *testing.T) {
	checkLeaks(t)
	endless := newFake([]string{"n"})
	endless.gen = func(i int) []driver.Value { return []driver.Value{int64(i)} }
	stuck := shardData(1, 10)
	stuck.gate = make(chan struct{}, 1)
	stuck.gate <- struct{}{} // one row, then Next blocks until cancelled
	var fakes = []*fakeRows{endless, stuck}
	open := func(ctx context.Context, i int) (driver.Rows, error) { return openFakes(fakes)(ctx, i) }
	shards, err := Parallel(context.Background(), 2, 4, open)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]driver.Value, 1)
	for range 3 {
		if err := shards[0].Next(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := shards[0].Close(); err != nil {
		t.Fatal(err)
	}
	if endless.closes.Load() != 1 {
		t.Fatalf("endless source closed %d times", endless.closes.Load())
	}
	if err := shards[0].Next(row); err != errClosed {
		t.Fatalf("Next after Close = %v", err)
	}
	eventually(t, "the stuck shard waiting", func() bool { return stuck.nexts.Load() == 2 })
	start := time.Now()
	if err := shards[1].Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("closing a shard stuck in Next took %v", d)
	}
	if stuck.closes.Load() != 1 {
		t.Fatalf("stuck source closed %d times", stuck.closes.Load())
	}
	if err := shards[1].Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestParallelContextCancel(t *testing.T) {
	t.Run("while starting", func(t *testing.T) {
		checkLeaks(t)
		ctx, cancel := context.WithCancel(context.Background())
		fakes := []*fakeRows{shardData(0, 5), shardData(1, 5)}
		fakes[1].gate = make(chan struct{})
		time.AfterFunc(20*time.Millisecond, cancel)
		shards, err := Parallel(ctx, 2, 4, openFakes(fakes))
		if err != context.Canceled || shards != nil {
			t.Fatalf("Parallel = %v, %v; want context.Canceled", shards, err)
		}
		for i, f := range fakes {
			if f.closes.Load() != 1 {
				t.Errorf("shard %d closed %d times", i, f.closes.Load())
			}
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		checkLeaks(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		open := func(ctx context.Context, i int) (driver.Rows, error) { return nil, ctx.Err() }
		if _, err := Parallel(ctx, 3, 4, open); err != context.Canceled {
			t.Fatalf("Parallel = %v", err)
		}
	})
	t.Run("while reading", func(t *testing.T) {
		checkLeaks(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fakes := []*fakeRows{shardData(0, 100), shardData(1, 100)}
		fakes[0].gate = make(chan struct{}, 1)
		fakes[0].gate <- struct{}{}
		shards, err := Parallel(ctx, 2, 4, openFakes(fakes))
		if err != nil {
			t.Fatal(err)
		}
		defer CloseAll(shards)
		row := make([]driver.Value, 3)
		if err := shards[0].Next(row); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(20*time.Millisecond, cancel)
		// Shard 0 has nothing more: Next waits until the cancellation.
		if err := shards[0].Next(row); err != context.Canceled {
			t.Fatalf("Next = %v, want context.Canceled", err)
		}
		// Shard 1 has rows buffered, yet reports the cancellation.
		if err := shards[1].Next(row); err != context.Canceled {
			t.Fatalf("Next = %v, want context.Canceled", err)
		}
		for i, f := range fakes {
			eventually(t, fmt.Sprintf("shard %d closed", i), func() bool { return f.closes.Load() == 1 })
		}
		if err := CloseAll(shards); err != nil {
			t.Fatal(err)
		}
	})
}

func TestParallelOpenerMisuse(t *testing.T) {
	checkLeaks(t)
	open := func(ctx context.Context, i int) (driver.Rows, error) { return nil, nil }
	if _, err := Parallel(context.Background(), 2, 1, open); err == nil {
		t.Fatal("no error for an Opener returning neither rows nor error")
	}
	shards, err := Parallel(context.Background(), 0, 1, open)
	if err != nil || len(shards) != 0 {
		t.Fatalf("Parallel of 0 shards = %v, %v", shards, err)
	}
}

func TestParallelColumnTypesWithoutMethods(t *testing.T) {
	checkLeaks(t)
	f := shardData(0, 2)
	open := func(ctx context.Context, i int) (driver.Rows, error) { return bareRows{f}, nil }
	shards, err := Parallel(context.Background(), 1, 1, open)
	if err != nil {
		t.Fatal(err)
	}
	defer shards[0].Close()
	s := shards[0].(columnTyper)
	if s.ColumnTypeDatabaseTypeName(0) != "" || s.ColumnTypeScanType(0) != reflect.TypeFor[any]() {
		t.Fatal("metadata invented for a source without it")
	}
	if _, ok := s.ColumnTypeNullable(0); ok {
		t.Fatal("nullability invented for a source without it")
	}
}
