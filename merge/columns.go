package merge

import (
	"database/sql/driver"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/pgshard/pgshard/internal/sqlerr"
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

// RowDescription is what a source says of its rows: each column's name and
// database type name (pgx's name for the types it knows, else the type's OID
// in decimal).
type RowDescription struct {
	Names []string
	Types []string
}

// Describe returns r's row description.
func Describe(r driver.Rows) RowDescription {
	names := r.Columns()
	d := RowDescription{Names: names, Types: make([]string, len(names))}
	f := forward{r}
	for i := range names {
		d.Types[i] = f.ColumnTypeDatabaseTypeName(i)
	}
	return d
}

// firstUserOID is FirstNormalObjectId: types with a smaller OID are
// PostgreSQL's own, the same on every server.
const firstUserOID = 16384

// userType reports whether a database type name is the OID of a type made
// by CREATE TYPE (or an extension), which differs between servers.
func userType(name string) bool {
	oid, err := strconv.ParseUint(name, 10, 32)
	return err == nil && oid >= firstUserOID
}

// Mismatch returns how d differs from want, naming the first column that
// differs: its count, a column's name or type; "" when they match. Types
// made by CREATE TYPE have OIDs of their own on each server: two of them
// match unless sameServer (they are then the same type only when their OIDs
// are). A type name that either side lacks ("") matches any.
func (d RowDescription) Mismatch(want RowDescription, sameServer bool) string {
	for i := 0; i < len(d.Names) || i < len(want.Names); i++ {
		switch {
		case i >= len(want.Names):
			return fmt.Sprintf("%d columns instead of %d: column %d %q is extra", len(d.Names), len(want.Names), i+1, d.Names[i])
		case i >= len(d.Names):
			return fmt.Sprintf("%d columns instead of %d: column %d %q is missing", len(d.Names), len(want.Names), i+1, want.Names[i])
		case d.Names[i] != want.Names[i]:
			return fmt.Sprintf("column %d is %q instead of %q", i+1, d.Names[i], want.Names[i])
		}
		got, exp := typeAt(d.Types, i), typeAt(want.Types, i)
		if got == exp || got == "" || exp == "" || (!sameServer && userType(got) && userType(exp)) {
			continue
		}
		return fmt.Sprintf("column %d %q is of type %s instead of %s", i+1, d.Names[i], typeName(got), typeName(exp))
	}
	return ""
}

func typeAt(types []string, i int) string {
	if i < len(types) {
		return types[i]
	}
	return ""
}

// typeName renders a database type name for messages: "int4", or "OID
// 16390" for a type pgx does not know.
func typeName(name string) string {
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		return "OID " + name
	}
	return strings.ToLower(name)
}

// checkSources fails with 42804 (datatype_mismatch) when a source's rows are
// not described as the first source's: merging them would put values under
// the wrong columns. Sources of Parallel have their description already.
func checkSources(srcs []driver.Rows) error {
	if len(srcs) < 2 {
		return nil
	}
	want := Describe(srcs[0])
	for i, src := range srcs[1:] {
		if m := Describe(src).Mismatch(want, false); m != "" {
			return sqlerr.New(sqlerr.DatatypeMismatch, "merge: the rows of source %d differ from those of source 0: %s", i+1, m)
		}
	}
	return nil
}
