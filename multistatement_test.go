package pgshard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// msPair is a pgshard database whose table ms is distributed (4 shards,
// 2 replicas on 4 workers, so a string's writes reach several workers) and
// one plain PostgreSQL database with the same tables, for differential
// checks: the same string must leave the same rows and fail with the same
// SQLSTATE on both. note is an ordinary table in both.
type msPair struct {
	*env
	plain    *sql.DB
	plainDSN string
}

const msDDL = `CREATE TABLE ms (k bigint PRIMARY KEY, v text);
CREATE TABLE note (id int PRIMARY KEY, s text)`

func newMSPair(t *testing.T) *msPair {
	e := newEnv(t)
	for _, q := range strings.Split(msDDL, ";") {
		e.exec(q)
	}
	e.exec(`SELECT master_create_distributed_table('ms', 'k')`)
	e.exec(`SELECT master_create_worker_shards('ms', 4, 2)`)
	return &msPair{env: e, plain: e.plainDB("", msDDL), plainDSN: e.plainDSN()}
}

// plainDSN is the DSN of a database of one plain PostgreSQL (the metadata
// node, in a database pgshard does not use) for this test.
func (e *env) plainDSN() string {
	return e.c.Nodes[0].DSN(e.plainName())
}

func (e *env) plainName() string { return "plain_" + e.dbname[:min(len(e.dbname), 50)] }

// plainDB creates the plain database (once), runs ddl in it, and opens it
// with pgx's database/sql driver and the DSN options opts.
func (e *env) plainDB(opts, ddl string) *sql.DB {
	e.t.Helper()
	ctx := context.Background()
	name := e.plainName()
	conn, err := pgx.Connect(ctx, e.c.Nodes[0].DSN(""))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		e.t.Fatal(err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			e.t.Fatal(err)
		}
	}
	db, err := sql.Open("pgx", e.plainDSN()+opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	if ddl != "" {
		if _, err := db.Exec(ddl); err != nil {
			e.t.Fatal(err)
		}
	}
	return db
}

// tableRows returns the rows of query as text, one string per row.
func tableRows(t testing.TB, db interface {
	Query(string, ...any) (*sql.Rows, error)
}, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('|')
			}
			if v.Valid {
				b.WriteString(v.String)
			} else {
				b.WriteString("NULL")
			}
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func codeOf(err error) string {
	if err == nil {
		return ""
	}
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		return pe.SQLState()
	}
	return "no SQLSTATE: " + err.Error()
}

