package pgshard_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// literalKeyForms are, per key type, the table's key column type, the
// worker's own hash of that type's default hash opclass (as an SQL
// expression of k), and key literals in the forms a loader writes: row i's
// key is form[i%len(form)](i).
var literalKeyForms = []struct {
	name, typ, hash string
	forms           []func(i int) string
}{
	{"int2", "smallint", "hashint2(k)", []func(int) string{
		func(i int) string { return fmt.Sprint(i) }, func(i int) string { return fmt.Sprint(-i) },
		func(i int) string { return fmt.Sprintf("'%d'", i) }, func(i int) string { return fmt.Sprintf("%d::smallint", i) }}},
	{"int4", "integer", "hashint4(k)", []func(int) string{
		func(i int) string { return fmt.Sprint(i * 100003) }, func(i int) string { return fmt.Sprint(-i * 7) },
		func(i int) string { return fmt.Sprintf("' %d '", i) }, func(i int) string { return fmt.Sprintf("%d::int", i) },
		func(int) string { return "-2147483648" }, func(int) string { return "2147483647" }}},
	{"int8", "bigint", "hashint8(k)", []func(int) string{
		func(i int) string { return fmt.Sprint(int64(i) * 1_000_000_007) }, func(i int) string { return fmt.Sprint(-int64(i) * 3_000_000_019) },
		func(i int) string { return fmt.Sprintf("'%d'", i) }, func(i int) string { return fmt.Sprintf("%d::bigint", i) },
		func(int) string { return "-9223372036854775808" }, func(int) string { return "0009223372036854775807" }}},
	{"text", "text", "hashtext(k)", []func(int) string{
		func(i int) string { return fmt.Sprintf("'k%d'", i) }, func(i int) string { return fmt.Sprintf("'it''s %d'", i) },
		func(i int) string { return fmt.Sprint(i) }, func(i int) string { return fmt.Sprintf("-%d.5", i) },
		func(i int) string { return fmt.Sprintf("'ünï %d'::text", i) }, func(i int) string { return fmt.Sprintf("' %d '::varchar", i) }}},
	{"varchar", "varchar(40)", "hashtext(k)", []func(int) string{
		func(i int) string { return fmt.Sprintf("'v%d'", i) }, func(i int) string { return fmt.Sprintf("'v''%d'::varchar", i) }}},
	{"bpchar", "char(6)", "hashbpchar(k)", []func(int) string{
		func(i int) string { return fmt.Sprintf("'b%d'", i) }, func(i int) string { return fmt.Sprintf("'c%d  '", i) },
		func(i int) string { return fmt.Sprintf("'d%d'::bpchar", i) }}},
	{"name", "name", "hashname(k)", []func(int) string{
		func(i int) string { return fmt.Sprintf("'n%d'", i) }, func(i int) string { return fmt.Sprintf("'%s%d'", strings.Repeat("x", 70), i) }}},
	{"bool", "boolean", "hashint4(k::int)", []func(int) string{
		func(int) string { return "TRUE" }, func(int) string { return "false" }, func(int) string { return "'yes'" },
		func(int) string { return "'f'::boolean" }}},
	{"uuid", "uuid", "uuid_hash(k)", []func(int) string{
		func(i int) string { return fmt.Sprintf("'%08x-9c0b-4ef8-bb6d-6bb9bd380a11'", i) },
		func(i int) string { return fmt.Sprintf("'{%08X-9C0B-4EF8-BB6D-6BB9BD380A12}'", i) },
		func(i int) string { return fmt.Sprintf("'%08x9c0b4ef8bb6d6bb9bd380a13'::uuid", i) }}},
}

// literalOtherItems are the values of the other columns, row i taking
// item i%len: quotes, new lines, negative numbers, exponents, NULLs, casts.
var literalOtherItems = [][3]string{
	{"'plain'", "-12.5", "'{a,b}'"},
	{"'it''s'", "1e-3", "NULL"},
	{"'two\nlines'", "'1.25'::numeric(4,2)", "'{\"x y\",z}'::text[]"},
	{"NULL", ".5", "'{}'"},
	{"'ünïcödé'", "-0", "'{1}'::text[]"},
}

// literalInsert returns an INSERT into table of rows from..to-1, row i's
// key written by forms[i%len(forms)], at column 2 of 5.
func literalInsert(table string, forms []func(int) string, from, to int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s VALUES ", table)
	for i := from; i < to; i++ {
		if i > from {
			b.WriteString(", ")
		}
		o := literalOtherItems[i%len(literalOtherItems)]
		fmt.Fprintf(&b, "(%d, %s, %s, %s, %s)", i, forms[i%len(forms)](i), o[0], o[1], o[2])
	}
	return b.String()
}

