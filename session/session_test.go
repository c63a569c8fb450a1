package session_test

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/pgtest"
	"github.com/pgshard/pgshard/planner"
	"github.com/pgshard/pgshard/session"
)

// servers are the PostgreSQL servers of the package's tests, started once
// by TestMain: node 0 holds the metadata, the others are workers.
var servers *pgtest.Cluster

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := pgtest.Start(ctx, 3)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "session tests: starting 3 PostgreSQL servers: %v\n", err)
		os.Exit(1)
	}
	servers = c
	code := m.Run()
	_ = c.Close()
	os.Exit(code)
}

// fixture is one test's Cluster and Session, without database/sql around
// them, on a database of its own on every server, with the workers added
// and table kv (k bigint PRIMARY KEY, v text) distributed in 4 shards of 2
// placements each (one on each worker).
type fixture struct {
	t    *testing.T
	db   string
	cl   *session.Cluster
	s    *session.Session
	meta *pgx.Conn
}

func newFixture(t *testing.T, db string) *fixture {
	t.Helper()
	ctx := context.Background()
	for _, n := range servers.Nodes {
		c, err := pgx.Connect(ctx, n.DSN(""))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(ctx, "CREATE DATABASE "+db)
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	dsn := servers.Nodes[0].DSN(db)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, cl: session.NewCluster(dsn, cfg, 4)}
	if err := f.cl.Init(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.cl.Close() })
	f.s = session.New(f.cl)
	t.Cleanup(func() { _ = f.s.Close() })
	if f.meta, err = pgx.Connect(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.meta.Close(context.Background()) })
	if _, err := f.s.PassthroughExec(ctx, "CREATE TABLE kv (k bigint PRIMARY KEY, v text)", nil); err != nil {
		t.Fatal(err)
	}
	for _, w := range servers.Nodes[1:] {
		f.exec("SELECT master_add_node($1, $2)", w.Host, w.Port)
	}
	f.exec("SELECT master_create_distributed_table('kv', 'k')")
	f.exec("SELECT master_create_worker_shards('kv', 4, 2)")
	return f
}

// plan plans query against the Cluster's catalog, as the driver does.
func (f *fixture) plan(query string) engine.Primitive {
	f.t.Helper()
	p, err := planner.New(query, f.cl.Snapshot(), f.cl.PlannerEnv(context.Background()))
	if err != nil {
		f.t.Fatalf("planning %s: %v", query, err)
	}
	prim := planner.Build(p)
	if prim == nil {
		f.t.Fatalf("%s has no tree of primitives", query)
	}
	return prim
}

func namedValues(args []any) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return out
}

// exec runs query's tree with the Session as its Cursor.
func (f *fixture) exec(query string, args ...any) int64 {
	f.t.Helper()
	res, err := f.plan(query).Exec(context.Background(), f.s, namedValues(args))
	if err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// keys runs query's tree, which returns one bigint column, and returns its
// values in order.
func (f *fixture) keys(query string, args ...any) []int64 {
	f.t.Helper()
	rows, err := f.plan(query).Query(context.Background(), f.s, namedValues(args))
	if err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []int64
	dest := make([]driver.Value, 1)
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			return out
		}
		if err != nil {
			f.t.Fatalf("%s: %v", query, err)
		}
		out = append(out, dest[0].(int64))
	}
}

// placement is a row of the metadata's shard_placement.
type placement struct {
	shard int64
	state catalog.ShardState
	port  int
}

