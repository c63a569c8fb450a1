package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// hangDeadline bounds each concurrent phase of the tests below. It detects a
// hang (every goroutine parked on a pool or lock); it is not a performance
// target: on an idle machine each phase takes a few seconds.
const hangDeadline = 2 * time.Minute

// newEnvOnWorkers is newEnv with only the first n workers registered, so
// that a table with n replicas has a placement on every worker and shards
// alternate their placement order (shard i's replica j is on worker (i+j)
// mod n).
func newEnvOnWorkers(t *testing.T, n int) *env {
	t.Helper()
	e := newEnvWithWorkers(t, sharedCluster(t), "", n)
	// For warmCommitLogs: shard i's first placement is on worker i.
	e.exec(`CREATE TABLE commit_log_warmup (k bigint)`)
	e.exec(`SELECT master_create_distributed_table('commit_log_warmup', 'k')`)
	e.exec(`SELECT master_create_worker_shards('commit_log_warmup', $1, $1)`, n)
	return e
}

// warmCommitLogs makes db's process coordinate a two-phase commit on every
// worker (replicated single-row INSERTs into each shard of
// commit_log_warmup) before a test starts its concurrent writers, so that
// those tests cover a process's later commits; its first ones (which once
// created a commit log on the worker through one more pool connection) are
// TestFreshProcessFirstWritesDoNotDeadlock's.
func (e *env) warmCommitLogs(db *sql.DB) {
	e.t.Helper()
	for k := 1; k <= 32; k++ {
		if _, err := db.Exec(`INSERT INTO commit_log_warmup (k) VALUES ($1)`, k); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, p := range e.placements("commit_log_warmup") {
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %s`, pgx.Identifier{fmt.Sprintf("commit_log_warmup_%d", p.ShardID)}.Sanitize())
		if err := e.workerAt(p.Host, p.Port).QueryRow(context.Background(), q).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			e.t.Fatalf("no warm-up row reached shard %d", p.ShardID)
		}
	}
}

// counterTable creates table (k bigint PRIMARY KEY, g int, n int) with the
// given shards and replicas, and keys 1..keys with n = 0 and g = k's group
// (k-1)/perGroup, through e.DB.
func (e *env) counterTable(table string, shards, replicas, keys, perGroup int) {
	e.t.Helper()
	e.exec(fmt.Sprintf(`CREATE TABLE %s (k bigint PRIMARY KEY, g int NOT NULL, n int NOT NULL DEFAULT 0)`, table))
	e.exec(`SELECT master_create_distributed_table($1, 'k')`, table)
	e.exec(`SELECT master_create_worker_shards($1, $2, $3)`, table, shards, replicas)
	if keys > 0 {
		e.exec(fmt.Sprintf(`INSERT INTO %s (k, g) SELECT i, (i-1)/%d FROM generate_series(1, %d) i`, table, perGroup, keys))
	}
}

// assertCounters reads every placement of table directly on its worker and
// checks that each is finalized and holds exactly the keys of want with
// their counts; every key must be on every placement of its shard.
func (e *env) assertCounters(table string, want map[int64]int) {
	e.t.Helper()
	ctx := context.Background()
	seen := map[int64]int{}
	replicas := map[int64]int{} // shard id -> placements
	for _, p := range e.placements(table) {
		if p.State != 1 {
			e.t.Errorf("placement %d of shard %d on %s:%d is in state %d", p.ID, p.ShardID, p.Host, p.Port, p.State)
			continue
		}
		replicas[p.ShardID]++
		conn := e.workerAt(p.Host, p.Port)
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT k, n FROM %s`, pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize()))
		if err != nil {
			e.t.Fatal(err)
		}
		for rows.Next() {
			var k int64
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				e.t.Fatal(err)
			}
			w, ok := want[k]
			switch {
			case !ok:
				e.t.Errorf("placement %d (%s:%d) holds unexpected key %d", p.ID, p.Host, p.Port, k)
			case n != w:
				e.t.Errorf("placement %d (%s:%d): key %d has n = %d, want %d", p.ID, p.Host, p.Port, k, n, w)
			}
			seen[k]++
		}
		if err := rows.Err(); err != nil {
			e.t.Fatal(err)
		}
	}
	perShard := -1
	for _, n := range replicas {
		if perShard >= 0 && n != perShard {
			e.t.Fatalf("shards have different numbers of finalized placements: %v", replicas)
		}
		perShard = n
	}
	for k := range want {
		if seen[k] != perShard {
			e.t.Errorf("key %d is on %d placements, want %d", k, seen[k], perShard)
		}
	}
}

