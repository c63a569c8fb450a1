package merge

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// fakeRows is a slice-backed driver.Rows that logs how it is used.
type fakeRows struct {
	cols  []string
	types []string // database type names, one per column
	data  [][]driver.Value
	gen   func(i int) []driver.Value // rows without end, when set instead of data

	failAt   int   // Next returns failErr instead of row failAt; -1: never
	failErr  error // default errFake
	closeErr error // returned by Close

	ctx   context.Context // the query's, for gate and delay
	gate  chan struct{}   // when set, every Next first takes a token (or fails when ctx is done)
	delay time.Duration   // slept (ctx permitting) before every Next
	reuse bool            // []byte values are written into one reused buffer, as some drivers do
	buf   []byte

	pos    int
	nexts  atomic.Int64 // calls of Next
	pulled atomic.Int64 // rows returned by Next
	closes atomic.Int64 // calls of Close
	eof    atomic.Bool  // Next returned io.EOF
}

var errFake = errors.New("fake shard failure")

func newFake(cols []string, rows ...[]driver.Value) *fakeRows {
	types := make([]string, len(cols))
	for i := range types {
		types[i] = "INT8"
	}
	return &fakeRows{cols: cols, types: types, data: rows, failAt: -1}
}

// intRows makes a one-column fake with the given int64 values.
func intRows(vs ...int64) *fakeRows {
	rows := make([][]driver.Value, len(vs))
	for i, v := range vs {
		rows[i] = []driver.Value{v}
	}
	return newFake([]string{"v"}, rows...)
}

var (
	_ driver.Rows                           = (*fakeRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*fakeRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*fakeRows)(nil)
	_ driver.RowsColumnTypeLength           = (*fakeRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*fakeRows)(nil)
	_ driver.RowsColumnTypeNullable         = (*fakeRows)(nil)
)

func (f *fakeRows) Columns() []string { return f.cols }

func (f *fakeRows) Next(dest []driver.Value) error {
	f.nexts.Add(1)
	if f.closes.Load() > 0 {
		return errors.New("fake: Next after Close")
	}
	ctx := f.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.pos == f.failAt {
		if f.failErr != nil {
			return f.failErr
		}
		return errFake
	}
	var row []driver.Value
	if f.gen != nil {
		row = f.gen(f.pos)
	} else {
		if f.pos >= len(f.data) {
			f.eof.Store(true)
			return io.EOF
		}
		row = f.data[f.pos]
	}
	f.pos++
	if len(dest) != len(row) {
		return fmt.Errorf("fake: Next with %d columns, rows have %d", len(dest), len(row))
	}
	copy(dest, row)
	if f.reuse {
		for i, v := range dest {
			if b, ok := v.([]byte); ok {
				f.buf = append(f.buf[:0], b...)
				dest[i] = f.buf[:len(b):len(b)]
			}
		}
	}
	f.pulled.Add(1)
	return nil
}

func (f *fakeRows) Close() error {
	f.closes.Add(1)
	return f.closeErr
}

func (f *fakeRows) ColumnTypeDatabaseTypeName(i int) string { return f.types[i] }
func (f *fakeRows) ColumnTypeScanType(i int) reflect.Type {
	return reflect.TypeFor[int64]()
}
func (f *fakeRows) ColumnTypeLength(i int) (int64, bool) { return int64(100 + i), true }
func (f *fakeRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return int64(10 + i), int64(i), true
}
func (f *fakeRows) ColumnTypeNullable(i int) (bool, bool) { return i%2 == 0, true }

// bareRows hides every optional method of the rows it holds.
type bareRows struct{ driver.Rows }

// readAll reads r to its end; it fails t on an error other than io.EOF.
func readAll(t testing.TB, r driver.Rows) [][]driver.Value {
	t.Helper()
	rows, err := readAllErr(r)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return rows
}

func readAllErr(r driver.Rows) ([][]driver.Value, error) {
	var rows [][]driver.Value
	for {
		row := make([]driver.Value, len(r.Columns()))
		err := r.Next(row)
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
}

// checkLeaks fails t if, once t and its cleanups registered later are done,
// more goroutines run than when it was called.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d goroutines before, %d after:\n%s", before, n, buf)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// eventually waits up to 5s for cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// openFakes is an Opener returning fakes[i], with the query's context.
func openFakes(fakes []*fakeRows) Opener {
	return func(ctx context.Context, i int) (driver.Rows, error) {
		fakes[i].ctx = ctx
		return fakes[i], nil
	}
}

// checkColumnTypes asserts that r reports the column metadata of want.
func checkColumnTypes(t *testing.T, r driver.Rows, want driver.Rows) {
	t.Helper()
	if got, w := r.Columns(), want.Columns(); !slices.Equal(got, w) {
		t.Fatalf("Columns = %v, want %v", got, w)
	}
	g, w := forward{r}, forward{want}
	for i := range want.Columns() {
		if a, b := g.ColumnTypeDatabaseTypeName(i), w.ColumnTypeDatabaseTypeName(i); a != b {
			t.Errorf("column %d: DatabaseTypeName %q, want %q", i, a, b)
		}
		if a, b := g.ColumnTypeScanType(i), w.ColumnTypeScanType(i); a != b {
			t.Errorf("column %d: ScanType %v, want %v", i, a, b)
		}
		if a1, a2 := g.ColumnTypeLength(i); true {
			if b1, b2 := w.ColumnTypeLength(i); a1 != b1 || a2 != b2 {
				t.Errorf("column %d: Length %v %v, want %v %v", i, a1, a2, b1, b2)
			}
		}
		if a1, a2, a3 := g.ColumnTypePrecisionScale(i); true {
			if b1, b2, b3 := w.ColumnTypePrecisionScale(i); a1 != b1 || a2 != b2 || a3 != b3 {
				t.Errorf("column %d: PrecisionScale %v %v %v, want %v %v %v", i, a1, a2, a3, b1, b2, b3)
			}
		}
		if a1, a2 := g.ColumnTypeNullable(i); true {
			if b1, b2 := w.ColumnTypeNullable(i); a1 != b1 || a2 != b2 {
				t.Errorf("column %d: Nullable %v %v, want %v %v", i, a1, a2, b1, b2)
			}
		}
	}
}
