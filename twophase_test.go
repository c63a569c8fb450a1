package pgshard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// hangLimit bounds a statement that must not wait for an in-doubt
// transaction: far above what it takes when nothing waits, far below the
// minute old recovery needed. It detects a hang; it is not a timing target.
const hangLimit = 20 * time.Second

// kvValue reads v of key k through pgshard.
func kvValue(e *env, k int64) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()
	var v string
	err := e.DB.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1`, k).Scan(&v)
	return v, err
}

// waitNoPrepared waits until no worker holds a prepared transaction (the
// background resolver finished them), failing the test after hangLimit.
func waitNoPrepared(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for {
		n := e.preparedXacts()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d prepared transactions still there after %v", n, hangLimit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The worker of a replica stops after the participants prepared and the
// commit was decided, before its COMMIT PREPARED (a rolling restart reaching
// it). The write is acknowledged. Then the rolling restart goes on: that
// worker comes back and the other one stops. A read must not return the
// value from before the acknowledged write, and with both workers up a
// write of the row must not wait for the prepared transaction.
func TestRollingRestartBetweenPrepareAndCommitPrepared(t *testing.T) {
	e := setupKV(t, 4, 2)
	ctx := context.Background()
	const k = 7
	e.exec(`INSERT INTO kv (k, v) VALUES ($1, 'old')`, k)
	ps := placementsOfKey(e, "kv", k)
	first, second := workerNode(e, ps[0].Host, ps[0].Port), workerNode(e, ps[1].Host, ps[1].Port)
	t.Cleanup(func() {
		first.Start(context.Background())
		second.Start(context.Background())
	})

	var armed atomic.Bool
	armed.Store(true)
	restore := pgshard.SetCommitStep(func(step string) {
		if step == pgshard.StepAfterDecision && armed.CompareAndSwap(true, false) {
			if err := second.Stop(ctx); err != nil {
				t.Error(err)
			}
		}
	})
	wctx, cancel := context.WithTimeout(ctx, hangLimit)
	_, err := e.DB.ExecContext(wctx, `UPDATE kv SET v = 'new' WHERE k = $1`, k)
	cancel()
	restore()
	if armed.Load() {
		t.Fatal("the write never reached the step after the decision")
	}
	t.Logf("write with the second replica's worker stopped before COMMIT PREPARED: %v; placements now %+v", err, placementsOfKey(e, "kv", k))
	if err != nil {
		t.Fatalf("the write failed with one replica's worker down: %v", err)
	}

	// The rolling restart: the second worker comes back, the first stops.
	if err := second.Start(ctx); err != nil {
		t.Fatal(err)
	}
	reopenPgshardDB(e)
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	v, rerr := kvValue(e, k)
	t.Logf("read with the first worker stopped: %q, %v", v, rerr)
	if rerr == nil && v != "new" {
		t.Errorf("read %q after the write of 'new' was acknowledged", v)
	}

	// Both up: a write of the row finishes.
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	reopenPgshardDB(e)
	start := time.Now()
	uctx, cancel := context.WithTimeout(ctx, hangLimit)
	_, err = e.DB.ExecContext(uctx, `UPDATE kv SET v = 'newer' WHERE k = $1`, k)
	cancel()
	t.Logf("write with both workers up: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("a write of the row with both workers up: %v", err)
	}
	waitNoPrepared(t, e)
	repairOneSourceEach(e, "kv")
	e.assertReplicasIdentical("kv")
	if v, err := kvValue(e, k); err != nil || v != "newer" {
		t.Fatalf("after repair: %q, %v", v, err)
	}
}

// The worker of the first placement (which held the commit decision
// before) crashes as a machine does, after every participant prepared and
// before the commit is decided. The write is acknowledged, its value is
// visible, and the surviving replica's row is not left locked: the next
// write of it succeeds.
func TestWholeNodeCrashDuringCommit(t *testing.T) {
	e := setupKV(t, 4, 2)
	ctx := context.Background()
	const k = 7
	e.exec(`INSERT INTO kv (k, v) VALUES ($1, 'old')`, k)
	ps := placementsOfKey(e, "kv", k)
	first := workerNode(e, ps[0].Host, ps[0].Port)
	t.Cleanup(func() { first.Start(context.Background()) })

	var armed atomic.Bool
	armed.Store(true)
	restore := pgshard.SetCommitStep(func(step string) {
		if step == pgshard.StepBeforeDecision && armed.CompareAndSwap(true, false) {
			if err := first.Crash(); err != nil {
				t.Error(err)
			}
		}
	})
	wctx, cancel := context.WithTimeout(ctx, hangLimit)
	_, err := e.DB.ExecContext(wctx, `UPDATE kv SET v = 'new' WHERE k = $1`, k)
	cancel()
	restore()
	if armed.Load() {
		t.Fatal("the write never reached the step before the decision")
	}
	t.Logf("write with the first placement's worker crashed before the decision: %v; placements now %+v", err, placementsOfKey(e, "kv", k))
	if err != nil {
		t.Errorf("the write failed with one replica's worker crashed: %v", err)
	}
	want := "new"
	if err != nil {
		want = "old"
	}
	v, rerr := kvValue(e, k)
	t.Logf("read: %q, %v", v, rerr)
	if rerr != nil || v != want {
		t.Errorf("read %q, %v; want %q", v, rerr, want)
	}
	start := time.Now()
	uctx, cancel := context.WithTimeout(ctx, hangLimit)
	_, err = e.DB.ExecContext(uctx, `UPDATE kv SET v = 'newer' WHERE k = $1`, k)
	cancel()
	t.Logf("next write of the row, first worker still down: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("the surviving replica's row is locked: %v", err)
	}
	if v, err := kvValue(e, k); err != nil || v != "newer" {
		t.Fatalf("after the next write: %q, %v", v, err)
	}
	// The worker comes back; the process's resolver commits what it
	// prepared, and its placement is repaired.
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitNoPrepared(t, e)
	repairOneSourceEach(e, "kv")
	e.assertReplicasIdentical("kv")
}

// proxiedKV is a kv table (4 shards, 2 replicas) whose metadata database
// and two workers are reached through proxies.
type proxiedKV struct {
	e       *env
	meta    *pgtest.Proxy
	workers []*pgtest.Proxy
	behind  map[int]*pgtest.Node // proxy port -> node
}

func newProxiedKV(t *testing.T) *proxiedKV {
	t.Helper()
	c := sharedCluster(t)
	ctx := context.Background()
	dbSeqMu.Lock()
	dbSeq++
	name := fmt.Sprintf("t%d_proxied", dbSeq)
	dbSeqMu.Unlock()
	nodes := c.Nodes[:3]
	for _, n := range nodes {
		if !n.Running() {
			if err := n.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		conn, err := pgx.Connect(ctx, n.DSN(""))
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	pk := &proxiedKV{behind: map[int]*pgtest.Node{}}
	for i, n := range nodes {
		p, err := pgtest.NewProxy(n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		pk.behind[p.Port] = n
		if i == 0 {
			pk.meta = p
		} else {
			pk.workers = append(pk.workers, p)
		}
	}
	dsn := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pk.meta.Addr(), name)
	db, err := sql.Open("pgshard", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pk.e = &env{t: t, c: c, dbname: name, DSN: dsn, DB: db}
	for _, p := range pk.workers {
		pk.e.exec(`SELECT master_add_node($1, $2)`, p.Host, p.Port)
	}
	pk.e.exec(`CREATE TABLE kv (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	pk.e.exec(`SELECT master_create_distributed_table('kv', 'k')`)
	pk.e.exec(`SELECT master_create_worker_shards('kv', 4, 2)`)
	return pk
}