// runConcurrently runs work(ctx, g, round) for g in [0, goroutines) at once,
// rounds times in each goroutine, under one hangDeadline. It fails the test
// with the number of calls that succeeded when any failed.
func runConcurrently(t *testing.T, goroutines, rounds int, work func(ctx context.Context, g, round int) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	start := time.Now()
	var ok atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if err := work(ctx, g, r); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("goroutine %d, round %d: %w", g, r, err))
					mu.Unlock()
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d of %d succeeded in %v", ok.Load(), goroutines*rounds, time.Since(start).Round(time.Millisecond))
	if len(errs) > 0 {
		for _, err := range errs[:min(len(errs), 5)] {
			t.Error(err)
		}
		t.Fatalf("%d of %d succeeded; %d goroutines failed", ok.Load(), goroutines*rounds, len(errs))
	}
}

// openPool opens the metadata database through pgshard in a new process
// (Connector) with pool_max_conns (0: the default pool), after the tables
// the test uses exist, and warms its commit logs (warmCommitLogs).
func (e *env) openPool(poolMaxConns int) *sql.DB {
	e.t.Helper()
	dsn := e.DSN
	if poolMaxConns > 0 {
		dsn = fmt.Sprintf("%s&pool_max_conns=%d", e.DSN, poolMaxConns)
	}
	db, err := sql.Open("pgshard", dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	e.warmCommitLogs(db)
	return db
}

// concurrencyCases are the pool sizes and loads of the tests below: the
// default pool (32 per worker) with more writers than connections, and a
// pool of 2 with many times more writers than connections.
var concurrencyCases = []struct {
	name         string
	poolMaxConns int
	writers      int
	rounds       int
}{
	{"default pool, 300 writers", 0, 300, 1},
	{"pool_max_conns=2, 40 writers", 2, 40, 3},
}

// TestReplicatedWritersDoNotDeadlock runs many single-row UPDATEs at once on
// a table with 2 replicas on 2 workers, each goroutine on its own key: shards
// alternate their placement order, so a write that took one placement's
// connection before the other's waited forever for writers doing the reverse.
func TestReplicatedWritersDoNotDeadlock(t *testing.T) {
	for _, tc := range concurrencyCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvOnWorkers(t, 2)
			const table = "counters"
			e.counterTable(table, 8, 2, tc.writers, 1)
			db := e.openPool(tc.poolMaxConns)
			runConcurrently(t, tc.writers, tc.rounds, func(ctx context.Context, g, _ int) error {
				res, err := db.ExecContext(ctx, `UPDATE counters SET n = n + 1 WHERE k = $1`, g+1)
				if err != nil {
					return err
				}
				if n, err := res.RowsAffected(); err != nil || n != 1 {
					return fmt.Errorf("%d rows affected (%v), want 1", n, err)
				}
				return nil
			})
			want := map[int64]int{}
			for k := 1; k <= tc.writers; k++ {
				want[int64(k)] = tc.rounds
			}
			e.assertCounters(table, want)
		})
	}
}

// TestMultiShardUpdatesDoNotDeadlock runs many two-shard UPDATEs at once
// (each an implicit transaction over its shards, committed with two-phase
// commit), with and without replicas. The table has 4 shards on 2 workers,
// whose first placements alternate between the workers; goroutine g updates
// its own key in shard g mod 4 and its own key in the next shard. Shards
// are written in index order, so the statements on shards 1 and 2 reach
// the workers in the reverse order of the others.
func TestMultiShardUpdatesDoNotDeadlock(t *testing.T) {
	for _, tc := range concurrencyCases {
		for _, replicas := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s, %d replicas", tc.name, replicas), func(t *testing.T) {
				e := newEnvOnWorkers(t, 2)
				const table, shards = "counters", 4
				e.counterTable(table, shards, replicas, 0, 1)
				byShard := e.keysByShard(table, shards, tc.writers)
				keys := make([][2]int64, tc.writers)
				want := map[int64]int{}
				for g := range keys {
					keys[g] = [2]int64{byShard[g%shards][g], byShard[(g+1)%shards][g]}
					e.exec(`INSERT INTO counters (k, g) VALUES ($1, $3), ($2, $3)`, keys[g][0], keys[g][1], g)
					want[keys[g][0]], want[keys[g][1]] = tc.rounds, tc.rounds
				}
				db := e.openPool(tc.poolMaxConns)
				runConcurrently(t, tc.writers, tc.rounds, func(ctx context.Context, g, _ int) error {
					res, err := db.ExecContext(ctx, `UPDATE counters SET n = n + 1 WHERE k IN ($1, $2)`, keys[g][0], keys[g][1])
					if err != nil {
						return err
					}
					if n, err := res.RowsAffected(); err != nil || n != 2 {
						return fmt.Errorf("%d rows affected (%v), want 2", n, err)
					}
					return nil
				})
				e.assertCounters(table, want)
			})
		}
	}
}

