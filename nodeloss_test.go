package pgshard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// errSamples keeps a few distinct error messages per kind, numbers masked.
type errSamples struct {
	mu   sync.Mutex
	seen map[string]int
}

var errDigits = regexp.MustCompile(`[0-9a-f]{12,}|[0-9]{3,}`)

func (s *errSamples) add(err error) {
	msg := errDigits.ReplaceAllString(err.Error(), "N")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	s.seen[msg]++
}

func (s *errSamples) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for m, n := range s.seen {
		out = append(out, fmt.Sprintf("    %5d × %s", n, m))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// isConnectionLevel reports whether err says a server could not be reached or
// the connection to it was lost (SQLSTATE class 08, a server shutting down
// or crashed, or no server answer at all), as opposed to PostgreSQL
// rejecting the statement.
func isConnectionLevel(err error) bool {
	var pe *pgconn.PgError
	if asPgError(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return !errors.Is(err, sql.ErrNoRows) && !errors.Is(err, context.DeadlineExceeded)
}

// A worker is killed (SIGKILL) in the middle of a write and read load on a
// 2-replica table: writes may fail while it dies but no acknowledged write is
// ever lost, reads of acknowledged rows keep being answered, and after the
// worker is back, repaired and recovery has run, every placement is
// identical.
func TestNodeLossUnderLoad(t *testing.T) {
	const (
		writers  = 8
		readers  = 4
		loadFor  = 10 * time.Second
		killAt   = 3 * time.Second
		stmtWait = 15 * time.Second // a statement taking longer is a hang
	)
	e := setupKV(t, 16, 2)
	victim := e.workers[1]
	victimAddr := victim.Addr()
	ctx := context.Background()

	var (
		ackMu                 sync.Mutex
		acked                 []int64 // every acknowledged key, for the readers
		killed                atomic.Bool
		ackedBefore, ackedAft atomic.Int64
		writesFailed          atomic.Int64
		readsOK, readsFailed  atomic.Int64
		writeErrs, readErrs   errSamples
		badReads              errSamples
		badReadCount          atomic.Int64
		stop                  = make(chan struct{})
		wg                    sync.WaitGroup
	)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := int64(g+1)*10_000_000 + i
				sctx, cancel := context.WithTimeout(ctx, stmtWait)
				_, err := e.DB.ExecContext(sctx, `INSERT INTO kv (k, v) VALUES ($1, $2)`, k, fmt.Sprint("v", k))
				hung := sctx.Err() != nil
				cancel()
				if hung {
					writeErrs.add(fmt.Errorf("HUNG for %v: %v", stmtWait, err))
					writesFailed.Add(1)
					continue
				}
				if err != nil {
					writeErrs.add(err)
					writesFailed.Add(1)
					continue
				}
				if killed.Load() {
					ackedAft.Add(1)
				} else {
					ackedBefore.Add(1)
				}
				ackMu.Lock()
				acked = append(acked, k)
				ackMu.Unlock()
			}
		}()
	}
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(r), 42))
			for {
				select {
				case <-stop:
					return
				default:
				}
				ackMu.Lock()
				n := len(acked)
				var k int64
				if n > 0 {
					k = acked[rnd.IntN(n)]
				}
				ackMu.Unlock()
				if n == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				sctx, cancel := context.WithTimeout(ctx, stmtWait)
				var v string
				err := e.DB.QueryRowContext(sctx, `SELECT v FROM kv WHERE k = $1`, k).Scan(&v)
				hung := sctx.Err() != nil
				cancel()
				switch {
				case hung:
					badReadCount.Add(1)
					badReads.add(fmt.Errorf("k=%d HUNG for %v: %v", k, stmtWait, err))
				case err == nil && v == fmt.Sprint("v", k):
					readsOK.Add(1)
				case err == nil:
					badReadCount.Add(1)
					badReads.add(fmt.Errorf("k=%d read %q", k, v))
				case isConnectionLevel(err) && (strings.Contains(err.Error(), victimAddr) || !asPgError(err, new(*pgconn.PgError))):
					readsFailed.Add(1)
					readErrs.add(err)
				default:
					badReadCount.Add(1)
					badReads.add(fmt.Errorf("k=%d: %w", k, err))
				}
			}
		}()
	}
	start := time.Now()
	time.Sleep(killAt)
	killed.Store(true)
	killedAt := time.Since(start)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Start(context.Background()) })
	killTook := time.Since(start) - killedAt
	time.Sleep(time.Until(start.Add(loadFor)))
	close(stop)
	wg.Wait()
	loadTook := time.Since(start)

	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	inactive := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard_placement WHERE shard_state <> 1`)
	for _, p := range e.placements("kv") {
		if p.State != 1 && fmt.Sprintf("%s:%d", p.Host, p.Port) != victimAddr {
			t.Errorf("placement %+v on a node that stayed up is not finalized", p)
		}
	}
	// Before any repair, the finalized placements must already agree.
	pcBefore := snapshotPlacements(e, "kv")
	divergentBefore := pcBefore.divergent()

	// Recovery first: a repair copies from a source placement as committed,
	// so transactions still in doubt there must be decided before (see
	// TestRepairBeforeRecovery).
	committed1, rolledBack1 := recoverNow(e)
	repaired := int64(0)
	{
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		res, err := e.DB.ExecContext(rctx, `SELECT master_copy_shard_placement(t1.shard_id, t2.node_name, t2.node_port, t1.node_name, t1.node_port)
			FROM pgs_distribution_metadata.shard_placement t1, pgs_distribution_metadata.shard_placement t2
			WHERE t1.shard_id = t2.shard_id AND (t1.node_name, t1.node_port) <> (t2.node_name, t2.node_port) AND t1.shard_state = 3 AND t2.shard_state = 1`)
		cancel()
		if err != nil {
			t.Fatalf("repair: %v", err)
		}
		repaired, _ = res.RowsAffected()
	}
	committed2, rolledBack2 := recoverNow(e)
	prepared := preparedOnAllNodes(e)
	if prepared != 0 {
		t.Errorf("%d prepared transactions left after recovery", prepared)
	}

	// Every acknowledged key is on every finalized placement of its shard,
	// read straight from the workers.
	pc := snapshotPlacements(e, "kv")
	divergent := pc.divergent()
	shardOf := shardsOfKeys(e, "kv", acked)
	lost, missingCopies := 0, 0
	var lostSample []string
	for _, k := range acked {
		holders, copies := 0, 0
		for _, p := range pc.placements {
			if p.ShardID != shardOf[k] {
				continue
			}
			if p.State != 1 {
				t.Errorf("placement %+v not finalized after the repair", p)
				continue
			}
			copies++
			if v, ok := pc.rows[p.ID][k]; ok && v == fmt.Sprint("v", k) {
				holders++
			}
		}
		if holders == 0 {
			lost++
		}
		if holders < copies {
			missingCopies++
			if len(lostSample) < 10 {
				lostSample = append(lostSample, fmt.Sprintf("k=%d on %d of %d placements", k, holders, copies))
			}
		}
	}
	rowsTotal := e.queryInt(`SELECT count(*) FROM kv`)

	t.Logf(`
