package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// TestShardsThatDifferAreRefused alters one shard table of kv by hand (as a
// partial schema change would leave it) and runs multi-shard reads on every
// path that passes shard rows on: concatenation in parallel and in a
// transaction, the streaming merge, and PostgreSQL's combine step. A read
// whose shards return rows of different columns fails with 42804 naming the
// shard table and the column, never returns rows; reads whose columns agree
// still answer correctly.
func TestShardsThatDifferAreRefused(t *testing.T) {
	refused := []string{
		`SELECT * FROM kv`,
		`SELECT * FROM kv WHERE k > 3`,
		`SELECT * FROM kv ORDER BY k`,
		`SELECT * FROM kv ORDER BY k DESC LIMIT 5 OFFSET 3`,
		`SELECT * FROM kv ORDER BY v COLLATE "und-x-icu", k`,
	}
	for _, tc := range []struct {
		name   string
		alter  string // %s is the shard table
		column string // named in the error
	}{
		{"added column", `ALTER TABLE %s ADD COLUMN extra int DEFAULT 7`, `"extra"`},
		{"dropped column", `ALTER TABLE %s DROP COLUMN n`, `"n"`},
		{"changed type", `ALTER TABLE %s ALTER COLUMN n TYPE bigint`, `"n" is of type`},
		{"renamed column", `ALTER TABLE %s RENAME COLUMN n TO m`, `"m"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setupKV(t, 8, 1)
			var all strings.Builder // SELECT * FROM kv ORDER BY k, as queryText gives it
			all.WriteString("[k v n]\n")
			for k := 1; k <= 40; k++ {
				e.exec(`INSERT INTO kv (k, v, n) VALUES ($1, $2, $3)`, k, fmt.Sprint("v", k), k%4)
				fmt.Fprintf(&all, "%d|v%d|%d|\n", k, k, k%4)
			}
			// The altered shard is neither the first nor the last, and holds rows.
			pl := e.placements("kv")[3]
			shardTable := fmt.Sprintf("kv_%d", pl.ShardID)
			ctx := context.Background()
			w := e.workerAt(pl.Host, pl.Port)
			var rows int
			if err := w.QueryRow(ctx, `SELECT count(*) FROM `+shardTable).Scan(&rows); err != nil || rows == 0 {
				t.Fatalf("shard table %s has %d rows (%v); the test needs some", shardTable, rows, err)
			}
			if _, err := w.Exec(ctx, fmt.Sprintf(tc.alter, shardTable)); err != nil {
				t.Fatal(err)
			}
			check := func(t *testing.T, q string, err error) {
				t.Helper()
				expectError(t, err, "42804", shardTable)
				if !strings.Contains(err.Error(), tc.column) {
					t.Fatalf("%s: error %q does not name the column (%s)", q, err, tc.column)
				}
			}
			for _, q := range refused {
				for run := 0; run < 2; run++ {
					n, err := readAllRows(e.DB, q)
					if n > 0 {
						t.Fatalf("%s: %d rows before the error %v", q, n, err)
					}
					check(t, q, err)
				}
			}

			// In a transaction the shards are read one after another: the
			// rows of the shards before the altered one (rows of the same
			// columns) may come out before the statement fails.
			tx, err := e.DB.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			n, err := readAllRows(tx, `SELECT * FROM kv`)
			check(t, "in a transaction", err)
			if n >= 40 {
				t.Fatalf("in a transaction: %d rows before the error", n)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}

			// Where the shards' columns agree, or PostgreSQL resolves the
			// columns on each shard itself, the answer is right or an error.
			if n := e.queryInt(`SELECT count(*) FROM kv`); n != 40 {
				t.Fatalf("count(*) = %d, want 40", n)
			}
			got := queryText(t, e.DB, `SELECT k, v FROM kv ORDER BY k DESC LIMIT 3`)
			if want := "[k v]\n40|v40|\n39|v39|\n38|v38|\n"; got != want {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
			q := `SELECT DISTINCT * FROM kv ORDER BY k`
			if _, err := readAllRows(e.DB, q); sqlerr.Code(err) == "" {
				if got := queryText(t, e.DB, q); got != all.String() {
					t.Fatalf("%s:\n%s\nwant\n%s", q, got, all.String())
				}
			}
		})
	}
}

// readAllRows runs q and reads every row: it returns how many rows came
// before the statement's error, and the error (an error without SQLSTATE
// when there was none).
func readAllRows(db interface {
	Query(string, ...any) (*sql.Rows, error)
}, q string) (int, error) {
	rows, err := db.Query(q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	return n, fmt.Errorf("%s: %d rows, no error", q, n)
}
