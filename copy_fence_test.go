package pgshard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	pgsession "github.com/pgshard/pgshard/session"
)

// TestCopyMeetsTheRepairFence: a COPY FROM STDIN (lib/pq's CopyIn
// convention, in a transaction that also INSERTed a row of another shard)
// is planned while a shard's second placement is inactive, so on its source
// placement alone; a repair of that placement then fences the source and
// holds before its metadata switch, and the COPY's rows reach the fenced
// source at its final Exec. The COPY fails with the fence's 40001 and the
// hint to run the transaction again, and nothing of the transaction is on
// any placement. Once the repair has switched the placements (the fence
// lifted), the same COPY in a new transaction lands on both placements.
//
// The timing is held as in TestFenceRefusedWriteIsRetried: the writer's
// heartbeats acknowledge every version (ackEverything), so that the repair
// does not wait for the COPY in flight while its lease holds, and the
// repair is held before its copy (the source then fenced) and before its
// switch.
func TestCopyMeetsTheRepairFence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := setupKV(t, 4, 2)
	shard, holders := firstShard(e)
	keys := e.keysInShard(shard, 3)
	var otherKey int64
	for _, p := range e.placements("kv") {
		if p.ShardID != shard {
			otherKey = e.keysInShard(p.ShardID, 1)[0]
			break
		}
	}
	source, stale := holders[0], holders[1]
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, stale.ID)
	connect := func(host string, port int) *pgx.Conn {
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", host, port, e.dbname))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	metaHost, metaPort := e.c.Nodes[0].Host, e.c.Nodes[0].Port
	heartbeat, metaHold, poll := connect(metaHost, metaPort), connect(metaHost, metaPort), connect(metaHost, metaPort)
	hold, targetPoll := connect(stale.Host, stale.Port), connect(stale.Host, stale.Port)
	sourcePoll := connect(source.Host, source.Port)
	table := fmt.Sprintf("kv_%d", shard)

	rows, err := poll.Query(ctx, `SELECT id FROM pgs_distribution_metadata.process`)
	if err != nil {
		t.Fatal(err)
	}
	before, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	writer, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	if err := writer.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	var writerID string
	if err := poll.QueryRow(ctx, `SELECT id FROM pgs_distribution_metadata.process WHERE id <> ALL($1)`, before).Scan(&writerID); err != nil {
		t.Fatalf("the writer's heartbeat: %v", err)
	}
	ackEverything(t, ctx, heartbeat, writerID)

	// The COPY starts, planned on the source alone; its rows stay
	// buffered until the final Exec.
	tx, err := writer.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, 'in the tx')`, otherKey); err != nil {
		t.Fatal(err)
	}
	stmt, err := tx.PrepareContext(ctx, `COPY kv (k, v) FROM STDIN`)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := stmt.ExecContext(ctx, k, "copied"); err != nil {
			t.Fatal(err)
		}
	}

	// The repair; held before it recreates the target's table (by then
	// the source is fenced), then before its switch.
	repaired := repairHeldAtSwitch(t, ctx, e, hold, targetPoll, sourcePoll, metaHold, poll, table, shard, source, stale)

	// The rows go now, to the fenced source.
	_, err = stmt.ExecContext(ctx)
	var pgErr *pgconn.PgError
	switch {
	case !errors.As(err, &pgErr) || pgErr.Code != "40001" || !fenceRefusal(err):
		t.Fatalf("the COPY's final Exec: got %v, want the fence's 40001", err)
	case pgErr.Hint != pgsession.RerunTransactionHint:
		t.Errorf("hint = %q, want %q", pgErr.Hint, pgsession.RerunTransactionHint)
	}
	stmt.Close()
	if err := tx.Commit(); err == nil {
		t.Fatal("the transaction of a refused COPY committed")
	}
	mustExecConn(t, ctx, metaHold, `COMMIT`)
	if err := <-repaired; err != nil {
		t.Fatalf("repair: %v", err)
	}
	for _, p := range e.placements("kv") {
		if p.State != 1 {
			t.Errorf("placement %d on %s:%d has state %d, want 1", p.ID, p.Host, p.Port, p.State)
		}
		var n int
		err := e.workerAt(p.Host, p.Port).QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM kv_%d WHERE k = ANY($1)`, p.ShardID), append([]int64{otherKey}, keys...)).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("placement %d (shard %d) on %s:%d holds %d rows of the refused transaction", p.ID, p.ShardID, p.Host, p.Port, n)
		}
	}

	// The fence is lifted: the same COPY lands on both placements.
	var data [][]any
	for _, k := range keys {
		data = append(data, []any{k, "copied"})
	}
	if n := copyRows(t, writer, `COPY kv (k, v) FROM STDIN`, data); n != int64(len(keys)) {
		t.Fatalf("COPY after the repair reported %d rows, want %d", n, len(keys))
	}
	for _, p := range holders {
		var n int
		if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE k = ANY($1) AND v = 'copied'`, keys).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(keys) {
			t.Errorf("placement %d on %s:%d holds %d of the %d copied rows", p.ID, p.Host, p.Port, n, len(keys))
		}
	}
	e.assertReplicasIdentical("kv")
}

// repairHeldAtSwitch starts a repair of shard from source to stale and
// holds it twice: first before it recreates the target's table (hold
// locks table on the target; by then the source must carry the write
// fence, checked through sourcePoll), then before its switch (metaHold
// locks the stale placement's row; poll sees the switch wait). It returns
// the repair's result; the caller commits metaHold to let it finish.
func repairHeldAtSwitch(t *testing.T, ctx context.Context, e *env, hold, targetPoll, sourcePoll, metaHold, poll *pgx.Conn, table string, shard int64, source, stale placement) <-chan error {
	t.Helper()
	mustExecConn(t, ctx, hold, `BEGIN`, `LOCK TABLE `+table+` IN ACCESS SHARE MODE`)
	repaired := make(chan error, 1)
	go func() {
		_, err := e.DB.ExecContext(ctx, `SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, shard, source.Host, source.Port, stale.Host, stale.Port)
		repaired <- err
	}()
	waitUntil(t, ctx, "the copy's DROP waiting on the target", targetPoll, `SELECT EXISTS (SELECT FROM pg_locks
		WHERE relation = '`+table+`'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted)`)
	var fenced bool
	if err := sourcePoll.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_trigger WHERE tgname = 'pgshard_write_fence' AND tgrelid = $1::regclass)`, table).Scan(&fenced); err != nil {
		t.Fatal(err)
	}
	if !fenced {
		t.Fatalf("the source's %s has no write fence while the repair copies", table)
	}
	mustExecConn(t, ctx, metaHold, `BEGIN`, fmt.Sprintf(`SELECT FROM pgs_distribution_metadata.shard_placement WHERE id = %d FOR UPDATE`, stale.ID))
	mustExecConn(t, ctx, hold, `COMMIT`)
	waitUntil(t, ctx, "the switch waiting for the placement row", poll, `SELECT EXISTS (SELECT FROM pg_stat_activity
		WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE pgs_distribution_metadata.shard_placement%' AND pid <> pg_backend_pid())`)
	return repaired
}
