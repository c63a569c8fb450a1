package pgshard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// The environment of a TestKillClientChild process.
const (
	faultDSNEnv      = "PGSHARD_FAULT_DSN"
	faultScenarioEnv = "PGSHARD_FAULT_SCENARIO"
	faultTableEnv    = "PGSHARD_FAULT_TABLE"
	childOK          = "PGSHARD-CHILD-WROTE"
)

// faultScenario is one kind of write the child makes and dies in.
type faultScenario struct {
	name string
	// replicas is the table's replication factor (4 shards).
	replicas int
	// stopFirst stops the worker of the first placement of key stopKey's shard
	// before the child runs, so that the write marks it inactive.
	stopFirst bool
	stopKey   int64
	// extra kill specs on top of every step at n = 1.
	extra []string
	// before and after: the value of each key the write touches ("" for
	// absent) before and after the write.
	before, after map[int64]string
}

var faultScenarios = []faultScenario{
	{
		name: "autocommit-replicated", replicas: 2,
		extra:  []string{"after-placement-write:2", "after-placement-write:3"},
		before: map[int64]string{7: "old"},
		after:  map[int64]string{7: "new"},
	},
	{
		name: "multi-shard-tx", replicas: 2,
		extra:  []string{"after-prepare:2"},
		before: map[int64]string{1: "old", 1001: "", 1002: "", 1003: "", 1004: "", 1005: "", 1006: "", 1007: "", 1008: ""},
		after:  map[int64]string{1: "new", 1001: "tx", 1002: "tx", 1003: "tx", 1004: "tx", 1005: "tx", 1006: "tx", 1007: "tx", 1008: "tx"},
	},
	{
		name: "replicated-worker-down", replicas: 3, stopFirst: true, stopKey: 500,
		extra:  []string{"after-placement-write:2", "after-placement-write:3", "after-marking:2"},
		before: map[int64]string{500: ""},
		after:  map[int64]string{500: "new"},
	},
}

