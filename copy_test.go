package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/engine"
)

// copyKeyTypes are key types a COPY is tested with: the column type, the
// worker's own hash of it, and row i's key as a Go value given to
// stmt.Exec (several forms per type: typed values and text).
var copyKeyTypes = []struct {
	name, typ, hash string
	key             func(i int) any
}{
	{"int8", "bigint", "hashint8(k)", func(i int) any {
		switch i % 3 {
		case 0:
			return int64(i) * 1_000_000_007
		case 1:
			return fmt.Sprint(-i)
		}
		return int32(i)
	}},
	{"int4", "integer", "hashint4(k)", func(i int) any {
		if i%2 == 0 {
			return i * 7919
		}
		return fmt.Sprintf(" %d ", i)
	}},
	{"text", "text", "hashtext(k)", func(i int) any {
		if i%2 == 0 {
			return fmt.Sprintf("k%d\ttab\\slash", i)
		}
		return []byte(fmt.Sprintf("ünï %d\nline", i))
	}},
	{"uuid", "uuid", "uuid_hash(k)", func(i int) any {
		return fmt.Sprintf("%08x-9c0b-4ef8-bb6d-6bb9bd380a11", i)
	}},
	// Under DateStyle SQL, DMY: '03/02/2024' is February 3; the session
	// reads such texts.
	{"date", "date", "hashint4(k - date '2000-01-01')", func(i int) any {
		d := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i*37)
		if i%2 == 0 {
			return d
		}
		return d.Format("02/01/2006")
	}},
	// Under TimeZone Asia/Kolkata, a zone-less text is Kolkata time.
	{"timestamptz", "timestamptz", "hashint8(((extract(epoch from k) - 946684800) * 1000000)::bigint)", func(i int) any {
		ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 7777777 * time.Microsecond)
		switch i % 3 {
		case 0:
			return ts
		case 1:
			return ts.Format("2006-01-02 15:04:05.999999")
		}
		return ts.Add(time.Nanosecond * 999) // Go's nanoseconds: truncated as pgx sends them
	}},
}