// placementCounts reads the rows of every placement of table straight from
// the workers, "shard/node:count" each, and checks that no prepared
// transaction is left.
func (e *env) placementCounts(table string) []string {
	e.t.Helper()
	var out []string
	for _, p := range e.placements(table) {
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %s`, pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize())
		if err := e.workerAt(p.Host, p.Port).QueryRow(context.Background(), q).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d/%d:%d", p.ShardID, p.Port, n))
	}
	if n := e.preparedXacts(); n != 0 {
		e.t.Fatalf("%d prepared transactions left on the workers", n)
	}
	return out
}

// TestMultiStatementStringsMatchPostgreSQL runs strings of several
// statements through pgshard and through pgx on one plain PostgreSQL, and
// compares the SQLSTATE and the tables' rows after each. On the old code
// every string on the distributed table was refused with 0A000.
func TestMultiStatementStringsMatchPostgreSQL(t *testing.T) {
	m := newMSPair(t)
	cases := []struct {
		name, sql string
		code      string // expected SQLSTATE ("" = success), on both
		which     string // "statement i of n" in pgshard's message
	}{
		{"all commit", `INSERT INTO ms VALUES (1, 'a'); INSERT INTO ms VALUES (2, 'b'), (3, 'c'), (4, 'd'); UPDATE ms SET v = v || '!' WHERE k > 1`, "", ""},
		{"failure in 3 of 4 leaves nothing", `INSERT INTO ms VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'); UPDATE ms SET v = 'x' WHERE k > 0; SELECT 1/0; INSERT INTO ms VALUES (9, 'z')`, "22012", "statement 3 of 4"},
		{"duplicate key after multi-shard writes", `INSERT INTO note VALUES (1, 'n'); INSERT INTO ms SELECT g, 'v' FROM generate_series(1, 20) g; DELETE FROM ms WHERE k % 2 = 0; INSERT INTO ms VALUES (3, 'dup')`, "23505", "statement 4 of 4"},
		{"explicit block committed, rest rolled back", `BEGIN; INSERT INTO ms VALUES (10, 'a'); INSERT INTO note VALUES (10, 'n'); COMMIT; INSERT INTO ms VALUES (11, 'b'); SELECT 1/0`, "22012", "statement 6 of 6"},
		{"failure inside an explicit block", `INSERT INTO ms VALUES (12, 'a'); BEGIN; INSERT INTO ms VALUES (13, 'b'); SELECT 1/0; COMMIT; INSERT INTO ms VALUES (14, 'c')`, "22012", "statement 4 of 6"},
		{"COMMIT and ROLLBACK in an implicit block", `INSERT INTO ms VALUES (20, 'a'); COMMIT; INSERT INTO ms VALUES (21, 'b'); ROLLBACK; INSERT INTO ms VALUES (22, 'c')`, "", ""},
		{"BEGIN takes in the statements before it", `INSERT INTO ms VALUES (30, 'a'); BEGIN; INSERT INTO ms VALUES (31, 'b'); COMMIT`, "", ""},
		{"BEGIN then ROLLBACK", `INSERT INTO ms VALUES (32, 'a'); BEGIN; INSERT INTO ms VALUES (33, 'b'); ROLLBACK; INSERT INTO ms VALUES (34, 'c')`, "", ""},
		{"savepoints in an explicit block", `BEGIN; INSERT INTO ms VALUES (40, 'a'); SAVEPOINT s; INSERT INTO ms VALUES (41, 'b'), (43, 'd'); ROLLBACK TO s; INSERT INTO ms VALUES (42, 'c'); RELEASE s; COMMIT`, "", ""},
		{"savepoint in an implicit block", `INSERT INTO ms VALUES (50, 'a'); SAVEPOINT s; INSERT INTO ms VALUES (51, 'b')`, "25P01", "statement 2 of 3"},
		{"VACUUM last", `INSERT INTO ms VALUES (60, 'a'); VACUUM note`, "25001", "statement 2 of 2"},
		{"VACUUM first", `VACUUM note; INSERT INTO ms VALUES (61, 'a')`, "25001", "statement 1 of 2"},
		{"CREATE INDEX CONCURRENTLY", `INSERT INTO ms VALUES (62, 'a'); CREATE INDEX CONCURRENTLY ON note (s)`, "25001", "statement 2 of 2"},
		{"CREATE INDEX CONCURRENTLY on the distributed table", `INSERT INTO ms VALUES (63, 'a'); CREATE INDEX CONCURRENTLY ON ms (v)`, "25001", "statement 2 of 2"},
		{"CREATE DATABASE", `INSERT INTO ms VALUES (64, 'a'); CREATE DATABASE ms_never`, "25001", "statement 2 of 2"},
		{"semicolons in strings, dollar quotes, comments", "INSERT INTO ms VALUES (70, 'a;b'); INSERT INTO ms VALUES (71, $$c;d$$); /* x; y */ INSERT INTO ms VALUES (72, $tag$e;'f$tag$) -- z; w\n; INSERT INTO ms VALUES (73, E'g\\';h'); INSERT INTO \"note\" VALUES (74, ';')", "", ""},
		{"empty statements", `;; INSERT INTO ms VALUES (80, 'a');;; INSERT INTO ms VALUES (81, 'b');`, "", ""},
		{"syntax error anywhere runs nothing", `INSERT INTO ms VALUES (90, 'a'); SELEC 1`, "42601", ""},
		{"unknown table", `INSERT INTO ms VALUES (91, 'a'); INSERT INTO nosuch VALUES (1)`, "42P01", "statement 2 of 2"},
		{"ordinary and distributed tables roll back together", `INSERT INTO note VALUES (100, 'n'); INSERT INTO ms VALUES (100, 'a'), (101, 'b'), (102, 'c'); UPDATE note SET s = 'm'; SELECT 1/0`, "22012", "statement 4 of 4"},
		{"statements see the string's own writes", `INSERT INTO ms VALUES (110, 'a'), (111, 'b'), (112, 'c'); UPDATE ms SET v = v || 'x' WHERE k IN (110, 112); DELETE FROM ms WHERE v = 'ax'`, "", ""},
		{"settings reach the workers", `SET TIME ZONE 'Asia/Tokyo'; INSERT INTO ms VALUES (120, to_char(timestamptz '2024-01-01 00:00+00', 'HH24')); UPDATE ms SET v = to_char(timestamptz '2024-01-01 03:00+00', 'HH24') WHERE k = 120; INSERT INTO ms SELECT 124, to_char(timestamptz '2024-01-01 00:00+00', 'HH24'); RESET TIME ZONE`, "", ""},
		{"SET LOCAL ends with the block", `SET LOCAL TIME ZONE 'Asia/Tokyo'; INSERT INTO ms VALUES (121, to_char(timestamptz '2024-01-01 00:00+00', 'HH24')); COMMIT; INSERT INTO ms VALUES (122, to_char(timestamptz '2024-01-01 00:00+00', 'HH24'))`, "", ""},
		{"a failed string's SET is rolled back", `SET TIME ZONE 'Asia/Tokyo'; SELECT 1/0`, "22012", "statement 2 of 2"},
		{"after the failed SET", `INSERT INTO ms VALUES (123, to_char(timestamptz '2024-01-01 00:00+00', 'HH24')); INSERT INTO note VALUES (123, current_setting('TimeZone'))`, "", ""},
		{"search_path set in the string", `CREATE SCHEMA IF NOT EXISTS other; CREATE TABLE IF NOT EXISTS other.note (id int); SET search_path TO other, public; INSERT INTO note VALUES (130); INSERT INTO ms VALUES (130, current_schemas(false)::text); INSERT INTO public.note SELECT id, 'other' FROM note; RESET search_path; DELETE FROM other.note`, "", ""},
		{"multi-shard reads between writes", `INSERT INTO ms SELECT g, 'r' FROM generate_series(1, 12) g; SELECT count(*) FROM ms; SELECT k FROM ms ORDER BY v, k LIMIT 3; SELECT v, count(*) FROM ms GROUP BY v; DELETE FROM ms WHERE k < 4; SELECT * FROM ms WHERE k = 5 FOR UPDATE`, "", ""},
	}
	// One connection each, so that a string's settings meet the next.
	m.DB.SetMaxOpenConns(1)
	m.plain.SetMaxOpenConns(1)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, db := range []*sql.DB{m.DB, m.plain} {
				for _, q := range []string{`DELETE FROM ms`, `DELETE FROM note`} {
					if _, err := db.Exec(q); err != nil {
						t.Fatal(err)
					}
				}
			}
			_, shardErr := m.DB.Exec(c.sql)
			_, plainErr := m.plain.Exec(c.sql)
			if codeOf(plainErr) != c.code {
				t.Fatalf("plain PostgreSQL: %v, want SQLSTATE %q", plainErr, c.code)
			}
			if codeOf(shardErr) != c.code {
				t.Fatalf("pgshard: %v, want SQLSTATE %q", shardErr, c.code)
			}
			if c.which != "" && !strings.Contains(shardErr.Error(), c.which) {
				t.Fatalf("pgshard's error %q does not say %q", shardErr, c.which)
			}
			for _, q := range []string{`SELECT k, v FROM ms ORDER BY k`, `SELECT id, s FROM note ORDER BY id`} {
				got, want := tableRows(t, m.DB, q), tableRows(t, m.plain, q)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: pgshard %v, plain PostgreSQL %v", q, got, want)
				}
			}
			var total int
			for _, pc := range m.placementCounts("ms") {
				var n int
				fmt.Sscanf(pc[strings.LastIndexByte(pc, ':')+1:], "%d", &n)
				total += n
			}
			if want := 2 * len(tableRows(t, m.plain, `SELECT k FROM ms`)); total != want {
				t.Fatalf("placements hold %d rows, want %d (2 replicas): %v", total, want, m.placementCounts("ms"))
			}
			m.assertReplicasIdentical("ms")
		})
	}
}

