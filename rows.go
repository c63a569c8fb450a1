package pgshard

import (
	"context"
	"database/sql/driver"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/planner"
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

// shardShapes checks, for one multi-shard read of plan p, that every shard's
// rows are described as those of the first shard to answer (column count,
// names, types: merge.RowDescription) before any of its rows is passed on.
// Shard tables whose columns drifted apart (an ALTER run by hand on one
// worker, a schema change that reached some shards only) fail the statement
// with 42804 naming both shard tables and the column, rather than give one
// shard's values under another's columns. Safe for concurrent use: shards
// are opened on goroutines of their own.
type shardShapes struct {
	p     *planner.Plan
	mu    sync.Mutex
	first *shardShape
}

// shardShape is the row description of shard index idx's rows, read on
// node (zero when unknown: types made by CREATE TYPE, whose OIDs are the
// node's own, are then not compared).
type shardShape struct {
	idx  int
	node catalog.Node
	desc merge.RowDescription
}

func newShardShapes(p *planner.Plan) *shardShapes { return &shardShapes{p: p} }

// check compares a shard's row description with the first one's (which it
// becomes when it is the first).
func (s *shardShapes) check(got shardShape) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		s.first = &got
		return nil
	}
	first := s.first
	sameNode := got.node != (catalog.Node{}) && got.node == first.node
	mismatch := got.desc.Mismatch(first.desc, sameNode)
	if mismatch == "" {
		return nil
	}
	table := s.p.Table
	return sqlerr.WithDetail(
		sqlerr.New(sqlerr.DatatypeMismatch, "the shard tables of distributed table %s differ in their columns: %s against %s: %s",
			table.Name, s.shardTables(got.idx), s.shardTables(first.idx), mismatch),
		"The shard tables of one distributed table must have the same columns; one was altered apart from the others (an ALTER TABLE run on a worker, or a schema change that reached only some shards). Make them the same again.")
}

// shardTables names the shard tables of shard index idx the plan reads:
// "kv_10003", or "a_10000 and b_10016" for co-located tables.
func (s *shardShapes) shardTables(idx int) string {
	tables := s.p.Tables()
	if len(tables) == 0 {
		tables = []*catalog.Table{s.p.Table}
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.ShardTableName(t.Shards[idx].ID)
	}
	return strings.Join(names, " and ")
}

// checked returns r, the rows of shard index idx, when their description
// matches the other shards'; else it closes r and returns the mismatch.
func (s *shardShapes) checked(idx int, r driver.Rows) (driver.Rows, error) {
	var node catalog.Node
	if pr, ok := r.(*placementRows); ok {
		node = pr.node
	}
	if err := s.check(shardShape{idx: idx, node: node, desc: merge.Describe(r)}); err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

// readShardChecked is readShard for one shard of a multi-shard read: the
// shard's rows are checked against the other shards' (shapes) before they
// are returned.
func (cn *conn) readShardChecked(ctx context.Context, p *planner.Plan, shapes *shardShapes, idx int, sql string, nargs []driver.NamedValue) (driver.Rows, error) {
	r, err := cn.readShard(ctx, p, idx, sql, nargs)
	if err != nil {
		return nil, err
	}
	return shapes.checked(idx, r)
}

// fieldsDescription describes rows read with pgx as merge.Describe describes
// the database/sql driver's: pgx's type name (upper case) for the types it
// knows, else the OID in decimal.
func fieldsDescription(m *pgtype.Map, fds []pgconn.FieldDescription) merge.RowDescription {
	d := merge.RowDescription{Names: make([]string, len(fds)), Types: make([]string, len(fds))}
	for i, fd := range fds {
		d.Names[i] = fd.Name
		if t, ok := m.TypeForOID(fd.DataTypeOID); ok {
			d.Types[i] = strings.ToUpper(t.Name)
		} else {
			d.Types[i] = strconv.FormatUint(uint64(fd.DataTypeOID), 10)
		}
	}
	return d
}
