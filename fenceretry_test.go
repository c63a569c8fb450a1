package pgshard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard"
	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/repair"
	pgsession "github.com/pgshard/pgshard/session"
)

// fenceRefusal reports whether err is the repair fence's refusal (by its
// marker, or by its message should the marker ever be lost).
func fenceRefusal(err error) bool {
	return repair.IsRefusal(err) || (err != nil && strings.Contains(err.Error(), "is being repaired or moved"))
}

// A write planned on the placements from before a repair, that reaches the
// fenced source while the repair's new placement is filling, is refused by
// the fence; outside a transaction pgshard runs the whole statement again
// on the current placements, and it lands once on every placement, the new
// one included, with RowsAffected the plain count; inside a transaction
// the application gets the 40001, with a hint to run the transaction
// again, and nothing changes on any shard. The write is of the repaired
// shard alone, or of it and two other shards (a scatter UPDATE, a
// multi-row INSERT, an INSERT ... SELECT: run in one statement
// transaction, whose other shards' writes the refusal rolls back).
//
// The timing is held deterministically: the write is planned (its snapshot
// taken: the stale placement inactive, so the source alone) and then waits
// in a volatile function pgshard evaluates on the metadata database
// (fence_gate, blocked on an advisory lock the test holds). The writer's
// heartbeats are made to acknowledge every version (ackEverything), so
// that the repair does not wait for the write in flight
// (catalog.WaitForAcks) while its lease still holds: the write is sent,
// and the fence refuses it. (A write whose lease ran out meanwhile, its
// process paused, is stopped before it is sent: TestStalledWriteAfterRepairSwitch.) The repair is then held after its copy, before its
// metadata switch (the target's placement row locked): the source is
// fenced. The write is let go then.
func TestFenceRefusedWriteIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		// kind is the write: "insert" (VALUES, one row per key), "update"
		// (of keys inserted 'old'), or "insert select" (the keys from a
		// VALUES list the metadata database reads, through the client).
		kind string
		// multi: the write has a key in the repaired shard and one in each
		// of two other shards (else the repaired shard's key alone).
		multi bool
		// inTx: the write runs inside BeginTx.
		inTx bool
	}{
		{name: "autocommit insert", kind: "insert"},
		{name: "autocommit update", kind: "update"},
		{name: "update in a transaction", kind: "update", inTx: true},
		{name: "insert in a transaction", kind: "insert", inTx: true},
		{name: "autocommit scatter update", kind: "update", multi: true},
		{name: "autocommit multi-row insert", kind: "insert", multi: true},
		{name: "autocommit insert select", kind: "insert select", multi: true},
		{name: "scatter update in a transaction", kind: "update", multi: true, inTx: true},
		{name: "multi-row insert in a transaction", kind: "insert", multi: true, inTx: true},
		{name: "insert select in a transaction", kind: "insert select", multi: true, inTx: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			e := setupKV(t, 4, 2)
			e.exec(`CREATE FUNCTION fence_gate() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
				BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN 'gated'; END $$`)
			shard, holders := firstShard(e)
			// keys[i] is in shard shards[i]; the repaired shard first.
			shards := []int64{shard}
			if tc.multi {
				for _, p := range e.placements("kv") {
					if len(shards) < 3 && !slices.Contains(shards, p.ShardID) {
						shards = append(shards, p.ShardID)
					}
				}
			}
			var keys []any
			for _, id := range shards {
				keys = append(keys, e.keysInShard(id, 1)[0])
			}
			if tc.kind == "update" {
				for _, k := range keys {
					e.exec(`INSERT INTO kv (k, v, n) VALUES ($1, 'old', 0)`, k)
				}
			}
			var query string
			marks := make([]string, len(keys))
			switch tc.kind {
			case "insert":
				for i := range keys {
					marks[i] = fmt.Sprintf("($%d, fence_gate())", i+1)
				}
				query = `INSERT INTO kv (k, v) VALUES ` + strings.Join(marks, ", ")
			case "update":
				for i := range keys {
					marks[i] = fmt.Sprintf("$%d", i+1)
				}
				query = `UPDATE kv SET v = fence_gate() WHERE k IN (` + strings.Join(marks, ", ") + `)`
			case "insert select":
				for i := range keys {
					marks[i] = fmt.Sprintf("($%d::bigint)", i+1)
				}
				query = `INSERT INTO kv (k, v) SELECT s.k, fence_gate() FROM (VALUES ` + strings.Join(marks, ", ") + `) s(k)`
			}
			source, stale := holders[0], holders[1]
			e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, stale.ID)
			connect := func(host string, port int) *pgx.Conn {
				conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", host, port, e.dbname))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close(context.Background()) })
				return conn
			}
			metaHost, metaPort := e.c.Nodes[0].Host, e.c.Nodes[0].Port
			heartbeat, gate, metaHold, poll := connect(metaHost, metaPort), connect(metaHost, metaPort), connect(metaHost, metaPort), connect(metaHost, metaPort)
			hold, targetPoll := connect(stale.Host, stale.Port), connect(stale.Host, stale.Port)
			sourcePoll := connect(source.Host, source.Port)
			table := fmt.Sprintf("kv_%d", shard)

			rows, err := poll.Query(ctx, `SELECT id FROM pgs_distribution_metadata.process`)
			if err != nil {
				t.Fatal(err)
			}
			before, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			writer, err := sql.Open("pgshard", e.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer writer.Close()
			if _, err := writer.ExecContext(ctx, `UPDATE kv SET n = 0 WHERE k = $1`, keys[0]); err != nil {
				t.Fatal(err)
			}
			var writerID string
			if err := poll.QueryRow(ctx, `SELECT id FROM pgs_distribution_metadata.process WHERE id <> ALL($1)`, before).Scan(&writerID); err != nil {
				t.Fatalf("the writer's heartbeat: %v", err)
			}

			// The gate, and the writer's heartbeats acknowledging every version.
			mustExecConn(t, ctx, gate, `BEGIN`, `SELECT pg_advisory_xact_lock(4242)`)
			ackEverything(t, ctx, heartbeat, writerID)
			type outcome struct {
				affected int64
				err      error
			}
			written := make(chan outcome, 1)
			go func() {
				if !tc.inTx {
					res, err := writer.ExecContext(ctx, query, keys...)
					if err != nil {
						written <- outcome{err: err}
						return
					}
					n, err := res.RowsAffected()
					written <- outcome{n, err}
					return
				}
				tx, err := writer.BeginTx(ctx, nil)
				if err != nil {
					written <- outcome{err: err}
					return
				}
				_, err = tx.ExecContext(ctx, query, keys...)
				if err != nil {
					_ = tx.Rollback()
				} else {
					err = tx.Commit()
				}
				written <- outcome{err: err}
			}()
			waitUntil(t, ctx, "the write waiting in fence_gate", poll,
				`SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory')`)

			// The repair; held before it recreates the target's table (by
			// then the source is fenced), then before its switch.
			repaired := repairHeldAtSwitch(t, ctx, e, hold, targetPoll, sourcePoll, metaHold, poll, table, shard, source, stale)

			// The write goes now, planned on the source alone.
			mustExecConn(t, ctx, gate, `COMMIT`)
			w := <-written
			mustExecConn(t, ctx, metaHold, `COMMIT`)
			if err := <-repaired; err != nil {
				t.Fatalf("repair: %v", err)
			}

			want := "gated"
			if tc.inTx {
				var pgErr *pgconn.PgError
				switch {
				case !errors.As(w.err, &pgErr) || pgErr.Code != "40001" || !fenceRefusal(w.err):
					t.Fatalf("write in a transaction: got %v, want the fence's 40001", w.err)
				case pgErr.Hint != pgsession.RerunTransactionHint:
					t.Errorf("hint = %q, want %q", pgErr.Hint, pgsession.RerunTransactionHint)
				}
				want = "old"
				if tc.kind != "update" {
					want = ""
				}
			} else if w.err != nil {
				t.Fatalf("autocommit write: %v (want it run again on the current placements)", w.err)
			} else if w.affected != int64(len(keys)) {
				t.Errorf("RowsAffected = %d, want %d", w.affected, len(keys))
			}
			var now []placement
			for _, p := range e.placements("kv") {
				if p.ShardID == shard {
					now = append(now, p)
				}
			}
			if len(now) != 2 {
				t.Fatalf("shard %d has placements %+v, want 2", shard, now)
			}
			for _, p := range e.placements("kv") {
				i := slices.Index(shards, p.ShardID)
				if i < 0 {
					continue
				}
				if p.State != 1 {
					t.Errorf("placement %d on %s:%d has state %d, want 1", p.ID, p.Host, p.Port, p.State)
				}
				var got string
				var count int
				err := e.workerAt(p.Host, p.Port).QueryRow(ctx, fmt.Sprintf(`SELECT count(*), coalesce(max(v), '') FROM kv_%d WHERE k = $1`, p.ShardID), keys[i]).Scan(&count, &got)
				if err != nil {
					t.Fatal(err)
				}
				wantCount := 1
				if want == "" {
					wantCount = 0
				}
				if got != want || count != wantCount {
					t.Errorf("placement %d (shard %d) on %s:%d: %d rows of key %v, v = %q; want %d, v = %q", p.ID, p.ShardID, p.Host, p.Port, count, keys[i], got, wantCount, want)
				}
			}
			e.assertReplicasIdentical("kv")
		})
	}
}

