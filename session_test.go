package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
)

// execModes are the DSN suffixes a session test runs under: pgx's default
// (prepared, cached statements) and the simple protocol.
var execModes = []struct{ name, dsn string }{
	{"prepared", ""},
	{"simple", "&default_query_exec_mode=simple_protocol"},
}

// openMode opens the env's database through pgshard with a DSN suffix.
func (e *env) openMode(t *testing.T, suffix string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgshard", e.DSN+suffix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// pinned returns one connection of db, closed at the end of the test.
func pinned(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// querier is a *sql.Conn or a *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// onWorker returns current_setting(name) as a statement routed to a worker
// (kv's shard of key 1) sees it, and as a multi-shard statement sees it on
// every worker (one distinct value expected).
func onWorker(t *testing.T, q querier, name string) string {
	t.Helper()
	ctx := context.Background()
	var routed, scattered string
	if err := q.QueryRowContext(ctx, `SELECT current_setting($1) FROM kv WHERE k = 1`, name).Scan(&routed); err != nil {
		t.Fatalf("current_setting(%s) on a worker: %v", name, err)
	}
	if err := q.QueryRowContext(ctx, `SELECT string_agg(DISTINCT current_setting($1), ',') FROM kv`, name).Scan(&scattered); err != nil {
		t.Fatalf("current_setting(%s) on every worker: %v", name, err)
	}
	if routed != scattered {
		t.Fatalf("%s: the routed statement sees %q, the multi-shard one %q", name, routed, scattered)
	}
	return routed
}

// rollbackLater rolls tx back at the end of the test, so that a test that
// fails in a transaction does not leave it open (closing its conn would
// wait for it); after Commit or Rollback it does nothing.
func rollbackLater(t *testing.T, tx *sql.Tx) {
	t.Cleanup(func() { tx.Rollback() })
}

func mustExec(t *testing.T, q querier, query string, args ...any) {
	t.Helper()
	if _, err := q.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// setupSessionKV makes kv with 8 shards over the 4 workers and 40 rows, a
// few in every shard.
func setupSessionKV(t *testing.T, replicas int) *env {
	e := setupKV(t, 8, replicas)
	for k := 1; k <= 40; k++ {
		e.exec(`INSERT INTO kv (k, v) VALUES ($1, $2)`, k, fmt.Sprint("v", k))
	}
	return e
}

// TestSessionSettingsReachWorkers: SET, RESET and set_config apply to the
// worker connections of the session's statements, routed and multi-shard,
// inside and outside transactions.
func TestSessionSettingsReachWorkers(t *testing.T) {
	e := setupSessionKV(t, 2)
	ctx := context.Background()
	for _, mode := range execModes {
		t.Run(mode.name, func(t *testing.T) {
			db := e.openMode(t, mode.dsn)
			c := pinned(t, db)
			mustExec(t, c, `SET statement_timeout = '100ms'`)
			_, err := c.ExecContext(ctx, `SELECT pg_sleep(1) FROM kv WHERE k = 1`)
			expectError(t, err, "57014", "statement timeout")
			_, err = c.ExecContext(ctx, `SELECT pg_sleep(1) FROM kv`)
			expectError(t, err, "57014", "statement timeout")

			cases := []struct{ set, name, want string }{
				{`SET TimeZone = 'Asia/Kolkata'`, "TimeZone", "Asia/Kolkata"},
				{`SET TIME ZONE 'America/New_York'`, "TimeZone", "America/New_York"},
				{`SET DateStyle = 'SQL, DMY'`, "DateStyle", "SQL, DMY"},
				{`SET IntervalStyle = postgres_verbose`, "IntervalStyle", "postgres_verbose"},
				{`SET extra_float_digits = 0`, "extra_float_digits", "0"},
				{`SET bytea_output = 'escape'`, "bytea_output", "escape"},
				{`SET lock_timeout = '2s'`, "lock_timeout", "2s"},
				{`SET idle_in_transaction_session_timeout = 60000`, "idle_in_transaction_session_timeout", "1min"},
				{`SET application_name = 'shop'`, "application_name", "shop"},
				{`SET SESSION work_mem = '8MB'`, "work_mem", "8MB"},
				{`SET myapp.tenant = '42'`, "myapp.tenant", "42"},
				{`SELECT set_config('search_path', 'pg_catalog, public', false)`, "search_path", "pg_catalog, public"},
				{`RESET lock_timeout`, "lock_timeout", "0"},
				{`SET bytea_output TO DEFAULT`, "bytea_output", "hex"},
			}
			for _, c2 := range cases {
				mustExec(t, c, c2.set)
				if got := onWorker(t, c, c2.name); got != c2.want {
					t.Fatalf("after %s: %s on the workers = %q, want %q", c2.set, c2.name, got, c2.want)
				}
			}
			// The values themselves: a timestamptz read on a worker is shown in
			// the session's zone and DateStyle.
			var shown string
			if err := c.QueryRowContext(ctx, `SELECT '2024-01-01 12:00+00'::timestamptz::text FROM kv WHERE k = 2`).Scan(&shown); err != nil {
				t.Fatal(err)
			}
			if want := "01/01/2024 07:00:00 EST"; shown != want {
				t.Fatalf("timestamptz shown as %q, want %q", shown, want)
			}
			// Inside a transaction too, for servers joining before and after.
			tx, err := c.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			rollbackLater(t, tx)
			if got := onWorker(t, tx, "TimeZone"); got != "America/New_York" {
				t.Fatalf("in a transaction: TimeZone = %q", got)
			}
			mustExec(t, tx, `SET TimeZone = 'Europe/Paris'`)
			if got := onWorker(t, tx, "TimeZone"); got != "Europe/Paris" {
				t.Fatalf("after SET in a transaction: TimeZone = %q", got)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if got := onWorker(t, c, "TimeZone"); got != "Europe/Paris" {
				t.Fatalf("after the transaction committed: TimeZone = %q", got)
			}
			mustExec(t, c, `RESET ALL`)
			for _, name := range []string{"TimeZone", "statement_timeout", "DateStyle", "application_name"} {
				var meta string
				if err := c.QueryRowContext(ctx, `SELECT current_setting($1)`, name).Scan(&meta); err != nil {
					t.Fatal(err)
				}
				if got := onWorker(t, c, name); got != meta {
					t.Fatalf("after RESET ALL: %s = %q on the workers, %q on the metadata session", name, got, meta)
				}
			}
		})
	}
}

// TestSessionSettingsDoNotLeak: worker connections go back to their pools
// with their defaults: another session's statements on the same pooled
// connections see none of the first session's settings.
func TestSessionSettingsDoNotLeak(t *testing.T) {
	e := setupSessionKV(t, 1)
	ctx := context.Background()
	// Three connections per pool (a multi-shard read's combine step needs
	// one more than the two shards per worker): every pooled worker
	// connection is used by both sessions.
	db := e.openMode(t, "&pool_max_conns=3")
	defaults := map[string]string{}
	names := []string{"TimeZone", "statement_timeout", "search_path", "DateStyle", "myapp.tenant"}
	other := pinned(t, db)
	for _, name := range names[:4] {
		defaults[name] = onWorker(t, other, name)
	}
	a := pinned(t, db)
	mustExec(t, a, `SET TimeZone = 'Asia/Kolkata'`)
	mustExec(t, a, `SET statement_timeout = '5s'`)
	mustExec(t, a, `SET search_path = pg_catalog, public`)
	mustExec(t, a, `SET DateStyle = 'German'`)
	mustExec(t, a, `SET myapp.tenant = '7'`)
	// A read, a write, a multi-shard write and a transaction of session a...
	onWorker(t, a, "TimeZone")
	mustExec(t, a, `UPDATE kv SET n = n + 1 WHERE k = 3`)
	mustExec(t, a, `UPDATE kv SET n = n + 1`)
	tx, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rollbackLater(t, tx)
	mustExec(t, tx, `UPDATE kv SET n = n + 1 WHERE k = 4`)
	onWorker(t, tx, "TimeZone")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// ...then the other session, on the same connections (each taken in
	// turn from the idle ones).
	for i := 0; i < 4; i++ {
		for _, name := range names[:4] {
			if got := onWorker(t, other, name); got != defaults[name] {
				t.Fatalf("%s leaked into another session: %q, default %q", name, got, defaults[name])
			}
		}
	}
	var tenant sql.NullString
	if err := other.QueryRowContext(ctx, `SELECT current_setting('myapp.tenant', true) FROM kv WHERE k = 1`).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	if tenant.Valid && tenant.String != "" {
		t.Fatalf("myapp.tenant leaked into another session: %q", tenant.String)
	}
	// Session a still has its own.
	if got := onWorker(t, a, "TimeZone"); got != "Asia/Kolkata" {
		t.Fatalf("session a lost its TimeZone: %q", got)
	}
}

// TestSessionSettingsScoping: SET LOCAL ends with its transaction, a SET in
// a rolled-back transaction or savepoint is undone, set_config's is_local
// too, exactly as on the metadata session.
func TestSessionSettingsScoping(t *testing.T) {
	e := setupSessionKV(t, 1)
	ctx := context.Background()
	for _, mode := range execModes {
		t.Run(mode.name, func(t *testing.T) {
			c := pinned(t, e.openMode(t, mode.dsn))
			mustExec(t, c, `SET TimeZone = 'UTC'`)
			steps := []struct {
				name string
				run  func(tx *sql.Tx)
				end  func(tx *sql.Tx) error
				in   string // TimeZone inside the transaction, at its end
				want string // TimeZone after it
			}{
				{"SET LOCAL, commit", func(tx *sql.Tx) { mustExec(t, tx, `SET LOCAL TimeZone = 'Asia/Kolkata'`) }, (*sql.Tx).Commit, "Asia/Kolkata", "UTC"},
				{"SET, rollback", func(tx *sql.Tx) { mustExec(t, tx, `SET TimeZone = 'Asia/Kolkata'`) }, (*sql.Tx).Rollback, "Asia/Kolkata", "UTC"},
				{"SET, commit", func(tx *sql.Tx) { mustExec(t, tx, `SET TimeZone = 'Asia/Tokyo'`) }, (*sql.Tx).Commit, "Asia/Tokyo", "Asia/Tokyo"},
				{"set_config local", func(tx *sql.Tx) { mustExec(t, tx, `SELECT set_config('TimeZone', 'Europe/Paris', true)`) }, (*sql.Tx).Commit, "Europe/Paris", "Asia/Tokyo"},
				{"savepoint rolled back", func(tx *sql.Tx) {
					mustExec(t, tx, `SET TimeZone = 'Europe/Berlin'`)
					onWorker(t, tx, "TimeZone")
					mustExec(t, tx, `SAVEPOINT a`)
					mustExec(t, tx, `SET TimeZone = 'Europe/Paris'`)
					if got := onWorker(t, tx, "TimeZone"); got != "Europe/Paris" {
						t.Fatalf("after SET in the savepoint: %q", got)
					}
					mustExec(t, tx, `ROLLBACK TO SAVEPOINT a`)
				}, (*sql.Tx).Commit, "Europe/Berlin", "Europe/Berlin"},
				{"savepoint released", func(tx *sql.Tx) {
					mustExec(t, tx, `SAVEPOINT b`)
					mustExec(t, tx, `SET LOCAL TimeZone = 'Asia/Tokyo'`)
					mustExec(t, tx, `RELEASE SAVEPOINT b`)
				}, (*sql.Tx).Rollback, "Asia/Tokyo", "Europe/Berlin"},
			}
			for _, s := range steps {
				tx, err := c.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				rollbackLater(t, tx)
				onWorker(t, tx, "TimeZone") // workers join before the SET
				s.run(tx)
				if got := onWorker(t, tx, "TimeZone"); got != s.in {
					t.Fatalf("%s: in the transaction TimeZone = %q on the workers, want %q", s.name, got, s.in)
				}
				if err := s.end(tx); err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				var meta string
				if err := c.QueryRowContext(ctx, `SHOW TimeZone`).Scan(&meta); err != nil {
					t.Fatal(err)
				}
				if got := onWorker(t, c, "TimeZone"); got != s.want || meta != s.want {
					t.Fatalf("%s: after the transaction TimeZone = %q on the workers, %q on the metadata session, want %q", s.name, got, meta, s.want)
				}
			}
		})
	}
}

// TestSetTransactionReachesWorkers: SET TRANSACTION and SET SESSION
// CHARACTERISTICS decide the isolation and read-only mode on every server
// of the transaction.
func TestSetTransactionReachesWorkers(t *testing.T) {
	e := setupSessionKV(t, 1)
	ctx := context.Background()
	for _, mode := range execModes {
		t.Run(mode.name, func(t *testing.T) {
			c := pinned(t, e.openMode(t, mode.dsn))
			tx, err := c.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			rollbackLater(t, tx)
			mustExec(t, tx, `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`)
			if got := onWorker(t, tx, "transaction_isolation"); got != "serializable" {
				t.Fatalf("isolation on the workers = %q", got)
			}
			mustExec(t, tx, `SET TRANSACTION READ ONLY`)
			_, err = tx.ExecContext(ctx, `UPDATE kv SET n = 1 WHERE k = 5`)
			expectError(t, err, "25006", "read-only")
			tx.Rollback()

			// Too late once a worker ran a query, as in PostgreSQL.
			tx, err = c.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			rollbackLater(t, tx)
			onWorker(t, tx, "transaction_isolation")
			_, err = tx.ExecContext(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`)
			expectError(t, err, "25001", "before any query")
			tx.Rollback()

			mustExec(t, c, `SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ`)
			if got := onWorker(t, c, "transaction_isolation"); got != "repeatable read" {
				t.Fatalf("default isolation on the workers = %q", got)
			}
			tx, err = c.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			rollbackLater(t, tx)
			if got := onWorker(t, tx, "transaction_isolation"); got != "repeatable read" {
				t.Fatalf("isolation of a transaction on the workers = %q", got)
			}
			tx.Rollback()
			mustExec(t, c, `SET default_transaction_read_only = on`)
			_, err = c.ExecContext(ctx, `UPDATE kv SET n = 1 WHERE k = 5`)
			expectError(t, err, "25006", "read-only")
			mustExec(t, c, `RESET ALL`)
			mustExec(t, c, `UPDATE kv SET n = 1 WHERE k = 5`)
		})
	}
}

// TestUnsafeSettingsRefused: settings pgshard cannot carry to the worker
// connections are refused with 0A000 naming the setting, and change nothing.
func TestUnsafeSettingsRefused(t *testing.T) {
	e := setupSessionKV(t, 1)
	ctx := context.Background()
	e.exec(`CREATE ROLE session_test_role`)
	t.Cleanup(func() {
		for _, n := range e.c.Nodes {
			conn, err := pgx.Connect(ctx, n.DSN(e.dbname))
			if err == nil {
				conn.Exec(ctx, `DROP ROLE IF EXISTS session_test_role`)
				conn.Close(ctx)
			}
		}
	})
	c := pinned(t, e.DB)
	cases := []struct{ stmt, setting string }{
		{`SET ROLE session_test_role`, "role"},
		{`SET SESSION AUTHORIZATION session_test_role`, "session_authorization"},
		{`SET session_replication_role = replica`, "session_replication_role"},
		{`SET LOCAL session_replication_role = replica`, "session_replication_role"},
		{`SELECT set_config('role', 'session_test_role', false)`, "role"},
		{`SELECT set_config('session_replication_role', 'replica', false)`, "session_replication_role"},
		{`SET default_tablespace = pg_default`, "default_tablespace"},
		{`SET client_encoding = 'LATIN1'`, "client_encoding"},
		{`SET transaction_isolation = 'serializable'`, "transaction_isolation"},
	}
	for _, tc := range cases {
		_, err := c.ExecContext(ctx, tc.stmt)
		expectError(t, err, "0A000", `"`+tc.setting+`"`)
	}
	var role, repl string
	if err := c.QueryRowContext(ctx, `SELECT current_user, current_setting('session_replication_role')`).Scan(&role, &repl); err != nil {
		t.Fatal(err)
	}
	if role == "session_test_role" || repl != "origin" {
		t.Fatalf("a refused setting changed the session: role %q, session_replication_role %q", role, repl)
	}
	// A name set_config cannot know in advance is refused too.
	_, err := c.ExecContext(ctx, `SELECT set_config($1, 'x', false)`, "myapp.x")
	expectError(t, err, "0A000", "set_config")
	// set_config in a statement that runs on the workers would change only
	// their (pooled) sessions.
	_, err = c.ExecContext(ctx, `SELECT set_config('TimeZone', 'UTC', false) FROM kv WHERE k = 1`)
	expectError(t, err, "0A000", "set_config")
	// Set where pgshard cannot see it: the connection refuses to go on.
	_, err = c.ExecContext(ctx, `DO $$ BEGIN PERFORM set_config('session_replication_role', 'replica', false); END $$`)
	if err == nil {
		_, err = c.ExecContext(ctx, `SELECT 1`)
	}
	expectError(t, err, "0A000", `"session_replication_role"`)
	// RESET of them is harmless.
	c2 := pinned(t, e.DB)
	mustExec(t, c2, `RESET ROLE`)
	mustExec(t, c2, `RESET session_replication_role`)
}

// TestSearchPathResolvesNames: unqualified names resolve with the session's
// search_path (and temporary tables first), distributed or not, before
// routing; plans made for one search_path never serve another.
func TestSearchPathResolvesNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.exec(`CREATE SCHEMA "Sch ema"`)
	e.exec(`CREATE TABLE "Sch ema".t (k int PRIMARY KEY, v text)`)
	e.exec(`SELECT master_create_distributed_table('"Sch ema".t', 'k')`)
	e.exec(`SELECT master_create_worker_shards('"Sch ema".t', 4, 1)`)
	e.exec(`CREATE TABLE public.t (k int PRIMARY KEY, v text)`) // ordinary, metadata only
	e.exec(`INSERT INTO public.t VALUES (100, 'public')`)
	for k := 1; k <= 3; k++ {
		e.exec(`INSERT INTO "Sch ema".t VALUES ($1, 'dist')`, k)
	}
	// workerRows counts the rows of "Sch ema".t with v = v read straight
	// from its shard tables on the workers.
	workerRows := func(v string) int {
		n := 0
		for _, p := range e.placements(`"Sch ema".t`) {
			var c int
			q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE v = $1`, pgx.Identifier{"Sch ema", fmt.Sprintf("t_%d", p.ShardID)}.Sanitize())
			if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, q, v).Scan(&c); err != nil {
				t.Fatal(err)
			}
			n += c
		}
		return n
	}
	for i, mode := range execModes {
		t.Run(mode.name, func(t *testing.T) {
			db := e.openMode(t, mode.dsn)
			def := pinned(t, db)
			c := pinned(t, db)
			count := func(q querier, want int, what string) {
				t.Helper()
				var n int
				if err := q.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != want {
					t.Fatalf("%s: SELECT count(*) FROM t = %d, want %d", what, n, want)
				}
			}
			count(def, 1, "default search_path") // plans the text for the pool's path first
			mustExec(t, c, `SET search_path TO "Sch ema", public`)
			count(c, 3+i, `search_path "Sch ema", public`)
			// Writes through the unqualified name reach the shards.
			mustExec(t, c, `INSERT INTO t (k, v) VALUES ($1, 'inserted')`, 10+i)
			if n := workerRows("inserted"); n != 1+i {
				t.Fatalf("rows inserted through t on the workers: %d, want %d", n, 1+i)
			}
			mustExec(t, c, `UPDATE t SET v = 'updated' WHERE k = $1`, 10+i)
			if n := workerRows("updated"); n != 1 {
				t.Fatalf("rows updated through t on the workers: %d, want 1", n)
			}
			mustExec(t, c, `UPDATE t SET v = 'inserted' WHERE k = $1`, 10+i)
			var tmplRows int
			if err := def.QueryRowContext(ctx, `SELECT count(*) FROM "Sch ema".t`).Scan(&tmplRows); err != nil {
				t.Fatal(err)
			}
			// (through pgshard this is the distributed table: 3 + inserted)
			if tmplRows != 4+i {
				t.Fatalf(`"Sch ema".t through pgshard: %d rows, want %d`, tmplRows, 4+i)
			}
			count(def, 1, "default search_path, after the other session planned the same text")
			// A temporary table hides both, as in PostgreSQL.
			mustExec(t, c, `CREATE TEMP TABLE t (k int, v text)`)
			count(c, 0, "temporary t")
			mustExec(t, c, `DROP TABLE pg_temp.t`)
			count(c, 4+i, "after dropping the temporary t")
			mustExec(t, c, `SET search_path TO public`)
			count(c, 1, "search_path public")
			mustExec(t, c, `RESET search_path`)
			count(c, 1, "after RESET search_path")
		})
	}
	// Nothing reached the template table in the metadata database.
	meta, err := pgx.Connect(ctx, e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close(ctx)
	var n int
	if err := meta.QueryRow(ctx, `SELECT count(*) FROM "Sch ema".t`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("template table rows: %d, %v", n, err)
	}
}

// TestSetConstraintsReachWorkers: SET CONSTRAINTS applies on the workers
// of the transaction, those in it and those joining later.
func TestSetConstraintsReachWorkers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.exec(`CREATE TABLE dc (k int, v int, CONSTRAINT dc_kv UNIQUE (k, v) DEFERRABLE INITIALLY IMMEDIATE)`)
	e.exec(`SELECT master_create_distributed_table('dc', 'k')`)
	e.exec(`SELECT master_create_worker_shards('dc', 4, 1)`)
	for _, mode := range execModes {
		t.Run(mode.name, func(t *testing.T) {
			c := pinned(t, e.openMode(t, mode.dsn))
			for _, joinFirst := range []bool{false, true} {
				tx, err := c.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				rollbackLater(t, tx)
				if joinFirst {
					mustExec(t, tx, `SELECT count(*) FROM dc WHERE k = 1`)
				}
				mustExec(t, tx, `SET CONSTRAINTS ALL DEFERRED`)
				mustExec(t, tx, `INSERT INTO dc VALUES (1, 1)`)
				mustExec(t, tx, `INSERT INTO dc VALUES (1, 1)`) // checked at commit only
				mustExec(t, tx, `DELETE FROM dc WHERE k = 1`)
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			// Without it, the check is immediate, as in PostgreSQL.
			tx, err := c.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			rollbackLater(t, tx)
			mustExec(t, tx, `INSERT INTO dc VALUES (2, 1)`)
			_, err = tx.ExecContext(ctx, `INSERT INTO dc VALUES (2, 1)`)
			expectError(t, err, "23505", "dc_kv")
		})
	}
}
