package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
)

// reopen returns a new *sql.DB on the test database, whose catalog is read
// when it first connects: it sees metadata changed by hand at once.
func (e *env) reopen() *sql.DB {
	e.t.Helper()
	db, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

// placementOn returns table's placement of the shard at index i (in range
// order, as the catalog orders them) on node host:port.
func placementOf(ps []placement, shardID int64, host string, port int) placement {
	for _, p := range ps {
		if p.ShardID == shardID && p.Host == host && p.Port == port {
			return p
		}
	}
	return placement{}
}

// setupColocatedPair creates a (k text, v int) and b (k text, w int), both
// with shards x replicas, so b joins a's co-location group.
func setupColocatedPair(t *testing.T, shards, replicas int) *env {
	e := newEnv(t)
	for _, ddl := range []string{
		`CREATE TABLE a (k text NOT NULL, v int)`,
		`CREATE TABLE b (k text NOT NULL, w int)`,
	} {
		e.exec(ddl)
	}
	for _, tb := range []string{"a", "b"} {
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, tb)
		e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', %d, %d)`, tb, shards, replicas))
	}
	return e
}

// TestColocatedJoinReadsWhereEveryTableIsFinalized: a statement joining
// co-located tables runs on a node only where every table's placement of
// the shard is finalized. b's placement on a's first node is inactive and
// holds a row the others lack: a join sent there would count it.
func TestColocatedJoinReadsWhereEveryTableIsFinalized(t *testing.T) {
	ctx := context.Background()
	e := setupColocatedPair(t, 2, 2)
	e.exec(`INSERT INTO a VALUES ('k1', 1)`)
	e.exec(`INSERT INTO b VALUES ('k1', 10), ('k1', 20)`)

	aShard, bShard := e.shardOfText("a", "k1"), e.shardOfText("b", "k1")
	var aFirst placement
	for _, p := range e.placements("a") {
		if p.ShardID == aShard {
			aFirst = p // the lowest id: the one reads go to first
			break
		}
	}
	stale := placementOf(e.placements("b"), bShard, aFirst.Host, aFirst.Port)
	if stale.ID == 0 {
		t.Fatalf("b's shard %d has no placement on %s:%d: a and b are not co-located", bShard, aFirst.Host, aFirst.Port)
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, stale.ID)
	if _, err := e.workerAt(stale.Host, stale.Port).Exec(ctx, fmt.Sprintf(`INSERT INTO b_%d VALUES ('k1', 1000)`, bShard)); err != nil {
		t.Fatal(err)
	}
	db := e.reopen()

	reads := []struct {
		name, sql string
		want      int64
	}{
		{"router join", `SELECT sum(w) FROM a JOIN b ON a.k = b.k WHERE a.k = 'k1'`, 30},
		{"router join b first", `SELECT sum(w) FROM b JOIN a ON a.k = b.k WHERE b.k = 'k1'`, 30},
		{"scatter join", `SELECT sum(w) FROM a JOIN b USING (k)`, 30},
		{"correlated subquery", `SELECT count(*) FROM a WHERE EXISTS (SELECT FROM b WHERE b.k = a.k AND b.w = 1000)`, 0},
		{"b alone", `SELECT sum(w) FROM b WHERE k = 'k1'`, 30},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			var got int64
			if err := db.QueryRow(r.sql).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != r.want {
				t.Fatalf("got %d, want %d", got, r.want)
			}
		})
	}
	t.Run("transaction", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var got int64
		if err := tx.QueryRow(`SELECT sum(w) FROM a JOIN b ON a.k = b.k WHERE a.k = 'k1'`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != 30 {
			t.Fatalf("got %d, want 30", got)
		}
	})

	// Writes that read b would read the stale placement on a's first node:
	// refused. Writes of a alone, and writes of b, go on.
	refused := []string{
		`UPDATE a SET v = b.w FROM b WHERE a.k = b.k AND a.k = 'k1' AND b.w = 20`,
		`DELETE FROM a USING b WHERE a.k = b.k AND a.k = 'k1' AND b.w = 1000`,
		`UPDATE a SET v = b.w FROM b WHERE a.k = b.k AND b.w = 20`,
		`INSERT INTO a VALUES ('k1', (SELECT max(w) FROM b WHERE k = 'k1'))`,
	}
	for _, q := range refused {
		t.Run("refused "+q, func(t *testing.T) {
			_, err := db.Exec(q)
			expectError(t, err, "55000", "not finalized")
		})
	}
	var v int64
	if err := db.QueryRow(`SELECT sum(v) FROM a`).Scan(&v); err != nil || v != 1 {
		t.Fatalf("a changed by a refused write: sum(v) = %d, %v", v, err)
	}
	if _, err := db.Exec(`UPDATE a SET v = 2 WHERE k = 'k1'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE b SET w = w + 1 WHERE k = 'k1'`); err != nil {
		t.Fatal(err)
	}
	// A write of b reading a: b's own placements are what it writes; a is
	// finalized wherever b is written.
	if _, err := db.Exec(`UPDATE b SET w = a.v FROM a WHERE a.k = b.k AND b.k = 'k1' AND b.w = 11`); err != nil {
		t.Fatal(err)
	}
	var got int64
	if err := db.QueryRow(`SELECT sum(w) FROM a JOIN b ON a.k = b.k WHERE a.k = 'k1'`).Scan(&got); err != nil || got != 23 {
		t.Fatalf("after writes: sum(w) = %d, %v; want 23", got, err)
	}

	// Now a's placement on the other node is inactive too: no node has both
	// finalized. The join is refused; each table alone still answers.
	other := placement{}
	for _, p := range e.placements("a") {
		if p.ShardID == aShard && p.ID != aFirst.ID {
			other = p
		}
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, other.ID)
	db = e.reopen()
	_, err := db.Exec(`SELECT sum(w) FROM a JOIN b ON a.k = b.k WHERE a.k = 'k1'`)
	expectError(t, err, "55000", "no node holds a finalized placement")
	if err := db.QueryRow(`SELECT sum(w) FROM b WHERE k = 'k1'`).Scan(&got); err != nil || got != 23 {
		t.Fatalf("b alone: %d, %v", got, err)
	}
	if err := db.QueryRow(`SELECT sum(v) FROM a WHERE k = 'k1'`).Scan(&got); err != nil || got != 2 {
		t.Fatalf("a alone: %d, %v", got, err)
	}
}