load %v, worker %s killed (SIGKILL) at %v (gone %v later)
writes acknowledged: %d (%d before the kill, %d after), failed: %d
reads ok: %d, failed with a connection error: %d, bad: %d
placements not finalized after the load: %d; repaired: %d
recovery: %d committed / %d rolled back before the repair, %d / %d after
rows in kv: %d (acknowledged %d, so %d unacknowledged writes committed)
acknowledged writes lost: %d; acknowledged writes missing from some finalized placement: %d
divergent finalized placements: %d before the repair, %d after; prepared transactions left: %d
write errors:
%s
read errors:
%s`,
		loadTook.Round(time.Millisecond), victimAddr, killedAt.Round(time.Millisecond), killTook.Round(time.Millisecond),
		len(acked), ackedBefore.Load(), ackedAft.Load(), writesFailed.Load(),
		readsOK.Load(), readsFailed.Load(), badReadCount.Load(),
		inactive, repaired,
		committed1, rolledBack1, committed2, rolledBack2,
		rowsTotal, len(acked), rowsTotal-int64(len(acked)),
		lost, missingCopies,
		divergentBefore, divergent, prepared,
		writeErrs.String(), readErrs.String())

	if n := badReadCount.Load(); n > 0 {
		t.Errorf("%d reads of acknowledged rows failed other than by a connection error on %s:\n%s", n, victimAddr, badReads.String())
	}
	if missingCopies > 0 {
		t.Errorf("%d acknowledged writes missing from a finalized placement (%d from all): %v", missingCopies, lost, lostSample)
	}
	if divergentBefore > 0 {
		t.Errorf("%d finalized placements differ from their siblings after the load:\n%s", divergentBefore, pcBefore.describe())
	}
	if divergent > 0 {
		t.Errorf("%d finalized placements differ from their siblings after repair and recovery", divergent)
	}
	if strings.Contains(writeErrs.String(), "HUNG") {
		t.Errorf("writes hung")
	}
	if ackedAft.Load() == 0 {
		t.Errorf("no write was acknowledged after the kill: the table is unavailable with one worker down")
	}
	if rowsTotal < int64(len(acked)) {
		t.Errorf("kv holds %d rows, fewer than the %d acknowledged", rowsTotal, len(acked))
	}
	e.assertReplicasIdentical("kv")
}

// recoverNow runs recovery from a Connector of its own.
func recoverNow(e *env) (committed, rolledBack int) {
	e.t.Helper()
	c, err := pgshard.NewConnector(e.DSN)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	committed, rolledBack, err = c.Recover(ctx, 0)
	if err != nil {
		e.t.Fatalf("recover: %v", err)
	}
	return committed, rolledBack
}

// shardsOfKeys maps bigint keys to their shard ids, by hashint8 on the
// metadata database.
func shardsOfKeys(e *env, table string, keys []int64) map[int64]int64 {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.c.Nodes[0].DSN(e.dbname))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT k, s.id FROM unnest($1::bigint[]) k, pgs_distribution_metadata.shard s
		WHERE s.relation_id = $2::regclass AND hashint8(k) BETWEEN s.min_value::int AND s.max_value::int`, keys, table)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int64]int64{}
	for rows.Next() {
		var k, s int64
		if err := rows.Scan(&k, &s); err != nil {
			e.t.Fatal(err)
		}
		out[k] = s
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	if len(out) != len(keys) {
		e.t.Fatalf("%d of %d keys have a shard", len(out), len(keys))
	}
	return out
}