// TestLiteralInsertsLandOnTheirShards loads multi-row INSERTs of literals
// (the statements pgshard scans instead of parsing) into tables keyed by
// every key type, with replication factor 1 and 2: every row is on the
// shard whose range holds the worker's own hash of its key (read on each
// placement directly), replicas are identical, and the rows read through
// pgshard are those the same statements insert into a plain table on one
// server.
func TestLiteralInsertsLandOnTheirShards(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ref, err := pgx.Connect(ctx, e.c.Nodes[0].DSN(e.dbname))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close(ctx)
	const rows = 600
	for _, rf := range []int{1, 2} {
		for _, kt := range literalKeyForms {
			table := fmt.Sprintf("lit_%s_rf%d", kt.name, rf)
			t.Run(table, func(t *testing.T) {
				e := e.on(t)
				ddl := fmt.Sprintf(`CREATE TABLE %%s (a int, k %s, b text, c numeric, d text[])`, kt.typ)
				e.exec(fmt.Sprintf(ddl, table))
				e.exec(`SELECT master_create_distributed_table($1, 'k')`, table)
				e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', 8, %d)`, table, rf))
				if _, err := ref.Exec(ctx, fmt.Sprintf(ddl, "ref_"+table)); err != nil {
					t.Fatal(err)
				}
				// Statements of 1 to 300 rows, the last ones in a
				// transaction.
				for from, n := 0, 1; from < rows; from, n = from+n, min(2*n, 300) {
					to := min(from+n, rows)
					inTx := from >= rows/2
					sql := literalInsert(table, kt.forms, from, to)
					if inTx {
						tx, err := e.DB.Begin()
						if err != nil {
							t.Fatal(err)
						}
						if _, err := tx.Exec(sql); err != nil {
							t.Fatalf("rows %d-%d: %v", from, to, err)
						}
						if err := tx.Commit(); err != nil {
							t.Fatal(err)
						}
					} else {
						res, err := e.DB.Exec(sql)
						if err != nil {
							t.Fatalf("rows %d-%d: %v", from, to, err)
						}
						if got, _ := res.RowsAffected(); got != int64(to-from) {
							t.Fatalf("rows %d-%d: %d rows affected", from, to, got)
						}
					}
					if _, err := ref.Exec(ctx, strings.Replace(sql, "INSERT INTO "+table, "INSERT INTO ref_"+table, 1)); err != nil {
						t.Fatal(err)
					}
				}
				// A statement that fails inserts nothing.
				if _, err := e.DB.Exec(fmt.Sprintf("INSERT INTO %s VALUES (1, %s, 'x', 1, NULL), (2, NULL, 'y', 2, NULL)", table, kt.forms[0](1))); err == nil {
					t.Fatal("a NULL key was inserted")
				} else {
					expectError(t, err, "23502", "partition column")
				}
				stored := e.assertRowsHashIntoTheirShards(table, kt.hash)
				if want := int64(rows * rf); stored != want {
					t.Fatalf("%d rows stored over all placements, want %d", stored, want)
				}
				if rf > 1 {
					e.assertReplicasIdentical(table)
				}
				const read = `SELECT a::text || '|' || k::text || '|' || coalesce(b, 'NULL') || '|' || coalesce(c::text, 'NULL') || '|' || coalesce(d::text, 'NULL') FROM %s`
				got := e.queryStrings(fmt.Sprintf(read, table))
				want := queryStringsOn(t, ref, fmt.Sprintf(read, "ref_"+table))
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("rows read through pgshard differ from the same inserts on one server:\n%.2000v\nwant\n%.2000v", got, want)
				}
			})
		}
	}
}

// assertRowsHashIntoTheirShards checks, on every finalized placement of
// table, that each row's key hashes (hash, an SQL expression of k, run by
// the worker itself) into its shard's range; it returns the rows stored
// over all placements.
func (e *env) assertRowsHashIntoTheirShards(table, hash string) int64 {
	e.t.Helper()
	ctx := context.Background()
	var total int64
	for _, p := range e.placements(table) {
		if p.State != 1 {
			e.t.Fatalf("placement %d of shard %d is in state %d", p.ID, p.ShardID, p.State)
		}
		var lo, hi int32
		if err := e.DB.QueryRow(`SELECT min_value::int, max_value::int FROM pgs_distribution_metadata.shard WHERE id = $1`, p.ShardID).Scan(&lo, &hi); err != nil {
			e.t.Fatal(err)
		}
		var all, misplaced int64
		q := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE %s NOT BETWEEN $1 AND $2) FROM %s`,
			hash, pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize())
		if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, q, lo, hi).Scan(&all, &misplaced); err != nil {
			e.t.Fatal(err)
		}
		if misplaced > 0 {
			e.t.Fatalf("%d rows of placement %d of shard %d of %s belong to another shard", misplaced, p.ID, p.ShardID, table)
		}
		total += all
	}
	return total
}

// on returns e reporting to t (a subtest's).
func (e *env) on(t testing.TB) *env {
	sub := *e
	sub.t = t
	return &sub
}

func (e *env) queryStrings(q string) []string {
	e.t.Helper()
	rows, err := e.DB.Query(q)
	if err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func queryStringsOn(t *testing.T, conn *pgx.Conn, q string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}
