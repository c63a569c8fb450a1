package pgshard_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard"
)

func setupKV(t *testing.T, shards, replicas int) *env {
	e := newEnv(t)
	e.exec(`CREATE TABLE kv (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	e.exec(`SELECT master_create_distributed_table('kv', 'k')`)
	e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('kv', %d, %d)`, shards, replicas))
	return e
}

func (e *env) preparedXacts() int {
	e.t.Helper()
	total := 0
	for _, w := range e.workers {
		var n int
		if err := e.worker(w).QueryRow(context.Background(), `SELECT count(*) FROM pg_prepared_xacts`).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		total += n
	}
	return total
}

func TestTransactionsAcrossShards(t *testing.T) {
	e := setupKV(t, 8, 2)
	ctx := context.Background()

	tx, err := e.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= 20; k++ {
		if _, err := tx.Exec(`INSERT INTO kv (k, v) VALUES ($1, $2)`, k, fmt.Sprint("v", k)); err != nil {
			t.Fatal(err)
		}
	}
	// The transaction reads its own writes.
	var v string
	if err := tx.QueryRow(`SELECT v FROM kv WHERE k = $1`, 7).Scan(&v); err != nil || v != "v7" {
		t.Fatalf("read own write: %q, %v", v, err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM kv`).Scan(&n); err != nil || n != 20 {
		t.Fatalf("count in tx = %d, %v", n, err)
	}
	// Not visible outside before commit.
	if c := e.queryInt(`SELECT count(*) FROM kv`); c != 0 {
		t.Fatalf("uncommitted rows visible: %d", c)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if c := e.queryInt(`SELECT count(*) FROM kv`); c != 20 {
		t.Fatalf("count after commit = %d", c)
	}
	if p := e.preparedXacts(); p != 0 {
		t.Fatalf("%d prepared transactions left", p)
	}

	// Rollback undoes writes on every shard.
	tx, _ = e.DB.BeginTx(ctx, nil)
	for k := 1; k <= 20; k++ {
		if _, err := tx.Exec(`UPDATE kv SET n = n + 1 WHERE k = $1`, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if c := e.queryInt(`SELECT sum(n) FROM kv`); c != 0 {
		t.Fatalf("rolled back updates visible: %d", c)
	}

	// Savepoints.
	tx, _ = e.DB.BeginTx(ctx, nil)
	tx.Exec(`UPDATE kv SET n = 1 WHERE k = 1`)
	if _, err := tx.Exec(`SAVEPOINT s1`); err != nil {
		t.Fatal(err)
	}
	tx.Exec(`UPDATE kv SET n = 1 WHERE k = 2`)
	tx.Exec(`UPDATE kv SET n = 1 WHERE k = 3`)
	if _, err := tx.Exec(`ROLLBACK TO SAVEPOINT s1`); err != nil {
		t.Fatal(err)
	}
	tx.Exec(`UPDATE kv SET n = 1 WHERE k = 4`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if c := e.queryInt(`SELECT sum(n) FROM kv`); c != 2 {
		t.Fatalf("after savepoint rollback sum = %d, want 2 (k=1 and k=4)", c)
	}

	// A failed statement aborts the transaction, as in PostgreSQL.
	tx, _ = e.DB.BeginTx(ctx, nil)
	if _, err := tx.Exec(`INSERT INTO kv (k) VALUES (1)`); err == nil {
		t.Fatal("duplicate key accepted")
	}
	_, err = tx.Exec(`INSERT INTO kv (k) VALUES (100)`)
	expectError(t, err, "25P02", "aborted")
	tx.Rollback()

	// Read-only transactions refuse writes.
	tx, _ = e.DB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err := tx.QueryRow(`SELECT count(*) FROM kv`).Scan(&n); err != nil || n != 20 {
		t.Fatalf("read-only count = %d, %v", n, err)
	}
	_, err = tx.Exec(`UPDATE kv SET n = 5 WHERE k = 1`)
	expectError(t, err, "25006", "read-only")
	tx.Rollback()
	e.assertReplicasIdentical("kv")
}

func TestMultiRowInsertAcrossShards(t *testing.T) {
	e := setupKV(t, 8, 2)
	rows, err := e.DB.Query(`INSERT INTO kv (k, v) VALUES ($1, 'a'), ($2, 'b'), ($3, 'c'), ($4, 'd'), (5, 'e') RETURNING k, v`, 1, 2, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1a", "2b", "3c", "4d", "5e"}
	i := 0
	for rows.Next() {
		var k int
		var v string
		rows.Scan(&k, &v)
		if got := fmt.Sprint(k, v); got != want[i] {
			t.Fatalf("row %d = %s, want %s", i, got, want[i])
		}
		i++
	}
	if err := rows.Err(); err != nil || i != 5 {
		t.Fatalf("%d rows, %v", i, err)
	}
	// Atomic: a duplicate in one shard rolls back the rows of the others.
	_, err = e.DB.Exec(`INSERT INTO kv (k, v) VALUES (10, 'x'), (11, 'y'), (12, 'z'), (1, 'dup')`)
	expectError(t, err, "23505", "duplicate key")
	if c := e.queryInt(`SELECT count(*) FROM kv`); c != 5 {
		t.Fatalf("count = %d after a failed multi-row insert", c)
	}
	if p := e.preparedXacts(); p != 0 {
		t.Fatalf("%d prepared transactions left", p)
	}
	e.assertReplicasIdentical("kv")
}

func TestRecoverFinishesInDoubtTransactions(t *testing.T) {
	e := setupKV(t, 4, 1)
	ctx := context.Background()
	e.exec(`INSERT INTO kv (k, v) VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four')`)
	ps := e.placements("kv")
	// Two in-doubt transactions prepared on the first placement's worker,
	// coordinated by the second placement's worker: one logged as
	// committed there, one not logged at all.
	w := e.workerAt(ps[0].Host, ps[0].Port)
	coord := e.workerAt(ps[1].Host, ps[1].Port)
	coordKey := hex.EncodeToString([]byte(fmt.Sprintf("%s:%d", ps[1].Host, ps[1].Port)))
	shardTable := fmt.Sprintf("kv_%d", ps[0].ShardID)
	gids := map[string]string{"committed": "pgshard_" + coordKey + "_aaaa", "rolledback": "pgshard_" + coordKey + "_bbbb"}
	for v, gid := range gids {
		if _, err := w.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (k, v) VALUES (%d, '%s')`, shardTable, 1000+len(v), v)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Exec(ctx, fmt.Sprintf(`PREPARE TRANSACTION '%s_1'`, gid)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := coord.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS pgshard; CREATE TABLE IF NOT EXISTS pgshard.transaction_log (gid text PRIMARY KEY, committed boolean NOT NULL, created timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := coord.Exec(ctx, `INSERT INTO pgshard.transaction_log (gid, committed) VALUES ($1, true)`, gids["committed"]); err != nil {
		t.Fatal(err)
	}
	c, err := pgshard.NewConnector(e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	committed, rolledBack, err := c.Recover(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if committed != 1 || rolledBack != 1 {
		t.Fatalf("committed %d, rolled back %d", committed, rolledBack)
	}
	var vals []string
	rows, _ := w.Query(ctx, fmt.Sprintf(`SELECT v FROM %s WHERE k >= 1000`, shardTable))
	for rows.Next() {
		var v string
		rows.Scan(&v)
		vals = append(vals, v)
	}
	rows.Close()
	if len(vals) != 1 || vals[0] != "committed" {
		t.Fatalf("after recovery: %v", vals)
	}
	if p := e.preparedXacts(); p != 0 {
		t.Fatalf("%d prepared transactions left", p)
	}
	// The undecided one is now decided as rolled back in the coordinator's log.
	var decided bool
	if err := coord.QueryRow(ctx, `SELECT committed FROM pgshard.transaction_log WHERE gid = $1`, gids["rolledback"]).Scan(&decided); err != nil || decided {
		t.Fatalf("log says %v, %v", decided, err)
	}
}

// TestCommitHoldsReadLocksUntilWritesCommit: a READ COMMITTED transaction
// that locked a row with SELECT ... FOR UPDATE on one node and wrote on
// another commits the write first: while the writer's COMMIT runs (held up
// by a deferred trigger that sleeps on the writer's shard), the locked row
// on the reading node is still locked. Committing the reader first, as
// before, released that lock before the write was visible.
func TestCommitHoldsReadLocksUntilWritesCommit(t *testing.T) {
	e := setupKV(t, 4, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Two keys on different workers.
	var read, write int64
	var readAt, writeAt placement
	for k := int64(1); k < 100 && write == 0; k++ {
		e.exec(`INSERT INTO kv (k, v) VALUES ($1, 'v')`, k)
		var at placement
		for shard := range e.holders("kv", "k", k) {
			for _, p := range e.placements("kv") {
				if p.ShardID == shard {
					at = p
				}
			}
		}
		switch {
		case read == 0:
			read, readAt = k, at
		case at.Host != readAt.Host || at.Port != readAt.Port:
			write, writeAt = k, at
		}
	}
	if write == 0 {
		t.Fatal("no two keys on different workers")
	}
	wconn := e.workerAt(writeAt.Host, writeAt.Port)
	shardTable := pgx.Identifier{fmt.Sprintf("kv_%d", writeAt.ShardID)}.Sanitize()
	for _, q := range []string{
		`CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER slow_commit AFTER UPDATE ON ` + shardTable + ` DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()`,
	} {
		if _, err := wconn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	tx, err := e.DB.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := tx.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1 FOR UPDATE`, read).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE kv SET v = 'w' WHERE k = $1`, write); err != nil {
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	go func() { committed <- tx.Commit() }()
	// Wait until the writer's COMMIT is in the trigger's sleep.
	for {
		var sleeping bool
		if err := wconn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database())`).Scan(&sleeping); err != nil {
			t.Fatal(err)
		}
		if sleeping {
			break
		}
		select {
		case err := <-committed:
			t.Fatalf("committed (%v) before the writer's COMMIT was seen sleeping", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	rconn := e.workerAt(readAt.Host, readAt.Port)
	_, err = rconn.Exec(ctx, fmt.Sprintf(`SELECT v FROM %s WHERE k = $1 FOR UPDATE NOWAIT`, pgx.Identifier{fmt.Sprintf("kv_%d", readAt.ShardID)}.Sanitize()), read)
	if err == nil {
		t.Error("the row the transaction locked for update was free while its write was still committing")
	} else if got := sqlState(t, err); got != "55P03" {
		t.Errorf("locking the row: %v, want 55P03 (lock not available)", err)
	}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if got := e.queryInt(`SELECT count(*) FROM kv WHERE k = $1 AND v = 'w'`, write); got != 1 {
		t.Fatalf("the write is not committed: %d rows", got)
	}
}

// TestPureReadsOutsideTheTransaction: in a READ COMMITTED transaction, a
// plain SELECT of a node the transaction has not joined runs outside it (no
// backend of that node is left in the transaction) and reads the committed
// rows; a read with FOR UPDATE, a read under REPEATABLE READ or the
// session's default isolation, and a read of a node the transaction wrote
// on run inside it (the node is left idle in transaction until the end).
func TestPureReadsOutsideTheTransaction(t *testing.T) {
	e := setupKV(t, 4, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for k := 1; k <= 40; k++ {
		e.exec(`INSERT INTO kv (k, v) VALUES ($1, $2)`, k, fmt.Sprint("v", k))
	}
	// inTx counts the backends of the test's database left idle in a
	// transaction, on every worker.
	inTx := func() int {
		n := 0
		for _, w := range e.workers {
			var c int
			if err := e.worker(w).QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`).Scan(&c); err != nil {
				t.Fatal(err)
			}
			n += c
		}
		return n
	}
	tests := []struct {
		name  string
		opts  *sql.TxOptions
		query string
		join  bool
	}{
		{"read committed", &sql.TxOptions{Isolation: sql.LevelReadCommitted}, `SELECT v FROM kv WHERE k = $1`, false},
		{"read committed, key list", &sql.TxOptions{Isolation: sql.LevelReadCommitted}, `SELECT v FROM kv WHERE k IN ($1, 1000)`, false},
		{"for update", &sql.TxOptions{Isolation: sql.LevelReadCommitted}, `SELECT v FROM kv WHERE k = $1 FOR UPDATE`, true},
		{"volatile function", &sql.TxOptions{Isolation: sql.LevelReadCommitted}, `SELECT v || random()::text FROM kv WHERE k = $1`, true},
		{"repeatable read", &sql.TxOptions{Isolation: sql.LevelRepeatableRead}, `SELECT v FROM kv WHERE k = $1`, true},
		{"default isolation", nil, `SELECT v FROM kv WHERE k = $1`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := e.DB.BeginTx(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			var v string
			if err := tx.QueryRowContext(ctx, tt.query, 7).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(v, "v7") {
				t.Fatalf("read %q, want v7", v)
			}
			if got := inTx(); (got > 0) != tt.join {
				t.Fatalf("%d backends in the transaction after the read; want the node joined: %v", got, tt.join)
			}
			// Once the transaction wrote on the node, its reads there run in
			// it and see the write.
			if _, err := tx.ExecContext(ctx, `UPDATE kv SET v = 'w7' WHERE k = 7`); err != nil {
				t.Fatal(err)
			}
			if err := tx.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = $1`, 7).Scan(&v); err != nil || v != "w7" {
				t.Fatalf("read own write: %q, %v", v, err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