// fenceRetryBudget is how long pgshard runs again an autocommit write the
// fence refuses (session/retry.go: the lease, catalog.LeaseDuration).
const fenceRetryBudget = catalog.LeaseDuration

// firstShard returns kv's first shard and its placements.
func firstShard(e *env) (int64, []placement) {
	ps := e.placements("kv")
	shard := ps[0].ShardID
	var holders []placement
	for _, p := range ps {
		if p.ShardID == shard {
			holders = append(holders, p)
		}
	}
	if len(holders) != 2 {
		e.t.Fatalf("shard %d has placements %+v, want 2", shard, holders)
	}
	return shard, holders
}

// The runs of a refused write are bounded: a fence that never clears (a
// trigger the test puts on every placement of the shard, raising the
// fence's refusal and counting its runs in a sequence, which a rollback
// does not undo) fails the write once the retry budget (the lease, 5 s
// from the first refusal) would pass before its next run, after more
// runs than the five that used to bound it, and a context deadline
// ends the retries early. A 40001 without the fence's marker (a
// serialization failure) is not run again, nor is a refused write inside
// a transaction, nor a COPY (pgshard runs every COPY in a transaction, and
// the rows already sent from the application's source cannot be sent
// again): it fails with the hint to run the transaction again.
func TestFenceRetryIsBounded(t *testing.T) {
	e := setupKV(t, 4, 2)
	shard, holders := firstShard(e)
	keys := e.keysInShard(shard, 2)
	key, copyKey := keys[0], keys[1]
	e.exec(`INSERT INTO kv (k, v, n) VALUES ($1, 'old', 0)`, key)
	// otherKey is in another shard, which no trigger fences.
	var otherKey int64
	for _, p := range e.placements("kv") {
		if p.ShardID != shard {
			otherKey = e.keysInShard(p.ShardID, 1)[0]
			break
		}
	}
	e.exec(`INSERT INTO kv (k, v, n) VALUES ($1, 'old', 0)`, otherKey)
	table := fmt.Sprintf("kv_%d", shard)
	ctx := context.Background()
	for _, p := range holders {
		w := e.workerAt(p.Host, p.Port)
		for _, s := range []string{
			`CREATE SEQUENCE fence_runs`,
			`CREATE FUNCTION test_fence() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				PERFORM nextval('fence_runs');
				IF TG_ARGV[0] = '' THEN
					RAISE EXCEPTION 'could not serialize access due to read/write dependencies among transactions' USING ERRCODE = '40001';
				END IF;
				RAISE EXCEPTION 'shard table %.% is being repaired or moved, and this write was planned on placements older than metadata version 999999', TG_TABLE_SCHEMA, TG_TABLE_NAME
					USING ERRCODE = '40001', CONSTRAINT = TG_ARGV[0];
			END $$`,
		} {
			if _, err := w.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	runs := func() int64 {
		var total int64
		for _, p := range holders {
			var n int64
			if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM fence_runs`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			total += n
		}
		return total
	}
	for _, tc := range []struct {
		name       string
		constraint string
		timeout    time.Duration
		inTx       bool
		// copy: the write is a COPY through pgshard.CopyFrom (always in a
		// transaction of its own) of a new row of the shard.
		copy bool
		// multi: the write is a scatter UPDATE of key and otherKey.
		multi bool
		// wantRuns is the exact number of runs; with maxRuns set instead,
		// fewer than maxRuns; with budget set instead, runs until the retry
		// budget (fenceRetryBudget) ends.
		wantRuns, maxRuns int64
		budget            bool
		wantHint          string
	}{
		{name: "fence never clears", constraint: repair.RefusalConstraint, timeout: time.Minute, budget: true, wantHint: "Run the statement again once the repair or move of the shard has switched its placements."},
		{name: "scatter update, fence never clears", constraint: repair.RefusalConstraint, timeout: time.Minute, multi: true, budget: true, wantHint: "Run the statement again once the repair or move of the shard has switched its placements."},
		{name: "deadline during the retries", constraint: repair.RefusalConstraint, timeout: 60 * time.Millisecond, maxRuns: 5},
		{name: "serialization failure", constraint: "", timeout: time.Minute, wantRuns: 1},
		{name: "fence in a transaction", constraint: repair.RefusalConstraint, timeout: time.Minute, inTx: true, wantRuns: 1, wantHint: pgsession.RerunTransactionHint},
		// The COPY may start on both placements before the first refuses:
		// its runs are not counted, its error and effect are checked.
		{name: "COPY", constraint: repair.RefusalConstraint, timeout: time.Minute, copy: true, wantHint: pgsession.RerunTransactionHint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range holders {
				w := e.workerAt(p.Host, p.Port)
				if _, err := w.Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE TRIGGER test_fence BEFORE INSERT OR UPDATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION test_fence('%s')`, table, tc.constraint)); err != nil {
					t.Fatal(err)
				}
			}
			defer func() {
				for _, p := range holders {
					if _, err := e.workerAt(p.Host, p.Port).Exec(ctx, `DROP TRIGGER test_fence ON `+table); err != nil {
						t.Fatal(err)
					}
				}
			}()
			before := runs()
			wctx, cancel := context.WithTimeout(ctx, tc.timeout)
			defer cancel()
			start := time.Now()
			var err error
			if tc.copy {
				_, err = pgshard.CopyFrom(wctx, e.DB, pgx.Identifier{"kv"}, []string{"k", "v"}, pgx.CopyFromRows([][]any{{copyKey, "copied"}}))
			} else if tc.inTx {
				tx, terr := e.DB.BeginTx(wctx, nil)
				if terr != nil {
					t.Fatal(terr)
				}
				_, err = tx.ExecContext(wctx, `UPDATE kv SET n = n + 1 WHERE k = $1`, key)
				_ = tx.Rollback()
			} else if tc.multi {
				_, err = e.DB.ExecContext(wctx, `UPDATE kv SET n = n + 1 WHERE k IN ($1, $2)`, key, otherKey)
			} else {
				_, err = e.DB.ExecContext(wctx, `UPDATE kv SET n = n + 1 WHERE k = $1`, key)
			}
			elapsed := time.Since(start)
			n := runs() - before
			t.Logf("error after %d runs in %v: %v", n, elapsed.Round(time.Millisecond), err)
			if err == nil {
				t.Fatal("the write succeeded through a fence that never clears")
			}
			if tc.maxRuns > 0 {
				if n >= tc.maxRuns {
					t.Errorf("%d runs within a %v deadline, want fewer than %d", n, tc.timeout, tc.maxRuns)
				}
				if elapsed > tc.timeout+time.Second {
					t.Errorf("the write returned %v after its %v deadline", elapsed-tc.timeout, tc.timeout)
				}
				return
			}
			if tc.budget {
				// No wait (at most 160 ms) is begun that would end past
				// the budget; the last run ends after it at most by its
				// own time.
				if elapsed < fenceRetryBudget-time.Second || elapsed > fenceRetryBudget+time.Second {
					t.Errorf("the write gave up after %v, want about %v", elapsed, fenceRetryBudget)
				}
				if n <= 5 {
					t.Errorf("%d runs in %v, want more than 5 (the runs are bounded by time, not by count)", n, elapsed)
				}
			} else if !tc.copy && n != tc.wantRuns {
				t.Errorf("%d runs, want %d", n, tc.wantRuns)
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
				t.Fatalf("got %v, want SQLSTATE 40001", err)
			}
			if tc.wantHint != "" && pgErr.Hint != tc.wantHint {
				t.Errorf("hint = %q, want %q", pgErr.Hint, tc.wantHint)
			}
			if times := fmt.Sprintf("ran the statement %d times", n); tc.budget && !strings.Contains(pgErr.Detail, times) {
				t.Errorf("detail = %q, want it to say %q", pgErr.Detail, times)
			}
			for _, k := range []int64{key, otherKey} {
				var v int
				if err := e.DB.QueryRow(`SELECT n FROM kv WHERE k = $1`, k).Scan(&v); err != nil {
					t.Fatal(err)
				}
				if v != 0 {
					t.Errorf("key %d: n = %d after refused writes, want 0", k, v)
				}
			}
			var copied int
			if err := e.DB.QueryRow(`SELECT count(*) FROM kv WHERE k = $1`, copyKey).Scan(&copied); err != nil {
				t.Fatal(err)
			}
			if copied != 0 {
				t.Errorf("the refused COPY's row is in kv")
			}
		})
	}
}