// TestKillClientChild is the client process TestKillClientAtEveryStep kills:
// it makes one write of a scenario, and dies at the step PGSHARD_TEST_KILL_AT
// names, or prints childOK when that step never came.
func TestKillClientChild(t *testing.T) {
	dsn := os.Getenv(faultDSNEnv)
	if dsn == "" {
		t.Skip("run by TestKillClientAtEveryStep")
	}
	table := pgx.Identifier{os.Getenv(faultTableEnv)}.Sanitize()
	db, err := sql.Open("pgshard", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch os.Getenv(faultScenarioEnv) {
	case "autocommit-replicated":
		res, err := db.ExecContext(ctx, `UPDATE `+table+` SET v = 'new' WHERE k = $1`, 7)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("updated %d rows", n)
		}
	case "multi-shard-tx":
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k := 1001; k <= 1008; k++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (k, v) VALUES ($1, 'tx')`, k); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET v = 'new' WHERE k = $1`, 1); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	case "replicated-worker-down":
		if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (k, v) VALUES ($1, 'new')`, 500); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown scenario %q", os.Getenv(faultScenarioEnv))
	}
	fmt.Println(childOK)
}

// faultRun is one line of the summary.
type faultRun struct {
	scenario, spec      string
	child               string // killed, exited
	outcome             string // committed, rolled back, PARTIAL
	recCommitted, recRB int
	inactive, divergent int
	preparedLeft        int
	took                time.Duration
}

// Kill the client (SIGKILL) at every step of a replicated write and of a
// two-phase commit, run recovery, and compare every placement: no finalized
// placement may differ from its siblings, and the write is all there or not
// at all.
func TestKillClientAtEveryStep(t *testing.T) {
	if os.Getenv(faultDSNEnv) != "" {
		t.Skip("in the child")
	}
	var summary []faultRun
	for _, sc := range faultScenarios {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t)
			specs := append(append([]string(nil), pgshard.CommitSteps...), sc.extra...)
			for i, spec := range specs {
				r := runKillAt(t, e, sc, fmt.Sprintf("f%d", i), spec)
				summary = append(summary, r)
				if t.Failed() {
					return
				}
			}
			// Repair what was marked (once for all tables: a repair waits
			// until the leases of the killed clients ran out), then every
			// placement must be identical.
			for i := range specs {
				table := fmt.Sprintf("f%d", i)
				repairOneSourceEach(e, table)
				e.assertReplicasIdentical(table)
			}
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-24s %-26s %-7s %-12s %-10s %-8s %-9s %-8s %s\n", "scenario", "kill at", "child", "outcome", "recovered", "inactive", "divergent", "prepared", "took")
	divergent := 0
	for _, r := range summary {
		fmt.Fprintf(&b, "%-24s %-26s %-7s %-12s %-10s %-8d %-9d %-8d %s\n", r.scenario, r.spec, r.child, r.outcome,
			fmt.Sprintf("%dc/%drb", r.recCommitted, r.recRB), r.inactive, r.divergent, r.preparedLeft, r.took.Round(time.Millisecond))
		divergent += r.divergent
	}
	fmt.Fprintf(&b, "%d runs, %d divergent finalized placements", len(summary), divergent)
	t.Log(b.String())
}

// runKillAt runs one child write killed at spec in a fresh table, then
// recovers and checks.
func runKillAt(t *testing.T, e *env, sc faultScenario, table, spec string) faultRun {
	t.Helper()
	start := time.Now()
	ctx := context.Background()
	r := faultRun{scenario: sc.name, spec: spec}
	createFaultTable(e, table, sc.replicas)

	var stopped *pgtest.Node
	if sc.stopFirst {
		ps := placementsOfKey(e, table, sc.stopKey)
		stopped = workerNode(e, ps[0].Host, ps[0].Port)
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := stopped.Stop(sctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stopped.Start(context.Background()) })
	}

	r.child = runFaultChild(t, e, sc.name, table, spec)

	if stopped != nil {
		if err := stopped.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// The pools of e.DB hold connections the stop ended, which pgxpool
		// hands out without a ping when idle for under a second; start
		// afresh (see TestStaleConnectionAfterRestartMarksPlacement).
		reopenPgshardDB(e)
	}

	// Recovery, from a process of its own.
	c, err := pgshard.NewConnector(e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	r.recCommitted, r.recRB, err = c.Recover(rctx, 0)
	rcancel()
	c.Close()
	if err != nil {
		t.Fatalf("%s/%s: recover: %v", sc.name, spec, err)
	}
	r.preparedLeft = preparedOnAllNodes(e)
	if r.preparedLeft != 0 {
		t.Errorf("%s/%s: %d prepared transactions left after recovery", sc.name, spec, r.preparedLeft)
	}

	// Compare the placements: every finalized placement of a shard holds
	// the same rows, and the write is on all of them or on none.
	pc := snapshotPlacements(e, table)
	r.inactive, r.divergent = pc.inactive(), pc.divergent()
	if r.divergent != 0 {
		t.Errorf("%s/%s: %d finalized placements differ from their siblings:\n%s", sc.name, spec, r.divergent, pc.describe())
	}
	before, after, seen := 0, 0, 0
	var diffs []string
	for k := range sc.after {
		shard := shardOfKey(e, table, k)
		for _, p := range pc.placements {
			if p.ShardID != shard || p.State != 1 {
				continue
			}
			v := pc.rows[p.ID][k]
			seen++
			switch v {
			case sc.after[k]:
				after++
			case sc.before[k]:
				before++
			default:
				diffs = append(diffs, fmt.Sprintf("k=%d on placement %d: %q", k, p.ID, v))
			}
		}
	}
	switch {
	case len(diffs) > 0:
		r.outcome = "PARTIAL"
	case after == seen:
		r.outcome = "committed"
	case before == seen:
		r.outcome = "rolled back"
	default:
		r.outcome = "PARTIAL"
	}
	if r.outcome == "PARTIAL" {
		t.Errorf("%s/%s: the write is partly there: %d placements×keys new, %d old, of %d; %v\n%s", sc.name, spec, after, before, seen, diffs, pc.describe())
	}
	// Where the child died decides the outcome: before the coordinator's
	// commit nothing is committed; from then on everything is.
	want := "committed"
	if r.child == "killed" && !strings.HasPrefix(spec, "after-decision") && !strings.HasPrefix(spec, "after-commit-prepared") {
		want = "rolled back"
	}
	if r.outcome != want {
		t.Errorf("%s/%s: child %s, the write is %s, want %s", sc.name, spec, r.child, r.outcome, want)
	}
	if stopped != nil {
		// The stopped worker's placement is inactive once the write got
		// past marking, and finalized (and unchanged) before.
		marked := r.child == "exited" || !strings.HasPrefix(spec, "after-placement-write")
		if got := r.inactive == 1; got != marked {
			t.Errorf("%s/%s: %d placements inactive, want marked=%v", sc.name, spec, r.inactive, marked)
		}
	} else if r.inactive != 0 {
		t.Errorf("%s/%s: %d placements inactive with every worker up", sc.name, spec, r.inactive)
	}
	r.took = time.Since(start)
	return r
}

// createFaultTable creates a (k bigint, v text) table of 4 shards with rows
// 1..40 = 'old'.
func createFaultTable(e *env, table string, replicas int) {
	e.t.Helper()
	e.exec(`CREATE TABLE ` + table + ` (k bigint PRIMARY KEY, v text)`)
	e.exec(`SELECT master_create_distributed_table($1, 'k')`, table)
	e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', 4, %d)`, table, replicas))
	var vals []string
	for k := 1; k <= 40; k++ {
		vals = append(vals, fmt.Sprintf("(%d, 'old')", k))
	}
	e.exec(`INSERT INTO ` + table + ` (k, v) VALUES ` + strings.Join(vals, ", "))
	for _, p := range e.placements(table) {
		if p.State != 1 {
			e.t.Fatalf("placement %+v of %s not finalized before the write", p, table)
		}
	}
}

