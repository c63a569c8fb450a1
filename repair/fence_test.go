package repair

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
)

// A write that reaches the source after the copy's snapshot, planned on
// the placement list from before the target was filling (a process paused
// between its lease check and its write, however long), must not be
// acknowledged on the source alone: the source's fence refuses it, while a
// write that carries the new metadata version (and so writes the target
// too) goes through. The repair is held, deterministically, between the
// copy's commit on the target and the metadata switch (a row lock on the
// target's placement), and the writes are sent then.
func TestFenceRefusesStaleWritesAfterTheSnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := setup(t, ctx)
	table := `"App"."Docs_10000"`
	for _, tc := range []struct {
		name string
		// write runs the write on src (and tgt) and returns its error.
		write func(src, tgt *pgx.Conn, version int64) error
		// refused: the write must fail with 40001 (and change nothing).
		refused bool
	}{
		{
			// A single-placement write outside a transaction carries no
			// version: it cannot know of the target.
			name: "write without a version",
			write: func(src, tgt *pgx.Conn, version int64) error {
				_, err := src.Exec(ctx, `UPDATE `+table+` SET body = 'stale' WHERE id = 5`)
				return err
			},
			refused: true,
		},
		{
			// A replicated write planned before the target was filling.
			name: "write planned on an older version",
			write: func(src, tgt *pgx.Conn, version int64) error {
				return pgx.BeginFunc(ctx, src, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, catalog.FencedBegin("SELECT 1", version-1)); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE id = 6`)
					return err
				})
			},
			refused: true,
		},
		{
			// A write planned on the new placements writes both, with its
			// version in its BEGIN: it goes through.
			name: "write planned on the current version",
			write: func(src, tgt *pgx.Conn, version int64) error {
				for _, c := range []*pgx.Conn{src, tgt} {
					if _, err := c.Exec(ctx, catalog.FencedBegin("BEGIN", version)); err != nil {
						return err
					}
					if _, err := c.Exec(ctx, `UPDATE `+table+` SET body = 'current' WHERE id = 7`); err != nil {
						_, _ = c.Exec(ctx, "ROLLBACK")
						return err
					}
				}
				for _, c := range []*pgx.Conn{src, tgt} {
					if _, err := c.Exec(ctx, "COMMIT"); err != nil {
						return err
					}
				}
				return nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.setStates(t, ctx, 1, 3)
			hold, err := connectNode(ctx, f.target)
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Close(ctx)
			// Hold the copy before it recreates the target's table.
			mustExec(t, ctx, hold, `BEGIN`, `LOCK TABLE `+table+` IN ACCESS SHARE MODE`)
			done := make(chan error, 1)
			go func() { done <- CopyShardPlacement(ctx, f.meta, connectNode, shardID, f.source, f.target) }()
			waitFor(t, ctx, "the copy's DROP waiting on the target", f.tgt, `SELECT EXISTS (SELECT FROM pg_locks
				WHERE relation = '`+table+`'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted)`)
			// f.meta is the repair's; the test reads the metadata on its own.
			metaNode := catalog.Node{Name: f.c.Nodes[0].Host, Port: f.c.Nodes[0].Port}
			metaPoll, err := connectNode(ctx, metaNode)
			if err != nil {
				t.Fatal(err)
			}
			defer metaPoll.Close(ctx)
			version, err := catalog.CurrentVersion(ctx, metaPoll)
			if err != nil {
				t.Fatal(err)
			}
			// Now hold the switch: lock the target's placement row.
			metaHold, err := connectNode(ctx, metaNode)
			if err != nil {
				t.Fatal(err)
			}
			defer metaHold.Close(ctx)
			mustExec(t, ctx, metaHold, `BEGIN`, `SELECT FROM pgs_distribution_metadata.shard_placement WHERE id = 2 FOR UPDATE`)
			mustExec(t, ctx, hold, `COMMIT`)
			waitFor(t, ctx, "the switch waiting for the placement row", metaPoll, `SELECT EXISTS (SELECT FROM pg_stat_activity
				WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE pgs_distribution_metadata.shard_placement%' AND pid <> pg_backend_pid())`)

			// The copy is committed on the target; the writes come now.
			writer, err := connectNode(ctx, f.source)
			if err != nil {
				t.Fatal(err)
			}
			defer writer.Close(ctx)
			writerTgt, err := connectNode(ctx, f.target)
			if err != nil {
				t.Fatal(err)
			}
			defer writerTgt.Close(ctx)
			werr := tc.write(writer, writerTgt, version)
			mustExec(t, ctx, metaHold, `COMMIT`)
			if err := <-done; err != nil {
				t.Fatalf("repair: %v", err)
			}

			var pgErr *pgconn.PgError
			switch {
			case tc.refused && !(errors.As(werr, &pgErr) && pgErr.Code == "40001"):
				t.Errorf("stale write: got %v, want SQLSTATE 40001 (refused by the fence)", werr)
			case !tc.refused && werr != nil:
				t.Errorf("current write: %v", werr)
			}
			if s, tg := f.states(t, ctx); s != 1 || tg != 1 {
				t.Errorf("states = %d, %d; want 1, 1", s, tg)
			}
			srcSum, srcCount := digest(t, ctx, f.src)
			tgtSum, tgtCount := digest(t, ctx, f.tgt)
			if srcSum != tgtSum || srcCount != tgtCount {
				t.Errorf("placements differ after the repair: source %d rows %s, target %d rows %s", srcCount, srcSum, tgtCount, tgtSum)
			}
			// The fence is gone with the repair: unversioned writes pass.
			if _, err := writer.Exec(ctx, `UPDATE `+table+` SET n = 1 WHERE id = 8`); err != nil {
				t.Errorf("write after the repair: %v", err)
			}
			mustExec(t, ctx, f.tgt, `UPDATE `+table+` SET n = 1 WHERE id = 8`)
		})
	}
}

