package pgshard_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pgshard/pgshard/repair"
)

// TestFenceRetryHonorsStatementTimeout: a session with
// statement_timeout = '200ms' writes a shard whose placement refuses the
// write as the repair fence does (a trigger raising the fence's 40001 and
// constraint, after a pause, counting its runs in a sequence, which a
// rollback does not undo), while pgshard runs the write again with its
// backoff. The statement must return within about the timeout, never
// hang; it succeeds only when a run got through (and then the row holds
// exactly one increment), and otherwise fails with 57014 (the timeout
// passed during the retries) or, when the retry budget ends first,
// with the fence's 40001, the row unchanged.
func TestFenceRetryHonorsStatementTimeout(t *testing.T) {
	e := setupKV(t, 4, 2)
	shard, holders := firstShard(e)
	key := e.keysInShard(shard, 1)[0]
	e.exec(`INSERT INTO kv (k, v, n) VALUES ($1, 'old', 0)`, key)
	table := fmt.Sprintf("kv_%d", shard)
	ctx := context.Background()
	fenced := e.workerAt(holders[0].Host, holders[0].Port)
	for _, s := range []string{
		`CREATE SEQUENCE fence_runs`,
		// test_fence(pause seconds, runs refused)
		`CREATE FUNCTION test_fence() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_sleep(TG_ARGV[0]::float8);
			IF nextval('fence_runs') > TG_ARGV[1]::bigint THEN
				RETURN NULL;
			END IF;
			RAISE EXCEPTION 'shard table %.% is being repaired or moved, and this write was planned on placements older than metadata version 999999', TG_TABLE_SCHEMA, TG_TABLE_NAME
				USING ERRCODE = '40001', CONSTRAINT = '` + repair.RefusalConstraint + `';
		END $$`,
	} {
		if _, err := fenced.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	conn, err := e.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET statement_timeout = '200ms'`); err != nil {
		t.Fatal(err)
	}
	const timeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name    string
		pause   string // each run's pause in the trigger, seconds
		refused int    // runs refused before one gets through
		// want: "ok", "57014", or "40001 or 57014".
		want string
	}{
		{name: "slow runs, fence never clears", pause: "0.06", refused: 1000, want: "57014"},
		{name: "fast runs, fence never clears", pause: "0", refused: 1000, want: "40001 or 57014"},
		{name: "fence clears after two runs", pause: "0.02", refused: 2, want: "ok"},
		{name: "fence clears after four slow runs", pause: "0.05", refused: 4, want: "57014"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := fenced.Exec(ctx, `ALTER SEQUENCE fence_runs RESTART`); err != nil {
				t.Fatal(err)
			}
			if _, err := fenced.Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE TRIGGER test_fence BEFORE UPDATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION test_fence('%s', '%d')`, table, tc.pause, tc.refused)); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if _, err := fenced.Exec(ctx, `DROP TRIGGER test_fence ON `+table); err != nil {
					t.Fatal(err)
				}
			}()
			var before int
			if err := conn.QueryRowContext(ctx, `SELECT n FROM kv WHERE k = $1`, key).Scan(&before); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err := conn.ExecContext(wctx, `UPDATE kv SET n = n + 1 WHERE k = $1`, key)
			elapsed := time.Since(start)
			var runs int64
			if err := fenced.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM fence_runs`).Scan(&runs); err != nil {
				t.Fatal(err)
			}
			var after int
			if err := conn.QueryRowContext(ctx, `SELECT n FROM kv WHERE k = $1`, key).Scan(&after); err != nil {
				t.Fatal(err)
			}
			t.Logf("%v after %d runs: %v", elapsed.Round(time.Millisecond), runs, err)
			// At most one run past the timeout (each run is bounded by
			// it on the worker), with room for a loaded machine.
			if limit := timeout + 250*time.Millisecond; elapsed > limit {
				t.Errorf("the statement returned after %v, want within %v", elapsed, limit)
			}
			code := ""
			if err != nil {
				code = sqlState(t, err)
			}
			switch {
			case err == nil && after != before+1:
				t.Errorf("the write succeeded but n went from %d to %d", before, after)
			case err != nil && after != before:
				t.Errorf("the write failed (%v) but n went from %d to %d", err, before, after)
			case tc.want == "ok" && err != nil:
				t.Errorf("got %v, want success", err)
			case tc.want == "57014" && code != "57014":
				t.Errorf("got %v, want SQLSTATE 57014", err)
			case tc.want == "40001 or 57014" && code != "40001" && code != "57014":
				t.Errorf("got %v, want SQLSTATE 40001 or 57014", err)
			}
		})
	}
	// The session's own timeout still applies to ordinary statements.
	_, err = conn.ExecContext(ctx, `SELECT pg_sleep(1) FROM kv WHERE k = $1`, key)
	expectError(t, err, "57014", "statement timeout")
}
