package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestSmallPoolsDoNotDeadlock runs multi-shard reads whose shards outnumber
// the worker pools' connections (16 shards on 4 workers), alone and many at
// once: streaming reads reserve their connections all at once (fanoutGate)
// and a node's shards share lanes, so none waits forever while holding
// connections another needs. Each shard returns more rows than its read-ahead
// buffer holds, so a shard stream keeps its connection until it is read.
func TestSmallPoolsDoNotDeadlock(t *testing.T) {
	e := setupKV(t, 16, 1)
	e.exec(`INSERT INTO kv (k, v, n) SELECT i, 'v' || i, i % 10 FROM generate_series(1, 20000) i`)
	queries := []struct {
		sql  string
		rows int
	}{
		{`SELECT k, v FROM kv`, 20000},
		{`SELECT k, v FROM kv ORDER BY v DESC, k`, 20000},
		{`SELECT k FROM kv ORDER BY k LIMIT 5000 OFFSET 100`, 5000},
		{`SELECT n, count(*) FROM kv GROUP BY n`, 10},
		{`SELECT count(*) FROM kv`, 1},
	}
	for _, poolSize := range []int{1, 2, 4} {
		t.Run(fmt.Sprint("pool_max_conns=", poolSize), func(t *testing.T) {
			db, err := sql.Open("pgshard", fmt.Sprintf("%s&pool_max_conns=%d", e.DSN, poolSize))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := 0; g < 6; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range queries {
						q := queries[(i+g)%len(queries)]
						n, err := countRows(ctx, db, q.sql)
						if err != nil {
							errs <- fmt.Errorf("%s: %w", q.sql, err)
							return
						}
						if n != q.rows {
							errs <- fmt.Errorf("%s: %d rows, want %d", q.sql, n, q.rows)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func countRows(ctx context.Context, db *sql.DB, q string) (int, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}
