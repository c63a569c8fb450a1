package pgshard_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/pgshard/pgshard"
)

// TestCombinePartialRowsBounded: the partial rows of a multi-shard GROUP
// BY, DISTINCT or window function, which the driver holds until
// PostgreSQL combines them, are bounded: a query over more fails with
// 54000 naming the limit, in or out of a transaction, and the same query
// under a larger limit answers as one server does.
func TestCombinePartialRowsBounded(t *testing.T) {
	e := setupKV(t, 8, 1)
	e.exec(`CREATE TABLE plain_kv (k bigint PRIMARY KEY, v text, n int DEFAULT 0)`)
	for _, table := range []string{"kv", "plain_kv"} {
		// 2000 distinct values of about 110 bytes: about 250 KB of
		// partial rows whatever the query.
		e.exec(`INSERT INTO ` + table + ` (k, v, n) SELECT i, lpad(i::text, 110, 'x'), i % 7 FROM generate_series(1, 2000) i`)
	}
	queries := []string{
		`SELECT v, count(*), max(k) FROM %s GROUP BY v ORDER BY v`,
		`SELECT DISTINCT v FROM %s ORDER BY v`,
		`SELECT k, rank() OVER (ORDER BY v DESC) FROM %s ORDER BY k`,
		`SELECT count(DISTINCT v) FROM %s`,
	}
	ctx := context.Background()
	for _, q := range queries {
		t.Run(q, func(t *testing.T) {
			want := queryText(t, e.DB, strings.ReplaceAll(q, "%s", "plain_kv"))
			sharded := strings.ReplaceAll(q, "%s", "kv")

			restore := pgshard.SetMaxCombineBytes(100_000)
			defer restore()
			expectError(t, queryAll(ctx, e.DB, sharded), "54000", "exceed pgshard's limit of 100000 bytes held in memory")
			tx, err := e.DB.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = queryAll(ctx, tx, sharded)
			if rerr := tx.Rollback(); rerr != nil {
				t.Fatalf("rollback after the limit: %v", rerr)
			}
			expectError(t, err, "54000", "exceed pgshard's limit of 100000 bytes held in memory")

			pgshard.SetMaxCombineBytes(1 << 20)
			if got := queryText(t, e.DB, sharded); got != want {
				t.Fatalf("under a 1 MB limit, pgshard:\n%.500s\nsingle PostgreSQL:\n%.500s", got, want)
			}
			restore()
			if got := queryText(t, e.DB, sharded); got != want {
				t.Fatalf("under the default limit, pgshard:\n%.500s\nsingle PostgreSQL:\n%.500s", got, want)
			}
		})
	}
}

// queryAll runs a query and reads its rows, returning the first error.
func queryAll(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, q string) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}
