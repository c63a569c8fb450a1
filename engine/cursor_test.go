package engine_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/plan"
	"github.com/pgshard/pgshard/planner"
)

// shardedTable is one distributed table of a test, its shard tables
// created on the cluster's servers, and the catalog that describes it.
type shardedTable struct {
	snap  *catalog.Snapshot
	table *catalog.Table
}

var relationSeq struct {
	sync.Mutex
	next uint32
}

// newShardedTable creates table name (k bigint PRIMARY KEY, v text) with
// shards hash shards of replicas placements each, replica j of shard i on
// server (i+j) mod 2, as master_create_worker_shards places them.
func newShardedTable(t *testing.T, name string, shards, replicas int) *shardedTable {
	t.Helper()
	return newShardedTables(t, shards, replicas, name)[0]
}

// newShardedTables creates tables as newShardedTable does, co-located with
// each other (one co-location group, the same ranges and placements), in
// one catalog.
func newShardedTables(t *testing.T, shards, replicas int, names ...string) []*shardedTable {
	t.Helper()
	nodes := make([]catalog.Node, len(Servers().Nodes))
	for i, n := range Servers().Nodes {
		nodes[i] = catalog.Node{Name: n.Host, Port: n.Port}
	}
	var tables []*catalog.Table
	relnames := map[string]string{}
	relationSeq.Lock()
	group := int64(relationSeq.next + 1)
	relationSeq.Unlock()
	for _, name := range names {
		relationSeq.Lock()
		relationSeq.next++
		relid := 20000 + relationSeq.next
		relationSeq.Unlock()
		tbl := &catalog.Table{
			RelationID: relid, Schema: "public", Name: name, Method: 'h',
			KeyColumn: "k", KeyType: 20, KeyIndex: 0,
			Columns: []catalog.Column{
				{Name: "k", TypeOID: 20, TypeName: "bigint", NotNull: true},
				{Name: "v", TypeOID: 25, TypeName: "text"},
			},
			ColocationID: group,
		}
		for i := 0; i < shards; i++ {
			lo, hi := catalog.HashRange(i, shards)
			id := int64(relid)*100 + int64(i)
			s := catalog.Shard{ID: id, RelationID: relid, Min: lo, Max: hi}
			for j := 0; j < replicas; j++ {
				node := nodes[(i+j)%len(nodes)]
				s.Placements = append(s.Placements, catalog.Placement{ID: id*10 + int64(j), ShardID: id, State: catalog.StateFinalized, Node: node})
				ExecOn(t, node, fmt.Sprintf(`CREATE TABLE %s (k bigint PRIMARY KEY, v text)`, catalog.ShardName(name, id)))
			}
			tbl.Shards = append(tbl.Shards, s)
		}
		tables = append(tables, tbl)
		relnames[name] = "public"
	}
	snap, err := catalog.NewSnapshot(1, nodes, []string{"public"}, tables, relnames)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*shardedTable, len(tables))
	for i, tbl := range tables {
		out[i] = &shardedTable{snap: snap, table: snap.TableByRelation(tbl.RelationID)}
	}
	return out
}

// plan plans sql against the table's catalog.
func (st *shardedTable) plan(t *testing.T, sql string) *planner.Plan {
	t.Helper()
	p, err := planner.New(sql, st.snap, testEnv{})
	if err != nil {
		t.Fatalf("planning %s: %v", sql, err)
	}
	return p
}

// testEnv is the metadata database's functions as the planner sees them.
type testEnv struct{}

func (testEnv) Function(name string) (planner.FunctionInfo, bool) {
	switch name {
	case "count", "sum", "min", "max", "avg":
		return planner.FunctionInfo{Aggregate: true}, true
	}
	return planner.FunctionInfo{}, false
}

func (testEnv) Describe(string) ([]planner.ColumnDesc, error) {
	return nil, errors.New("no metadata database in engine tests")
}

// testCursor is a Cursor on real servers without the driver around it: a
// new connection per shard statement (autocommit), or inside Atomically one
// per node in a transaction; no Eval, no fail-over, no fan-out limits. It logs every call a primitive makes
// ("read <shard id>", "write <shard id> on <node>", "atomically <nodes>",
// "fanout <shards>"), as Vitess's engine tests log their fake cursor's,
// and the tests assert that log.
type testCursor struct {
	mu  sync.Mutex
	log []string
	// snap and env are the catalog Statement plans against (nil: it
	// fails); it logs "statement <sql>".
	snap *catalog.Snapshot
	env  planner.Env
	// tx holds, inside Atomically, one connection per node in an open
	// transaction, committed one after the other when f succeeds (the
	// driver's two-phase commit is not the engine's to test).
	tx map[catalog.Node]driver.Conn
	// meta, when set, is the metadata database MetaQuery runs on (the
	// schema change tests'); inside Atomically it joins the atomic
	// statement's transaction (metaInTx), committed with the others.
	meta     *pgx.Conn
	metaInTx bool
}