// direct reads k's value on every placement, and counts the prepared
// transactions on the workers, straight from the servers.
func (pk *proxiedKV) direct(k int64) (values []string, prepared int) {
	pk.e.t.Helper()
	ctx := context.Background()
	// Prepared transactions first: when none is left, the values read
	// after are final (a resolver finishing one meanwhile cannot make them
	// look different).
	for _, w := range pk.workers {
		conn, err := pgx.Connect(ctx, pk.behind[w.Port].DSN(pk.e.dbname))
		if err != nil {
			pk.e.t.Fatal(err)
		}
		var n int
		err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()`).Scan(&n)
		conn.Close(ctx)
		if err != nil {
			pk.e.t.Fatal(err)
		}
		prepared += n
	}
	for _, p := range placementsOfKey(pk.e, "kv", k) {
		conn, err := pgx.Connect(ctx, pk.behind[p.Port].DSN(pk.e.dbname))
		if err != nil {
			pk.e.t.Fatal(err)
		}
		var v string
		err = conn.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(v, '') FROM kv_%d WHERE k = $1`, p.ShardID), k).Scan(&v)
		conn.Close(ctx)
		if err != nil {
			pk.e.t.Fatal(err)
		}
		values = append(values, v)
	}
	return values, prepared
}

// The connection that carries the statement deciding a replicated write's
// commit dies: after the server ran it (its answer is lost), or before the
// server got it. Whichever server decides (the first placement's COMMIT in
// the coordinator design, the commit record's INSERT in the metadata
// database now), the client must not guess: it finds the outcome from the
// decision and finishes the commit or the rollback everywhere before it
// returns, leaving no prepared transaction behind.
func TestLostConnectionAtCommitDecision(t *testing.T) {
	pk := newProxiedKV(t)
	cases := []struct {
		name         string
		beforeServer bool
		want         string // the value on every placement afterwards
	}{
		{"answer lost after the decision ran", false, "new"},
		{"request lost before reaching the server", true, "old"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := int64(100 + i)
			pk.e.exec(`INSERT INTO kv (k, v) VALUES ($1, 'old')`, k)
			// The deciding statement: the coordinator's COMMIT (a simple
			// query "COMMIT") on a worker, or the INSERT of the
			// transaction's id (pgshard_m_...) into the metadata database.
			fired := []<-chan struct{}{pk.meta.CutOn([]byte("pgshard_m_"), c.beforeServer)}
			for _, w := range pk.workers {
				fired = append(fired, w.CutOn([]byte("COMMIT\x00"), c.beforeServer))
			}
			ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
			_, err := pk.e.DB.ExecContext(ctx, `UPDATE kv SET v = 'new' WHERE k = $1`, k)
			cancel()
			var where []string
			for j, f := range fired {
				select {
				case <-f:
					where = append(where, fmt.Sprint("proxy ", j))
				default:
				}
			}
			// Disarm what did not fire.
			pk.meta.CutOn([]byte("\x00never\x00"), false)
			for _, w := range pk.workers {
				w.CutOn([]byte("\x00never\x00"), false)
			}
			values, prepared := pk.direct(k)
			t.Logf("cut at %v; write: %v; placements hold %q; %d prepared transactions", where, err, values, prepared)
			if len(where) != 1 {
				t.Fatalf("the cut fired at %v, want exactly one server", where)
			}
			if c.want == "new" && err != nil {
				t.Errorf("the write was decided committed, but failed: %v", err)
			}
			if c.want == "old" {
				if err == nil {
					t.Errorf("the write was acknowledged, but its decision never reached the server")
				} else if st := sqlState(t, err); st == "08007" || !strings.HasPrefix(st, "08") {
					t.Errorf("SQLSTATE %s, want a connection failure whose outcome is known (rolled back): %v", st, err)
				}
			}
			for _, v := range values {
				if v != c.want {
					t.Errorf("placements hold %q, want %q on each", values, c.want)
					break
				}
			}
			if prepared != 0 {
				t.Errorf("%d prepared transactions left behind", prepared)
			}
		})
	}
}

