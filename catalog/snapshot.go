package catalog

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// ShardState is a placement's state, with pg_shard's numbers.
type ShardState int32

const (
	// StateFinalized marks a healthy placement that receives reads and writes.
	StateFinalized ShardState = 1
	// StateInactive marks a placement that missed a write; it gets no reads and
	// no writes until master_copy_shard_placement repairs it.
	StateInactive ShardState = 3
	// StateFilling (pgshard's) marks a placement being filled by a repair or
	// a move: it receives every write but no reads, until the copy finishes
	// and it becomes finalized.
	StateFilling ShardState = 5
)

// Node is a worker node, identified by host name and port as in pg_shard.
type Node struct {
	Name string
	Port int
}

// String is "name:port".
func (n Node) String() string { return n.Name + ":" + strconv.Itoa(n.Port) }

// Placement is one copy of a shard on one worker node.
type Placement struct {
	ID      int64
	ShardID int64
	State   ShardState
	Node    Node
}

// Shard is one hash range of a distributed table: the rows whose key hashes
// into [Min, Max]. Placements are ordered by placement id (a reference
// table's one shard: by node, see NewSnapshot).
type Shard struct {
	ID         int64
	RelationID uint32
	Min, Max   int32
	Placements []Placement
	// finalized and writable are computed once, by NewSnapshot.
	finalized, writable []Placement
}

// Finalized returns the shard's finalized placements, in placement id order
// (a reference table's: in node order).
// The slice belongs to the snapshot: callers must not modify it.
func (s *Shard) Finalized() []Placement {
	if s.finalized == nil {
		return s.filter(StateFinalized, StateFinalized)
	}
	return s.finalized
}

func (s *Shard) filter(a, b ShardState) []Placement {
	out := make([]Placement, 0, len(s.Placements))
	for _, p := range s.Placements {
		if p.State == a || p.State == b {
			out = append(out, p)
		}
	}
	return out
}

// Writable returns the placements a write must reach: finalized and
// filling ones, in placement id order.
// The slice belongs to the snapshot: callers must not modify it.
func (s *Shard) Writable() []Placement {
	if s.writable == nil {
		return s.filter(StateFinalized, StateFilling)
	}
	return s.writable
}

// Column is a column of a distributed table's template table.
type Column struct {
	Name     string
	TypeOID  uint32
	TypeName string // format_type(atttypid, atttypmod)
	NotNull  bool
	// Default is the column default's SQL (pg_get_expr), "" when none.
	Default string
	// SequenceDefault is true when Default calls nextval(): pgshard fills such
	// columns from the metadata database so values are unique across shards,
	// and the shard tables carry no such default.
	SequenceDefault bool
}

// Table is a distributed table: its template on the metadata database and its
// shards, sorted by Min (the hash ranges never overlap).
type Table struct {
	RelationID uint32
	Schema     string
	Name       string
	// Method is the partition method; pgshard only creates hash ('h').
	Method    byte
	KeyColumn string
	KeyType   uint32
	// KeyIndex is KeyColumn's position in Columns.
	KeyIndex int
	Columns  []Column
	Shards   []Shard
	// ColocationID is the table's co-location group, recorded in
	// pgs_distribution_metadata.colocation when its shards were created:
	// tables of one group have the same key type, shard ranges and
	// placement nodes, and master_move_shard_placement moves their shards
	// together. 0 means none recorded: the table is co-located with no
	// other.
	ColocationID int64
	// PrimaryKey lists the template's primary key columns (none: nil).
	PrimaryKey []string
	// Invalid, when not nil, is why the table's metadata rows cannot be
	// used (shards whose ranges overlap or are not integers): every
	// statement on the table fails with it (SQLSTATE 55000), naming the
	// rows, while other tables are served as usual. Its Shards are then
	// those that could be read, and must not be routed to.
	Invalid error
	// invalidRows describes the rows that make the table Invalid, as Load
	// finds them; NewSnapshot adds its own and builds Invalid.
	invalidRows []string
	// legacyNames are the names of shard tables an older pgshard created
	// (pgs_distribution_metadata.shard_table_name), by shard id.
	legacyNames map[int64]string
}

// ShardTableName is the name of shard shardID's table on the workers:
// ShardName(t.Name, shardID), "<table>_<shardid>" as in pg_shard when that
// fits in 63 bytes, or the name recorded for a shard an older pgshard
// created.
func (t *Table) ShardTableName(shardID int64) string {
	if n, ok := t.legacyNames[shardID]; ok {
		return n
	}
	return ShardName(t.Name, shardID)
}

// QualifiedName is "schema.name".
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// ShardForHash returns the index in Shards of the shard whose range holds h,
// or -1 when no shard does (no shards yet, or a gap).
func (t *Table) ShardForHash(h int32) int {
	i := sort.Search(len(t.Shards), func(i int) bool { return t.Shards[i].Max >= h })
	if i < len(t.Shards) && t.Shards[i].Min <= h {
		return i
	}
	return -1
}