func (f *fixture) placements() []placement {
	f.t.Helper()
	rows, err := f.meta.Query(context.Background(), `SELECT shard_id, shard_state, node_port
		FROM pgs_distribution_metadata.shard_placement ORDER BY shard_id, node_port`)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []placement
	for rows.Next() {
		var p placement
		var state int32
		if err := rows.Scan(&p.shard, &state, &p.port); err != nil {
			f.t.Fatal(err)
		}
		p.state = catalog.ShardState(state)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// keysOn reads the keys every shard table on worker w holds, straight from
// the worker.
func (f *fixture) keysOn(w *pgtest.Node) []int64 {
	f.t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, w.DSN(f.db))
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close(ctx)
	var out []int64
	for _, p := range f.placements() {
		if p.port != w.Port {
			continue
		}
		rows, err := c.Query(ctx, fmt.Sprintf("SELECT k FROM kv_%d", p.shard))
		if err != nil {
			f.t.Fatal(err)
		}
		ks, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, ks...)
	}
	slices.Sort(out)
	return out
}

// TestSessionIsTheCursor runs primitives with a Session as their Cursor and
// no database/sql around it: a replicated write reaches every placement, a
// scatter reads every shard, a transaction's participants roll back
// together, and a write with a worker down succeeds on the other placement
// and marks the one it missed inactive, which reads then fail over from.
func TestSessionIsTheCursor(t *testing.T) {
	f := newFixture(t, "session_cursor")
	ctx := context.Background()
	w1, w2 := servers.Nodes[1], servers.Nodes[2]
	want := []int64{1, 2, 3, 4, 5, 6, 7, 8}
	for _, k := range want {
		if n := f.exec("INSERT INTO kv (k, v) VALUES ($1, $2)", k, fmt.Sprint("v", k)); n != 1 {
			t.Fatalf("INSERT of %d affected %d rows", k, n)
		}
	}
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"every placement took every write", func(t *testing.T) {
			for _, w := range []*pgtest.Node{w1, w2} {
				if got := f.keysOn(w); !slices.Equal(got, want) {
					t.Errorf("worker %s holds %v, want %v", w.Addr(), got, want)
				}
			}
		}},
		{"a scatter reads every shard, merged in order", func(t *testing.T) {
			if got := f.keys("SELECT k FROM kv ORDER BY k"); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		}},
		{"a transaction's participants roll back together", func(t *testing.T) {
			tx, err := f.s.Begin(driver.TxOptions{})
			if err != nil {
				t.Fatal(err)
			}
			f.exec("INSERT INTO kv (k, v) VALUES (101, 'a'), (102, 'b'), (103, 'c'), (104, 'd')")
			f.exec("UPDATE kv SET v = 'changed'")
			if got := f.keys("SELECT k FROM kv WHERE v = 'changed' ORDER BY k"); len(got) != 12 {
				t.Errorf("inside the transaction %d rows are changed, want 12", len(got))
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			if f.s.InTransaction() {
				t.Fatal("the Session is still in a transaction after Rollback")
			}
			if got := f.keys("SELECT k FROM kv WHERE v = 'changed' OR k > 100"); len(got) != 0 {
				t.Errorf("after the rollback %v are changed or inserted", got)
			}
		}},
		{"a write with a worker down marks the placement it missed", func(t *testing.T) {
			if err := w2.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := w2.Start(ctx); err != nil {
					t.Error(err)
				}
			})
			if n := f.exec("INSERT INTO kv (k, v) VALUES (9, 'v9')"); n != 1 {
				t.Fatalf("INSERT affected %d rows", n)
			}
			var inactive []placement
			for _, p := range f.placements() {
				if p.state != catalog.StateFinalized {
					inactive = append(inactive, p)
				}
			}
			if len(inactive) != 1 || inactive[0].port != w2.Port || inactive[0].state != catalog.StateInactive {
				t.Fatalf("placements not finalized: %+v; want one, inactive, on %s", inactive, w2.Addr())
			}
			if got := f.keys("SELECT k FROM kv ORDER BY k"); !slices.Equal(got, append(want, 9)) {
				t.Errorf("read with %s down: got %v, want %v", w2.Addr(), got, append(want, 9))
			}
		}},
	}
	for _, st := range steps {
		t.Run(st.name, st.run)
	}
}
