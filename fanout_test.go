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

// TestFanoutReservationsAreReleased makes streaming reads fail in every way
// a caller sees (an error mid-stream on one shard, a cancelled context, rows
// closed early) with small pools per worker, then checks that
// streaming reads still get their connections: a reservation that was not
// given back would make them wait until their deadline.
func TestFanoutReservationsAreReleased(t *testing.T) {
	e := setupKV(t, 16, 1)
	e.exec(`INSERT INTO kv (k, v, n) SELECT i, 'v' || i, i % 10 FROM generate_series(1, 20000) i`)
	// 2 connections: concatenated reads run in lanes, ORDER BY is combined;
	// 4 (the 4 shards on each worker): both stream every shard at once.
	for _, poolSize := range []int{2, 4} {
		t.Run(fmt.Sprint("pool_max_conns=", poolSize), func(t *testing.T) {
			testFanoutReleases(t, e, poolSize)
		})
	}
}

func testFanoutReleases(t *testing.T, e *env, poolSize int) {
	db, err := sql.Open("pgshard", fmt.Sprintf("%s&pool_max_conns=%d", e.DSN, poolSize))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Everything under one deadline: a leaked reservation fails the test
	// instead of hanging it.
	ctx, cancelAll := context.WithTimeout(context.Background(), time.Minute)
	defer cancelAll()
	for i := 0; i < 10; i++ {
		// Division by zero on the shard holding k = 15000, after rows of
		// other shards have been merged.
		if _, err := countRows(ctx, db, `SELECT k, 1 / (k - 15000) FROM kv ORDER BY k`); err == nil || sqlState(t, err) != "22012" {
			t.Fatalf("error mid-stream: %v", err)
		}
		if _, err := countRows(ctx, db, `SELECT k, 1 / (k - 15000) FROM kv`); err == nil || sqlState(t, err) != "22012" {
			t.Fatalf("error mid-stream (concatenated): %v", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		rows, err := db.QueryContext(cctx, `SELECT k, v FROM kv ORDER BY v`)
		if err != nil {
			t.Fatal(err)
		}
		rows.Next()
		cancel()
		for rows.Next() {
		}
		rows.Close()
		rows, err = db.QueryContext(ctx, `SELECT k, v FROM kv`)
		if err != nil {
			t.Fatal(err)
		}
		rows.Next()
		rows.Close()
	}
	for _, q := range []string{`SELECT k, v FROM kv ORDER BY v`, `SELECT k, v FROM kv`} {
		if n, err := countRows(ctx, db, q); err != nil || n != 20000 {
			t.Fatalf("%s after the failures: %d rows, %v", q, n, err)
		}
	}
}
