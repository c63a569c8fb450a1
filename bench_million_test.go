package pgshard_test

// BenchmarkMultiShardMillion: multi-shard queries over a million rows, with
// the peak Go heap of each query. See docs/benchmarks.md for how to run it
// and what it showed.

import (
	"context"
	"crypto/md5"
	"database/sql"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// millionRows is the size of BenchmarkMultiShardMillion's tables.
const millionRows = 1_000_000

// millionColumns are the columns of BenchmarkMultiShardMillion's tables:
// k is the distribution column, the others have NULLs in every 97th, 89th,
// 83rd and 101st row. b is a permutation of k (7919 is prime to the prime
// 1000003), so ordering by b is a total order unrelated to the placement of
// the rows; s is an md5 digest, for a text sort in pseudo-random order.
const millionColumns = `k int NOT NULL, b bigint, n numeric(12,2), s text, ts timestamptz`

// millionValues computes the columns of row k (an int from generate_series)
// in the order of millionColumns.
const millionValues = `k,
	CASE WHEN k % 97 = 0 THEN NULL ELSE k::bigint * 7919 % 1000003 END,
	CASE WHEN k % 89 = 0 THEN NULL ELSE round((k % 100000) * 1.37, 2) END,
	CASE WHEN k % 83 = 0 THEN NULL ELSE 'item ' || md5(k::text) END,
	CASE WHEN k % 101 = 0 THEN NULL ELSE timestamptz '2020-01-01 00:00:00+00' + k * interval '17 seconds' END`

// millionFixture is BenchmarkMultiShardMillion's data: the same million rows
// in a 16-shard table t (replication factor 1, on the cluster's 4 workers)
// and in one plain table single on worker 1.
type millionFixture struct {
	e        *env
	singleDB *sql.DB   // database/sql with pgx's driver, on worker 1
	single   *pgx.Conn // native pgx, on worker 1
}

// newMillionFixture creates and fills the tables. The rows are generated on
// the servers by INSERT ... SELECT from generate_series: straight into each
// shard table, keeping the keys whose PostgreSQL hash (hashint4, the hash of
// the int key's default opclass) falls in the shard's range, and into the
// single table. The workers and the single table load in parallel. It then
// checks that pgshard counts a million rows and finds rows by key in every
// shard.
func newMillionFixture(b *testing.B) *millionFixture {
	b.Helper()
	ctx := b.Context()
	start := time.Now()
	e := newEnv(b)
	shards := benchDistribute(b, e, `CREATE TABLE t (`+millionColumns+`)`)
	byNode := map[*pgtest.Node][]benchShard{}
	for _, s := range shards {
		byNode[s.node] = append(byNode[s.node], s)
	}
	single := e.workers[0]
	singleConn, err := pgx.Connect(ctx, single.DSN(e.dbname))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { singleConn.Close(context.Background()) })

	var wg sync.WaitGroup
	errs := make(chan error, len(byNode)+1)
	for node, list := range byNode {
		conn := e.worker(node)
		wg.Go(func() {
			for _, s := range list {
				table := fmt.Sprintf("t_%d", s.id)
				for _, q := range []string{
					`INSERT INTO ` + table + ` SELECT ` + millionValues +
						fmt.Sprintf(` FROM generate_series(1, %d) k WHERE hashint4(k) BETWEEN %d AND %d`, millionRows, s.min, s.max),
					`VACUUM ANALYZE ` + table,
				} {
					if _, err := conn.Exec(ctx, q); err != nil {
						errs <- fmt.Errorf("%s: %w", table, err)
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for _, q := range []string{
			`CREATE TABLE single (` + millionColumns + `)`,
			`INSERT INTO single SELECT ` + millionValues + fmt.Sprintf(` FROM generate_series(1, %d) k`, millionRows),
			`VACUUM ANALYZE single`,
		} {
			if _, err := singleConn.Exec(ctx, q); err != nil {
				errs <- fmt.Errorf("single: %w", err)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	if n := e.queryInt(`SELECT count(*) FROM t`); n != millionRows {
		b.Fatalf("pgshard counts %d rows in t, want %d", n, millionRows)
	}
	// pgshard routes keys to the shards the rows were put in, for keys in
	// every shard.
	const checkKeys = 200
	var hashes []int32
	if err := singleConn.QueryRow(ctx, `SELECT array_agg(hashint4(k) ORDER BY k) FROM generate_series(1, $1) k`,
		checkKeys).Scan(&hashes); err != nil {
		b.Fatal(err)
	}
	reached := map[int64]bool{}
	for _, h := range hashes {
		for _, s := range shards {
			if s.min <= h && h <= s.max {
				reached[s.id] = true
			}
		}
	}
	if len(reached) != len(shards) {
		b.Fatalf("keys 1..%d fall in %d of the %d shards", checkKeys, len(reached), len(shards))
	}
	for k := 1; k <= checkKeys; k++ {
		var got sql.NullString
		if err := e.DB.QueryRowContext(ctx, `SELECT s FROM t WHERE k = $1`, k).Scan(&got); err != nil {
			b.Fatalf("k = %d: %v", k, err)
		}
		var want sql.NullString // NULL in every 83rd row
		if k%83 != 0 {
			want = sql.NullString{String: fmt.Sprintf("item %x", md5.Sum([]byte(strconv.Itoa(k)))), Valid: true}
		}
		if got != want {
			b.Fatalf("pgshard read s = %v for k = %d, want %v", got, k, want)
		}
	}
	singleDB, err := sql.Open("pgx", single.DSN(e.dbname))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { singleDB.Close() })
	sizes := []string{}
	for _, w := range e.workers {
		var mb float64
		if err := e.worker(w).QueryRow(ctx, `SELECT coalesce(sum(pg_table_size(oid)), 0) / 1e6 FROM pg_class
			WHERE relkind = 'r' AND relname LIKE 't\_%'`).Scan(&mb); err != nil {
			b.Fatal(err)
		}
		sizes = append(sizes, fmt.Sprintf("%.0f", mb))
	}
	var singleMB float64
	if err := singleConn.QueryRow(ctx, `SELECT pg_table_size('single') / 1e6`).Scan(&singleMB); err != nil {
		b.Fatal(err)
	}
	b.Logf("set up 2 x %d rows in %v: the shards take %s MB on the 4 workers, single %.0f MB",
		millionRows, time.Since(start).Round(time.Millisecond), strings.Join(sizes, " + "), singleMB)
	return &millionFixture{e: e, singleDB: singleDB, single: singleConn}
}

// millionQuery is one query of BenchmarkMultiShardMillion.
type millionQuery struct {
	name  string
	query string // %s is the table
	rows  int64  // rows the answer has
	// ordered says that the answer's order is defined by the query, so
	// pgshard's rows must equal the single table's in order, not only as a
	// set.
	ordered bool
	// scan marks the queries that return every row: for them the benchmark
	// reports rows/s and adds a native pgx baseline.
	scan bool
}

var millionQueries = []millionQuery{
	{name: "count", query: `SELECT count(*) FROM %s`, rows: 1},
	{name: "groupby", query: `SELECT k %% 100 AS g, count(*), avg(n), max(s), min(ts) FROM %s GROUP BY 1`, rows: 100},
	{name: "orderlimit", query: `SELECT k, b, n, s, ts FROM %s ORDER BY b LIMIT 10`, rows: 10, ordered: true},
	{name: "orderoffset", query: `SELECT k, b, n, s, ts FROM %s ORDER BY s DESC NULLS LAST LIMIT 10 OFFSET 100`, rows: 10, ordered: true},
	{name: "scan", query: `SELECT k, b, n, s, ts FROM %s`, rows: millionRows, scan: true},
	{name: "orderscan", query: `SELECT k, b, n, s, ts FROM %s ORDER BY b`, rows: millionRows, ordered: true, scan: true},
}

// BenchmarkMultiShardMillion compares multi-shard queries over a million
// rows in 16 shards (4 workers) with the same query on one PostgreSQL
// holding all the rows:
//
//	count        count(*)
//	groupby      GROUP BY k % 100 with count, avg, max, min
//	orderlimit   ORDER BY b LIMIT 10
//	orderoffset  ORDER BY s DESC NULLS LAST LIMIT 10 OFFSET 100
//	scan         every row (merged-row throughput)
//	orderscan    every row ORDER BY b, without LIMIT
//
// Each runs as pgshard (database/sql, table t) and single (database/sql with
// pgx's driver, table single); scan and orderscan also as pgx (pgx's native
// API on the single table, rows.Scan into pgtype values: a plain pgx scan).
// The database/sql variants scan every column into an any, which keeps the
// value the driver decoded, without conversion.
//
// Besides ns/op, B/op, allocs/op and cpu-ns/op, every sub-benchmark reports
// peak-heap-MB (see measurePeakHeap), from one extra call before the timed
// ones, and the scans report rows/s. The tables are filled once per process
// (the top-level function runs once; the sub-benchmarks and -count share
// it); setting up takes 6 s here on a quiet machine, 14–20 s on a busy one.
// Before its first measurement, every implementation's answer is checked
// against the single table's through database/sql.
func BenchmarkMultiShardMillion(b *testing.B) {
	f := newMillionFixture(b)
	for _, q := range millionQueries {
		b.Run(q.name, func(b *testing.B) {
			impls := f.impls(q)
			want := millionAnswer(b, q, impls[0])
			if q.ordered && q.rows >= millionRows && !strings.HasSuffix(want, "true") {
				b.Fatalf("single %s: %s", q.name, want)
			}
			for _, im := range impls {
				// Each implementation is checked right before its own
				// measurements, not all of them up front: what one leaves
				// reachable would raise the baseline of the others.
				checked := im.name == impls[0].name
				b.Run(im.name, func(b *testing.B) {
					if !checked {
						if got := millionAnswer(b, q, im); got != want {
							b.Fatalf("%s %s answered\n%s\nwant (single)\n%s", im.name, q.name, got, want)
						}
						checked = true
					}
					run := func() error {
						n, err := im.read(b.Context(), nil)
						if err == nil && n != q.rows {
							err = fmt.Errorf("%s %s: %d rows, want %d", im.name, q.name, n, q.rows)
						}
						return err
					}
					peak, err := measurePeakHeap(run)
					if err != nil {
						b.Fatal(err)
					}
					benchRun(b, false, run)
					b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
					if q.scan {
						b.ReportMetric(float64(q.rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
					}
				})
			}
		})
	}
}

// millionImpl is one way to run a query: read runs it and returns how many
// rows it read, calling visit (when not nil) with every row's values.
type millionImpl struct {
	name string
	read func(ctx context.Context, visit func([]any)) (int64, error)
}

// impls lists the ways to run q, single first (the reference answer) and
// pgshard last: a full ORDER BY through pgshard leaves a few hundred MB
// reachable after it returns (see docs/benchmarks.md), which would raise the
// baseline of the measurements after it.
func (f *millionFixture) impls(q millionQuery) []millionImpl {
	impls := []millionImpl{
		{"single", func(ctx context.Context, visit func([]any)) (int64, error) {
			return sqlRead(ctx, f.singleDB, fmt.Sprintf(q.query, "single"), visit)
		}},
	}
	if q.scan {
		impls = append(impls, millionImpl{"pgx", func(ctx context.Context, visit func([]any)) (int64, error) {
			return pgxRead(ctx, f.single, fmt.Sprintf(q.query, "single"), visit)
		}})
	}
	return append(impls, millionImpl{"pgshard", func(ctx context.Context, visit func([]any)) (int64, error) {
		return sqlRead(ctx, f.e.DB, fmt.Sprintf(q.query, "t"), visit)
	}})
}

// millionAnswer runs q through im and returns its answer as text, to compare
// with another implementation's: the rows, sorted unless q.ordered. For the
// million-row answers it is a digest: the row count, the sum of k, and
// whether b never decreases (NULLs last) when q.ordered.
func millionAnswer(b *testing.B, q millionQuery, im millionImpl) string {
	b.Helper()
	var lines []string
	var sumK int64
	var lastB int64 = -1
	sorted, sawNull := true, false
	n, err := im.read(b.Context(), func(vals []any) {
		if q.rows < millionRows {
			lines = append(lines, rowText(vals))
			return
		}
		sumK += toInt64(vals[0])
		switch bv := vals[1].(type) {
		case nil:
			sawNull = true
		case int64:
			// ascending, NULLs last
			if bv < lastB || sawNull {
				sorted = false
			}
			lastB = bv
		default:
			b.Fatalf("%s %s: b is %T", im.name, q.name, vals[1])
		}
	})
	if err != nil {
		b.Fatalf("%s %s: %v", im.name, q.name, err)
	}
	if n != q.rows {
		b.Fatalf("%s %s: %d rows, want %d", im.name, q.name, n, q.rows)
	}
	if q.rows >= millionRows {
		return fmt.Sprintf("%d rows, sum(k) %d, ordered by b: %v", n, sumK, sorted || !q.ordered)
	}
	if !q.ordered {
		slices.Sort(lines)
	}
	return strings.Join(lines, "\n")
}

// rowText renders one row's values for comparison.
func rowText(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case []byte:
			parts[i] = string(v)
		case time.Time:
			parts[i] = v.UTC().Format(time.RFC3339Nano)
		default:
			parts[i] = fmt.Sprintf("%v", v)
		}
	}
	return strings.Join(parts, " | ")
}

func toInt64(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	}
	panic(fmt.Sprintf("k is %T", v))
}

// sqlRead runs query through database/sql, scanning every column into an
// any, and returns the number of rows.
func sqlRead(ctx context.Context, db *sql.DB, query string, visit func([]any)) (int64, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return n, err
		}
		if visit != nil {
			visit(vals)
		}
		n++
	}
	return n, rows.Err()
}

// pgxRead runs query, which selects k, b, n, s, ts, through native pgx,
// scanning every row into pgx's typed values (pgtype.Int8 and so on, which
// hold NULL without a pointer), and returns the number of rows.
func pgxRead(ctx context.Context, conn *pgx.Conn, query string, visit func([]any)) (int64, error) {
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		k    int32
		bv   pgtype.Int8
		nv   pgtype.Numeric
		sv   pgtype.Text
		ts   pgtype.Timestamptz
		n    int64
		dest = []any{&k, &bv, &nv, &sv, &ts}
	)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return n, err
		}
		if visit != nil {
			vals := []any{k, nil, nil, nil, nil}
			if bv.Valid {
				vals[1] = bv.Int64
			}
			if nv.Valid {
				vals[2], _ = nv.Value()
			}
			if sv.Valid {
				vals[3] = sv.String
			}
			if ts.Valid {
				vals[4] = ts.Time
			}
			visit(vals)
		}
		n++
	}
	return n, rows.Err()
}

// peakHeapGCPercent is the GOGC measurePeakHeap runs its function under.
const peakHeapGCPercent = 10

// measurePeakHeap calls f and returns the high-water mark of the Go heap
// during the call, above the live heap before it: how much memory the call
// needed at its worst, whatever it freed by the time it returned.
//
// Method: it collects garbage (runtime.GC) and reads the heap's objects
// (runtime/metrics "/memory/classes/heap/objects:bytes": live objects plus
// dead ones not yet swept) as the baseline. While f runs, a goroutine reads
// the same metric every millisecond, and once more after f returns, keeping
// the maximum. runtime/metrics reads do not stop the world, unlike
// runtime.ReadMemStats.
//
// The heap in use overshoots the live heap by the garbage allocated since the
// last collection: with the default GOGC=100 it grows to twice the live heap
// (at least 4 MB) before the collector runs, so a streaming query that keeps
// nothing would still show several MB of garbage. So f runs with GOGC=10
// (debug.SetGCPercent, restored afterwards): collections start at 10% growth,
// and the maximum is the live high-water mark plus at most about a tenth of
// the live heap (the test process's own included), plus what is allocated
// during one collection or one millisecond, whichever the peak falls in. It
// is an upper bound on the memory f kept live, tight to a few hundred KB for
// small heaps. Memory outside the Go heap (goroutine stacks, the servers) is
// not counted.
//
// The low GOGC makes f slower, so benchmarks call it once outside the timed
// loop. It measures the whole process: other goroutines allocating at the
// same time count too.
func measurePeakHeap(f func() error) (uint64, error) {
	defer debug.SetGCPercent(debug.SetGCPercent(peakHeapGCPercent))
	const metric = "/memory/classes/heap/objects:bytes"
	read := func(s []metrics.Sample) uint64 {
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	runtime.GC()
	base := read([]metrics.Sample{{Name: metric}})

	stop := make(chan struct{})
	peakc := make(chan uint64)
	go func() {
		s := []metrics.Sample{{Name: metric}}
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, read(s))
			select {
			case <-stop:
				peakc <- max(peak, read(s))
				return
			case <-tick.C:
			}
		}
	}()
	err := f()
	close(stop)
	peak := <-peakc
	if peak < base {
		return 0, err
	}
	return peak - base, err
}
