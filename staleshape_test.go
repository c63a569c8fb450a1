package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// staleShapeStmt is one statement an application runs before and after
// another process changes the table's columns: want gives its rows (each
// row's values joined by spaces, sorted when sorted is set), with extra set
// when the table has gained the column note.
type staleShapeStmt struct {
	sql    string
	args   func(round int) []any
	want   func(round int, extra bool) []string
	sorted bool
	exec   bool // no rows: run with Exec
}

// staleShapePerson renders row id of people as SELECT * returns it.
func staleShapePerson(id int, extra bool) string {
	s := fmt.Sprintf("%d n%d %d", id, id, id%5)
	if extra {
		s += " x"
	}
	return s
}

func staleShapeStmts() []staleShapeStmt {
	none := func(int) []any { return nil }
	return []staleShapeStmt{
		{sql: `SELECT age, count(*) FROM people GROUP BY age ORDER BY age`, args: none,
			want: func(int, bool) []string { return []string{"0 4", "1 4", "2 4", "3 4", "4 4"} }},
		{sql: `SELECT id, name, age FROM people ORDER BY id LIMIT 5`, args: none,
			want: func(int, bool) []string { return []string{"1 n1 1", "2 n2 2", "3 n3 3", "4 n4 4", "5 n5 0"} }},
		{sql: `SELECT count(*) FROM people`, args: none,
			want: func(int, bool) []string { return []string{"20"} }},
		{sql: `SELECT * FROM people`, args: none, sorted: true,
			want: func(_ int, extra bool) []string {
				var rows []string
				for id := 1; id <= 20; id++ {
					rows = append(rows, staleShapePerson(id, extra))
				}
				return rows
			}},
		{sql: `SELECT * FROM people WHERE id = $1`, args: func(int) []any { return []any{7} },
			want: func(_ int, extra bool) []string { return []string{staleShapePerson(7, extra)} }},
		{sql: `UPDATE people SET age = age WHERE id = $1 RETURNING *`, args: func(int) []any { return []any{9} },
			want: func(_ int, extra bool) []string { return []string{staleShapePerson(9, extra)} }},
		{sql: `UPDATE people SET name = name WHERE age = $1 RETURNING *`, args: func(int) []any { return []any{3} }, sorted: true,
			want: func(_ int, extra bool) []string {
				return []string{staleShapePerson(13, extra), staleShapePerson(18, extra), staleShapePerson(3, extra), staleShapePerson(8, extra)}
			}},
		{sql: `INSERT INTO people (id, name, age) VALUES ($1, 'n' || $1::int, $1::int % 5) RETURNING *`, args: func(r int) []any { return []any{100 + r} },
			want: func(r int, extra bool) []string { return []string{staleShapePerson(100+r, extra)} }},
		{sql: `DELETE FROM people WHERE id = $1`, args: func(r int) []any { return []any{100 + r} }, exec: true},
	}
}

// staleShapeQuerier is a *sql.DB or a *sql.Tx.
type staleShapeQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// runStaleShapeStmts runs every statement once through q, starting with
// the one at index from, and fails the test on the first error or wrong
// answer.
func runStaleShapeStmts(t *testing.T, q staleShapeQuerier, when string, round int, extra bool, from int) {
	t.Helper()
	ctx := context.Background()
	stmts := staleShapeStmts()
	for i := range stmts {
		st := stmts[(from+i)%len(stmts)]
		if st.exec {
			if _, err := q.ExecContext(ctx, st.sql, st.args(round)...); err != nil {
				t.Fatalf("%s: %s: %v", when, st.sql, err)
			}
			continue
		}
		rows, err := q.QueryContext(ctx, st.sql, st.args(round)...)
		if err != nil {
			t.Fatalf("%s: %s: %v", when, st.sql, err)
		}
		var got []string
		cols, err := rows.Columns()
		if err != nil {
			t.Fatalf("%s: %s: columns: %v", when, st.sql, err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("%s: %s: scan: %v", when, st.sql, err)
			}
			parts := make([]string, len(vals))
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				parts[i] = fmt.Sprint(v)
			}
			got = append(got, strings.Join(parts, " "))
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %s: %v", when, st.sql, err)
		}
		rows.Close()
		want := st.want(round, extra)
		if st.sorted {
			slices.Sort(got)
			slices.Sort(want)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %s: got\n%q\nwant\n%q", when, st.sql, got, want)
		}
	}
}

