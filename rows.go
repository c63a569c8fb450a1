package pgshard

import (
	"database/sql/driver"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/planner"
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
		names[i] = t.ShardTableName(t.ShardAt(idx).ID)
	}
	return strings.Join(names, " and ")
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
