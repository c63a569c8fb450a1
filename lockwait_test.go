package pgshard_test

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard"
)

// promptLimit bounds a write that meets a lock of an in-doubt prepared
// transaction which the lock-wait watcher must finish: under the
// background resolver's interval (2 s) plus its grace, well above the
// watcher's ~100–150 ms. It is what the issue asks ("well under a
// second", not the resolver's seconds), checked on a loaded test machine.
const promptLimit = 1500 * time.Millisecond

// appendSQL appends $1 to v of key 7 of r.
const appendSQL = `UPDATE r SET v = v || $1 WHERE k = 7`

// timedWrite runs query (appendSQL or another with the same effect) with
// suffix, and returns its error and how long it took.
func timedWrite(db *sql.DB, query, suffix string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()
	start := time.Now()
	_, err := db.ExecContext(ctx, query, suffix)
	return time.Since(start), err
}

// readR reads v of key k of r through pgshard.
func readR(t *testing.T, db *sql.DB, k int) string {
	t.Helper()
	var v string
	if err := db.QueryRow(`SELECT v FROM r WHERE k = $1`, k).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A client dies between the commit decision of a replicated write and its
// COMMIT PREPARED: both placements keep the row locked by a prepared
// transaction decided committed. The next write of the row finishes it
// through the lock-wait watcher, within promptLimit (not the resolver's
// 2-4 s), and sees the committed value: a plain UPDATE waits for the row
// lock, an UPDATE that also reads the table first waits for the table lock
// its LOCK TABLE asks (replicaReadLocks).
func TestLockWaitFinishesDecidedInDoubt(t *testing.T) {
	if os.Getenv(faultDSNEnv) != "" {
		t.Skip("in the child")
	}
	cases := []struct{ name, query string }{
		{"row lock", appendSQL},
		{"table lock", `UPDATE r SET v = v || $1 WHERE k = 7 AND EXISTS (SELECT FROM r r2 WHERE r2.k = 7)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			createFaultTable(e, "r", 2)
			if got := runFaultChild(t, e, "autocommit-replicated", "r", "after-decision"); got != "killed" {
				t.Fatalf("child %s", got)
			}
			prepared := preparedOnAllNodes(e)
			took, err := timedWrite(e.DB, c.query, "+after")
			t.Logf("%d prepared transactions after the client died; next write of the row: %v after %v", prepared, err, took.Round(time.Millisecond))
			if prepared != 2 {
				t.Fatalf("%d prepared transactions, want 2 (one per placement)", prepared)
			}
			if err != nil {
				t.Fatalf("the next write of the row: %v", err)
			}
			if took > promptLimit {
				t.Errorf("the next write of the row took %v, want under %v", took.Round(time.Millisecond), promptLimit)
			}
			if v := readR(t, e.DB, 7); v != "new+after" {
				t.Errorf("v = %q, want %q (the decided write, then this one)", v, "new+after")
			}
			if n := preparedOnAllNodes(e); n != 0 {
				t.Errorf("%d prepared transactions left", n)
			}
			e.assertReplicasIdentical("r")
		})
	}
}

// A client dies after every placement prepared and before the commit was
// decided: both placements keep the row locked by an undecided prepared
// transaction whose coordinator's connections are gone. The next write of
// the row decides it rolled back (the abort record first) and rolls it
// back through the lock-wait watcher, within promptLimit (not the
// resolver's 10-12 s), and sees the old value.
func TestLockWaitRollsBackAbandonedInDoubt(t *testing.T) {
	if os.Getenv(faultDSNEnv) != "" {
		t.Skip("in the child")
	}
	e := newEnv(t)
	createFaultTable(e, "r", 2)
	if got := runFaultChild(t, e, "autocommit-replicated", "r", "after-prepare"); got != "killed" {
		t.Fatalf("child %s", got)
	}
	prepared := preparedOnAllNodes(e)
	took, err := timedWrite(e.DB, appendSQL, "+after")
	t.Logf("%d prepared transactions after the client died; next write of the row: %v after %v", prepared, err, took.Round(time.Millisecond))
	if prepared != 2 {
		t.Fatalf("%d prepared transactions, want 2 (one per placement)", prepared)
	}
	if err != nil {
		t.Fatalf("the next write of the row: %v", err)
	}
	if took > promptLimit {
		t.Errorf("the next write of the row took %v, want under %v", took.Round(time.Millisecond), promptLimit)
	}
	if v := readR(t, e.DB, 7); v != "old+after" {
		t.Errorf("v = %q, want %q (the undecided write rolled back)", v, "old+after")
	}
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.commit_record WHERE NOT committed`); n != 1 {
		t.Errorf("%d abort records, want 1 (written before the rollback)", n)
	}
	if n := preparedOnAllNodes(e); n != 0 {
		t.Errorf("%d prepared transactions left", n)
	}
	e.assertReplicasIdentical("r")
}

// A coordinator that is alive pauses between PREPARE and its commit
// decision while another statement waits for the row it prepared: the
// waiter's lock-wait watcher must leave the undecided transaction alone
// (its coordinator's connections are there), so the coordinator's commit
// succeeds and the waiter then applies its write on top of it. The waiter
// runs in the same process (the coordinator's own Connector) and in another
// one (a second Connector).
func TestLockWaitLeavesLiveCoordinator(t *testing.T) {
	e := newEnv(t)
	createFaultTable(e, "r", 2)
	other, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	const pause = 1500 * time.Millisecond
	for _, c := range []struct {
		name   string
		waiter *sql.DB
	}{
		{"same process", e.DB},
		{"another process", other},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.exec(`UPDATE r SET v = 'old' WHERE k = 7`)
			var armed atomic.Bool
			armed.Store(true)
			var wg sync.WaitGroup
			var waitTook time.Duration
			var waitErr error
			restore := pgshard.SetCommitStep(func(step string) {
				if step != pgshard.StepBeforeDecision || !armed.CompareAndSwap(true, false) {
					return
				}
				// Every placement holds the row in a prepared, undecided
				// transaction: the waiter meets its lock.
				wg.Add(1)
				go func() {
					defer wg.Done()
					waitTook, waitErr = timedWrite(c.waiter, appendSQL, "+waiter")
				}()
				time.Sleep(pause)
			})
			ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
			_, err := e.DB.ExecContext(ctx, `UPDATE r SET v = 'coordinator' WHERE k = 7`)
			cancel()
			wg.Wait()
			restore()
			t.Logf("coordinator paused %v before its decision: %v; the waiter: %v after %v", pause, err, waitErr, waitTook.Round(time.Millisecond))
			if armed.Load() {
				t.Fatal("the coordinator never reached its decision")
			}
			if err != nil {
				t.Fatalf("the live coordinator's commit failed: %v", err)
			}
			if waitErr != nil {
				t.Fatalf("the waiter: %v", waitErr)
			}
			if waitTook < pause/2 {
				t.Fatalf("the waiter took %v: it did not wait for the prepared transaction", waitTook)
			}
			if v := readR(t, e.DB, 7); v != "coordinator+waiter" {
				t.Errorf("v = %q, want %q", v, "coordinator+waiter")
			}
			if n := preparedOnAllNodes(e); n != 0 {
				t.Errorf("%d prepared transactions left", n)
			}
			e.assertReplicasIdentical("r")
		})
	}
}

