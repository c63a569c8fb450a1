package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A write acknowledged to a process whose heartbeat stopped is on every
// placement after a repair or a move, whatever the timing. The writer's heartbeat is
// blocked (the test holds its row in pgs_distribution_metadata.process) and
// its write, planned before the repair (the stale placement inactive, so on
// the source only), is blocked on a row lock the test holds on the source.
// Another process repairs the stale placement (or moves the source to a
// worker without one): catalog.WaitForAcks stops
// waiting for the writer once its heartbeat is older than the lease. The
// test lets the write go once the repair has either returned (before the
// fix: then the write lands on the source only and the placements differ)
// or is seen waiting on the source for it (with the fix, or before it the
// move's DROP of the old table, after its switch).
func TestStaleWriterDuringRepair(t *testing.T) {
	for _, move := range []bool{false, true} {
		name := "repair"
		if move {
			name = "move"
		}
		t.Run(name, func(t *testing.T) { testStaleWriter(t, move) })
	}
}

func testStaleWriter(t *testing.T, move bool) {
	e := setupKV(t, 4, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ps := e.placements("kv")
	shard := ps[0].ShardID
	var holders []placement
	for _, p := range ps {
		if p.ShardID == shard {
			holders = append(holders, p)
		}
	}
	key := e.keysInShard(shard, 1)[0]
	e.exec(`INSERT INTO kv (k, v, n) VALUES ($1, 'old', 0)`, key)
	source, stale := holders[0], holders[1]
	if !move {
		e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, stale.ID)
	}
	connect := func(host string, port int) *pgx.Conn {
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", host, port, e.dbname))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	meta := connect(e.c.Nodes[0].Host, e.c.Nodes[0].Port)
	src := connect(source.Host, source.Port)
	poll := connect(source.Host, source.Port)

	var before []string
	rows, err := meta.Query(ctx, `SELECT id FROM pgs_distribution_metadata.process`)
	if err != nil {
		t.Fatal(err)
	}
	before, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	writer, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	if _, err := writer.ExecContext(ctx, `UPDATE kv SET v = 'seen' WHERE k = $1`, key); err != nil {
		t.Fatal(err)
	}
	var writerID string
	if err := meta.QueryRow(ctx, `SELECT id FROM pgs_distribution_metadata.process WHERE id <> ALL($1)`, before).Scan(&writerID); err != nil {
		t.Fatalf("the writer's heartbeat: %v", err)
	}

	// The row on the source, then the writer's heartbeat.
	mustExecConn(t, ctx, src, `BEGIN`, fmt.Sprintf(`SELECT FROM kv_%d WHERE k = %d FOR UPDATE`, shard, key))
	mustExecConn(t, ctx, meta, `BEGIN`, fmt.Sprintf(`SELECT FROM pgs_distribution_metadata.process WHERE id = '%s' FOR UPDATE`, writerID))
	written := make(chan error, 1)
	go func() {
		_, err := writer.ExecContext(ctx, `UPDATE kv SET n = 42 WHERE k = $1`, key)
		written <- err
	}()
	waitUntil(t, ctx, "the write blocked on the source", poll,
		`SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE %')`)

	admin, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	repaired := make(chan error, 1)
	start := time.Now()
	go func() {
		if !move {
			_, err := admin.ExecContext(ctx, `SELECT master_copy_shard_placement($1, $2, $3, $4, $5)`, shard, source.Host, source.Port, stale.Host, stale.Port)
			repaired <- err
			return
		}
		used := map[string]bool{}
		for _, p := range holders {
			used[fmt.Sprintf("%s:%d", p.Host, p.Port)] = true
		}
		for _, w := range e.workers {
			if !used[w.Addr()] {
				_, err := admin.ExecContext(ctx, `SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, shard, source.Host, source.Port, w.Host, w.Port)
				repaired <- err
				return
			}
		}
		repaired <- fmt.Errorf("no worker without a placement of shard %d", shard)
	}()
	var repairErr error
	returned := false
	for !returned {
		select {
		case repairErr = <-repaired:
			returned = true
			continue
		case <-time.After(20 * time.Millisecond):
		}
		var waiting bool
		if err := poll.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name LIKE 'pgshard: repair%'
			OR (wait_event_type = 'Lock' AND query LIKE 'DROP TABLE%'))`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
	}
	t.Logf("repair returned: %v, after %v", returned, time.Since(start).Round(time.Millisecond))
	mustExecConn(t, ctx, src, `COMMIT`)
	if !returned {
		repairErr = <-repaired
	}
	mustExecConn(t, ctx, meta, `COMMIT`)
	if err := <-written; err != nil {
		t.Fatalf("the write: %v", err)
	}
	if repairErr != nil {
		t.Fatalf("repair: %v", repairErr)
	}
	var now []placement
	for _, p := range e.placements("kv") {
		if p.ShardID == shard {
			now = append(now, p)
		}
	}
	if len(now) != 2 {
		t.Fatalf("shard %d has placements %+v", shard, now)
	}
	for _, p := range now {
		var n int
		if err := connect(p.Host, p.Port).QueryRow(ctx, fmt.Sprintf(`SELECT n FROM kv_%d WHERE k = $1`, shard), key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 42 {
			t.Errorf("placement %d on %s:%d has n = %d, want the acknowledged 42", p.ID, p.Host, p.Port, n)
		}
	}
	e.assertReplicasIdentical("kv")
}

func mustExecConn(t *testing.T, ctx context.Context, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// waitUntil polls query (a boolean) on conn until it is true.
func waitUntil(t *testing.T, ctx context.Context, what string, conn *pgx.Conn, query string) {
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
