package pgshard_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// stopWorker stops a worker for the rest of the test and starts it again at
// cleanup.
func (e *env) stopWorker(n *pgtest.Node) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { n.Start(context.Background()) })
}

// The seed's walkthrough: 16 shards x 2 replicas, writes from 8 goroutines
// through one prepared statement, a worker stopped, writes going on, the
// worker started again, repaired; the count is unchanged and every shard's
// placements hold identical rows.
func TestSeedWalkthroughWithWorkerDown(t *testing.T) {
	e := setupReviews(t, 16, 2)
	ins, err := e.DB.Prepare(`INSERT INTO customer_reviews (customer_id, review_date, review_rating) VALUES ($1, now(), $2)`)
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	next := 0
	var mu sync.Mutex
	write := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < n/8; i++ {
					mu.Lock()
					next++
					id := next
					mu.Unlock()
					if _, err := ins.Exec("c"+strconv.Itoa(id), id%5); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	write(800)
	if n := e.queryInt(`SELECT count(*) FROM customer_reviews`); n != 800 {
		t.Fatalf("count = %d", n)
	}
	var nodes []string
	rows, _ := e.DB.Query(`SELECT node_name || ':' || node_port FROM pgs_distribution_metadata.node ORDER BY node_name, node_port`)
	for rows.Next() {
		var s string
		rows.Scan(&s)
		nodes = append(nodes, s)
	}
	rows.Close()
	// Stop the first worker in node order (the seed's 1922).
	var down *pgtest.Node
	for _, w := range e.workers {
		if w.Addr() == nodes[0] {
			down = w
		}
	}
	e.stopWorker(down)

	// Reads fail over without marking anything.
	if n := e.queryInt(`SELECT count(*) FROM customer_reviews`); n != 800 {
		t.Fatalf("count with a worker down = %d", n)
	}
	var r int
	for i := 1; i <= 800; i += 37 {
		if err := e.DB.QueryRow(`SELECT review_rating FROM customer_reviews WHERE customer_id = $1`, "c"+strconv.Itoa(i)).Scan(&r); err != nil || r != i%5 {
			t.Fatalf("read c%d with a worker down: %d, %v", i, r, err)
		}
	}
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard_placement WHERE shard_state = 3`); n != 0 {
		t.Fatalf("reads marked %d placements inactive", n)
	}

	// Writes go on; the placements on the stopped node that missed a write
	// become inactive (the seed's state 3).
	write(800)
	inactive := 0
	for _, p := range e.placements("customer_reviews") {
		if p.State == 3 {
			inactive++
			if fmt.Sprintf("%s:%d", p.Host, p.Port) != down.Addr() {
				t.Fatalf("placement %+v marked inactive, but its node is up", p)
			}
		}
	}
	if inactive != 8 {
		t.Fatalf("%d placements inactive, want the 8 on %s", inactive, down.Addr())
	}
	if n := e.queryInt(`SELECT count(*) FROM customer_reviews`); n != 1600 {
		t.Fatalf("count = %d", n)
	}

	if err := down.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Inactive placements get no reads even once their node is back.
	if n := e.queryInt(`SELECT count(*) FROM customer_reviews`); n != 1600 {
		t.Fatalf("count after restart = %d", n)
	}

	pairs := `FROM pgs_distribution_metadata.shard_placement t1, pgs_distribution_metadata.shard_placement t2
		WHERE t1.shard_id = t2.shard_id AND (t1.node_name || t1.node_port) <> (t2.node_name || t2.node_port) AND t1.shard_state = 3`
	_, err = e.DB.Exec(`SELECT master_copy_shard_placement(t1.shard_id, t1.node_name, t1.node_port, t2.node_name, t2.node_port) ` + pairs)
	expectError(t, err, "22023", "source placement must be in finalized state")
	res, err := e.DB.Exec(`SELECT master_copy_shard_placement(t1.shard_id, t2.node_name, t2.node_port, t1.node_name, t1.node_port) ` + pairs)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 8 {
		t.Fatalf("repaired %d placements, want 8", n)
	}
	if n := e.queryInt(`SELECT count(*) FROM customer_reviews`); n != 1600 {
		t.Fatalf("count after repair = %d", n)
	}
	e.assertReplicasIdentical("customer_reviews")
}

// A write that reaches no placement fails and marks nothing.
func TestWriteWithEveryPlacementDownFailsAndMarksNothing(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE kv (k text PRIMARY KEY, v int)`)
	e.exec(`SELECT master_create_distributed_table('kv', 'k')`)
	e.exec(`SELECT master_create_worker_shards('kv', 4, 1)`)
	e.exec(`INSERT INTO kv VALUES ('a', 1)`)
	var host string
	var port int
	if err := e.DB.QueryRow(`SELECT p.node_name, p.node_port FROM pgs_distribution_metadata.shard_placement p`+
		` JOIN pgs_distribution_metadata.shard s ON s.id = p.shard_id WHERE hashtext('a') BETWEEN s.min_value::int AND s.max_value::int`).Scan(&host, &port); err != nil {
		t.Fatal(err)
	}
	for _, w := range e.workers {
		if w.Host == host && w.Port == port {
			e.stopWorker(w)
		}
	}
	_, err := e.DB.Exec(`UPDATE kv SET v = 2 WHERE k = 'a'`)
	expectError(t, err, "08006", "could not reach any finalized placement")
	_, err = e.DB.Exec(`SELECT v FROM kv WHERE k = 'a'`)
	expectError(t, err, "08006", "could not reach")
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard_placement WHERE shard_state <> 1`); n != 0 {
		t.Fatalf("%d placements marked", n)
	}
}

func TestRepairErrorsUsePgShardWords(t *testing.T) {
	e := setupReviews(t, 4, 2)
	ps := e.placements("customer_reviews")
	p0, p1 := ps[0], ps[1] // the two placements of the first shard
	cases := []struct {
		name       string
		src, dst   placement
		srcPort    int
		code, want string
	}{
		{"target finalized", p0, p1, p0.Port, "22023", "target placement must be in inactive state"},
		{"unknown source", p0, p1, 1, "22023", `could not find placement matching "` + p0.Host + `:1"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.DB.Exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, c.src.ShardID, c.src.Host, c.srcPort, c.dst.Host, c.dst.Port)
			expectError(t, err, c.code, c.want)
		})
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, p0.ID)
	_, err := e.DB.Exec(`SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, p0.ShardID, p0.Host, p0.Port, p1.Host, p1.Port)
	expectError(t, err, "22023", "source placement must be in finalized state")
}