// TestMultiStatementQueryAndArguments checks what Query, arguments and
// Prepare do with several statements, against pgx's own driver on one
// PostgreSQL, under the default (extended) and the simple protocol.
func TestMultiStatementQueryAndArguments(t *testing.T) {
	m := newMSPair(t)
	for _, mode := range []string{"", "&default_query_exec_mode=simple_protocol"} {
		shard, err := sql.Open("pgshard", m.DSN+mode)
		if err != nil {
			t.Fatal(err)
		}
		defer shard.Close()
		plain := m.plainDB(mode, "")
		type outcome struct {
			Code string
			Rows []string
		}
		run := func(db *sql.DB, f func(db *sql.DB) ([]string, error)) outcome {
			for _, q := range []string{`DELETE FROM ms`, `DELETE FROM note`} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			rows, err := f(db)
			after := tableRows(t, db, `SELECT k, v FROM ms ORDER BY k`)
			return outcome{codeOf(err), append(rows, after...)}
		}
		query := func(q string, args ...any) func(db *sql.DB) ([]string, error) {
			return func(db *sql.DB) ([]string, error) {
				rows, err := db.Query(q, args...)
				if err != nil {
					return nil, err
				}
				defer rows.Close()
				var out []string
				for rows.Next() {
					var s sql.NullString
					if err := rows.Scan(&s); err != nil {
						return nil, err
					}
					out = append(out, "row "+s.String)
				}
				return out, rows.Err()
			}
		}
		exec := func(q string, args ...any) func(db *sql.DB) ([]string, error) {
			return func(db *sql.DB) ([]string, error) {
				res, err := db.Exec(q, args...)
				if err != nil {
					return nil, err
				}
				n, err := res.RowsAffected()
				return []string{fmt.Sprint("affected ", n)}, err
			}
		}
		prepare := func(q string) func(db *sql.DB) ([]string, error) {
			return func(db *sql.DB) ([]string, error) {
				st, err := db.Prepare(q)
				if err != nil {
					return nil, err
				}
				st.Close()
				return []string{"prepared"}, nil
			}
		}
		cases := []struct {
			name string
			f    func(db *sql.DB) ([]string, error)
		}{
			{"query: rows of the first statement", query(`INSERT INTO ms VALUES (1, 'a'), (2, 'b'); SELECT v FROM ms WHERE k = 1; SELECT v FROM ms`)},
			{"query: first statement's rows", query(`SELECT v FROM ms ORDER BY k; INSERT INTO ms VALUES (1, 'a'), (2, 'b')`)},
			{"query: error in a later statement", query(`INSERT INTO ms VALUES (3, 'c'); SELECT v FROM ms; SELECT 1/0`)},
			{"exec: rows affected by the last statement", exec(`INSERT INTO ms VALUES (1, 'a'), (2, 'b'), (3, 'c'); UPDATE ms SET v = 'x' WHERE k IN (1, 2)`)},
			{"exec: a SELECT last", exec(`INSERT INTO ms VALUES (1, 'a'), (2, 'b'), (3, 'c'); SELECT * FROM ms`)},
			{"exec: COMMIT last", exec(`INSERT INTO ms VALUES (1, 'a'), (2, 'b'), (3, 'c'); COMMIT`)},
			{"exec with arguments", exec(`INSERT INTO ms VALUES ($1, 'a'); INSERT INTO ms VALUES ($2, $3), ($4, $1::text); UPDATE ms SET v = $1 || $3 WHERE k = $2`, 1, 2, "b", 3)},
			{"query with arguments", query(`INSERT INTO ms VALUES ($1, 'a'), ($2, $3); SELECT v FROM ms WHERE k = $2`, 1, 2, "it's; $1")},
			{"arguments with a failure", exec(`INSERT INTO ms VALUES ($1, 'a'); INSERT INTO ms VALUES ($1, 'b')`, 1)},
			{"query: one multi-row INSERT without RETURNING", query(`INSERT INTO ms VALUES (1, 'a'), (2, 'b'), (3, 'c')`)},
			{"prepare", prepare(`INSERT INTO ms VALUES (1, 'a'); INSERT INTO ms VALUES (2, 'b')`)},
		}
		for _, c := range cases {
			got, want := run(shard, c.f), run(plain, c.f)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("mode %q, %s: pgshard %+v, plain PostgreSQL %+v", mode, c.name, got, want)
			}
		}
	}
}