// The fence waits for the writes already on the source table (holding
// their lock) and fails, changing nothing, when one outlasts fenceTimeout;
// it is refused to nobody once removed.
func TestFenceInstallAndRemove(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := setup(t, ctx)
	table := `"App"."Docs_10000"`
	writer, err := connectNode(ctx, f.source)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(ctx)
	mustExec(t, ctx, writer, `BEGIN`, `UPDATE `+table+` SET body = 'in flight' WHERE id = 9`)
	installed := make(chan error, 1)
	go func() { installed <- installFence(ctx, connectNode, f.source, f.ddl, shardID, 42) }()
	waitFor(t, ctx, "the fence retrying", f.src, fmt.Sprintf(`SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = '%s')`, fenceApplicationName))
	select {
	case err := <-installed:
		t.Fatalf("the fence did not wait for the write in flight: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	mustExec(t, ctx, writer, `COMMIT`)
	if err := <-installed; err != nil {
		t.Fatal(err)
	}
	var body string
	if err := f.src.QueryRow(ctx, `SELECT body FROM `+table+` WHERE id = 9`).Scan(&body); err != nil || body != "in flight" {
		t.Fatalf("the write before the fence: %q, %v", body, err)
	}
	for _, tc := range []struct {
		begin   string
		refused bool
	}{
		{"BEGIN", true},
		{catalog.FencedBegin("BEGIN", 41), true},
		{catalog.FencedBegin("BEGIN", 42), false},
		{catalog.FencedBegin("BEGIN ISOLATION LEVEL REPEATABLE READ", 43), false},
	} {
		mustExec(t, ctx, writer, tc.begin)
		_, err := writer.Exec(ctx, `INSERT INTO `+table+` (id, body) VALUES (100001, 'x')`)
		mustExec(t, ctx, writer, "ROLLBACK")
		var pgErr *pgconn.PgError
		if refused := errors.As(err, &pgErr) && pgErr.Code == "40001"; refused != tc.refused || (!refused && err != nil) {
			t.Errorf("%s: got %v, want refused %v", tc.begin, err, tc.refused)
		}
	}
	removeFence(ctx, connectNode, f.source, f.ddl, shardID)
	if _, err := writer.Exec(ctx, `DELETE FROM `+table+` WHERE id = 9`); err != nil {
		t.Errorf("write after removing the fence: %v", err)
	}
}