// ShardByID returns the shard with the given id, or nil.
func (t *Table) ShardByID(id int64) *Shard {
	for i := range t.Shards {
		if t.Shards[i].ID == id {
			return &t.Shards[i]
		}
	}
	return nil
}

// Column returns the named column, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// ColocatedWith reports whether u's rows with a given key live in the same
// shard index as t's rows with an equal key, on the same nodes: t and u are
// in one recorded co-location group (the same non-zero ColocationID), and,
// as a defensive check, have the same key type and identical shard ranges.
// Placements are not compared: a statement on several tables runs only on
// nodes where every table's placement of the shard is finalized (see
// ColocatedPlacements).
func (t *Table) ColocatedWith(u *Table) bool {
	if t == u {
		return true
	}
	if t.Invalid != nil || u.Invalid != nil {
		return false
	}
	if t.Reference() || u.Reference() {
		// A reference table's one shard is on every node: any shard of
		// the other table finds it there (ColocatedPlacements checks).
		return len(t.Shards) > 0 && len(u.Shards) > 0
	}
	if t.ColocationID == 0 || t.ColocationID != u.ColocationID || t.KeyType != u.KeyType {
		return false
	}
	if len(t.Shards) != len(u.Shards) || len(t.Shards) == 0 {
		return false
	}
	for i := range t.Shards {
		if t.Shards[i].Min != u.Shards[i].Min || t.Shards[i].Max != u.Shards[i].Max {
			return false
		}
	}
	return true
}

// FinalizedOn reports whether the shard has a finalized placement on node.
func (s *Shard) FinalizedOn(node Node) bool {
	for _, p := range s.Finalized() {
		if p.Node == node {
			return true
		}
	}
	return false
}

// ColocatedPlacements returns the placements of shard index i of tables[0]
// that a statement reading every one of tables may run on: its finalized
// placements on nodes where each other table has a finalized placement of
// its shard i (a reference table: of its one shard, ShardAt) too, in
// placement id order. The tables must be co-located
// (ColocatedWith). With one table it is tables[0].Shards[i].Finalized(),
// the snapshot's own slice; callers must not modify the result.
func ColocatedPlacements(tables []*Table, i int) []Placement {
	ps := tables[0].Shards[i].Finalized()
	if len(tables) == 1 {
		return ps
	}
	out := make([]Placement, 0, len(ps))
	for _, p := range ps {
		ok := true
		for _, u := range tables[1:] {
			if !u.Reference() && i >= len(u.Shards) || !u.ShardAt(i).FinalizedOn(p.Node) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	return out
}

// Snapshot is an immutable copy of the distribution metadata. Nothing in it,
// nor in the Tables, Shards and Placements it holds, is changed after Load
// returns it, so it may be read from any number of goroutines.
type Snapshot struct {
	// Version is the metadata version it was read at; every change to the
	// metadata increments it.
	Version int64
	// Nodes are the worker nodes ordered by (name, port).
	Nodes []Node
	// SearchPath is the metadata database's current_schemas(false), used to
	// resolve unqualified table names as PostgreSQL would.
	SearchPath []string

	tables     map[string]*Table // by "schema.name"
	byRelation map[uint32]*Table
	// names holds the names of every relation on the search path (distributed
	// or not) so that an unqualified name resolves to the first schema that
	// has it, as PostgreSQL resolves it.
	names map[string]string // "name" -> schema of the first match on the search path
	// ordinary holds the user relations of the metadata database that are
	// not distributed: "schema.name", and "name" for those the search path
	// resolves an unqualified name to.
	ordinary map[string]bool
	// schemasOf maps each user relation name to the schemas holding a
	// relation of that name (see loadSchemasOf); nil in snapshots built by
	// NewSnapshot.
	schemasOf map[string][]string
	// filling: some placement is filling (a repair or move runs); see
	// FenceVersion.
	filling bool
}

// WithSearchPath returns a view of s that resolves unqualified names as a
// session whose current_schemas(true) is path would: the first schema of
// path holding a relation of that name decides, temporary relations (temp,
// the names of the session's own temporary relations) in the session's
// temporary schema (the "pg_temp_N" entry of path). A name that resolves to
// a temporary relation is ordinary: it lives in the session on the
// metadata database. The view shares s's tables; like s it is immutable.
func (s *Snapshot) WithSearchPath(path []string, temp map[string]bool) *Snapshot {
	if s == nil {
		return nil
	}
	v := *s
	v.SearchPath = path
	v.names = make(map[string]string, len(s.names))
	v.ordinary = make(map[string]bool, len(s.ordinary))
	for k := range s.ordinary {
		if strings.Contains(k, ".") {
			v.ordinary[k] = true // qualified: the search path does not matter
		}
	}
	resolve := func(rel string, schemas []string) {
		for _, sch := range path {
			if strings.HasPrefix(sch, "pg_temp_") {
				if temp[rel] {
					v.ordinary[rel] = true
					return
				}
				continue
			}
			if !slices.Contains(schemas, sch) {
				continue
			}
			if _, ok := s.tables[sch+"."+rel]; ok {
				v.names[rel] = sch
			} else if s.ordinary[sch+"."+rel] {
				v.ordinary[rel] = true
			}
			return
		}
	}
	for rel, schemas := range s.schemasOf {
		resolve(rel, schemas)
	}
	for rel := range temp {
		if _, done := s.schemasOf[rel]; !done {
			resolve(rel, nil)
		}
	}
	return &v
}

// IsOrdinary reports whether a table reference names a relation that lives
// only on the metadata database (an ordinary table, view, sequence...), as
// of the snapshot.
func (s *Snapshot) IsOrdinary(schema, name string) bool {
	if s == nil {
		return false
	}
	if schema == "" {
		return s.ordinary[name]
	}
	return s.ordinary[schema+"."+name]
}

// Lookup resolves a table reference as PostgreSQL would on the metadata
// database and returns the distributed table it names, or nil when it names an
// ordinary table (or nothing).
func (s *Snapshot) Lookup(schema, name string) *Table {
	if s == nil {
		return nil
	}
	if schema == "" {
		sch, ok := s.names[name]
		if !ok {
			return nil
		}
		schema = sch
	}
	return s.tables[schema+"."+name]
}

// TableByRelation returns the distributed table with that relation id, or nil.
func (s *Snapshot) TableByRelation(relid uint32) *Table {
	if s == nil {
		return nil
	}
	return s.byRelation[relid]
}

// Tables returns every distributed table, ordered by qualified name.
func (s *Snapshot) Tables() []*Table {
	out := make([]*Table, 0, len(s.tables))
	for _, t := range s.tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].QualifiedName() < out[j].QualifiedName() })
	return out
}