// driverGoroutines counts the goroutines running pgx or pgshard code (the
// test's own proxy aside).
func driverGoroutines() (int, string) {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var dump []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "pgtest.(*Proxy)") || strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "github.com/jackc/") {
			continue
		}
		if strings.Contains(g, "github.com/jackc/") || strings.Contains(g, "github.com/pgshard/pgshard.") || strings.Contains(g, "github.com/pgshard/pgshard/session") || strings.Contains(g, "github.com/pgshard/pgshard/catalog") {
			n++
			dump = append(dump, g)
		}
	}
	return n, strings.Join(dump, "\n\n")
}

// A worker that stops answering without closing its connections (a hung
// server, a black-holed network) costs a statement with a deadline no more
// than the deadline, and connect_timeout bounds connecting to it; no
// goroutine is left behind.
func TestStalledWorkerDoesNotHang(t *testing.T) {
	c := sharedCluster(t)
	ctx := context.Background()
	baseline, _ := driverGoroutines()

	// A database whose first worker is a proxy in front of node 1; node 2 is
	// registered as itself.
	dbSeqMu.Lock()
	dbSeq++
	name := fmt.Sprintf("t%d_stalled", dbSeq)
	dbSeqMu.Unlock()
	for _, n := range c.Nodes[:3] {
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
	proxy, err := pgtest.NewProxy(c.Nodes[1].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	e := &env{t: t, c: c, dbname: name, DSN: c.Nodes[0].DSN(name), workers: []*pgtest.Node{c.Nodes[2]}}
	db, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	e.DB = db
	dbClosed := false
	defer func() {
		if !dbClosed {
			db.Close()
		}
	}()
	e.exec(`SELECT master_add_node($1, $2)`, proxy.Host, proxy.Port)
	e.exec(`SELECT master_add_node($1, $2)`, c.Nodes[2].Host, c.Nodes[2].Port)
	e.exec(`CREATE TABLE kv (k bigint PRIMARY KEY, v text)`)
	e.exec(`SELECT master_create_distributed_table('kv', 'k')`)
	e.exec(`SELECT master_create_worker_shards('kv', 4, 1)`)
	for k := 1; k <= 20; k++ {
		e.exec(`INSERT INTO kv (k, v) VALUES ($1, 'v')`, k)
	}
	var stalledKey, liveKey int64
	for k := int64(1); k <= 20; k++ {
		ps := placementsOfKey(e, "kv", k)
		if ps[0].Port == proxy.Port && stalledKey == 0 {
			stalledKey = k
		}
		if ps[0].Port != proxy.Port && liveKey == 0 {
			liveKey = k
		}
	}
	if stalledKey == 0 || liveKey == 0 {
		t.Fatalf("keys: behind the proxy %d, elsewhere %d", stalledKey, liveKey)
	}
	var v string
	if err := db.QueryRow(`SELECT v FROM kv WHERE k = $1`, stalledKey).Scan(&v); err != nil {
		t.Fatal(err)
	}

	proxy.Stall()
	const deadline, slack = 2 * time.Second, time.Second
	var lines []string
	// timed runs f, failing when it does not end within limit + slack with
	// an error; a hung call is abandoned after 20 s.
	timed := func(what string, limit time.Duration, wantErr bool, f func(context.Context) error) {
		t.Helper()
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- f(ctx) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("%s: still running after 20s", what)
			lines = append(lines, fmt.Sprintf("%-52s HUNG", what))
			return
		}
		took := time.Since(start)
		lines = append(lines, fmt.Sprintf("%-52s %-8v %v", what, took.Round(time.Millisecond), err))
		if took > limit+slack {
			t.Errorf("%s took %v, limit %v", what, took, limit)
		}
		if wantErr && err == nil {
			t.Errorf("%s: no error from a stalled worker", what)
		}
		if !wantErr && err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	withDeadline := func(f func(context.Context) error) func(context.Context) error {
		return func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			return f(ctx)
		}
	}
	timed("read, deadline 2s (pooled connection)", deadline, true, withDeadline(func(ctx context.Context) error {
		return db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1`, stalledKey).Scan(&v)
	}))
	timed("write, deadline 2s", deadline, true, withDeadline(func(ctx context.Context) error {
		_, err := db.ExecContext(ctx, `UPDATE kv SET v = 'w' WHERE k = $1`, stalledKey)
		return err
	}))
	timed("count(*) over every shard, deadline 2s", deadline, true, withDeadline(func(ctx context.Context) error {
		var n int
		return db.QueryRowContext(ctx, `SELECT count(*) FROM kv`).Scan(&n)
	}))
	timed("transaction touching the worker, deadline 2s", deadline, true, withDeadline(func(ctx context.Context) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `UPDATE kv SET v = 't' WHERE k = $1`, liveKey); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE kv SET v = 't' WHERE k = $1`, stalledKey); err != nil {
			return err
		}
		return tx.Commit()
	}))
	timed("read of a shard on the other worker", deadline, false, withDeadline(func(ctx context.Context) error {
		return db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1`, liveKey).Scan(&v)
	}))

	// connect_timeout bounds connecting, with no context deadline: a new
	// pool has no connection to the stalled worker yet.
	db2, err := sql.Open("pgshard", e.DSN+"&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	timed("read, connect_timeout=2, no deadline (new pool)", 2*time.Second, true, func(ctx context.Context) error {
		return db2.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1`, stalledKey).Scan(&v)
	})
	timed("write, connect_timeout=2, no deadline (new pool)", 2*time.Second, true, func(ctx context.Context) error {
		_, err := db2.ExecContext(ctx, `UPDATE kv SET v = 'w2' WHERE k = $1`, stalledKey)
		return err
	})
	db2.Close()

	// Traffic flows again: the pool gets over the connections that timed out.
	proxy.Resume()
	timed("read after the stall ends, deadline 2s", deadline, false, withDeadline(func(ctx context.Context) error {
		return db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1`, stalledKey).Scan(&v)
	}))
	// (The write that timed out may have been applied once the stall
	// ended, as with a real network: its outcome was unknown.)

	// Stalled again, close everything: no goroutine may stay behind, even
	// with the worker still not answering.
	proxy.Stall()
	open, _ := driverGoroutines()
	db.Close()
	dbClosed = true
	// A connection whose statement was cancelled (the background
	// resolver's scan, when Close cancels it) is closed by pgconn's
	// asyncClose, whose cancel request to the stalled worker waits up to
	// pgconn's own 15 s deadline before the goroutine ends: wait past it.
	leakDeadline := time.Now().Add(20 * time.Second)
	n, dump := driverGoroutines()
	for n > baseline && time.Now().Before(leakDeadline) {
		time.Sleep(50 * time.Millisecond)
		n, dump = driverGoroutines()
	}
	t.Logf("\n%s\ndriver goroutines: %d before, %d with the DB open, %d after closing", strings.Join(lines, "\n"), baseline, open, n)
	if n > baseline {
		t.Errorf("%d driver goroutines left (%d before):\n%s", n, baseline, dump)
	}
	proxy.Close()
}

// A worker restarted quickly (a planned restart, a crash and restart) leaves
// the pools with connections the server ended. pgxpool hands out a
// connection idle for less than a second without a ping, so a replicated
// write right after the restart runs on a dead connection, fails there
// before anything reached the server, and marks the placement inactive
// although its worker is up.
func TestStaleConnectionAfterRestartMarksPlacement(t *testing.T) {
	e := setupKV(t, 4, 2)
	ctx := context.Background()
	w := e.workers[0]
	for k := 1; k <= 40; k++ {
		e.exec(`INSERT INTO kv (k, v) VALUES ($1, 'a')`, k)
	}
	start := time.Now()
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Start(context.Background()) })
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restart := time.Since(start)
	var errs []string
	for k := 1; k <= 40; k++ {
		if _, err := e.DB.Exec(`UPDATE kv SET v = 'b' WHERE k = $1`, k); err != nil {
			errs = append(errs, err.Error())
		}
	}
	inactive := 0
	for _, p := range e.placements("kv") {
		if p.State != 1 {
			inactive++
		}
	}
	t.Logf("worker %s restarted in %v; 40 updates right after: %d failed %v; placements marked inactive: %d", w.Addr(), restart.Round(time.Millisecond), len(errs), errs, inactive)
	if inactive > 0 || len(errs) > 0 {
		t.Errorf("a worker that is up had %d placements marked inactive (and %d writes failed) because of pooled connections its restart ended", inactive, len(errs))
	}
}
