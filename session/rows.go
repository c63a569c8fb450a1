package session

import (
	"database/sql/driver"
	"io"
	"reflect"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
)

// placementRows are the rows of one statement on one placement, streamed
// from the worker on node. Close releases the worker connection (unless it
// belongs to a transaction).
type placementRows struct {
	rows    driver.Rows
	release func()
	node    catalog.Node
}

var (
	_ driver.Rows                           = (*placementRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*placementRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*placementRows)(nil)
	_ driver.RowsColumnTypeLength           = (*placementRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*placementRows)(nil)
	_ engine.NodeRows                       = (*placementRows)(nil)
)

func (r *placementRows) Columns() []string { return r.rows.Columns() }

// Node is the node the rows are read on (engine.NodeRows).
func (r *placementRows) Node() catalog.Node { return r.node }

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
