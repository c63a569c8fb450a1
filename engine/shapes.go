package engine

import (
	"database/sql/driver"
	"strings"
	"sync"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/plan"
)

// Shapes checks, for one multi-shard read of a plan, that every shard's
// rows are described as those of the first shard to answer (column count,
// names, types: merge.RowDescription) before any of its rows is passed on.
// Shard tables whose columns drifted apart (an ALTER run by hand on one
// worker, a schema change that reached some shards only) fail the statement
// with 42804 naming both shard tables and the column, rather than give one
// shard's values under another's columns. Safe for concurrent use: shards
// are opened on goroutines of their own.
type Shapes struct {
	t     *plan.Target
	mu    sync.Mutex
	first *Shape
}

// Shape is the row description of shard index Idx's rows, read on Node
// (zero when unknown: types made by CREATE TYPE, whose OIDs are the node's
// own, are then not compared).
type Shape struct {
	Idx  int
	Node catalog.Node
	Desc merge.RowDescription
}

// NodeRows are rows read on one node; the Cursor's ReadShard returns them,
// so that Shapes knows where rows were read.
type NodeRows interface {
	driver.Rows
	Node() catalog.Node
}

// NewShapes starts the checks of one read of statement t.
func NewShapes(t plan.Targeted) *Shapes { return &Shapes{t: t.ShardTarget()} }

// Check compares a shard's row description with the first one's (which it
// becomes when it is the first).
func (s *Shapes) Check(got Shape) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		s.first = &got
		return nil
	}
	first := s.first
	sameNode := got.Node != (catalog.Node{}) && got.Node == first.Node
	mismatch := got.Desc.Mismatch(first.Desc, sameNode)
	if mismatch == "" {
		return nil
	}
	table := s.t.Table
	return sqlerr.WithDetail(
		sqlerr.New(sqlerr.DatatypeMismatch, "the shard tables of distributed table %s differ in their columns: %s against %s: %s",
			table.Name, s.shardTables(got.Idx), s.shardTables(first.Idx), mismatch),
		"The shard tables of one distributed table must have the same columns; one was altered apart from the others (an ALTER TABLE run on a worker, or a schema change that reached only some shards). Make them the same again.")
}

// shardTables names the shard tables of shard index idx the statement reads:
// "kv_10003", or "a_10000 and b_10016" for co-located tables.
func (s *Shapes) shardTables(idx int) string {
	tables := s.t.Tables
	if len(tables) == 0 {
		tables = []*catalog.Table{s.t.Table}
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.ShardTableName(t.ShardAt(idx).ID)
	}
	return strings.Join(names, " and ")
}

// Checked returns r, the rows of shard index idx, when their description
// matches the other shards'; else it closes r and returns the mismatch.
func (s *Shapes) Checked(idx int, r driver.Rows) (driver.Rows, error) {
	var node catalog.Node
	if nr, ok := r.(NodeRows); ok {
		node = nr.Node()
	}
	if err := s.Check(Shape{Idx: idx, Node: node, Desc: merge.Describe(r)}); err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}
