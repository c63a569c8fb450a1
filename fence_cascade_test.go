package pgshard_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgshard/pgshard/repair"
)

// TestFenceRefusedCascadeIsRetriedUntilTheRepairSwitches: an autocommit
// DELETE of a referenced table's row whose ON DELETE CASCADE reaches a
// co-located shard under repair. The DELETE is planned on the current
// placements (the referenced shard's are all finalized), so its BEGIN
// carries no version, and on the repair's source the cascade reaches the
// fenced referencing shard table: the fence refuses every run of it until
// the repair switches and drops its fence, however fresh its catalog. The
// repair is held before its switch (pauseRepairBeforeSwitch) for longer
// than the five runs pgshard used to make (150 ms of backoff); the DELETE
// must not fail meanwhile, and must land, once, after the switch: the
// parent row and its children gone from every placement, the replicas
// identical.
func TestFenceRefusedCascadeIsRetriedUntilTheRepairSwitches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newEnv(t)
	e.exec(`CREATE TABLE parent (k bigint PRIMARY KEY, v text)`)
	e.exec(`CREATE TABLE child (k bigint NOT NULL, n int)`)
	for _, tb := range []string{"parent", "child"} {
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, tb)
		e.exec(`SELECT master_create_worker_shards($1, 4, 2)`, tb)
	}
	e.exec(`ALTER TABLE child ADD CONSTRAINT child_parent_fk FOREIGN KEY (k) REFERENCES parent (k) ON DELETE CASCADE`)
	ps := e.placements("child")
	shard := ps[0].ShardID
	var holders []placement
	for _, p := range ps {
		if p.ShardID == shard {
			holders = append(holders, p)
		}
	}
	if len(holders) != 2 {
		t.Fatalf("child's shard %d has placements %+v, want 2", shard, holders)
	}
	keys := e.keysInShard(shard, 2)
	gone, kept := keys[0], keys[1]
	for _, k := range keys {
		e.exec(`INSERT INTO parent VALUES ($1, 'p')`, k)
		e.exec(`INSERT INTO child VALUES ($1, 1), ($1, 2)`, k)
	}
	source, target := holders[0], holders[1]
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, target.ID)
	r := pauseRepairBeforeSwitch(t, ctx, e, "child", shard, source, target)
	if n := fenceTriggers(t, ctx, e.workerAt(source.Host, source.Port), r.table); n != 1 {
		t.Fatalf("the source has %d write fences on %s while the repair waits for its switch, want 1", n, r.table)
	}

	type outcome struct {
		affected int64
		err      error
	}
	deleted := make(chan outcome, 1)
	go func() {
		res, err := e.DB.ExecContext(ctx, `DELETE FROM parent WHERE k = $1`, gone)
		if err != nil {
			deleted <- outcome{err: err}
			return
		}
		n, err := res.RowsAffected()
		deleted <- outcome{n, err}
	}()
	// The fence refuses every run while the switch is held: the DELETE
	// must still be waiting after well over the old five runs.
	const held = time.Second
	select {
	case o := <-deleted:
		_ = r.release()
		t.Fatalf("the DELETE returned while the repair of the co-located shard was still fenced (held %v): %d rows, %v; want it run again until the fence is dropped (fence refusal: %v)", held, o.affected, o.err, fenceRefusal(o.err))
	case <-time.After(held):
	}
	if err := r.release(); err != nil {
		t.Fatalf("repair: %v", err)
	}
	o := <-deleted
	if o.err != nil {
		t.Fatalf("the DELETE after the repair switched: %v (fence refusal: %v, marker: %v)", o.err, fenceRefusal(o.err), repair.IsRefusal(o.err))
	}
	if o.affected != 1 {
		t.Errorf("DELETE affected %d rows, want 1", o.affected)
	}
	for _, p := range e.placements("child") {
		if p.ShardID != shard {
			continue
		}
		if p.State != 1 {
			t.Errorf("placement %d of child on %s:%d has state %d after the repair, want 1", p.ID, p.Host, p.Port, p.State)
		}
		for _, c := range []struct {
			table string
			shard int64
			k     int64
			want  int
		}{
			{"child", shard, gone, 0},
			{"child", shard, kept, 2},
			{"parent", e.colocatedShard("parent", shard), gone, 0},
			{"parent", e.colocatedShard("parent", shard), kept, 1},
		} {
			var n int
			if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, `SELECT count(*) FROM `+shardTable(c.table, c.shard)+` WHERE k = $1`, c.k).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != c.want {
				t.Errorf("%s's shard %d on %s:%d holds %d rows of key %d, want %d", c.table, c.shard, p.Host, p.Port, n, c.k, c.want)
			}
		}
	}
	e.assertReplicasIdentical("parent")
	e.assertReplicasIdentical("child")
	e.assertColocatedFKs("child")
}
