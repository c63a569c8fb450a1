package pgshard_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgshard/pgshard"
)

// TestReplicatedWriteReadsOneState pauses a replicated write of b between
// its coordinator's commit and the other placement's COMMIT PREPARED, and
// meanwhile runs replicated writes of a that read b (UPDATE ... FROM, a
// subquery): each replica of a must compute from the same state of b, so
// the writes wait for b's writer to finish on every node instead of reading
// the new rows on one replica and the old ones on the other.
func TestReplicatedWriteReadsOneState(t *testing.T) {
	e := newEnv(t)
	for _, ddl := range []string{
		`CREATE TABLE a (k bigint PRIMARY KEY, v int)`,
		`CREATE TABLE b (k bigint PRIMARY KEY, w int)`,
		`SELECT master_create_distributed_table('a', 'k')`,
		`SELECT master_create_distributed_table('b', 'k')`,
		`SELECT master_create_worker_shards('a', 2, 2)`,
		`SELECT master_create_worker_shards('b', 2, 2)`,
		`INSERT INTO a VALUES (1, 0), (2, 0)`,
		`INSERT INTO b VALUES (1, 10), (2, 10)`,
	} {
		e.exec(ddl)
	}
	for _, c := range []struct {
		name, bWrite, aWrite string
		key, want            int64
	}{
		{"update from", `UPDATE b SET w = 20 WHERE k = 1`, `UPDATE a SET v = b.w FROM b WHERE a.k = b.k AND a.k = 1`, 1, 20},
		{"subquery", `UPDATE b SET w = 30 WHERE k = 2`, `UPDATE a SET v = (SELECT w FROM b WHERE b.k = a.k) WHERE k = 2`, 2, 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			var armed atomic.Bool
			armed.Store(true)
			paused, resume := make(chan struct{}), make(chan struct{})
			restore := pgshard.SetCommitStep(func(step string) {
				if step == pgshard.StepAfterDecision && armed.CompareAndSwap(true, false) {
					close(paused)
					<-resume
				}
			})
			defer restore()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			bDone := make(chan error, 1)
			go func() { _, err := e.DB.ExecContext(ctx, c.bWrite); bDone <- err }()
			select {
			case <-paused:
			case err := <-bDone:
				t.Fatalf("the write of b finished without two-phase commit: %v", err)
			}
			aDone := make(chan error, 1)
			go func() { _, err := e.DB.ExecContext(ctx, c.aWrite); aDone <- err }()
			select {
			case err := <-aDone:
				close(resume)
				<-bDone
				e.assertReplicasIdentical("a")
				t.Fatalf("the write of a did not wait for b's writer (err %v)", err)
			case <-time.After(time.Second):
			}
			close(resume)
			if err := <-bDone; err != nil {
				t.Fatal(err)
			}
			if err := <-aDone; err != nil {
				t.Fatal(err)
			}
			e.assertReplicasIdentical("a")
			if v := e.queryInt(`SELECT v FROM a WHERE k = $1`, c.key); v != c.want {
				t.Fatalf("v = %d, want %d", v, c.want)
			}
		})
	}
}
