package repair

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
)

// A write in flight on the source while the repair copies it ends up on
// both placements, whatever the timing: the repair waits for it. Each case
// holds the write at the point where the repair before the fix finished
// without it, and lets it commit only once the repair has either returned
// (the bug: the write then lands on the source only) or is seen waiting for
// writes on the source.
func TestCopyWaitsForWritesOnTheSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := setup(t, ctx)
	for _, tc := range []struct {
		name string
		// start begins the write and returns once it holds what the repair
		// must wait for; finish commits it.
		start  func(t *testing.T, src, tgt *pgx.Conn, repairing func())
		finish func(t *testing.T, src, tgt *pgx.Conn)
	}{
		{
			// A process whose heartbeat stopped (catalog.WaitForAcks no
			// longer waits for it) has a write planned before the target was
			// filling in flight on the source only: it is blocked on a row
			// lock, or its process is starved, past the end of its lease.
			name: "write of a process that stopped heartbeating",
			start: func(t *testing.T, src, tgt *pgx.Conn, repairing func()) {
				mustExec(t, ctx, src, `BEGIN`, `UPDATE "App"."Docs_10000" SET body = 'stale writer' WHERE id = 2`)
				repairing()
			},
			finish: func(t *testing.T, src, tgt *pgx.Conn) {
				mustExec(t, ctx, src, `COMMIT`)
			},
		},
		{
			// A two-phase write that wrote the target's old table: the
			// copy's DROP waits for it there; it commits there first and is
			// still only prepared on the source when the copy would read it.
			name: "two-phase write committed on the target first",
			start: func(t *testing.T, src, tgt *pgx.Conn, repairing func()) {
				mustExec(t, ctx, tgt, `BEGIN`, `UPDATE "App"."Docs_10000" SET body = 'two-phase' WHERE id = 4`)
				repairing()
				waitFor(t, ctx, "the copy's DROP waiting on the target", f.tgt, `SELECT EXISTS (SELECT FROM pg_locks
					WHERE relation = '"App"."Docs_10000"'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted)`)
				// It is planned on the current placements: its BEGIN carries
				// their version, as the driver's does (catalog.WriteBegin).
				v, err := catalog.CurrentVersion(ctx, f.meta)
				if err != nil {
					t.Fatal(err)
				}
				mustExec(t, ctx, src, catalog.WriteBegin(v), `UPDATE "App"."Docs_10000" SET body = 'two-phase' WHERE id = 4`,
					`PREPARE TRANSACTION 'lockers_test_src'`)
				mustExec(t, ctx, tgt, `PREPARE TRANSACTION 'lockers_test_tgt'`, `COMMIT PREPARED 'lockers_test_tgt'`)
			},
			finish: func(t *testing.T, src, tgt *pgx.Conn) {
				mustExec(t, ctx, src, `COMMIT PREPARED 'lockers_test_src'`)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The target starts from a copy of the source, so that only the
			// write can make them differ.
			f.setStates(t, ctx, 1, 3)
			if err := CopyShardPlacement(ctx, f.meta, connectNode, shardID, f.source, f.target); err != nil {
				t.Fatal(err)
			}
			f.setStates(t, ctx, 1, 3)
			writerSrc, err := connectNode(ctx, f.source)
			if err != nil {
				t.Fatal(err)
			}
			defer writerSrc.Close(ctx)
			writerTgt, err := connectNode(ctx, f.target)
			if err != nil {
				t.Fatal(err)
			}
			defer writerTgt.Close(ctx)

			// The repair has its own metadata connection: the test keeps
			// using f.meta meanwhile.
			repairMeta, err := connectNode(ctx, catalog.Node{Name: f.c.Nodes[0].Host, Port: f.c.Nodes[0].Port})
			if err != nil {
				t.Fatal(err)
			}
			defer repairMeta.Close(ctx)
			done := make(chan error, 1)
			started, received := false, false
			defer func() {
				if started && !received {
					// A step failed: end the writes and let the repair end
					// before the next case.
					writerSrc.Close(ctx)
					writerTgt.Close(ctx)
					_, _ = f.src.Exec(ctx, `ROLLBACK PREPARED 'lockers_test_src'`)
					<-done
				}
			}()
			tc.start(t, writerSrc, writerTgt, func() {
				started = true
				go func() { done <- CopyShardPlacement(ctx, repairMeta, connectNode, shardID, f.source, f.target) }()
			})
			// Before the fix the repair returns here, without the write;
			// with it, it waits for the write on the source.
			var repairErr error
			returned := false
			for !returned {
				select {
				case repairErr = <-done:
					returned, received = true, true
				case <-time.After(10 * time.Millisecond):
				}
				if !returned && waiting(t, ctx, f.src) {
					break
				}
			}
			tc.finish(t, writerSrc, writerTgt)
			if !returned {
				repairErr, received = <-done, true
			}
			if repairErr != nil {
				t.Fatal(repairErr)
			}
			if s, tg := f.states(t, ctx); s != 1 || tg != 1 {
				t.Errorf("states = %d, %d; want 1, 1", s, tg)
			}
			srcSum, srcCount := digest(t, ctx, f.src)
			tgtSum, tgtCount := digest(t, ctx, f.tgt)
			if srcSum != tgtSum || srcCount != tgtCount {
				t.Errorf("placements differ after the repair: source %d rows %s, target %d rows %s", srcCount, srcSum, tgtCount, tgtSum)
			}
		})
	}
}

// waiting reports whether a repair waits for writes on the node of conn:
// to fence it (fence.go) or to copy it (lockers.go).
func waiting(t *testing.T, ctx context.Context, conn *pgx.Conn) bool {
	t.Helper()
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name IN ($1, $2)`,
		waitingApplicationName, fenceApplicationName).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// waitFor polls query (a boolean) on conn until it is true.
func waitFor(t *testing.T, ctx context.Context, what string, conn *pgx.Conn, query string) {
	t.Helper()
	for {
		var ok bool
		if err := conn.QueryRow(ctx, query).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