// runFaultChild runs TestKillClientChild for a scenario's write on table, killed
// at spec; it returns "killed" (SIGKILL) or "exited" (the step never came).
func runFaultChild(t *testing.T, e *env, scenario, table, spec string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKillClientChild$", "-test.count=1")
	cmd.Env = append(envWithout(os.Environ(), pgshard.KillAtEnv, faultDSNEnv, faultScenarioEnv, faultTableEnv),
		faultDSNEnv+"="+e.DSN, faultScenarioEnv+"="+scenario, faultTableEnv+"="+table, pgshard.KillAtEnv+"="+spec)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s/%s: the child did not finish in 60s:\n%s", scenario, spec, out)
	case err == nil && strings.Contains(string(out), childOK):
		return "exited"
	case errors.As(err, &ee):
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("%s/%s: the child failed (%v), not killed:\n%s", scenario, spec, err, out)
		}
		return "killed"
	}
	t.Fatalf("%s/%s: the child: %v\n%s", scenario, spec, err, out)
	return ""
}

// reopenPgshardDB replaces e.DB with a new pool.
func reopenPgshardDB(e *env) {
	e.t.Helper()
	e.DB.Close()
	db, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		e.t.Fatal(err)
	}
	e.DB = db
	e.t.Cleanup(func() { db.Close() })
}

func envWithout(env []string, names ...string) []string {
	out := env[:0:0]
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// placementsOfKey returns the placements of the shard holding key k of a
// bigint-keyed table, in placement order.
func placementsOfKey(e *env, table string, k int64) []placement {
	e.t.Helper()
	shard := shardOfKey(e, table, k)
	var out []placement
	for _, p := range e.placements(table) {
		if p.ShardID == shard {
			out = append(out, p)
		}
	}
	return out
}

// shardOfKey is the id of the shard of bigint key k, by hashint8 as pgshard
// hashes it.
func shardOfKey(e *env, table string, k int64) int64 {
	e.t.Helper()
	return e.queryInt(`SELECT id FROM pgs_distribution_metadata.shard WHERE relation_id = $1::regclass
		AND hashint8($2::bigint) BETWEEN min_value::int AND max_value::int`, table, k)
}

func workerNode(e *env, host string, port int) *pgtest.Node {
	e.t.Helper()
	for _, w := range e.workers {
		if w.Host == host && w.Port == port {
			return w
		}
	}
	e.t.Fatalf("no worker %s:%d", host, port)
	return nil
}

// preparedOnAllNodes counts the prepared transactions of the test's
// database on every node, the metadata node included.
func preparedOnAllNodes(e *env) int {
	e.t.Helper()
	ctx := context.Background()
	total := 0
	for _, n := range e.c.Nodes {
		conn, err := pgx.Connect(ctx, n.DSN(e.dbname))
		if err != nil {
			e.t.Fatal(err)
		}
		var c int
		err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()`).Scan(&c)
		conn.Close(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		total += c
	}
	return total
}

// placementContents is every placement of a (k bigint, v text) table with
// its rows, read straight from the workers.
type placementContents struct {
	placements []placement
	rows       map[int64]map[int64]string // placement id -> k -> v
}

func snapshotPlacements(e *env, table string) *placementContents {
	e.t.Helper()
	ctx := context.Background()
	pc := &placementContents{placements: e.placements(table), rows: map[int64]map[int64]string{}}
	for _, p := range pc.placements {
		conn := e.workerAt(p.Host, p.Port)
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT k, coalesce(v, '') FROM %s`, pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize()))
		if err != nil {
			e.t.Fatalf("placement %d on %s:%d: %v", p.ID, p.Host, p.Port, err)
		}
		m := map[int64]string{}
		for rows.Next() {
			var k int64
			var v string
			if err := rows.Scan(&k, &v); err != nil {
				e.t.Fatal(err)
			}
			m[k] = v
		}
		if err := rows.Err(); err != nil {
			e.t.Fatal(err)
		}
		pc.rows[p.ID] = m
	}
	return pc
}

