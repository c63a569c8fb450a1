package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keysInShard returns n bigint keys whose hashint8 falls in the shard's
// range, as PostgreSQL computes it.
func (e *env) keysInShard(shardID int64, n int) []int64 {
	e.t.Helper()
	var lo, hi int32
	if err := e.DB.QueryRow(`SELECT min_value::int, max_value::int FROM pgs_distribution_metadata.shard WHERE id = $1`, shardID).Scan(&lo, &hi); err != nil {
		e.t.Fatal(err)
	}
	rows, err := e.worker(e.workers[0]).Query(context.Background(),
		`SELECT k FROM generate_series(1, 100000) k WHERE hashint8(k) BETWEEN $1 AND $2 LIMIT $3`, lo, hi, n)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var keys []int64
	for rows.Next() {
		var k int64
		rows.Scan(&k)
		keys = append(keys, k)
	}
	return keys
}

// Repair and move under live load: 8 writers, each on its own Connector (so
// each with its own metadata cache), keep inserting and updating rows of one
// shard while another Connector repairs an inactive placement of it and then
// moves a placement to a new node. Afterwards every placement is identical
// and every acknowledged write is on every placement.
func TestRepairAndMoveUnderLiveLoad(t *testing.T) {
	e := setupKV(t, 4, 2)
	ps := e.placements("kv")
	shard := ps[0].ShardID
	var holders []placement
	for _, p := range ps {
		if p.ShardID == shard {
			holders = append(holders, p)
		}
	}
	keys := e.keysInShard(shard, 8*400)
	// Rows before the failure.
	for _, k := range keys[:400] {
		e.exec(`INSERT INTO kv (k, v, n) VALUES ($1, 'old', 0)`, k)
	}
	// The second placement missed writes: mark it inactive (as a failed
	// write would) and make it diverge.
	stale := holders[1]
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, stale.ID)
	if _, err := e.workerAt(stale.Host, stale.Port).Exec(context.Background(), fmt.Sprintf(`DELETE FROM kv_%d WHERE k %% 2 = 0`, shard)); err != nil {
		t.Fatal(err)
	}

	var (
		stop     atomic.Bool
		mu       sync.Mutex
		acked    = map[int64]int{} // key -> last acknowledged n
		failures atomic.Int64
		refusals atomic.Int64 // failures that are the repair fence's refusal
		maxLat   atomic.Int64
		wg       sync.WaitGroup
	)
	for w := 0; w < 8; w++ {
		db, err := sql.Open("pgshard", e.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		mine := keys[400+w*350 : 400+(w+1)*350]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := mine[i%len(mine)]
				n := i/len(mine) + 1
				start := time.Now()
				var err error
				if n == 1 {
					_, err = db.Exec(`INSERT INTO kv (k, v, n) VALUES ($1, 'new', $2)`, k, n)
				} else {
					_, err = db.Exec(`UPDATE kv SET n = $2 WHERE k = $1`, k, n)
				}
				if lat := time.Since(start).Microseconds(); lat > maxLat.Load() {
					maxLat.Store(lat)
				}
				if err != nil {
					failures.Add(1)
					if fenceRefusal(err) {
						refusals.Add(1)
					}
					t.Logf("write of %d failed: %v", k, err)
					continue
				}
				mu.Lock()
				acked[k] = n
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)

	admin, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	start := time.Now()
	if _, err := admin.Exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, shard, holders[0].Host, holders[0].Port, stale.Host, stale.Port); err != nil {
		t.Fatalf("repair under load: %v", err)
	}
	repairTime := time.Since(start)
	// Move the first placement to a worker that has none of this shard.
	used := map[string]bool{}
	for _, p := range holders {
		used[fmt.Sprintf("%s:%d", p.Host, p.Port)] = true
	}
	var dest string
	var destPort int
	for _, w := range e.workers {
		if !used[w.Addr()] {
			dest, destPort = w.Host, w.Port
			break
		}
	}
	start = time.Now()
	if _, err := admin.Exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, shard, holders[0].Host, holders[0].Port, dest, destPort); err != nil {
		t.Fatalf("move under load: %v", err)
	}
	moveTime := time.Since(start)
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	e.assertReplicasIdentical("kv")
	after := e.placements("kv")
	var now []placement
	for _, p := range after {
		if p.ShardID == shard {
			now = append(now, p)
		}
	}
	if len(now) != 2 {
		t.Fatalf("shard %d has placements %+v", shard, now)
	}
	for _, p := range now {
		if p.Host == holders[0].Host && p.Port == holders[0].Port {
			t.Fatalf("the moved placement is still on its old node: %+v", now)
		}
	}
	// Every acknowledged write is on every placement.
	var ks []int64
	for k := range acked {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	lost := 0
	for _, p := range now {
		conn := e.workerAt(p.Host, p.Port)
		got := map[int64]int{}
		rows, err := conn.Query(context.Background(), fmt.Sprintf(`SELECT k, n FROM kv_%d`, shard))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k int64
			var n int
			rows.Scan(&k, &n)
			got[k] = n
		}
		rows.Close()
		for _, k := range ks {
			if got[k] != acked[k] {
				lost++
			}
		}
	}
	t.Logf("writes acknowledged: %d keys, failed writes: %d (fence refusals: %d), lost: %d; repair took %v, move took %v, slowest write %v",
		len(acked), failures.Load(), refusals.Load(), lost, repairTime.Round(time.Millisecond), moveTime.Round(time.Millisecond), time.Duration(maxLat.Load())*time.Microsecond)
	if lost != 0 {
		t.Fatalf("%d acknowledged writes missing or stale on some placement", lost)
	}
	// The writers write one row at a time outside a transaction: pgshard
	// runs a write the fence refused again on the current placements
	// (session/retry.go), so none reaches the application.
	if n := refusals.Load(); n != 0 {
		t.Fatalf("%d autocommit writes failed with the repair fence's refusal; want 0", n)
	}
	if len(acked) < 1000 {
		t.Fatalf("only %d keys written: the writers were held back", len(acked))
	}
}