// TestCrossShardTransactionsDoNotDeadlock runs many transactions at once,
// each updating its own two rows, which lie on shards with different first
// placements: a third of them one row after the other in one order, a
// third in the other order (a transaction holding one worker's connection
// asks for the other's while others do the reverse), and a third both rows
// in one statement (which takes both connections at once).
func TestCrossShardTransactionsDoNotDeadlock(t *testing.T) {
	for _, tc := range concurrencyCases {
		for _, replicas := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s, %d replicas", tc.name, replicas), func(t *testing.T) {
				e := newEnvOnWorkers(t, 2)
				const table = "counters"
				// 2 shards on 2 workers: shard 0's first placement is on one
				// worker, shard 1's on the other.
				e.counterTable(table, 2, replicas, 0, 1)
				byShard := e.keysByShard(table, 2, tc.writers)
				want := map[int64]int{}
				for g := 0; g < tc.writers; g++ {
					e.exec(`INSERT INTO counters (k, g) VALUES ($1, $3), ($2, $3)`, byShard[0][g], byShard[1][g], g)
					want[byShard[0][g]], want[byShard[1][g]] = tc.rounds, tc.rounds
				}
				db := e.openPool(tc.poolMaxConns)
				runConcurrently(t, tc.writers, tc.rounds, func(ctx context.Context, g, _ int) error {
					a, b := byShard[0][g], byShard[1][g]
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					var statements [][]any
					switch g % 3 {
					case 0:
						statements = [][]any{{`UPDATE counters SET n = n + 1 WHERE k = $1`, a}, {`UPDATE counters SET n = n + 1 WHERE k = $1`, b}}
					case 1:
						statements = [][]any{{`UPDATE counters SET n = n + 1 WHERE k = $1`, b}, {`UPDATE counters SET n = n + 1 WHERE k = $1`, a}}
					case 2:
						statements = [][]any{{`UPDATE counters SET n = n + 1 WHERE k IN ($1, $2)`, a, b}}
					}
					for _, st := range statements {
						if _, err := tx.ExecContext(ctx, st[0].(string), st[1:]...); err != nil {
							return err
						}
					}
					return tx.Commit()
				})
				e.assertCounters(table, want)
			})
		}
	}
}

// keysByShard returns perShard keys in each shard of table (of shards
// shards), by shard index: it inserts candidate keys, reads each shard
// table on its worker, and deletes them again.
func (e *env) keysByShard(table string, shards, perShard int) [][]int64 {
	e.t.Helper()
	index := map[int64]int{} // shard id -> index, in id order
	for _, p := range e.placements(table) {
		if _, ok := index[p.ShardID]; !ok {
			index[p.ShardID] = len(index)
		}
	}
	if len(index) != shards {
		e.t.Fatalf("%s has %d shards, want %d", table, len(index), shards)
	}
	candidates := 4 * shards * perShard
	e.exec(fmt.Sprintf(`INSERT INTO %s (k, g) SELECT i, -1 FROM generate_series(1, %d) i`, table, candidates))
	byShard := make([][]int64, shards)
	for _, p := range e.placements(table) {
		conn := e.workerAt(p.Host, p.Port)
		rows, err := conn.Query(context.Background(), fmt.Sprintf(`SELECT k FROM %s ORDER BY k LIMIT %d`, pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize(), perShard))
		if err != nil {
			e.t.Fatal(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			e.t.Fatal(err)
		}
		if len(keys) < perShard {
			e.t.Fatalf("only %d of %d candidate keys fell in shard %d", len(keys), candidates, p.ShardID)
		}
		byShard[index[p.ShardID]] = keys
	}
	e.exec(fmt.Sprintf(`DELETE FROM %s WHERE g = -1`, table))
	return byShard
}
