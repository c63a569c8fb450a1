package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// The package's tests share one local cluster: node 0 is the metadata
// database, nodes 1..4 are workers. Each test works in its own database
// (created on every node), so tests do not see each other's tables.
var (
	clusterOnce sync.Once
	cluster     *pgtest.Cluster
	clusterErr  error
	dbSeq       int
	dbSeqMu     sync.Mutex
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Close()
	}
	os.Exit(code)
}

func sharedCluster(t testing.TB) *pgtest.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cluster, clusterErr = pgtest.Start(ctx, 5)
	})
	if clusterErr != nil {
		t.Fatalf("starting the local cluster: %v", clusterErr)
	}
	return cluster
}

// env is one test's view of the cluster: a fresh database on every node,
// with the workers registered, opened through pgshard.
type env struct {
	t       testing.TB
	c       *pgtest.Cluster
	dbname  string
	DSN     string
	DB      *sql.DB
	workers []*pgtest.Node
	direct  map[*pgtest.Node]*pgx.Conn
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, sharedCluster(t), "")
}

// newEnvOn is newEnv on cluster c, whose node 0 is the metadata database:
// each node's database is made with CREATE DATABASE name createOptions
// (such as "TEMPLATE template0 LOCALE_PROVIDER libc LOCALE 'C'").
func newEnvOn(t testing.TB, c *pgtest.Cluster, createOptions string) *env {
	t.Helper()
	return newEnvWithWorkers(t, c, createOptions, len(c.Nodes)-1)
}

// newEnvWithWorkers is newEnvOn with only the first n workers of c
// registered.
func newEnvWithWorkers(t testing.TB, c *pgtest.Cluster, createOptions string, n int) *env {
	t.Helper()
	dbSeqMu.Lock()
	dbSeq++
	name := fmt.Sprintf("t%d_%s", dbSeq, strings.ToLower(strings.NewReplacer("/", "_", " ", "_", "-", "_", "=", "_").Replace(t.Name())))
	if len(name) > 60 {
		name = name[:60]
	}
	dbSeqMu.Unlock()
	ctx := context.Background()
	for _, node := range c.Nodes {
		if !node.Running() {
			if err := node.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		conn, err := pgx.Connect(ctx, node.DSN(""))
		if err != nil {
			t.Fatalf("connect %s: %v", node.Addr(), err)
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" "+createOptions); err != nil {
			t.Fatalf("create database on %s: %v", node.Addr(), err)
		}
		conn.Close(ctx)
	}
	e := &env{t: t, c: c, dbname: name, DSN: c.Nodes[0].DSN(name), workers: c.Nodes[1 : 1+n]}
	db, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	e.DB = db
	t.Cleanup(func() { db.Close() })
	for _, w := range e.workers {
		e.exec(`SELECT master_add_node($1, $2)`, w.Host, w.Port)
	}
	return e
}

func (e *env) exec(query string, args ...any) sql.Result {
	e.t.Helper()
	res, err := e.DB.Exec(query, args...)
	if err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return res
}

func (e *env) queryInt(query string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.DB.QueryRow(query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// worker returns a pgx connection straight to a worker's database,
// bypassing pgshard; one per node, reconnected when the node restarted.
func (e *env) worker(n *pgtest.Node) *pgx.Conn {
	e.t.Helper()
	if c := e.direct[n]; c != nil && !c.IsClosed() && c.Ping(context.Background()) == nil {
		return c
	}
	conn, err := pgx.Connect(context.Background(), n.DSN(e.dbname))
	if err != nil {
		e.t.Fatal(err)
	}
	if e.direct == nil {
		e.direct = map[*pgtest.Node]*pgx.Conn{}
	}
	e.direct[n] = conn
	e.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
