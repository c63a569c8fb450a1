package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// TestWorkerCrashDuringRepair: a shard with 3 placements, one inactive and
// being repaired from another while 8 writers increment their own keys of
// it. The repair is held in its copy (the source fenced, the target
// filling); then the whole target worker, or the whole source worker,
// crashes (pgtest.Node.Crash: the postmaster frozen, every backend and
// the postmaster killed by pid). The repair must fail with an error naming
// the crashed node; the shard must take writes again within a bounded time
// on the surviving placements; once the node is back, repairs of every
// placement left inactive must succeed; and afterwards every placement is
// finalized and identical, and holds, for each key, at least every
// acknowledged increment and at most every attempted one.
func TestWorkerCrashDuringRepair(t *testing.T) {
	for _, victimRole := range []string{"target", "source"} {
		t.Run("crash of the "+victimRole, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			e := startClusterEnv(t, 4)
			e.exec(`CREATE TABLE kv (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
			e.exec(`SELECT master_create_distributed_table('kv', 'k')`)
			e.exec(`SELECT master_create_worker_shards('kv', 2, 3)`)
			shard := e.placements("kv")[0].ShardID
			var holders []placement
			for _, p := range e.placements("kv") {
				if p.ShardID == shard {
					holders = append(holders, p)
				}
			}
			if len(holders) != 3 {
				t.Fatalf("shard %d has placements %+v, want 3", shard, holders)
			}
			const writers = 8
			keys := e.keysInShard(shard, writers)
			for _, k := range keys {
				e.exec(`INSERT INTO kv (k, v) VALUES ($1, 'x')`, k)
			}
			source, target := holders[0], holders[1]
			e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, target.ID)
			victimP := target
			if victimRole == "source" {
				victimP = source
			}
			var victim *pgtest.Node
			for _, w := range e.workers {
				if w.Host == victimP.Host && w.Port == victimP.Port {
					victim = w
				}
			}

			// The writers: one process of their own.
			db, err := sql.Open("pgshard", e.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var (
				stop             atomic.Bool
				acked, attempted [writers]atomic.Int64
				lastErrMu        sync.Mutex
				lastErr          [writers]error
				wg               sync.WaitGroup
			)
			for g := 0; g < writers; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						attempted[g].Add(1)
						wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
						_, err := db.ExecContext(wctx, `UPDATE kv SET n = n + 1 WHERE k = $1`, keys[g])
						wcancel()
						if err == nil {
							acked[g].Add(1)
						} else {
							lastErrMu.Lock()
							lastErr[g] = err
							lastErrMu.Unlock()
							time.Sleep(20 * time.Millisecond)
						}
					}
				}()
			}
			defer func() {
				stop.Store(true)
				wg.Wait()
			}()
			time.Sleep(300 * time.Millisecond)

			// The repair, held in its copy: the target's table locked.
			hold, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", target.Host, target.Port, e.dbname))
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Close(context.Background())
			table := fmt.Sprintf("kv_%d", shard)
			mustExecConn(t, ctx, hold, `BEGIN`, `LOCK TABLE `+table+` IN ACCESS SHARE MODE`)
			repaired := make(chan error, 1)
			go func() {
				_, err := e.DB.ExecContext(ctx, `SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, shard, source.Host, source.Port, target.Host, target.Port)
				repaired <- err
			}()
			targetPoll, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", target.Host, target.Port, e.dbname))
			if err != nil {
				t.Fatal(err)
			}
			waitUntil(t, ctx, "the copy's DROP waiting on the target", targetPoll, `SELECT EXISTS (SELECT FROM pg_locks
				WHERE relation = '`+table+`'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted)`)
			targetPoll.Close(ctx)
			time.Sleep(200 * time.Millisecond) // writes queue behind the copy
			crashed := time.Now()
			if err := victim.Crash(); err != nil {
				t.Fatal(err)
			}
			if victimRole == "source" {
				_, _ = hold.Exec(ctx, `COMMIT`)
			}
			var repairErr error
			select {
			case repairErr = <-repaired:
			case <-time.After(90 * time.Second):
				t.Fatalf("the repair did not return within 90 s of the %s's crash", victimRole)
			}
			t.Logf("repair after the %s's crash (%v): %v", victimRole, time.Since(crashed).Round(time.Millisecond), repairErr)
			if repairErr == nil {
				t.Fatalf("the repair succeeded although its %s crashed during the copy", victimRole)
			}
			if !strings.Contains(repairErr.Error(), strconv.Itoa(victimP.Port)) {
				t.Errorf("the repair's error does not name the crashed node %s:%d: %v", victimP.Host, victimP.Port, repairErr)
			}

			// The shard takes writes again on the surviving placements.
			probe := keys[0]
			var writable time.Duration
			for {
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := e.DB.ExecContext(wctx, `UPDATE kv SET v = 'probe' WHERE k = $1`, probe)
				wcancel()
				if err == nil {
					writable = time.Since(crashed)
					break
				}
				if time.Since(crashed) > 30*time.Second {
					t.Fatalf("shard %d takes no write 30 s after the %s's crash: %v", shard, victimRole, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			before := make([]int64, writers)
			for g := range before {
				before[g] = acked[g].Load()
			}
			time.Sleep(time.Second)
			progressed := 0
			for g := range before {
				if acked[g].Load() > before[g] {
					progressed++
				}
			}
			t.Logf("shard writable %v after the crash; %d of %d writers acknowledged writes in the next second", writable.Round(time.Millisecond), progressed, writers)
			if progressed != writers {
				lastErrMu.Lock()
				t.Errorf("%d of %d writers made no progress a second after the shard was writable again; last errors: %v", writers-progressed, writers, lastErr)
				lastErrMu.Unlock()
			}

			// The node comes back; every placement left inactive is repaired.
			if err := victim.Start(ctx); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Minute)
			for {
				var inactive []placement
				var finalized *placement
				for _, p := range e.placements("kv") {
					switch {
					case p.State == 1 && finalized == nil && p.ShardID == shard:
						p := p
						finalized = &p
					case p.State != 1:
						inactive = append(inactive, p)
					}
				}
				if len(inactive) == 0 {
					break
				}
				for _, p := range inactive {
					if p.State == 5 {
						continue // a filling placement left behind is not repaired here
					}
					var from *placement
					for _, q := range e.placements("kv") {
						if q.ShardID == p.ShardID && q.State == 1 {
							q := q
							from = &q
							break
						}
					}
					if from == nil {
						t.Fatalf("shard %d has no finalized placement left", p.ShardID)
					}
					if _, err := e.DB.ExecContext(ctx, `SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, p.ShardID, from.Host, from.Port, p.Host, p.Port); err != nil {
						t.Logf("repair of placement %d after the restart: %v", p.ID, err)
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("placements still not finalized a minute after the restart: %+v", e.placements("kv"))
				}
				time.Sleep(200 * time.Millisecond)
			}
			stop.Store(true)
			wg.Wait()
			e.assertReplicasIdentical("kv")
			for _, p := range e.placements("kv") {
				if p.ShardID != shard {
					continue
				}
				for g, k := range keys {
					var n int64
					if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, fmt.Sprintf(`SELECT n FROM kv_%d WHERE k = $1`, shard), k).Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n < acked[g].Load() || n > attempted[g].Load() {
						t.Errorf("placement %d on %s:%d: key %d has n = %d, want between %d acknowledged and %d attempted", p.ID, p.Host, p.Port, k, n, acked[g].Load(), attempted[g].Load())
					}
				}
			}
		})
	}
}