// copyRows runs one COPY FROM STDIN through db in a transaction, lib/pq's
// way, and returns what the final Exec() reported.
func copyRows(t *testing.T, db *sql.DB, copySQL string, rows [][]any) int64 {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := tx.Prepare(copySQL)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if _, err := stmt.Exec(r...); err != nil {
			t.Fatalf("row %d: %v", i+1, err)
		}
	}
	res, err := stmt.Exec()
	if err != nil {
		t.Fatal(err)
	}
	if err := stmt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCopyFromLandsWhereInsertWould loads rows with COPY FROM STDIN (lib/pq's
// CopyIn convention through database/sql) into tables keyed by several key
// types, with replication factor 1 and 2, under TimeZone Asia/Kolkata and
// DateStyle SQL, DMY, in batches small enough that every shard takes
// several: every row is on the shard whose range holds the worker's own
// hash of its key, on the same shard as an INSERT of the same values puts
// it (a twin table loaded by INSERT), replicas are identical, and the rows
// read back are those the INSERTs wrote.
func TestCopyFromLandsWhereInsertWould(t *testing.T) {
	e := newEnv(t)
	db, err := sql.Open("pgshard", e.DSN+"&timezone=Asia/Kolkata&datestyle=SQL%2CDMY")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	saved := engine.CopyBatchBytes
	engine.CopyBatchBytes = 2 << 10
	t.Cleanup(func() { engine.CopyBatchBytes = saved })
	const rows = 1500
	for _, rf := range []int{1, 2} {
		for _, kt := range copyKeyTypes {
			table := fmt.Sprintf("cp_%s_rf%d", kt.name, rf)
			t.Run(table, func(t *testing.T) {
				e := e.on(t)
				for _, name := range []string{table, "ins_" + table} {
					e.exec(fmt.Sprintf(`CREATE TABLE %s (a int, k %s NOT NULL, b text, c numeric DEFAULT 7, d bytea)`, name, kt.typ))
					e.exec(`SELECT master_create_distributed_table($1, 'k')`, name)
					e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', 8, %d)`, name, rf))
				}
				var data [][]any
				for i := range rows {
					var b any = fmt.Sprintf("it's \"%d\"\r\n\\N", i)
					if i%5 == 0 {
						b = nil
					}
					data = append(data, []any{i, kt.key(i), b, []byte{0, byte(i), '\\', '\t'}})
				}
				if n := copyRows(t, db, fmt.Sprintf(`COPY "%s" ("a", "k", "b", "d") FROM STDIN`, table), data); n != rows {
					t.Fatalf("COPY reported %d rows, want %d", n, rows)
				}
				tx, err := db.Begin()
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range data {
					if _, err := tx.Exec(fmt.Sprintf(`INSERT INTO ins_%s (a, k, b, d) VALUES ($1, $2, $3, $4)`, table), r...); err != nil {
						t.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				if stored := e.assertRowsHashIntoTheirShards(table, kt.hash); stored != int64(rows*rf) {
					t.Fatalf("%d rows stored over all placements, want %d", stored, rows*rf)
				}
				if rf > 1 {
					e.assertReplicasIdentical(table)
				}
				// Shard by shard, the COPY's rows are the INSERTs'.
				copied, inserted := e.shardContents(table), e.shardContents("ins_"+table)
				if len(copied) != len(inserted) {
					t.Fatalf("%d shards vs %d", len(copied), len(inserted))
				}
				for i := range copied {
					if !slices.Equal(copied[i], inserted[i]) {
						t.Fatalf("shard %d of %s holds other rows than the same shard of the INSERTs' table:\n%.1500v\nwant\n%.1500v", i, table, copied[i], inserted[i])
					}
				}
			})
		}
	}
}

// shardContents returns, per shard in hash order, the rows of its first
// placement as text, sorted (a's and everything but the shard name).
func (e *env) shardContents(table string) [][]string {
	e.t.Helper()
	var out [][]string
	seen := map[int64]bool{}
	rows, err := e.DB.Query(`SELECT s.id FROM pgs_distribution_metadata.shard s WHERE s.relation_id = $1::regclass ORDER BY s.min_value::int`, table)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		for _, p := range e.placements(table) {
			if p.ShardID != id || seen[id] {
				continue
			}
			seen[id] = true
			q := fmt.Sprintf(`SELECT a::text || '|' || k::text || '|' || coalesce(b, 'NULL') || '|' || coalesce(c::text, 'NULL') || '|' || coalesce(encode(d, 'hex'), 'NULL') FROM %s ORDER BY 1`, pgx.Identifier{fmt.Sprintf("%s_%d", table, id)}.Sanitize())
			r, err := e.workerAt(p.Host, p.Port).Query(context.Background(), q)
			if err != nil {
				e.t.Fatal(err)
			}
			var shard []string
			for r.Next() {
				var s string
				if err := r.Scan(&s); err != nil {
					e.t.Fatal(err)
				}
				shard = append(shard, s)
			}
			r.Close()
			out = append(out, shard)
		}
	}
	return out
}

// TestCopyFromMalformedRowLeavesNothing fails COPYs at a given row, in Go
// (a row of the wrong arity, a key that is not a number, a NULL key) and on
// a worker (a value the column's type does not read, an integer out of the
// column's range, a duplicate key, the last in a batch sent in COPY's
// binary format), after earlier batches were already sent: the error has
// the SQLSTATE and
// the row's number, the transaction commits nothing, and no placement holds
// a row.
func TestCopyFromMalformedRowLeavesNothing(t *testing.T) {
	e := newEnv(t)
	saved := engine.CopyBatchBytes
	engine.CopyBatchBytes = 1 << 10
	t.Cleanup(func() { engine.CopyBatchBytes = saved })
	e.exec(`CREATE TABLE m (k bigint PRIMARY KEY, n int, v text)`)
	e.exec(`SELECT master_create_distributed_table('m', 'k')`)
	e.exec(`SELECT master_create_worker_shards('m', 8, 2)`)
	cases := []struct {
		name    string
		bad     []any
		code    string
		message string
	}{
		{"arity", []any{1, 2}, "22P04", "row 700"},
		{"key text", []any{"x12", 1, "v"}, "22P02", "row 700, column k"},
		{"null key", []any{nil, 1, "v"}, "23502", "row 700, column k"},
		{"value text", []any{int64(-5), "twelve", "v"}, "22P02", "row 700: invalid input syntax for type integer"},
		{"duplicate key", []any{int64(3), 1, "v"}, "23505", "row 700"},
		// Typed values, sent in binary until row 700 turns the COPY to text.
		{"integer out of range", []any{int64(-5), int64(1) << 40, "v"}, "22003", "row 700"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx, err := e.DB.Begin()
			if err != nil {
				t.Fatal(err)
			}
			stmt, err := tx.Prepare(`COPY m (k, n, v) FROM STDIN`)
			if err != nil {
				t.Fatal(err)
			}
			var failed error
			for i := 1; i <= 1000 && failed == nil; i++ {
				row := []any{int64(i), i, strings.Repeat("x", 40)}
				if i == 700 {
					row = c.bad
				}
				_, failed = stmt.Exec(row...)
			}
			if failed == nil {
				_, failed = stmt.Exec()
			}
			expectError(t, failed, c.code, c.message)
			if !strings.Contains(failed.Error(), "COPY m") {
				t.Fatalf("error does not name the COPY: %v", failed)
			}
			stmt.Close()
			if err := tx.Commit(); err == nil {
				t.Fatal("the transaction of a failed COPY committed")
			}
			if n := e.queryInt(`SELECT count(*) FROM m`); n != 0 {
				t.Fatalf("%d rows after a failed COPY", n)
			}
			for _, p := range e.placements("m") {
				var n int
				if err := e.workerAt(p.Host, p.Port).QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) FROM m_%d`, p.ShardID)).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 || p.State != 1 {
					t.Fatalf("placement %+v holds %d rows", p, n)
				}
			}
		})
	}
}

// TestCopyOutsideTheConvention: COPY FROM STDIN run as a plain Exec, or
// prepared outside a transaction, is refused with a clear error; format
// options it cannot honour are refused at Prepare.
func TestCopyOutsideTheConvention(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE o (k bigint PRIMARY KEY, v text)`)
	e.exec(`SELECT master_create_distributed_table('o', 'k')`)
	e.exec(`SELECT master_create_worker_shards('o', 4, 1)`)
	_, err := e.DB.Exec(`COPY o FROM STDIN`)
	expectError(t, err, "0A000", "tx.Prepare")
	stmt, err := e.DB.Prepare(`COPY o (k, v) FROM STDIN`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = stmt.Exec(1, "a")
	expectError(t, err, "25P01", "inside a transaction")
	stmt.Close()
	tx, err := e.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(`COPY o (k, v) FROM STDIN`, 1, "a")
	expectError(t, err, "0A000", "tx.Prepare")
	tx.Rollback()
	tx, err = e.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Prepare(`COPY o (k, v) FROM STDIN WITH (FORMAT csv)`)
	expectError(t, err, "0A000", "FORMAT")
	tx.Rollback()
	// A COPY left open at Commit commits nothing.
	tx, err = e.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	stmt, err = tx.Prepare(`COPY o (k, v) FROM STDIN`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stmt.Exec(1, "a"); err != nil {
		t.Fatal(err)
	}
	// Other statements wait for the COPY's end.
	_, err = tx.Exec(`INSERT INTO o (k, v) VALUES (2, 'b')`)
	expectError(t, err, "25000", "COPY FROM STDIN is in progress")
	expectError(t, tx.Commit(), "25000", "not ended")
	if n := e.queryInt(`SELECT count(*) FROM o`); n != 0 {
		t.Fatalf("%d rows after a COPY left open", n)
	}
}

// TestCopyToStdout exports a distributed table and a query with COPY TO
// STDOUT through db.Query: one row per line, the same lines a single server
// writes for the same rows (compared sorted), a CSV header once.
func TestCopyToStdout(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.exec(`CREATE TABLE x (k bigint PRIMARY KEY, v text, d date)`)
	e.exec(`SELECT master_create_distributed_table('x', 'k')`)
	e.exec(`SELECT master_create_worker_shards('x', 8, 2)`)
	ref, err := pgx.Connect(ctx, e.c.Nodes[0].DSN(e.dbname))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close(ctx)
	if _, err := ref.Exec(ctx, `CREATE TABLE ref_x (k bigint PRIMARY KEY, v text, d date)`); err != nil {
		t.Fatal(err)
	}
	var data [][]any
	for i := range 300 {
		v := fmt.Sprintf("v,%d \"q\"\n\t", i)
		data = append(data, []any{i, v, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i)})
		if _, err := ref.Exec(ctx, `INSERT INTO ref_x VALUES ($1, $2, $3)`, i, v, data[i][2]); err != nil {
			t.Fatal(err)
		}
	}
	copyRows(t, e.DB, `COPY x (k, v, d) FROM STDIN`, data)
	// y is co-located with x (same shard count and replicas).
	e.exec(`CREATE TABLE y (k bigint PRIMARY KEY, w int)`)
	e.exec(`SELECT master_create_distributed_table('y', 'k')`)
	e.exec(`SELECT master_create_worker_shards('y', 8, 2)`)
	if _, err := ref.Exec(ctx, `CREATE TABLE ref_y (k bigint PRIMARY KEY, w int)`); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 300; k += 7 {
		e.exec(`INSERT INTO y VALUES ($1, $2)`, k, k*k)
		if _, err := ref.Exec(ctx, `INSERT INTO ref_y VALUES ($1, $2)`, k, k*k); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct{ sql, refSQL string }{
		{`COPY (SELECT x.k, y.w, x.v FROM x JOIN y ON x.k = y.k) TO STDOUT`, `COPY (SELECT x.k, y.w, x.v FROM ref_x x JOIN ref_y y ON x.k = y.k) TO STDOUT`},
		{`COPY x TO STDOUT`, `COPY ref_x TO STDOUT`},
		{`COPY x (d, k) TO STDOUT WITH (FORMAT csv, DELIMITER ';', FORCE_QUOTE *)`, `COPY ref_x (d, k) TO STDOUT WITH (FORMAT csv, DELIMITER ';', FORCE_QUOTE *)`},
		{`COPY (SELECT k, upper(v) FROM x WHERE k IN (3, 5, 200, 7)) TO STDOUT WITH CSV`, `COPY (SELECT k, upper(v) FROM ref_x WHERE k IN (3, 5, 200, 7)) TO STDOUT WITH CSV`},
		{`COPY (SELECT * FROM x WHERE k = 42) TO STDOUT`, `COPY (SELECT * FROM ref_x WHERE k = 42) TO STDOUT`},
	}
	for _, c := range cases {
		got := e.queryStrings(c.sql)
		var rec recordWriter
		if _, err := ref.PgConn().CopyTo(ctx, &rec, c.refSQL); err != nil {
			t.Fatal(err)
		}
		want := rec.records
		slices.Sort(got)
		slices.Sort(want)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Fatalf("%s:\n%.1000q\nwant\n%.1000q", c.sql, got, want)
		}
	}
	lines := e.queryStrings(`COPY x (k, v) TO STDOUT WITH (FORMAT csv, HEADER)`)
	headers := 0
	for _, l := range lines {
		if l == "k,v\n" {
			headers++
		}
	}
	if headers != 1 || lines[0] != "k,v\n" || len(lines) != 301 {
		t.Fatalf("CSV with HEADER: %d header lines, first %q, %d lines", headers, lines[0], len(lines))
	}
	res, err := e.DB.Exec(`COPY x TO STDOUT`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 300 {
		t.Fatalf("Exec of COPY TO reported %d rows", n)
	}
	_, err = e.DB.Query(`COPY (SELECT k FROM x ORDER BY k) TO STDOUT`)
	expectError(t, err, "0A000", "merges across shards")

	// Closed after one line: the shard COPYs stop, the connections serve on.
	for range 3 {
		rows, err := e.DB.Query(`COPY x TO STDOUT`)
		if err != nil {
			t.Fatal(err)
		}
		if !rows.Next() {
			t.Fatal(rows.Err())
		}
		rows.Close()
	}
	if n := e.queryInt(`SELECT count(*) FROM x`); n != 300 {
		t.Fatalf("count %d after closed COPYs", n)
	}
	// In a transaction: the COPY reads the transaction's own writes, and
	// the transaction goes on after it.
	tx, err := e.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for k := 1000; k < 1020; k++ {
		if _, err := tx.Exec(`INSERT INTO x (k, v) VALUES ($1, 'tx')`, k); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := tx.Query(`COPY (SELECT k FROM x WHERE v = 'tx') TO STDOUT`)
	if err != nil {
		t.Fatal(err)
	}
	var inTx []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		inTx = append(inTx, l)
	}
	if err := rows.Err(); err != nil || len(inTx) != 20 {
		t.Fatalf("COPY in the transaction: %d lines, %v", len(inTx), err)
	}
	if _, err := tx.Exec(`DELETE FROM x WHERE k = 1000`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := e.queryInt(`SELECT count(*) FROM x`); n != 319 {
		t.Fatalf("count %d after the transaction", n)
	}
}

// TestCopyFromWorkerKilled kills a worker in the middle of a COPY with
// replication factor 2, after batches have reached it: the COPY or its
// commit fails, nothing of it is visible once the worker is back, and the
// rows of a COPY committed before are all there, on identical replicas.
func TestCopyFromWorkerKilled(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	saved := engine.CopyBatchBytes
	engine.CopyBatchBytes = 1 << 10
	t.Cleanup(func() { engine.CopyBatchBytes = saved })
	e.exec(`CREATE TABLE w (k bigint PRIMARY KEY, v text)`)
	e.exec(`SELECT master_create_distributed_table('w', 'k')`)
	e.exec(`SELECT master_create_worker_shards('w', 8, 2)`)
	var first [][]any
	for i := range 2000 {
		first = append(first, []any{i, strings.Repeat("a", 30)})
	}
	copyRows(t, e.DB, `COPY w (k, v) FROM STDIN`, first)

	victim := e.workers[1]
	t.Cleanup(func() { victim.Start(context.Background()) })
	tx, err := e.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := tx.Prepare(`COPY w (k, v) FROM STDIN`)
	if err != nil {
		t.Fatal(err)
	}
	var failed error
	for i := 2000; i < 20000 && failed == nil; i++ {
		if i == 6000 {
			if err := victim.Kill(); err != nil {
				t.Fatal(err)
			}
		}
		_, failed = stmt.Exec(i, strings.Repeat("b", 30))
	}
	if failed == nil {
		_, failed = stmt.Exec()
	}
	stmt.Close()
	commitErr := tx.Commit()
	if failed == nil && commitErr == nil {
		t.Fatal("a COPY whose worker was killed committed")
	}
	t.Logf("COPY: %v; commit: %v", failed, commitErr)
	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.queryInt(`SELECT count(*) FROM w`); n != 2000 {
		t.Fatalf("%d rows after the failed COPY, want the 2000 committed before", n)
	}
	e.assertReplicasIdentical("w")
}

// recordWriter keeps each Write (one row of COPY's output) as a string.
type recordWriter struct{ records []string }

func (w *recordWriter) Write(b []byte) (int, error) {
	w.records = append(w.records, string(b))
	return len(b), nil
}

// copyKeyString is a named string type, as applications define them.
type copyKeyString string

// TestCopyFromNamedTypeKeyTexts: key texts whose meaning TimeZone decides
// arrive as a named string type, and through a driver.Valuer; each row
// lands on the shard of the value the session reads, by COPY as by INSERT
// (which hashed a named string type's zone-less text as UTC before).
func TestCopyFromNamedTypeKeyTexts(t *testing.T) {
	e := newEnv(t)
	db, err := sql.Open("pgshard", e.DSN+"&timezone=Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, name := range []string{"nk", "ins_nk"} {
		e.exec(`CREATE TABLE ` + name + ` (k timestamptz PRIMARY KEY, i int)`)
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, name)
		e.exec(`SELECT master_create_worker_shards($1, 8, 1)`, name)
	}
	var data [][]any
	for i := range 400 {
		text := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 97 * time.Minute).Format("2006-01-02 15:04:05")
		var key any = copyKeyString(text)
		if i%2 == 1 {
			key = sql.NullString{String: text, Valid: true}
		}
		data = append(data, []any{key, i})
	}
	copyRows(t, db, `COPY nk (k, i) FROM STDIN`, data)
	for _, r := range data {
		if _, err := db.Exec(`INSERT INTO ins_nk (k, i) VALUES ($1, $2)`, r...); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"nk", "ins_nk"} {
		if stored := e.assertRowsHashIntoTheirShards(name, "hashint8(((extract(epoch from k) - 946684800) * 1000000)::bigint)"); stored != 400 {
			t.Fatalf("%s: %d rows stored", name, stored)
		}
	}
}

// TestCopyFromFillsDefaultsAsInsertDoes loads rows with COPY FROM STDIN
// leaving out columns with defaults, with replication factor 1 and 2: a
// bigserial, a nextval of a sequence of its own, now(), random(), a
// constant; in one table the key is a bigserial (its value decides the
// shard), in another an identity column. As for an INSERT leaving them out,
// pgshard computes the sequences and the key on the metadata database (the
// template's sequences) before hashing, and, with replicas, the volatile
// defaults once for all of them. The deterministic columns are what a COPY
// of the same rows into a plain table on one server gives (the sequences
// numbered in row order), and what INSERTs of the same rows through pgshard
// give a twin table; every row is on the shard of its key's hash, and
// replicas are identical.
func TestCopyFromFillsDefaultsAsInsertDoes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	saved := engine.CopyBatchBytes
	engine.CopyBatchBytes = 2 << 10
	t.Cleanup(func() { engine.CopyBatchBytes = saved })
	plain, err := pgx.Connect(ctx, e.workers[0].DSN(e.dbname))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close(ctx) })
	const rows = 1300 // over copyPendingRows: several round trips for the defaults
	cases := []struct {
		name, ddl, key, hash string
		copyCols             []string
		row                  func(i int) []any
		compare              string // the deterministic columns, as one text
	}{
		{
			name:     "off the key",
			ddl:      `(id bigserial, k bigint NOT NULL, s bigint DEFAULT nextval('{t}_side'), made timestamptz DEFAULT now(), r float8 DEFAULT random(), c int DEFAULT 5, v text)`,
			key:      "k",
			hash:     "hashint8(k)",
			copyCols: []string{"k", "v"},
			row:      func(i int) []any { return []any{int64(i) * 7919, fmt.Sprintf("v%d", i)} },
			compare:  `id || '|' || k || '|' || s || '|' || c || '|' || v`,
		},
		{
			name:     "serial key",
			ddl:      `(id bigserial, v text, made timestamptz DEFAULT clock_timestamp())`,
			key:      "id",
			hash:     "hashint8(id)",
			copyCols: []string{"v"},
			row:      func(i int) []any { return []any{fmt.Sprintf("v%d", i)} },
			compare:  `id || '|' || v`,
		},
		{
			name:     "identity key",
			ddl:      `(id int GENERATED BY DEFAULT AS IDENTITY, v text)`,
			key:      "id",
			hash:     "hashint4(id)",
			copyCols: []string{"v"},
			row:      func(i int) []any { return []any{fmt.Sprintf("v%d", i)} },
			compare:  `id || '|' || v`,
		},
	}
	for _, rf := range []int{1, 2} {
		for n, c := range cases {
			table := fmt.Sprintf("cd%d_rf%d", n, rf)
			t.Run(fmt.Sprintf("%s rf %d", c.name, rf), func(t *testing.T) {
				e := e.on(t)
				ddl := strings.ReplaceAll(c.ddl, "{t}", table)
				for _, run := range []func(string){func(sql string) { e.exec(sql) }, func(sql string) {
					if _, err := plain.Exec(ctx, sql); err != nil {
						t.Fatal(err)
					}
				}} {
					run(fmt.Sprintf(`CREATE SEQUENCE %s_side`, table))
					run(fmt.Sprintf(`CREATE TABLE %s %s`, table, ddl))
				}
				e.exec(fmt.Sprintf(`CREATE TABLE ins_%s %s`, table, ddl))
				for _, name := range []string{table, "ins_" + table} {
					e.exec(`SELECT master_create_distributed_table($1, $2)`, name, c.key)
					e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', 8, %d)`, name, rf))
				}
				var data [][]any
				for i := range rows {
					data = append(data, c.row(i))
				}
				if n := copyRows(t, e.DB, fmt.Sprintf(`COPY %s (%s) FROM STDIN`, table, strings.Join(c.copyCols, ", ")), data); n != rows {
					t.Fatalf("COPY reported %d rows, want %d", n, rows)
				}
				if _, err := plain.CopyFrom(ctx, pgx.Identifier{table}, c.copyCols, pgx.CopyFromRows(data)); err != nil {
					t.Fatal(err)
				}
				// The same rows INSERTed through pgshard, 100 a statement,
				// in order (the side sequence is shared: it goes on).
				for lo := 0; lo < rows; lo += 100 {
					var tuples []string
					var args []any
					for _, r := range data[lo:min(lo+100, rows)] {
						var ph []string
						for _, v := range r {
							args = append(args, v)
							ph = append(ph, fmt.Sprintf("$%d", len(args)))
						}
						tuples = append(tuples, "("+strings.Join(ph, ", ")+")")
					}
					if _, err := e.DB.Exec(fmt.Sprintf(`INSERT INTO ins_%s (%s) VALUES %s`, table, strings.Join(c.copyCols, ", "), strings.Join(tuples, ", ")), args...); err != nil {
						t.Fatalf("INSERT: %v", err)
					}
				}
				if stored := e.assertRowsHashIntoTheirShards("ins_"+table, c.hash); stored != int64(rows*rf) {
					t.Fatalf("%d rows INSERTed over all placements, want %d", stored, rows*rf)
				}
				if stored := e.assertRowsHashIntoTheirShards(table, c.hash); stored != int64(rows*rf) {
					t.Fatalf("%d rows stored over all placements, want %d", stored, rows*rf)
				}
				if rf > 1 {
					e.assertReplicasIdentical(table)
				}
				q := fmt.Sprintf(`SELECT %s FROM %s ORDER BY 1`, c.compare, table)
				var got, want []string
				r, err := e.DB.Query(q)
				if err != nil {
					t.Fatal(err)
				}
				for r.Next() {
					var s string
					if err := r.Scan(&s); err != nil {
						t.Fatal(err)
					}
					got = append(got, s)
				}
				if err := r.Err(); err != nil {
					t.Fatal(err)
				}
				r.Close()
				pr, err := plain.Query(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				want, err = pgx.CollectRows(pr, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("pgshard holds other rows than the plain server (%d vs %d):\n%.800v\nwant\n%.800v", len(got), len(want), got, want)
				}
				// The INSERTs numbered their rows alike (the side sequence
				// went on from the COPY's).
				cmp := strings.ReplaceAll(c.compare, "|| s ||", fmt.Sprintf("|| (s - %d) ||", rows))
				ins := e.queryStrings(fmt.Sprintf(`SELECT %s FROM ins_%s ORDER BY 1`, cmp, table))
				slices.Sort(ins)
				if !slices.Equal(ins, want) {
					t.Fatalf("the INSERTs' table holds other rows than the plain server (%d vs %d):\n%.800v\nwant\n%.800v", len(ins), len(want), ins, want)
				}
				// The volatile defaults were computed: no NULLs.
				if c.name == "off the key" {
					if n := e.queryInt(fmt.Sprintf(`SELECT count(*) FROM %s WHERE made IS NULL OR r IS NULL`, table)); n != 0 {
						t.Errorf("%d rows without their volatile defaults", n)
					}
				}
			})
		}
	}
}
