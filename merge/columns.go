package merge

import (
	"database/sql/driver"
	"reflect"
)

// Every Rows of this package reports the column metadata of its first source.
var (
	_ columnTyper = (*shardRows)(nil)
	_ columnTyper = (*concatenateRows)(nil)
	_ columnTyper = (*mergeSortRows)(nil)
	_ columnTyper = (*limitRows)(nil)
	_ columnTyper = (*projectRows)(nil)
)

// columnTyper is driver.Rows with every optional column type method.
type columnTyper interface {
	driver.Rows
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeScanType
	driver.RowsColumnTypeLength
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeNullable
}

var anyType = reflect.TypeFor[any]()

// forward implements the optional column type methods by asking src, the
// first source of a merged Rows; with no source (or when src lacks a method)
// they report what database/sql assumes for a driver without it.
type forward struct {
	src driver.Rows
}

func (f forward) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := f.src.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (f forward) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := f.src.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return anyType
}

func (f forward) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := f.src.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (f forward) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := f.src.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (f forward) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := f.src.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

// columnMeta is a snapshot of one source's column metadata, taken by the
// goroutine that reads the source (driver.Rows are not safe for concurrent
// use, so the consumer must not ask the source itself).
type columnMeta struct {
	names []string
	cols  []columnInfo
}

type columnInfo struct {
	dbType                string
	scanType              reflect.Type
	length                int64
	hasLength             bool
	precision, scale      int64
	hasPrecision          bool
	nullable, hasNullable bool
}

func snapshotColumns(r driver.Rows) *columnMeta {
	names := r.Columns()
	m := &columnMeta{names: names, cols: make([]columnInfo, len(names))}
	f := forward{r}
	for i := range names {
		c := &m.cols[i]
		c.dbType = f.ColumnTypeDatabaseTypeName(i)
		c.scanType = f.ColumnTypeScanType(i)
		c.length, c.hasLength = f.ColumnTypeLength(i)
		c.precision, c.scale, c.hasPrecision = f.ColumnTypePrecisionScale(i)
		c.nullable, c.hasNullable = f.ColumnTypeNullable(i)
	}
	return m
}

func (m *columnMeta) ColumnTypeDatabaseTypeName(i int) string { return m.cols[i].dbType }
func (m *columnMeta) ColumnTypeScanType(i int) reflect.Type   { return m.cols[i].scanType }
func (m *columnMeta) ColumnTypeLength(i int) (int64, bool) {
	return m.cols[i].length, m.cols[i].hasLength
}
func (m *columnMeta) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	return m.cols[i].precision, m.cols[i].scale, m.cols[i].hasPrecision
}
func (m *columnMeta) ColumnTypeNullable(i int) (bool, bool) {
	return m.cols[i].nullable, m.cols[i].hasNullable
}