// TestMultiStatementInsideTransaction runs strings inside a database/sql
// transaction: no block of their own, a failure aborts the transaction;
// compared with pgx on one PostgreSQL.
func TestMultiStatementInsideTransaction(t *testing.T) {
	m := newMSPair(t)
	type outcome struct {
		Codes []string
		Rows  []string
	}
	run := func(db *sql.DB, commit bool, strs ...string) outcome {
		if _, err := db.Exec(`DELETE FROM ms`); err != nil {
			t.Fatal(err)
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		var o outcome
		for _, s := range strs {
			_, err := tx.Exec(s)
			o.Codes = append(o.Codes, codeOf(err))
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if errors.Is(err, pgx.ErrTxCommitRollback) {
			o.Codes = append(o.Codes, "commit rolled back")
		} else {
			o.Codes = append(o.Codes, codeOf(err))
		}
		o.Rows = tableRows(t, db, `SELECT k, v FROM ms ORDER BY k`)
		return o
	}
	cases := []struct {
		name   string
		commit bool
		strs   []string
	}{
		{"commit", true, []string{`INSERT INTO ms VALUES (1, 'a'); INSERT INTO ms VALUES (2, 'b'), (3, 'c')`, `UPDATE ms SET v = 'x' WHERE k > 1; DELETE FROM ms WHERE k = 3`}},
		{"rollback", false, []string{`INSERT INTO ms VALUES (1, 'a'); INSERT INTO ms VALUES (2, 'b'), (3, 'c')`}},
		{"failure aborts the transaction", true, []string{`INSERT INTO ms VALUES (1, 'a')`, `INSERT INTO ms VALUES (2, 'b'); SELECT 1/0`, `INSERT INTO ms VALUES (4, 'd')`}},
		{"BEGIN inside is a no-op", true, []string{`BEGIN; INSERT INTO ms VALUES (1, 'a'), (2, 'b')`}},
		{"savepoints", true, []string{`INSERT INTO ms VALUES (1, 'a'); SAVEPOINT s; INSERT INTO ms VALUES (2, 'b'); ROLLBACK TO s; INSERT INTO ms VALUES (3, 'c')`}},
	}
	for _, c := range cases {
		got, want := run(m.DB, c.commit, c.strs...), run(m.plain, c.commit, c.strs...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: pgshard %+v, plain PostgreSQL %+v", c.name, got, want)
		}
		m.assertReplicasIdentical("ms")
	}
	// COMMIT as text inside a database/sql transaction is refused before
	// anything runs (PostgreSQL would commit the Tx's work behind
	// database/sql's back).
	tx, err := m.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(`INSERT INTO ms VALUES (7, 'a'); COMMIT; INSERT INTO ms VALUES (8, 'b')`)
	expectError(t, err, "0A000", "statement 2 of 3")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
}

// TestMultiStatementRefusals: what pgshard refuses before running anything,
// where PostgreSQL would leave a transaction open across strings.
func TestMultiStatementRefusals(t *testing.T) {
	m := newMSPair(t)
	cases := []struct{ sql, code, contains string }{
		{`INSERT INTO ms VALUES (1, 'a'); BEGIN; INSERT INTO ms VALUES (2, 'b')`, "0A000", "leaves a transaction open"},
		{`INSERT INTO ms VALUES (1, 'a'); PREPARE TRANSACTION 'x'`, "0A000", "statement 2 of 2"},
		{`SELECT master_create_worker_shards('ms', 4, 1); INSERT INTO ms VALUES (1, 'a')`, "0A000", "statement 2 of 2"},
		{`INSERT INTO ms VALUES (1, 'a'); SELECT master_copy_shard_placement(1, 'h', 1, 'h', 2)`, "0A000", "statement 2 of 2"},
	}
	for _, c := range cases {
		_, err := m.DB.Exec(c.sql)
		expectError(t, err, c.code, c.contains)
		if n := m.queryInt(`SELECT count(*) FROM ms`); n != 0 {
			t.Fatalf("%s: %d rows written", c.sql, n)
		}
	}
}

// TestMultiStatementErrorsNameTheStatementOnly: the error says which
// statement failed, keeps the SQLSTATE, and quotes no value of the string.
func TestMultiStatementErrorsNameTheStatementOnly(t *testing.T) {
	m := newMSPair(t)
	_, err := m.DB.Exec(`INSERT INTO ms VALUES (1, 'hunter2'); INSERT INTO note VALUES (1, 'hunter2'); INSERT INTO ms VALUES (1, 'hunter2'); SELECT 1; SELECT 2`)
	expectError(t, err, "23505", "statement 3 of 5")
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error quotes a value: %v", err)
	}
	if n := m.queryInt(`SELECT count(*) FROM ms`) + m.queryInt(`SELECT count(*) FROM note`); n != 0 {
		t.Fatalf("%d rows left", n)
	}
}

// TestMultiStatementDistributesTables creates and distributes tables in
// one string, atomically: a string that fails or rolls back leaves neither
// the table, nor its metadata, nor shard tables on the workers.
func TestMultiStatementDistributesTables(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE a (k bigint PRIMARY KEY, v text);
		SELECT master_create_distributed_table('a', 'k');
		SELECT master_create_worker_shards('a', 4, 2)`)
	e.exec(`INSERT INTO a SELECT g, 'v' FROM generate_series(1, 40) g`)
	if n := e.queryInt(`SELECT count(*) FROM a`); n != 40 {
		t.Fatalf("a has %d rows", n)
	}
	if n := len(e.placements("a")); n != 8 {
		t.Fatalf("a has %d placements, want 8", n)
	}
	e.assertReplicasIdentical("a")

	shardTables := func() int {
		total := 0
		for _, w := range e.workers {
			var n int
			if err := e.worker(w).QueryRow(context.Background(), `SELECT count(*) FROM pg_class WHERE relname LIKE 'b\_%' AND relkind = 'r'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			total += n
		}
		return total
	}
	for _, c := range []struct{ sql, code string }{
		{`CREATE TABLE b (k bigint); SELECT master_create_distributed_table('b', 'k'); SELECT master_create_worker_shards('b', 4, 9)`, "22023"},
		{`CREATE TABLE b (k bigint); SELECT master_create_distributed_table('b', 'k'); SELECT master_create_worker_shards('b', 4, 2); ROLLBACK`, ""},
	} {
		_, err := e.DB.Exec(c.sql)
		if codeOf(err) != c.code {
			t.Fatalf("%s: %v, want %q", c.sql, err, c.code)
		}
		if n := e.queryInt(`SELECT count(*) FROM pg_class WHERE relname = 'b'`); n != 0 {
			t.Fatalf("%s: table b exists", c.sql)
		}
		if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.partition p JOIN pg_class c ON c.oid = p.relation_id WHERE c.relname = 'b'`); n != 0 {
			t.Fatalf("%s: b's metadata exists", c.sql)
		}
		if n := shardTables(); n != 0 {
			t.Fatalf("%s: %d shard tables of b left on the workers", c.sql, n)
		}
	}

	// After a COMMIT in the string the new table is known: the statements
	// after it route to its shards, in a block of their own.
	_, err := e.DB.Exec(`CREATE TABLE c (k bigint PRIMARY KEY, v text);
		SELECT master_create_distributed_table('c', 'k');
		SELECT master_create_worker_shards('c', 4, 2);
		COMMIT;
		INSERT INTO c SELECT g, 'x' FROM generate_series(1, 10) g;
		SELECT 1/0`)
	expectError(t, err, "22012", "statement 6 of 6")
	if n := e.queryInt(`SELECT count(*) FROM c`); n != 0 {
		t.Fatalf("c has %d rows after the failed block", n)
	}
	e.exec(`INSERT INTO c VALUES (100, 'y'); COMMIT; INSERT INTO c SELECT g, 'x' FROM generate_series(1, 10) g; UPDATE c SET v = 'z' WHERE k > 5`)
	if got := tableRows(t, e.DB, `SELECT v, count(*) FROM c GROUP BY v ORDER BY v`); !reflect.DeepEqual(got, []string{"x|5", "z|6"}) {
		t.Fatalf("c: %v", got)
	}
	if n := len(e.holders("c", "k", 100)); n != 1 {
		t.Fatalf("key 100 is in %d shards", n)
	}
	e.assertReplicasIdentical("c")
}
