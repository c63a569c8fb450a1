package pgshard

import (
	"database/sql/driver"
	"io"
	"reflect"
)

// columnInfo is what database/sql's ColumnType reports of one result column,
// kept for rows pgshard builds itself (merged or buffered).
type columnInfo struct {
	name         string
	dbType       string
	scanType     reflect.Type
	length       int64
	hasLength    bool
	precision    int64
	scale        int64
	hasPrecision bool
}

// describeColumns reads the column metadata of rows from a worker.
func describeColumns(r driver.Rows) []columnInfo {
	names := r.Columns()
	cols := make([]columnInfo, len(names))
	for i, n := range names {
		c := columnInfo{name: n, scanType: reflect.TypeFor[any]()}
		if t, ok := r.(driver.RowsColumnTypeDatabaseTypeName); ok {
			c.dbType = t.ColumnTypeDatabaseTypeName(i)
		}
		if t, ok := r.(driver.RowsColumnTypeScanType); ok {
			c.scanType = t.ColumnTypeScanType(i)
		}
		if t, ok := r.(driver.RowsColumnTypeLength); ok {
			c.length, c.hasLength = t.ColumnTypeLength(i)
		}
		if t, ok := r.(driver.RowsColumnTypePrecisionScale); ok {
			c.precision, c.scale, c.hasPrecision = t.ColumnTypePrecisionScale(i)
		}
		cols[i] = c
	}
	return cols
}

// placementRows are the rows of one statement on one placement, streamed
// from the worker. Close releases the worker connection (unless it belongs
// to a transaction).
type placementRows struct {
	rows    driver.Rows
	release func()
}

var (
	_ driver.Rows                           = (*placementRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*placementRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*placementRows)(nil)
	_ driver.RowsColumnTypeLength           = (*placementRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*placementRows)(nil)
)

func (r *placementRows) Columns() []string { return r.rows.Columns() }

func (r *placementRows) Close() error {
	err := r.rows.Close()
	if r.release != nil {
		r.release()
		r.release = nil
	}
	return noBadConn(err)
}

func (r *placementRows) Next(dest []driver.Value) error {
	err := r.rows.Next(dest)
	if err == io.EOF {
		return err
	}
	return noBadConn(err)
}

func (r *placementRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *placementRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *placementRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *placementRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

// bufferedRows are rows held in memory: a modification's RETURNING rows
// (read whole before the other replicas are written) and merged aggregates.
type bufferedRows struct {
	cols []columnInfo
	data [][]driver.Value
	pos  int
}

var (
	_ driver.Rows                           = (*bufferedRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*bufferedRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*bufferedRows)(nil)
	_ driver.RowsColumnTypeLength           = (*bufferedRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*bufferedRows)(nil)
)

// readAll reads rows to the end into bufferedRows and closes them.
func readAll(r driver.Rows) (*bufferedRows, error) {
	b := &bufferedRows{cols: describeColumns(r)}
	for {
		row := make([]driver.Value, len(b.cols))
		err := r.Next(row)
		if err == io.EOF {
			break
		}
		if err != nil {
			r.Close()
			return nil, err
		}
		b.data = append(b.data, row)
	}
	return b, r.Close()
}

func (b *bufferedRows) Columns() []string {
	names := make([]string, len(b.cols))
	for i, c := range b.cols {
		names[i] = c.name
	}
	return names
}

func (b *bufferedRows) Close() error { return nil }

func (b *bufferedRows) Next(dest []driver.Value) error {
	if b.pos >= len(b.data) {
		return io.EOF
	}
	copy(dest, b.data[b.pos])
	b.pos++
	return nil
}

func (b *bufferedRows) ColumnTypeDatabaseTypeName(i int) string { return b.cols[i].dbType }
func (b *bufferedRows) ColumnTypeScanType(i int) reflect.Type   { return b.cols[i].scanType }
func (b *bufferedRows) ColumnTypeLength(i int) (int64, bool) {
	return b.cols[i].length, b.cols[i].hasLength
}
func (b *bufferedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return b.cols[i].precision, b.cols[i].scale, b.cols[i].hasPrecision
}

// concatRows streams the rows of every shard of a multi-shard query, one
// shard after the other. open(i) starts shard i's query; the first shard is
// opened before concatRows is returned, so its columns are known.
type concatRows struct {
	cur    driver.Rows
	next   int
	shards int
	open   func(i int) (driver.Rows, error)
	closed bool
}

var (
	_ driver.Rows                         = (*concatRows)(nil)
	_ driver.RowsColumnTypeLength         = (*concatRows)(nil)
	_ driver.RowsColumnTypePrecisionScale = (*concatRows)(nil)
)

func (c *concatRows) Columns() []string { return c.cur.Columns() }

func (c *concatRows) Next(dest []driver.Value) error {
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
			c.cur = &bufferedRows{}
			c.next = c.shards
			return err
		}
		c.next++
		c.cur = r
	}
}

func (c *concatRows) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	return c.cur.Close()
}

func (c *concatRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := c.cur.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (c *concatRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := c.cur.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (c *concatRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := c.cur.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (c *concatRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := c.cur.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
