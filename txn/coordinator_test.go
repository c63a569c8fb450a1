package txn

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// cluster is two PostgreSQL servers, the workers; the first also holds the
// metadata database "meta". Started once by TestMain.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := pgtest.Start(ctx, 2)
	if err == nil {
		err = setupMeta(ctx, c)
	}
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "txn tests: starting 2 PostgreSQL servers: %v\n", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	_ = c.Close()
	os.Exit(code)
}

// setupMeta creates the metadata database with pgshard's schema and the
// commit record, as the driver does when it initializes.
func setupMeta(ctx context.Context, c *pgtest.Cluster) error {
	admin, err := pgx.Connect(ctx, c.Nodes[0].DSN(""))
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE meta"); err != nil {
		return err
	}
	meta, err := pgx.Connect(ctx, c.Nodes[0].DSN("meta"))
	if err != nil {
		return err
	}
	defer meta.Close(ctx)
	if err := catalog.EnsureSchema(ctx, meta); err != nil {
		return err
	}
	return EnsureCommitRecord(ctx, meta)
}

// testCluster is a Cluster on the test servers; it records the placements
// it was asked to mark inactive.
type testCluster struct {
	meta   *pgxpool.Pool
	mu     sync.Mutex
	pools  map[catalog.Node]*pgxpool.Pool
	marked []catalog.Placement
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	meta, err := pgxpool.New(context.Background(), cluster.Nodes[0].DSN("meta"))
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{meta: meta, pools: map[catalog.Node]*pgxpool.Pool{}}
	t.Cleanup(func() {
		meta.Close()
		for _, p := range tc.pools {
			p.Close()
		}
	})
	return tc
}

func (tc *testCluster) Meta() *pgxpool.Pool { return tc.meta }

func (tc *testCluster) Nodes() []catalog.Node {
	out := make([]catalog.Node, len(cluster.Nodes))
	for i := range cluster.Nodes {
		out[i] = nodeOf(i)
	}
	return out
}

func (tc *testCluster) NodePool(n catalog.Node) (*pgxpool.Pool, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if p := tc.pools[n]; p != nil {
		return p, nil
	}
	cfg, err := tc.NodeConfig(n)
	if err != nil {
		return nil, err
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	tc.pools[n] = p
	return p, nil
}

func (tc *testCluster) NodeConfig(n catalog.Node) (*pgxpool.Config, error) {
	for i := range cluster.Nodes {
		if nodeOf(i) == n {
			return pgxpool.ParseConfig(cluster.Nodes[i].DSN(""))
		}
	}
	return nil, fmt.Errorf("no node %s", n)
}

func (tc *testCluster) MarkInactive(_ context.Context, placements []catalog.Placement) error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.marked = append(tc.marked, placements...)
	return nil
}

func nodeOf(i int) catalog.Node {
	return catalog.Node{Name: cluster.Nodes[i].Host, Port: cluster.Nodes[i].Port}
}

