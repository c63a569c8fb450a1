package pgshard_test

// BenchmarkCopy: a bulk load of rows with COPY FROM STDIN, through pgshard
// (lib/pq's CopyIn convention through database/sql: one stmt.Exec per row)
// into a table distributed over 16 shards on the 4 workers, and through
// pgx's CopyFrom into a plain table on worker 1, in the same run, on the
// same servers. It reports seconds per load, the peak Go heap of each and
// pgshard's ratios to pgx.
//
//	go test -c -o /tmp/pgshard.test .
//	/work/bin/pgslot /tmp/pgshard.test -test.run '^$' -test.bench BenchmarkCopy -test.benchtime 2x
//
// PGSHARD_BENCH_COPY_ROWS sets the rows per load (default 1,000,000),
// PGSHARD_BENCH_COPY_BATCH_KB the size of the batches pgshard sends each
// shard (default engine.CopyBatchBytes).

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/engine"
)

// copyBenchRow is row i of iteration iter: a unique key, a number and 40
// bytes of text.
func copyBenchRow(iter, i, rows int) (int64, int32, string) {
	return int64(iter*rows + i), int32(i % 1000), fmt.Sprintf("row %09d of the copy benchmark, text", i)
}

// heapPeak samples the Go heap every millisecond until stop is called,
// which returns the peak above the heap after a collection at the start.
func heapPeak() (stop func() uint64) {
	const metric = "/memory/classes/heap/objects:bytes"
	read := func(s []metrics.Sample) uint64 {
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	runtime.GC()
	base := read([]metrics.Sample{{Name: metric}})
	done := make(chan struct{})
	peakc := make(chan uint64)
	go func() {
		s := []metrics.Sample{{Name: metric}}
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, read(s))
			select {
			case <-done:
				peakc <- max(peak, read(s))
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		peak := <-peakc
		if peak < base {
			return 0
		}
		return peak - base
	}
}

func BenchmarkCopy(b *testing.B) {
	ctx := context.Background()
	rows := loadEnvInt(b, "PGSHARD_BENCH_COPY_ROWS", 1_000_000)
	e := newEnv(b)
	const ddl = `CREATE TABLE %s (k bigint PRIMARY KEY, n int, v text)`
	e.exec(fmt.Sprintf(ddl, "bulk"))
	e.exec(`SELECT master_create_distributed_table('bulk', 'k')`)
	e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('bulk', %d, 1)`, benchShardCount))
	direct, err := pgx.Connect(ctx, e.workers[0].DSN(e.dbname))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { direct.Close(ctx) })
	if _, err := direct.Exec(ctx, fmt.Sprintf(ddl, "bulk_one")); err != nil {
		b.Fatal(err)
	}
	loadPgx := func(iter int) {
		i := 0
		n, err := direct.CopyFrom(ctx, pgx.Identifier{"bulk_one"}, []string{"k", "n", "v"}, pgx.CopyFromFunc(func() ([]any, error) {
			if i == rows {
				return nil, nil
			}
			k, n, v := copyBenchRow(iter, i, rows)
			i++
			return []any{k, n, v}, nil
		}))
		if err != nil || n != int64(rows) {
			b.Fatalf("pgx CopyFrom: %d rows, %v", n, err)
		}
	}
	loadPgshard := func(iter int, db *sql.DB) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		stmt, err := tx.PrepareContext(ctx, `COPY "bulk" ("k", "n", "v") FROM STDIN`)
		if err != nil {
			b.Fatal(err)
		}
		for i := range rows {
			k, n, v := copyBenchRow(iter, i, rows)
			if _, err := stmt.ExecContext(ctx, k, n, v); err != nil {
				b.Fatal(err)
			}
		}
		res, err := stmt.ExecContext(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != int64(rows) {
			b.Fatalf("pgshard COPY: %d rows", n)
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if kb := os.Getenv("PGSHARD_BENCH_COPY_BATCH_KB"); kb != "" {
		saved := engine.CopyBatchBytes
		engine.CopyBatchBytes = loadEnvInt(b, "PGSHARD_BENCH_COPY_BATCH_KB", 256) << 10
		b.Cleanup(func() { engine.CopyBatchBytes = saved })
	}
	var pgxSecs, shardSecs, pgxPeak, shardPeak float64
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		stop := heapPeak()
		start := time.Now()
		loadPgx(iter)
		s, p := time.Since(start).Seconds(), float64(stop())/(1<<20)
		pgxSecs, pgxPeak = pgxSecs+s, pgxPeak+p
		b.Logf("iteration %d, pgx CopyFrom into one server: %d rows, %.2f s, peak heap %.1f MB", iter, rows, s, p)

		stop = heapPeak()
		start = time.Now()
		loadPgshard(iter, e.DB)
		s, p = time.Since(start).Seconds(), float64(stop())/(1<<20)
		shardSecs, shardPeak = shardSecs+s, shardPeak+p
		b.Logf("iteration %d, pgshard COPY into %d shards: %d rows, %.2f s, peak heap %.1f MB", iter, benchShardCount, rows, s, p)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(pgxSecs/n, "pgx-s")
	b.ReportMetric(shardSecs/n, "pgshard-s")
	b.ReportMetric(pgxSecs/shardSecs, "speed-vs-pgx")
	b.ReportMetric(pgxPeak/n, "pgx-peak-MB")
	b.ReportMetric(shardPeak/n, "pgshard-peak-MB")
	var got, want int64
	if err := e.DB.QueryRow(`SELECT count(*) FROM bulk`).Scan(&got); err != nil {
		b.Fatal(err)
	}
	if err := direct.QueryRow(ctx, `SELECT count(*) FROM bulk_one`).Scan(&want); err != nil {
		b.Fatal(err)
	}
	if got != want || got != int64(rows*b.N) {
		b.Fatalf("pgshard holds %d rows, pgx loaded %d", got, want)
	}
}
