package pgshard_test

// BenchmarkCopy: a bulk load of rows with COPY FROM STDIN, through pgshard
// (lib/pq's CopyIn convention through database/sql: one stmt.Exec per row)
// into a table distributed over 16 shards on the 4 workers, and through
// pgx's CopyFrom into a plain table on worker 1, in the same run, on the
// same servers; and through pgshard.CopyFrom (a pgx.CopyFromSource, no
// database/sql per-row Exec) into a second table like the first. It reports
// seconds per load, the client process's CPU seconds, the peak Go heap of
// each and pgshard's ratios to pgx.
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
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard"
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

// processCPU is the CPU time (user and system) this process has used, in
// seconds: what the client side of a load costs, the servers' aside.
func processCPU(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func BenchmarkCopy(b *testing.B) {
	ctx := context.Background()
	rows := loadEnvInt(b, "PGSHARD_BENCH_COPY_ROWS", 1_000_000)
	e := newEnv(b)
	const ddl = `CREATE TABLE %s (k bigint PRIMARY KEY, n int, v text)`
	e.exec(fmt.Sprintf(ddl, "bulk"))
	e.exec(`SELECT master_create_distributed_table('bulk', 'k')`)
	e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('bulk', %d, 1)`, benchShardCount))
	e.exec(fmt.Sprintf(ddl, "bulk_px"))
	e.exec(`SELECT master_create_distributed_table('bulk_px', 'k')`)
	e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('bulk_px', %d, 1)`, benchShardCount))
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
		began := time.Now()
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
		rowsDone := time.Now()
		res, err := stmt.ExecContext(ctx)
		if err != nil {
			b.Fatal(err)
		}
		finished := time.Now()
		if n, _ := res.RowsAffected(); n != int64(rows) {
			b.Fatalf("pgshard COPY: %d rows", n)
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		b.Logf("pgshard phases: rows taken %.2f s, final Exec %.2f s, commit %.2f s", rowsDone.Sub(began).Seconds(), finished.Sub(rowsDone).Seconds(), time.Since(finished).Seconds())
	}
	loadCopyFrom := func(iter int, db *sql.DB) {
		i := 0
		n, err := pgshard.CopyFrom(ctx, db, pgx.Identifier{"bulk_px"}, []string{"k", "n", "v"}, pgx.CopyFromFunc(func() ([]any, error) {
			if i == rows {
				return nil, nil
			}
			k, n, v := copyBenchRow(iter, i, rows)
			i++
			return []any{k, n, v}, nil
		}))
		if err != nil || n != int64(rows) {
			b.Fatalf("pgshard.CopyFrom: %d rows, %v", n, err)
		}
	}
	if kb := os.Getenv("PGSHARD_BENCH_COPY_BATCH_KB"); kb != "" {
		saved := engine.CopyBatchBytes
		engine.CopyBatchBytes = loadEnvInt(b, "PGSHARD_BENCH_COPY_BATCH_KB", 256) << 10
		b.Cleanup(func() { engine.CopyBatchBytes = saved })
	}
	var pgxSecs, shardSecs, pgxPeak, shardPeak, pgxCPU, shardCPU float64
	var cfSecs, cfPeak, cfCPU float64
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		stop := heapPeak()
		start, cpu := time.Now(), processCPU(b)
		loadPgx(iter)
		s, p, c := time.Since(start).Seconds(), float64(stop())/(1<<20), processCPU(b)-cpu
		pgxSecs, pgxPeak, pgxCPU = pgxSecs+s, pgxPeak+p, pgxCPU+c
		b.Logf("iteration %d, pgx CopyFrom into one server: %d rows, %.2f s, client CPU %.2f s, peak heap %.1f MB", iter, rows, s, c, p)

		stop = heapPeak()
		start, cpu = time.Now(), processCPU(b)
		loadPgshard(iter, e.DB)
		s, p, c = time.Since(start).Seconds(), float64(stop())/(1<<20), processCPU(b)-cpu
		shardSecs, shardPeak, shardCPU = shardSecs+s, shardPeak+p, shardCPU+c
		b.Logf("iteration %d, pgshard COPY into %d shards: %d rows, %.2f s, client CPU %.2f s, peak heap %.1f MB", iter, benchShardCount, rows, s, c, p)

		stop = heapPeak()
		start, cpu = time.Now(), processCPU(b)
		loadCopyFrom(iter, e.DB)
		s, p, c = time.Since(start).Seconds(), float64(stop())/(1<<20), processCPU(b)-cpu
		cfSecs, cfPeak, cfCPU = cfSecs+s, cfPeak+p, cfCPU+c
		b.Logf("iteration %d, pgshard.CopyFrom into %d shards: %d rows, %.2f s, client CPU %.2f s, peak heap %.1f MB", iter, benchShardCount, rows, s, c, p)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(pgxSecs/n, "pgx-s")
	b.ReportMetric(shardSecs/n, "pgshard-s")
	b.ReportMetric(pgxSecs/shardSecs, "speed-vs-pgx")
	b.ReportMetric(pgxCPU/n, "pgx-client-cpu-s")
	b.ReportMetric(shardCPU/n, "pgshard-client-cpu-s")
	b.ReportMetric(cfSecs/n, "copyfrom-s")
	b.ReportMetric(pgxSecs/cfSecs, "copyfrom-speed-vs-pgx")
	b.ReportMetric(cfCPU/n, "copyfrom-client-cpu-s")
	b.ReportMetric(cfPeak/n, "copyfrom-peak-MB")
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
	if err := e.DB.QueryRow(`SELECT count(*) FROM bulk_px`).Scan(&got); err != nil {
		b.Fatal(err)
	}
	if got != want {
		b.Fatalf("pgshard.CopyFrom loaded %d rows, pgx %d", got, want)
	}
}
