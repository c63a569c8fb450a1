package engine

import (
	"database/sql/driver"
	"io"
	"reflect"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Column is what database/sql's ColumnType reports of one result column,
// kept for rows pgshard builds itself (merged or buffered).
type Column struct {
	Name         string
	DBType       string
	ScanType     reflect.Type
	Length       int64
	HasLength    bool
	Precision    int64
	Scale        int64
	HasPrecision bool
}

// DescribeColumns reads the column metadata of rows from a worker.
func DescribeColumns(r driver.Rows) []Column {
	names := r.Columns()
	cols := make([]Column, len(names))
	for i, n := range names {
		c := Column{Name: n, ScanType: reflect.TypeFor[any]()}
		if t, ok := r.(driver.RowsColumnTypeDatabaseTypeName); ok {
			c.DBType = t.ColumnTypeDatabaseTypeName(i)
		}
		if t, ok := r.(driver.RowsColumnTypeScanType); ok {
			c.ScanType = t.ColumnTypeScanType(i)
		}
		if t, ok := r.(driver.RowsColumnTypeLength); ok {
			c.Length, c.HasLength = t.ColumnTypeLength(i)
		}
		if t, ok := r.(driver.RowsColumnTypePrecisionScale); ok {
			c.Precision, c.Scale, c.HasPrecision = t.ColumnTypePrecisionScale(i)
		}
		cols[i] = c
	}
	return cols
}

// Buffered are rows held in memory: a modification's RETURNING rows (read
// whole before the other replicas are written), merged aggregates, EXPLAIN
// lines. Not safe for concurrent use; Close releases nothing.
type Buffered struct {
	Cols []Column
	Data [][]driver.Value
	pos  int
}

var (
	_ driver.Rows                           = (*Buffered)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*Buffered)(nil)
	_ driver.RowsColumnTypeScanType         = (*Buffered)(nil)
	_ driver.RowsColumnTypeLength           = (*Buffered)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*Buffered)(nil)
)

// ReadAll reads rows to the end into Buffered and closes them.
func ReadAll(r driver.Rows) (*Buffered, error) {
	b := &Buffered{Cols: DescribeColumns(r)}
	for {
		row := make([]driver.Value, len(b.Cols))
		err := r.Next(row)
		if err == io.EOF {
			break
		}
		if err != nil {
			r.Close()
			return nil, err
		}
		b.Data = append(b.Data, row)
	}
	return b, r.Close()
}

func (b *Buffered) Columns() []string {
	names := make([]string, len(b.Cols))
	for i, c := range b.Cols {
		names[i] = c.Name
	}
	return names
}

func (b *Buffered) Close() error { return nil }

func (b *Buffered) Next(dest []driver.Value) error {
	if b.pos >= len(b.Data) {
		return io.EOF
	}
	copy(dest, b.Data[b.pos])
	b.pos++
	return nil
}

func (b *Buffered) ColumnTypeDatabaseTypeName(i int) string { return b.Cols[i].DBType }
func (b *Buffered) ColumnTypeScanType(i int) reflect.Type   { return b.Cols[i].ScanType }
func (b *Buffered) ColumnTypeLength(i int) (int64, bool) {
	return b.Cols[i].Length, b.Cols[i].HasLength
}
func (b *Buffered) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return b.Cols[i].Precision, b.Cols[i].Scale, b.Cols[i].HasPrecision
}

// Concat streams the rows of every shard of a multi-shard query, one shard
// after the other, on the caller's goroutine. The first shard is opened
// before Concat is made, so its columns are known. Close closes the current
// shard's rows.
type Concat struct {
	cur    driver.Rows
	next   int
	shards int
	open   func(i int) (driver.Rows, error)
	closed bool
}

// NewConcat returns the concatenation of shards sources, first already
// open, the others opened by open(1..shards-1) in turn.
func NewConcat(first driver.Rows, shards int, open func(i int) (driver.Rows, error)) *Concat {
	return &Concat{cur: first, next: 1, shards: shards, open: open}
}

var (
	_ driver.Rows                         = (*Concat)(nil)
	_ driver.RowsColumnTypeLength         = (*Concat)(nil)
	_ driver.RowsColumnTypePrecisionScale = (*Concat)(nil)
)

func (c *Concat) Columns() []string { return c.cur.Columns() }

func (c *Concat) Next(dest []driver.Value) error {
	for {
		err := c.cur.Next(dest)
		if err != io.EOF {
			return err
		}
		if c.next >= c.shards {
			return io.EOF
		}
		if err := c.cur.Close(); err != nil {
			return err
		}
		r, err := c.open(c.next)
		if err != nil {
			c.cur = &Buffered{}
			c.next = c.shards
			return err
		}
		c.next++
		c.cur = r
	}
}

func (c *Concat) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	return c.cur.Close()
}

func (c *Concat) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := c.cur.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (c *Concat) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := c.cur.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (c *Concat) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := c.cur.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (c *Concat) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := c.cur.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

// Result is the driver.Result of a statement: rows affected only, since
// PostgreSQL has no last insert id (use RETURNING).
type Result struct {
	Rows int64
}

var _ driver.Result = Result{}

func (r Result) LastInsertId() (int64, error) {
	return 0, sqlerr.Unsupported("LastInsertId is not supported by PostgreSQL; use INSERT ... RETURNING")
}

func (r Result) RowsAffected() (int64, error) { return r.Rows, nil }

// Drain reads rows to the end, closes them and reports how many there were.
func Drain(rows driver.Rows) (driver.Result, error) {
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	var n int64
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			return Result{Rows: n}, rows.Close()
		}
		if err != nil {
			return nil, err
		}
		n++
	}
}