// BenchmarkLockWaitTracer is what the lock-wait watcher costs a statement
// that does not wait: the tracer's calls at its start and end, on a real
// worker connection (its clock made and registered once, before the timer).
func BenchmarkLockWaitTracer(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.workers[0].DSN(e.dbname))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	tr := pgshard.NewLockWaitTracer()
	start := pgx.TraceQueryStartData{SQL: "SELECT 1"}
	tr.TraceQueryEnd(tr.TraceQueryStart(ctx, conn, start), conn, pgx.TraceQueryEndData{})
	b.ReportAllocs()
	for b.Loop() {
		tr.TraceQueryEnd(tr.TraceQueryStart(ctx, conn, start), conn, pgx.TraceQueryEndData{})
	}
}

// With no statement waiting for them, the background resolver finishes the
// prepared transactions a killed client left within seconds: decided ones
// as recorded, and undecided ones whose preparing backends are gone
// (abandoned) rolled back after 1 s instead of the 10 s of those whose
// coordinator may be alive.
func TestResolverFinishesInDoubtPromptly(t *testing.T) {
	if os.Getenv(faultDSNEnv) != "" {
		t.Skip("in the child")
	}
	const limit = 5 * time.Second // the resolver's interval (2 s) plus its 1 s grace, and slack
	cases := []struct {
		name, spec, want string
	}{
		{"decided", "after-decision", "new"},
		{"undecided, abandoned", "after-prepare", "old"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			createFaultTable(e, "r", 2)
			if err := e.DB.Ping(); err != nil { // the resolver runs
				t.Fatal(err)
			}
			if got := runFaultChild(t, e, "autocommit-replicated", "r", c.spec); got != "killed" {
				t.Fatalf("child %s", got)
			}
			start := time.Now()
			n := preparedOnAllNodes(e)
			for n != 0 && time.Since(start) < hangLimit {
				time.Sleep(100 * time.Millisecond)
				n = preparedOnAllNodes(e)
			}
			took := time.Since(start)
			t.Logf("prepared transactions gone after %v (%d left)", took.Round(100*time.Millisecond), n)
			if n != 0 || took > limit {
				t.Errorf("%d prepared transactions left after %v, want none within %v", n, took.Round(100*time.Millisecond), limit)
			}
			if v := readR(t, e.DB, 7); v != c.want {
				t.Errorf("v = %q, want %q", v, c.want)
			}
			e.assertReplicasIdentical("r")
		})
	}
}