// runStaleShapeTx is runStaleShapeStmts in one transaction, committed: of
// the default isolation level, or READ COMMITTED when readCommitted is set
// (whose pure reads run outside the transaction on nodes it has not
// joined).
func runStaleShapeTx(t *testing.T, db *sql.DB, when string, round int, extra, readCommitted bool) {
	t.Helper()
	opts := &sql.TxOptions{}
	if readCommitted {
		opts.Isolation = sql.LevelReadCommitted
		when += " (READ COMMITTED)"
	}
	tx, err := db.BeginTx(context.Background(), opts)
	if err != nil {
		t.Fatalf("%s: begin: %v", when, err)
	}
	defer tx.Rollback()
	from := 0
	if readCommitted {
		from = 4 // the single-shard read by key
	}
	runStaleShapeStmts(t, tx, when+" (in a transaction)", round, extra, from)
	if err := tx.Commit(); err != nil {
		t.Fatalf("%s: commit: %v", when, err)
	}
}

// TestStaleShapeAfterAnotherProcessAltersTable: an application (handle B,
// its own Connector: another process) has run its statements, so its
// worker connections hold prepared statements of them; a migration (handle
// A) then changes the result columns of those statements (ALTER COLUMN
// TYPE, ADD COLUMN). B's next statements, read and write, single- and
// multi-shard, in and out of a transaction, must each succeed with the
// right answer at the first try: PostgreSQL's "cached plan must not change
// result type" (0A000) is pgshard's to handle, and never a shape mismatch.
func TestStaleShapeAfterAnotherProcessAltersTable(t *testing.T) {
	for _, mode := range []struct{ name, dsn string }{
		{"extended", ""},
		{"simple", "&default_query_exec_mode=simple_protocol"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t)
			e.exec(`CREATE TABLE people (id int NOT NULL, name text, age int)`)
			e.exec(`SELECT master_create_distributed_table('people', 'id')`)
			e.exec(`SELECT master_create_worker_shards('people', 4, 2)`)
			e.exec(`INSERT INTO people (id, name, age) SELECT g, 'n' || g, g % 5 FROM generate_series(1, 20) g`)

			open := func() *sql.DB {
				db, err := sql.Open("pgshard", e.DSN+mode.dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			}
			// a is the migration; the application's processes are
			// plainFirst, whose first statements after a change run
			// outside transactions, and txFirst, whose first ones run in
			// transactions (connections no statement re-prepared on since).
			a, plainFirst, txFirst := open(), open(), open()

			round := 0
			extra := false
			runAll := func(db *sql.DB, when string, txFirst bool) {
				if !txFirst {
					round++
					runStaleShapeStmts(t, db, when, round, extra, 0)
				}
				// READ COMMITTED first, starting with a single-shard read:
				// pure reads run outside the transaction on nodes it has
				// not joined.
				round++
				runStaleShapeTx(t, db, when, round, extra, true)
				round++
				runStaleShapeTx(t, db, when, round, extra, false)
				if txFirst {
					round++
					runStaleShapeStmts(t, db, when, round, extra, 0)
				}
			}
			warm := func(when string) {
				// Several times, so that several worker connections of
				// each node hold the statements.
				for range 3 {
					runAll(plainFirst, when, false)
					runAll(txFirst, when, true)
				}
			}
			warm("before any change")
			for _, step := range []string{
				`ALTER TABLE people ALTER COLUMN age TYPE bigint`,
				`ALTER TABLE people ALTER COLUMN name TYPE varchar(50)`,
				`ALTER TABLE people ADD COLUMN note text DEFAULT 'x'`,
			} {
				if _, err := a.Exec(step); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				extra = extra || strings.Contains(step, "ADD COLUMN")
				runAll(plainFirst, "first after "+step, false)
				runAll(txFirst, "first after "+step, true)
				warm("after " + step)
			}
		})
	}
}
