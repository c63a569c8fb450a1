package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
)

// TestFreshProcessFirstWritesDoNotDeadlock runs 64 replicated writers at
// once through a process (Connector) that has not written before, 3 rounds
// each: its first two-phase commits on each worker happen concurrently,
// while each writer holds a connection on every worker.
func TestFreshProcessFirstWritesDoNotDeadlock(t *testing.T) {
	const writers, rounds = 64, 3
	e := newEnvOnWorkers(t, 2)
	e.counterTable("fresh", 8, 2, writers, 1)
	db, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runConcurrently(t, writers, rounds, func(ctx context.Context, g, _ int) error {
		res, err := db.ExecContext(ctx, `UPDATE fresh SET n = n + 1 WHERE k = $1`, g+1)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("%d rows affected (%v), want 1", n, err)
		}
		return nil
	})
	want := map[int64]int{}
	for k := 1; k <= writers; k++ {
		want[int64(k)] = rounds
	}
	e.assertCounters("fresh", want)
}