// connect opens a connection to worker i, with co's tracer when co is not
// nil (as the driver's pools carry it).
func connect(t *testing.T, i int, co *Coordinator) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(cluster.Nodes[i].DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	if co != nil {
		cfg.Tracer = co.Tracer(nodeOf(i))
	}
	cfg.AfterConnect = AfterConnect
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// exec runs sql on c and fails the test on error.
func exec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// makeTable creates table name (k int PRIMARY KEY, v text) on both workers.
func makeTable(t *testing.T, name string) {
	t.Helper()
	for i := range cluster.Nodes {
		c := connect(t, i, nil)
		exec(t, c, "CREATE TABLE "+name+" (k int PRIMARY KEY, v text)")
	}
}

// valueOn reads v of key k of table on worker i ("" when there is none).
func valueOn(t *testing.T, i int, table string, k int) string {
	t.Helper()
	c := connect(t, i, nil)
	var v string
	err := c.QueryRow(context.Background(), "SELECT v FROM "+table+" WHERE k = $1", k).Scan(&v)
	if err != nil && err != pgx.ErrNoRows {
		t.Fatal(err)
	}
	return v
}

// prepared lists the prepared transactions named pgshard_... on worker i.
func prepared(t *testing.T, i int) []string {
	t.Helper()
	c := connect(t, i, nil)
	rows, err := c.Query(context.Background(), `SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'pgshard\_%' ORDER BY gid`)
	if err != nil {
		t.Fatal(err)
	}
	gids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return gids
}

// TestCommit: a write on two workers commits on both (PREPARE, the
// decision in the commit record, COMMIT PREPARED), passing every step in
// order; one whose PREPARE fails rolls back on both and leaves nothing
// prepared.
func TestCommit(t *testing.T) {
	makeTable(t, "commit_kv")
	co := New(newTestCluster(t))
	ctx := context.Background()
	var steps []string
	Step = func(s string) { steps = append(steps, s) }
	defer func() { Step = func(string) {} }()

	p0, p1 := connect(t, 0, nil), connect(t, 1, nil)
	exec(t, p0, "BEGIN")
	exec(t, p0, "INSERT INTO commit_kv VALUES (1, 'a')")
	exec(t, p1, "BEGIN")
	exec(t, p1, "INSERT INTO commit_kv VALUES (1, 'b')")
	ps := []Participant{&testParticipant{node: nodeOf(0), conn: p0}, &testParticipant{node: nodeOf(1), conn: p1}}
	if err := co.Commit(ctx, nil, ps); err != nil {
		t.Fatal(err)
	}
	if a, b := valueOn(t, 0, "commit_kv", 1), valueOn(t, 1, "commit_kv", 1); a != "a" || b != "b" {
		t.Fatalf("after commit: %q on worker 0, %q on worker 1; want a and b", a, b)
	}
	if want := []string{StepAfterPrepare, StepBeforeDecision, StepAfterDecision, StepAfterCommitPrepared}; strings.Join(steps, " ") != strings.Join(want, " ") {
		t.Fatalf("steps %q, want %q", steps, want)
	}
	if g0, g1 := prepared(t, 0), prepared(t, 1); len(g0)+len(g1) != 0 {
		t.Fatalf("left prepared: %q %q", g0, g1)
	}

	// Worker 1's transaction cannot be prepared: it used a temporary table
	// (PREPARE fails), or a statement of it failed (PostgreSQL rolls it
	// back instead of preparing it, without an error). Worker 0's prepared
	// transaction is rolled back.
	for _, fail := range []string{"CREATE TEMP TABLE commit_tmp (i int)", "INSERT INTO commit_kv VALUES (1, 'duplicate key')"} {
		steps = nil
		exec(t, p0, "BEGIN")
		exec(t, p0, "INSERT INTO commit_kv VALUES (2, 'a')")
		exec(t, p1, "BEGIN")
		exec(t, p1, "INSERT INTO commit_kv VALUES (2, 'b')")
		_, _ = p1.Exec(ctx, fail)
		if err := co.Commit(ctx, nil, ps); err == nil || !strings.Contains(err.Error(), "prepare") {
			t.Fatalf("commit after %s: %v, want a prepare error", fail, err)
		}
		if v := valueOn(t, 0, "commit_kv", 2); v != "" {
			t.Fatalf("worker 0 kept %q of a transaction that failed on worker 1 (%s)", v, fail)
		}
		if len(steps) != 0 {
			t.Fatalf("steps %q after a failed prepare, want none", steps)
		}
		if g0, g1 := prepared(t, 0), prepared(t, 1); len(g0)+len(g1) != 0 {
			t.Fatalf("left prepared: %q %q", g0, g1)
		}
	}
}

// testParticipant is a worker's connection in a transaction.
type testParticipant struct {
	node catalog.Node
	conn *pgx.Conn
}

func (p *testParticipant) Node() catalog.Node              { return p.node }
func (p *testParticipant) Conn() *pgx.Conn                 { return p.conn }
func (p *testParticipant) Placements() []catalog.Placement { return nil }

// prepareInDoubt leaves a prepared transaction on worker i that wrote
// (k, v) into table (an upsert), named as Commit names them, and returns
// its id; with decided set, its commit record says committed, as when the
// client died after the decision.
func prepareInDoubt(t *testing.T, co *Coordinator, i int, table string, k int, v string, decided bool) string {
	t.Helper()
	id := newTxID()
	c := connect(t, i, nil)
	exec(t, c, "BEGIN")
	exec(t, c, "INSERT INTO "+table+" VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v)
	exec(t, c, "PREPARE TRANSACTION "+quoteLiteral(participantGID(id, 0, 0)))
	if decided {
		if _, err := co.cl.Meta().Exec(context.Background(), insertCommitted, id); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// TestRecover: Recover commits an in-doubt transaction whose commit record
// says committed, and rolls back one without a record (presumed abort,
// writing the abort record first); RecoverNode does the same on one worker.
func TestRecover(t *testing.T) {
	makeTable(t, "recover_kv")
	co := New(newTestCluster(t))
	ctx := context.Background()
	prepareInDoubt(t, co, 0, "recover_kv", 1, "decided", true)
	undecided := prepareInDoubt(t, co, 1, "recover_kv", 2, "undecided", false)
	committed, rolledBack, err := co.Recover(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if committed != 1 || rolledBack != 1 {
		t.Fatalf("Recover: %d committed, %d rolled back; want 1 and 1", committed, rolledBack)
	}
	if a, b := valueOn(t, 0, "recover_kv", 1), valueOn(t, 1, "recover_kv", 2); a != "decided" || b != "" {
		t.Fatalf("after Recover: %q on worker 0, %q on worker 1; want decided and nothing", a, b)
	}
	if decided, commit, err := co.lookupDecision(ctx, undecided); err != nil || !decided || commit {
		t.Fatalf("record of the undecided transaction: decided %v, commit %v, %v; want an abort record", decided, commit, err)
	}

	prepareInDoubt(t, co, 1, "recover_kv", 3, "one node", true)
	if committed, rolledBack, err := co.RecoverNode(ctx, nodeOf(0), 0); err != nil || committed+rolledBack != 0 {
		t.Fatalf("RecoverNode on worker 0: %d, %d, %v; want nothing to do", committed, rolledBack, err)
	}
	if committed, _, err := co.RecoverNode(ctx, nodeOf(1), 0); err != nil || committed != 1 {
		t.Fatalf("RecoverNode on worker 1: %d committed, %v; want 1", committed, err)
	}
	if v := valueOn(t, 1, "recover_kv", 3); v != "one node" {
		t.Fatalf("after RecoverNode: %q", v)
	}
}

// TestLockWatch: a statement waiting for the row lock of a decided
// in-doubt transaction has it finished by the lock-wait watcher within
// moments, long before the resolver (not running here) would.
func TestLockWatch(t *testing.T) {
	makeTable(t, "lockwatch_kv")
	co := New(newTestCluster(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { co.RunLockWatch(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	c := connect(t, 1, co)
	exec(t, c, "INSERT INTO lockwatch_kv VALUES (1, 'before')")
	prepareInDoubt(t, co, 1, "lockwatch_kv", 1, "in doubt", true)
	start := time.Now()
	qctx, qcancel := context.WithTimeout(ctx, 20*time.Second)
	defer qcancel()
	if _, err := c.Exec(qctx, "UPDATE lockwatch_kv SET v = v || ' then updated' WHERE k = 1"); err != nil {
		t.Fatalf("the waiting statement: %v", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("waited %v for the in-doubt transaction", waited)
	}
	if v := valueOn(t, 1, "lockwatch_kv", 1); v != "in doubt then updated" {
		t.Fatalf("row %q, want the in-doubt write committed and then updated", v)
	}
	if n := co.lockwait.resolved.Load(); n != 1 {
		t.Fatalf("the watcher finished %d transactions, want 1", n)
	}
}