// HasDistributedTables reports whether any table is distributed.
func (s *Snapshot) HasDistributedTables() bool { return s != nil && len(s.tables) > 0 }

// NewSnapshot builds a Snapshot from its parts; tables' shards are sorted by
// range. It is used by Load and by tests that need a catalog without a server.
func NewSnapshot(version int64, nodes []Node, searchPath []string, tables []*Table, relationNames map[string]string) (*Snapshot, error) {
	s := &Snapshot{
		Version:    version,
		Nodes:      nodes,
		SearchPath: searchPath,
		tables:     make(map[string]*Table, len(tables)),
		byRelation: make(map[uint32]*Table, len(tables)),
		names:      relationNames,
	}
	if s.names == nil {
		s.names = map[string]string{}
	}
	for _, t := range tables {
		sort.Slice(t.Shards, func(i, j int) bool {
			if t.Shards[i].Min != t.Shards[j].Min {
				return t.Shards[i].Min < t.Shards[j].Min
			}
			return t.Shards[i].ID < t.Shards[j].ID
		})
		bad := t.invalidRows
		if t.Reference() && len(t.Shards) != 1 {
			bad = append(bad, fmt.Sprintf("reference table has %d shards, not 1", len(t.Shards)))
		}
		for i := range t.Shards {
			if sh := &t.Shards[i]; sh.Min > sh.Max {
				bad = append(bad, fmt.Sprintf("shard %d has an empty range [%d, %d]", sh.ID, sh.Min, sh.Max))
			}
		}
		for i := 1; i < len(t.Shards); i++ {
			if a, b := &t.Shards[i-1], &t.Shards[i]; b.Min <= a.Max {
				bad = append(bad, fmt.Sprintf("shards %d [%d, %d] and %d [%d, %d] overlap", a.ID, a.Min, a.Max, b.ID, b.Min, b.Max))
			}
		}
		if len(bad) > 0 {
			t.Invalid = sqlerr.New(sqlerr.ObjectNotInPrereq, "the distribution metadata of table \"%s\" is invalid: %s; correct those rows of pgs_distribution_metadata.shard",
				t.Name, strings.Join(bad, "; "))
		}
		for i := range t.Shards {
			sh := &t.Shards[i]
			sort.Slice(sh.Placements, func(a, b int) bool { return sh.Placements[a].ID < sh.Placements[b].ID })
			if t.Reference() {
				// Every reference table's writers lock its placements in
				// one order, node order, whatever order the placements
				// were added in: a write of one reference table that
				// reads another locks both in the order their writers do.
				sort.SliceStable(sh.Placements, func(a, b int) bool { return nodeLess(sh.Placements[a].Node, sh.Placements[b].Node) })
			}
			sh.finalized = sh.filter(StateFinalized, StateFinalized)
			sh.writable = sh.filter(StateFinalized, StateFilling)
			s.filling = s.filling || len(sh.writable) > len(sh.finalized)
		}
		s.tables[t.QualifiedName()] = t
		s.byRelation[t.RelationID] = t
	}
	return s, nil
}