// The client dies right after the commit of a replicated write was decided,
// before any COMMIT PREPARED: both placements keep the row locked by a
// prepared transaction. The next write of the row must not wait for a
// minute-long recovery: the resolver finishes decided transactions within
// seconds.
func TestDecidedInDoubtTransactionIsFinishedPromptly(t *testing.T) {
	if os.Getenv(faultDSNEnv) != "" {
		t.Skip("in the child")
	}
	e := newEnv(t)
	createFaultTable(e, "r", 2)
	if got := runFaultChild(t, e, "autocommit-replicated", "r", "after-decision"); got != "killed" {
		t.Fatalf("child %s", got)
	}
	t.Logf("prepared transactions after the client died: %d", preparedOnAllNodes(e))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	_, err := e.DB.ExecContext(ctx, `UPDATE r SET v = 'after' WHERE k = 7`)
	cancel()
	t.Logf("next write of the row: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("the next write of the row: %v", err)
	}
	if n := preparedOnAllNodes(e); n != 0 {
		t.Errorf("%d prepared transactions left", n)
	}
	e.assertReplicasIdentical("r")
}

// The metadata database stops answering while the commit is decided: the
// outcome cannot be found, the write fails with SQLSTATE 08007 (not a
// guess), and once the metadata database answers again the resolver
// finishes the transaction the same way on every placement.
func TestUnreachableDecisionIsLeftToTheResolver(t *testing.T) {
	pk := newProxiedKV(t)
	const k = 100
	pk.e.exec(`INSERT INTO kv (k, v) VALUES ($1, 'old')`, k)
	defer pgshard.SetCommitTimeout(2 * time.Second)()
	var armed atomic.Bool
	armed.Store(true)
	restore := pgshard.SetCommitStep(func(step string) {
		if step == pgshard.StepBeforeDecision && armed.CompareAndSwap(true, false) {
			pk.meta.Stall()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	_, err := pk.e.DB.ExecContext(ctx, `UPDATE kv SET v = 'new' WHERE k = $1`, k)
	cancel()
	restore()
	stalledPrepared := 0
	for _, w := range pk.workers {
		conn, cerr := pgx.Connect(context.Background(), pk.behind[w.Port].DSN(pk.e.dbname))
		if cerr != nil {
			t.Fatal(cerr)
		}
		var n int
		cerr = conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()`).Scan(&n)
		conn.Close(context.Background())
		if cerr != nil {
			t.Fatal(cerr)
		}
		stalledPrepared += n
	}
	t.Logf("prepared transactions while the metadata database is unreachable: %d", stalledPrepared)
	pk.meta.Resume()
	values, prepared := pk.direct(k)
	t.Logf("write: %v; placements hold %q; %d prepared transactions", err, values, prepared)
	if armed.Load() {
		t.Fatal("the write never reached the decision")
	}
	if st := sqlState(t, err); st != "08007" {
		t.Fatalf("SQLSTATE %s, want 08007: %v", st, err)
	}
	deadline := time.Now().Add(hangLimit)
	for prepared != 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		values, prepared = pk.direct(k)
	}
	t.Logf("after the resolver: placements hold %q; %d prepared transactions", values, prepared)
	if prepared != 0 {
		t.Fatalf("%d prepared transactions left after %v", prepared, hangLimit)
	}
	if values[0] != values[1] || (values[0] != "new" && values[0] != "old") {
		t.Fatalf("placements hold %q", values)
	}
}

// BenchmarkReplicatedUpdate is an autocommit single-row UPDATE on a table
// with two placements per shard: the statement on both placements and a
// two-phase commit. b.N is split over the 4 shards' keys.
func BenchmarkReplicatedUpdate(b *testing.B) {
	e := newEnv(b)
	e.exec(`CREATE TABLE kv (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	e.exec(`SELECT master_create_distributed_table('kv', 'k')`)
	e.exec(`SELECT master_create_worker_shards('kv', 4, 2)`)
	e.exec(`INSERT INTO kv (k, v) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')`)
	ctx := context.Background()
	for k := 1; k <= 4; k++ { // warm the pools
		if _, err := e.DB.ExecContext(ctx, `UPDATE kv SET n = n + 1 WHERE k = $1`, k); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.DB.ExecContext(ctx, `UPDATE kv SET n = n + 1 WHERE k = $1`, i%4+1); err != nil {
			b.Fatal(err)
		}
	}
}

// An interactive transaction writes several keys of a table with two
// placements per shard, on every worker (UPDATEs and INSERTs, and in one
// case a row of an ordinary table, which makes the metadata database's
// commit the decision); one worker stops between PREPARE and its COMMIT
// PREPARED (a rolling restart reaching it). The COMMIT is acknowledged only
// with that worker's placements of the written shards marked inactive
// first. Then the rolling restart goes on: that worker comes back, and each
// other worker stops in turn: no read returns a value from before the
// acknowledged commit (an old value, or a missing inserted row). With every
// worker up, no row stays locked, and the prepared transaction left on the
// stopped worker is finished.
func TestRollingRestartInsideTransaction(t *testing.T) {
	cases := []struct {
		name     string
		step     string // where the worker stops
		ordinary bool   // the transaction also writes an ordinary table
	}{
		{"stopped after the decision", pgshard.StepAfterDecision, false},
		{"stopped after PREPARE, before the decision", pgshard.StepAfterPrepare, false},
		{"with an ordinary table, stopped after the decision", pgshard.StepAfterDecision, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testRollingRestartInsideTransaction(t, c.step, c.ordinary)
		})
	}
}

func testRollingRestartInsideTransaction(t *testing.T, step string, ordinary bool) {
	e := setupKV(t, 4, 2)
	ctx := context.Background()
	if ordinary {
		e.exec(`CREATE TABLE plain (k bigint PRIMARY KEY)`)
	}
	updated := []int64{1, 2, 3, 4, 5, 6, 7, 8}
	inserted := []int64{101, 102, 103, 104, 105, 106, 107, 108}
	all := append(append([]int64(nil), updated...), inserted...)
	for _, k := range updated {
		e.exec(`INSERT INTO kv (k, v) VALUES ($1, 'old')`, k)
	}
	ps := placementsOfKey(e, "kv", updated[0])
	stopped := workerNode(e, ps[1].Host, ps[1].Port)
	t.Cleanup(func() {
		for _, w := range e.workers {
			w.Start(context.Background())
		}
	})
	// Another process, whose catalog and pools predate the commit, reads
	// through the rolling restart too.
	other, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	for _, k := range updated {
		var v string
		if err := other.QueryRow(`SELECT v FROM kv WHERE k = $1`, k).Scan(&v); err != nil || v != "old" {
			t.Fatalf("the other process read %q, %v", v, err)
		}
	}

	var armed atomic.Bool
	armed.Store(true)
	restore := pgshard.SetCommitStep(func(s string) {
		if s == step && armed.CompareAndSwap(true, false) {
			if err := stopped.Stop(ctx); err != nil {
				t.Error(err)
			}
		}
	})
	tctx, cancel := context.WithTimeout(ctx, hangLimit)
	tx, err := e.DB.BeginTx(tctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range updated {
		if _, err := tx.ExecContext(tctx, `UPDATE kv SET v = 'new' WHERE k = $1`, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range inserted {
		if _, err := tx.ExecContext(tctx, `INSERT INTO kv (k, v) VALUES ($1, 'new')`, k); err != nil {
			t.Fatal(err)
		}
	}
	if ordinary {
		if _, err := tx.ExecContext(tctx, `INSERT INTO plain (k) VALUES (1)`); err != nil {
			t.Fatal(err)
		}
	}
	err = tx.Commit()
	cancel()
	restore()
	if armed.Load() {
		t.Fatalf("the commit never reached step %s", step)
	}
	// What the metadata says right after the acknowledgement.
	var stoppedPlacements, inactive int
	for _, p := range e.placements("kv") {
		if p.Host == stopped.Host && p.Port == stopped.Port {
			stoppedPlacements++
			if p.State == 3 {
				inactive++
			}
		}
	}
	t.Logf("COMMIT with %s stopped at %s: %v; its placements: %d, inactive: %d", stopped.Addr(), step, err, stoppedPlacements, inactive)
	if err != nil {
		t.Fatalf("the commit failed with one replica's worker down: %v", err)
	}
	if inactive != stoppedPlacements {
		t.Fatalf("acknowledged with %d of the stopped worker's %d placements still finalized", stoppedPlacements-inactive, stoppedPlacements)
	}
	if ordinary {
		if n := e.queryInt(`SELECT count(*) FROM plain`); n != 1 {
			t.Fatalf("the ordinary table holds %d rows after the acknowledged commit", n)
		}
	}

	// read lists the keys whose value is from before the commit, through
	// this process and the other one, and counts the reads that failed.
	read := func() (old []string, errs int) {
		for _, db := range []*sql.DB{e.DB, other} {
			for _, k := range all {
				ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
				var v string
				err := db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1`, k).Scan(&v)
				cancel()
				switch {
				case errors.Is(err, sql.ErrNoRows):
					old = append(old, fmt.Sprintf("%d missing", k))
				case err != nil:
					errs++
				case v != "new":
					old = append(old, fmt.Sprintf("%d=%q", k, v))
				}
			}
		}
		return old, errs
	}
	// The rolling restart: the stopped worker comes back, then every other
	// worker stops in turn.
	if err := stopped.Start(ctx); err != nil {
		t.Fatal(err)
	}
	reopenPgshardDB(e)
	for _, w := range e.workers {
		if w == stopped {
			continue
		}
		if err := w.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		old, errs := read()
		t.Logf("%s stopped: %d reads failed, stale: %v", w.Addr(), errs, old)
		if len(old) > 0 {
			t.Errorf("with %s stopped, reads returned values from before the acknowledged commit: %v", w.Addr(), old)
		}
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		reopenPgshardDB(e)
	}

	// Every worker up: no row stays locked.
	start := time.Now()
	for _, k := range all {
		uctx, cancel := context.WithTimeout(ctx, hangLimit)
		_, err := e.DB.ExecContext(uctx, `UPDATE kv SET v = 'newer' WHERE k = $1`, k)
		cancel()
		if err != nil {
			t.Fatalf("a write of key %d with every worker up: %v", k, err)
		}
	}
	t.Logf("writes of the %d keys with every worker up: %v", len(all), time.Since(start).Round(time.Millisecond))
	waitNoPrepared(t, e)
	repairOneSourceEach(e, "kv")
	e.assertReplicasIdentical("kv")
	for _, k := range all {
		if v, err := kvValue(e, k); err != nil || v != "newer" {
			t.Fatalf("key %d after repair: %q, %v", k, v, err)
		}
	}
}