// A client dies in a transaction that inserted keys 1001..1008 (RF 2),
// after every placement prepared: the prepared transactions keep the keys'
// unique index entries locked. A COPY FROM STDIN of the same keys waits for
// them (its rows' uniqueness checks) like an INSERT would, and the
// lock-wait watcher must see the COPY's statements on the workers as it
// sees any other: the in-doubt transactions are finished within
// promptLimit, not the resolver's seconds. Decided committed, the COPY then
// fails with 23505 naming its row; undecided and abandoned, they are rolled
// back and the COPY's rows land.
func TestLockWaitFinishesInDoubtBlockingCopy(t *testing.T) {
	if os.Getenv(faultDSNEnv) != "" {
		t.Skip("in the child")
	}
	cases := []struct {
		name, spec string
		wantCode   string // "" when the COPY succeeds
		wantV      string // v of key 1001 after the COPY
	}{
		{"decided", "after-decision", "23505", "tx"},
		{"undecided, abandoned", "after-prepare", "", "copy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			createFaultTable(e, "r", 2)
			if got := runFaultChild(t, e, "multi-shard-tx", "r", c.spec); got != "killed" {
				t.Fatalf("child %s", got)
			}
			prepared := preparedOnAllNodes(e)
			if prepared == 0 {
				t.Fatal("no prepared transaction after the client died")
			}
			ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
			defer cancel()
			start := time.Now()
			err := func() error {
				tx, err := e.DB.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				stmt, err := tx.PrepareContext(ctx, `COPY r (k, v) FROM STDIN`)
				if err != nil {
					return err
				}
				defer stmt.Close()
				for k := 1001; k <= 1008; k++ {
					if _, err := stmt.ExecContext(ctx, k, "copy"); err != nil {
						return err
					}
				}
				if _, err := stmt.ExecContext(ctx); err != nil {
					return err
				}
				return tx.Commit()
			}()
			took := time.Since(start)
			t.Logf("%d prepared transactions after the client died; the COPY of their keys: %v after %v", prepared, err, took.Round(time.Millisecond))
			if c.wantCode == "" && err != nil {
				t.Fatalf("the COPY: %v", err)
			}
			if c.wantCode != "" && sqlState(t, err) != c.wantCode {
				t.Fatalf("the COPY: %v, want SQLSTATE %s", err, c.wantCode)
			}
			if took > promptLimit {
				t.Errorf("the COPY took %v, want under %v", took.Round(time.Millisecond), promptLimit)
			}
			if v := readR(t, e.DB, 1001); v != c.wantV {
				t.Errorf("v of key 1001 = %q, want %q", v, c.wantV)
			}
			if n := preparedOnAllNodes(e); n != 0 {
				t.Errorf("%d prepared transactions left", n)
			}
			e.assertReplicasIdentical("r")
		})
	}
}