func (pc *placementContents) inactive() int {
	n := 0
	for _, p := range pc.placements {
		if p.State != 1 {
			n++
		}
	}
	return n
}

// divergent counts the finalized placements whose rows differ from the
// first finalized placement of their shard.
func (pc *placementContents) divergent() int {
	first := map[int64]int64{}
	n := 0
	for _, p := range pc.placements {
		if p.State != 1 {
			continue
		}
		f, ok := first[p.ShardID]
		if !ok {
			first[p.ShardID] = p.ID
			continue
		}
		if !sameKV(pc.rows[f], pc.rows[p.ID]) {
			n++
		}
	}
	return n
}

func sameKV(a, b map[int64]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (pc *placementContents) describe() string {
	var b strings.Builder
	for _, p := range pc.placements {
		keys := make([]int64, 0, len(pc.rows[p.ID]))
		for k := range pc.rows[p.ID] {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		var kv []string
		for _, k := range keys {
			kv = append(kv, fmt.Sprintf("%d=%s", k, pc.rows[p.ID][k]))
		}
		fmt.Fprintf(&b, "  shard %d placement %d (%s:%d, state %d): %s\n", p.ShardID, p.ID, p.Host, p.Port, p.State, strings.Join(kv, " "))
	}
	return b.String()
}

// repairOneSourceEach repairs every inactive placement of table from one
// finalized placement of its shard (the seed's query, with one source per
// target, since a shard may have several finalized placements).
func repairOneSourceEach(e *env, table string) {
	e.t.Helper()
	ps := e.placements(table)
	for _, dst := range ps {
		if dst.State != 3 {
			continue
		}
		for _, src := range ps {
			if src.ShardID == dst.ShardID && src.State == 1 {
				e.exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, dst.ShardID, src.Host, src.Port, dst.Host, dst.Port)
				break
			}
		}
	}
}

// A client killed after the commit decision leaves prepared transactions
// that recovery commits. A repair run before recovery copies around them.
// Source in doubt: the copy misses the transaction's rows, which recovery
// then commits on the source only, so the repaired placement is finalized
// and different. Target in doubt: the prepared transaction holds a lock on
// the target's shard table, the repair's DROP TABLE waits behind it, and
// with the placement filling, every write to the shard waits behind that.
func TestRepairBeforeRecovery(t *testing.T) {
	if os.Getenv(faultDSNEnv) != "" {
		t.Skip("in the child")
	}
	ctx := context.Background()

	t.Run("source in doubt", func(t *testing.T) {
		e := newEnv(t)
		createFaultTable(e, "r", 3)
		// Replicated INSERT of k = 500 with the first placement's worker
		// down; the client dies right after the coordinator (second
		// placement) committed, the third placement prepared.
		ps := placementsOfKey(e, "r", 500)
		down := workerNode(e, ps[0].Host, ps[0].Port)
		if err := down.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { down.Start(context.Background()) })
		if got := runFaultChild(t, e, "replicated-worker-down", "r", "after-decision"); got != "killed" {
			t.Fatalf("child %s", got)
		}
		if err := down.Start(ctx); err != nil {
			t.Fatal(err)
		}
		reopenPgshardDB(e)
		ps = placementsOfKey(e, "r", 500)
		t.Logf("placements of shard %d: %+v; prepared transactions: %d", ps[0].ShardID, ps, preparedOnAllNodes(e))
		// The operator repairs the inactive placement from the third one,
		// finalized, then runs recovery.
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := e.DB.ExecContext(rctx, `SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, ps[0].ShardID, ps[2].Host, ps[2].Port, ps[0].Host, ps[0].Port)
		cancel()
		t.Logf("repair from the placement with the prepared transaction: %v", err)
		committed, rolledBack := recoverNow(e)
		t.Logf("recovery: %d committed, %d rolled back", committed, rolledBack)
		pc := snapshotPlacements(e, "r")
		if n := pc.divergent(); n != 0 {
			t.Errorf("%d finalized placements differ after repair then recovery:\n%s", n, pc.describe())
		}
	})

	t.Run("target in doubt", func(t *testing.T) {
		e := newEnv(t)
		createFaultTable(e, "r", 2)
		// Replicated UPDATE of k = 7; the client dies right after the
		// coordinator (first placement) committed, the second prepared.
		ps := placementsOfKey(e, "r", 7)
		if got := runFaultChild(t, e, "autocommit-replicated", "r", "after-decision"); got != "killed" {
			t.Fatalf("child %s", got)
		}
		// The second placement's worker crashes; a later write to the shard
		// marks its placement inactive; the worker comes back.
		second := workerNode(e, ps[1].Host, ps[1].Port)
		if err := second.Kill(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { second.Start(context.Background()) })
		var other int64
		for k := int64(1); k <= 40; k++ {
			if k != 7 && shardOfKey(e, "r", k) == ps[0].ShardID {
				other = k
				break
			}
		}
		e.exec(`UPDATE r SET v = 'later' WHERE k = $1`, other)
		if err := second.Start(ctx); err != nil {
			t.Fatal(err)
		}
		reopenPgshardDB(e)
		t.Logf("placements of shard %d: %+v; prepared transactions: %d", ps[0].ShardID, placementsOfKey(e, "r", 7), preparedOnAllNodes(e))

		// Repair before recovery; meanwhile, a write to the shard.
		repairDone := make(chan error, 1)
		start := time.Now()
		go func() {
			rctx, cancel := context.WithTimeout(ctx, 14*time.Second)
			defer cancel()
			_, err := e.DB.ExecContext(rctx, `SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, ps[0].ShardID, ps[0].Host, ps[0].Port, ps[1].Host, ps[1].Port)
			repairDone <- err
		}()
		time.Sleep(8 * time.Second) // past the killed client's lease
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		wstart := time.Now()
		writeDone := make(chan error, 1)
		go func() {
			_, err := e.DB.ExecContext(wctx, `UPDATE r SET v = 'during' WHERE k = $1`, other)
			writeDone <- err
		}()
		time.Sleep(1500 * time.Millisecond)
		// What the target's backends wait for meanwhile.
		rows, err := e.worker(second).Query(ctx, `SELECT coalesce(wait_event_type || ':' || wait_event, '-') || ' ' || left(query, 50)
			FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()`)
		if err != nil {
			t.Fatal(err)
		}
		activity, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("on the target meanwhile: %q", activity)
		werr := <-writeDone
		cancel()
		t.Logf("write to the shard during the repair: %v after %v", werr, time.Since(wstart).Round(time.Millisecond))
		err = <-repairDone
		t.Logf("repair: %v after %v", err, time.Since(start).Round(time.Millisecond))
		if werr != nil {
			t.Errorf("a write to the shard failed while the repair waited on the in-doubt transaction: %v", werr)
		}
		if err != nil {
			t.Errorf("repair before recovery: %v", err)
		}
		committed, rolledBack := recoverNow(e)
		t.Logf("recovery: %d committed, %d rolled back", committed, rolledBack)
		repairOneSourceEach(e, "r")
		pc := snapshotPlacements(e, "r")
		if n := pc.divergent(); n != 0 {
			t.Errorf("%d finalized placements differ:\n%s", n, pc.describe())
		}
	})
}