// writeConn is a connection to node for a write: the atomic statement's
// (begun on first use), or a new one closed by release.
func (c *testCursor) writeConn(ctx context.Context, node catalog.Node) (conn driver.Conn, release func(), err error) {
	if c.tx == nil {
		conn, err := OpenNode(node)
		if err != nil {
			return nil, nil, err
		}
		return conn, func() { conn.Close() }, nil
	}
	if conn := c.tx[node]; conn != nil {
		return conn, func() {}, nil
	}
	if conn, err = OpenNode(node); err != nil {
		return nil, nil, err
	}
	if _, err := conn.(driver.ExecerContext).ExecContext(ctx, "BEGIN", nil); err != nil {
		conn.Close()
		return nil, nil, err
	}
	c.tx[node] = conn
	return conn, func() {}, nil
}

var _ Cursor = (*testCursor)(nil)

func (c *testCursor) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, fmt.Sprintf(format, args...))
}

// calls returns the log sorted: shards read in parallel log in any order.
func (c *testCursor) calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.log)
	sort.Strings(out)
	return out
}

func (c *testCursor) Bind(ctx context.Context, p plan.Targeted, nargs []driver.NamedValue) ([]any, []driver.NamedValue, error) {
	if p.ShardTarget().Eval != nil {
		return nil, nil, errors.New("testCursor: plans with Eval need the driver's session")
	}
	args := make([]any, len(nargs))
	for i, a := range nargs {
		args[i] = a.Value
	}
	return args, nargs, nil
}

func (c *testCursor) ReadShard(ctx context.Context, p plan.Targeted, idx int, sql string, args []driver.NamedValue) (driver.Rows, error) {
	s := &p.ShardTarget().Table.Shards[idx]
	c.logf("read %d", s.ID)
	pl := s.Finalized()[0]
	conn, err := OpenNode(pl.Node)
	if err != nil {
		return nil, err
	}
	rows, err := conn.(driver.QueryerContext).QueryContext(ctx, sql, args)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &testRows{Rows: rows, conn: conn, node: pl.Node}, nil
}

func (c *testCursor) WriteShard(ctx context.Context, p plan.Targeted, shard *catalog.Shard, sql string, args []driver.NamedValue, wantRows bool) (driver.Result, driver.Rows, error) {
	var res driver.Result
	var out driver.Rows
	for i, pl := range shard.Writable() {
		c.logf("write %d on %s", shard.ID, pl.Node)
		conn, release, err := c.writeConn(ctx, pl.Node)
		if err != nil {
			return nil, nil, err
		}
		if wantRows && i == 0 {
			rows, err := conn.(driver.QueryerContext).QueryContext(ctx, sql, args)
			if err == nil {
				var b *Buffered
				if b, err = ReadAll(rows); err == nil {
					res, out = Result{Rows: int64(len(b.Data))}, b
				}
			}
		} else {
			var r driver.Result
			r, err = conn.(driver.ExecerContext).ExecContext(ctx, sql, args)
			if i == 0 {
				res = r
			}
		}
		release()
		if err != nil {
			return nil, nil, err
		}
	}
	return res, out, nil
}

func (c *testCursor) Atomically(ctx context.Context, nodes []catalog.Node, f func() error) error {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.String()
	}
	sort.Strings(names)
	c.logf("atomically %s", strings.Join(names, " "))
	c.tx = map[catalog.Node]driver.Conn{}
	err := f()
	end := "COMMIT"
	if err != nil {
		end = "ROLLBACK"
	}
	if c.metaInTx {
		if _, cerr := c.meta.Exec(ctx, end); err == nil {
			err = cerr
		}
		c.metaInTx = false
	}
	for _, conn := range c.tx {
		if _, cerr := conn.(driver.ExecerContext).ExecContext(ctx, end, nil); err == nil {
			err = cerr
		}
		conn.Close()
	}
	c.tx = nil
	return err
}

func (c *testCursor) Fanout(ctx context.Context, p plan.Targeted, shards []int, mustStream bool, open func(ctx context.Context, pos int) (driver.Rows, error)) ([]driver.Rows, func(), bool, error) {
	c.logf("fanout %d", len(shards))
	sources, err := merge.Parallel(ctx, len(shards), ScatterBuffer, open)
	return sources, func() {}, false, err
}

func (c *testCursor) InTransaction() bool { return false }

// TextResults: the test pools use the extended protocol.
func (c *testCursor) TextResults() bool { return false }

func (c *testCursor) TxMode() (open, readOnly, statementSnapshots bool) { return false, false, true }

func (c *testCursor) WritePlacement(ctx context.Context, pl catalog.Placement, sql string) error {
	c.logf("write placement %d on %s", pl.ShardID, pl.Node)
	conn, release, err := c.writeConn(ctx, pl.Node)
	if err != nil {
		return err
	}
	defer release()
	_, err = conn.(driver.ExecerContext).ExecContext(ctx, sql, nil)
	return err
}

// Statement plans sql against the cursor's catalog (snap, env) and runs
// its tree on this cursor, as conn runs the application's statements; a
// statement of no distributed table runs on the metadata database.
func (c *testCursor) Statement(ctx context.Context, sql string, args []driver.NamedValue) (driver.Rows, error) {
	if c.snap == nil {
		return nil, errNotInEngine
	}
	c.logf("statement %s", sql)
	p, err := planner.New(sql, c.snap, c.env)
	if err != nil {
		return nil, err
	}
	if prim := planner.Build(p); prim != nil {
		return prim.Query(ctx, c, args)
	}
	conn, err := OpenNode(catalog.Node{Name: Servers().Nodes[0].Host, Port: Servers().Nodes[0].Port})
	if err != nil {
		return nil, err
	}
	rows, err := conn.(driver.QueryerContext).QueryContext(ctx, sql, args)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &testRows{Rows: rows, conn: conn}, nil
}

func (c *testCursor) SessionTextRows(context.Context, string, ...any) ([][]*string, error) {
	return nil, errNotInEngine
}

// MetadataVersion is the test catalog's: it never moves.
func (c *testCursor) MetadataVersion(context.Context) (int64, error) { return 1, nil }

var errNotInEngine = errors.New("testCursor: this needs the driver's session")

// OnShard runs fn on a new connection to the shard's first placement.
func (c *testCursor) OnShard(ctx context.Context, p plan.Targeted, idx int, fn func(conn *pgx.Conn) error) error {
	s := &p.ShardTarget().Table.Shards[idx]
	c.logf("on shard %d", s.ID)
	conn, err := ConnectNode(ctx, s.Finalized()[0].Node)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return fn(conn)
}

// OnSession runs fn on a new connection to the metadata database (the
// first server's "postgres" database, where metaEnv describes).
func (c *testCursor) OnSession(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	c.logf("session")
	conn, err := pgx.Connect(ctx, DSNOf(NodeOf(0)))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return fn(conn)
}

// ResultTypes is one cache for all the engine tests, as a Connector's is
// for its connections.
func (c *testCursor) ResultTypes() *TypeCache { return &testTypes }

var testTypes TypeCache

func (c *testCursor) AdminArgs(context.Context, string, string, []any) ([][]any, error) {
	return nil, errNotInEngine
}
func (c *testCursor) RunAdmin(context.Context, string, []any) error { return errNotInEngine }

// testRows are a shard's rows on their own connection, closed with them.
type testRows struct {
	driver.Rows
	conn driver.Conn
	node catalog.Node
}

func (r *testRows) Node() catalog.Node { return r.node }

func (r *testRows) Close() error {
	err := r.Rows.Close()
	if cerr := r.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

func (r *testRows) ColumnTypeDatabaseTypeName(i int) string {
	return r.Rows.(driver.RowsColumnTypeDatabaseTypeName).ColumnTypeDatabaseTypeName(i)
}

func (r *testRows) ColumnTypeScanType(i int) reflect.Type {
	return r.Rows.(driver.RowsColumnTypeScanType).ColumnTypeScanType(i)
}

// args makes driver arguments of values.
func args(vals ...any) []driver.NamedValue {
	out := make([]driver.NamedValue, len(vals))
	for i, v := range vals {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

// readRows reads rows whole, each row's values formatted with %v and
// joined with spaces.
func readRows(t *testing.T, rows driver.Rows, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadAll(rows)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(b.Data))
	for i, r := range b.Data {
		vals := make([]string, len(r))
		for j, v := range r {
			vals[j] = fmt.Sprint(v)
		}
		out[i] = strings.Join(vals, " ")
	}
	return out
}

// fill inserts keys 1..n with values "v<k>" through the Route primitive.
func (st *shardedTable) fill(t *testing.T, n int) {
	t.Helper()
	p := st.plan(t, `INSERT INTO `+st.table.Name+` (k, v) VALUES ($1, $2)`)
	vc := &testCursor{}
	for k := 1; k <= n; k++ {
		if _, err := planner.Build(p).Exec(context.Background(), vc, args(int64(k), fmt.Sprintf("v%d", k))); err != nil {
			t.Fatal(err)
		}
	}
}

// queryOn runs sql on a server directly and returns its rows as readRows
// does.
func queryOn(t *testing.T, node catalog.Node, sql string) []string {
	t.Helper()
	c, err := OpenNode(node)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.(driver.QueryerContext).QueryContext(context.Background(), sql, nil)
	return readRows(t, rows, err)
}

// rowsOf is readRows for a call's two results: rowsOf(t)(prim.Query(...)).
func rowsOf(t *testing.T) func(driver.Rows, error) []string {
	return func(rows driver.Rows, err error) []string {
		t.Helper()
		return readRows(t, rows, err)
	}
}

// MetaQuery runs on the test's metadata database (meta), when it has one.
func (c *testCursor) MetaQuery(ctx context.Context, sql string, args ...any) ([][]any, error) {
	if c.meta == nil {
		return nil, errNotInEngine
	}
	c.logf("meta %s", strings.Fields(sql)[0])
	if c.tx != nil && !c.metaInTx {
		if _, err := c.meta.Exec(ctx, "BEGIN"); err != nil {
			return nil, err
		}
		c.metaInTx = true
	}
	rows, err := c.meta.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

func (c *testCursor) SchemaChanged(_ context.Context, version int64) error {
	c.logf("schema changed %d", version)
	return nil
}
