package pgshard_test

// Benchmarks comparing pgshard with direct pgx on the same servers, in the
// same run. See docs/benchmarks.md for how to run them and what they showed.
//
// Every single-shard benchmark works on one shard of a 16-shard table with
// replication factor 1, and uses keys chosen in advance to all hash into that
// shard, so pgshard and the baselines do the same work on the servers: one
// round trip to one worker. The baselines are what an application that did
// the routing itself would run against the shard table (t_<shardid>):
//
//	pgshard  database/sql, sql.Open("pgshard", metadataDSN), table t
//	pgx      database/sql, sql.Open("pgx", workerDSN), table t_<shardid>
//	pgxpool  pgx's native API, pgxpool.Pool on the worker, table t_<shardid>
//
// Tables and data are made before the timer starts, once per top-level
// benchmark; the sub-benchmarks share them. Every benchmark reports, besides
// ns/op, B/op and allocs/op, cpu-ns/op: the test process's CPU time per
// operation (the client side only: the servers are other processes).
//
// The machine these were written on has two shared, noisy cores, which the
// five servers share with the client. The ...Interleaved benchmarks measure
// the implementations alternately, call by call, so that a burst of
// background load hits them alike; see benchInterleaved.

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/internal/pgtest"
)

const (
	benchShardCount = 16
	// benchKeyRange is where keys are drawn from: about 1/16 of it hashes
	// into any one shard.
	benchKeyRange = 400_000
	// benchSelectRows is how many rows of the chosen shard the point-select
	// benchmarks read from.
	benchSelectRows = 10_000
	// benchCountRows is the size of the count(*) table.
	benchCountRows = 100_000
	// benchParallelism multiplies GOMAXPROCS for the RunParallel variants:
	// the work is mostly waiting on the server, so more goroutines than
	// cores keep the servers busy.
	benchParallelism = 4
	benchValue       = "some value"
)

// benchShard is one shard of a table with replication factor 1.
type benchShard struct {
	id       int64
	min, max int32
	node     *pgtest.Node
}

// benchShards reads the shards of table, with their one placement each, from
// the metadata database.
func benchShards(b *testing.B, e *env, table string) []benchShard {
	b.Helper()
	rows, err := e.DB.Query(`SELECT s.id, s.min_value::int4, s.max_value::int4, p.node_name, p.node_port
		FROM pgs_distribution_metadata.shard s
		JOIN pgs_distribution_metadata.shard_placement p ON p.shard_id = s.id
		WHERE s.relation_id = $1::regclass
		ORDER BY s.id`, table)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []benchShard
	for rows.Next() {
		var s benchShard
		var host string
		var port int
		if err := rows.Scan(&s.id, &s.min, &s.max, &host, &port); err != nil {
			b.Fatal(err)
		}
		for _, w := range e.workers {
			if w.Host == host && w.Port == port {
				s.node = w
			}
		}
		if s.node == nil {
			b.Fatalf("shard %d is on %s:%d, not a worker of the cluster", s.id, host, port)
		}
		if len(out) > 0 && out[len(out)-1].id == s.id {
			b.Fatalf("shard %d has more than one placement", s.id)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(out) != benchShardCount {
		b.Fatalf("%s has %d shards, want %d", table, len(out), benchShardCount)
	}
	return out
}

// benchDistribute creates table t with the ddl statements and distributes it
// by k over 16 shards with replication factor 1.
func benchDistribute(b *testing.B, e *env, ddl ...string) []benchShard {
	b.Helper()
	for _, q := range ddl {
		e.exec(q)
	}
	e.exec(`SELECT master_create_distributed_table('t', 'k')`)
	e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('t', %d, 1)`, benchShardCount))
	return benchShards(b, e, "t")
}

// benchKeys returns the keys in [1, benchKeyRange] that PostgreSQL's hash of
// bigint puts in shard s, ascending. The server computes the hash, so the
// keys do not depend on pgshard's own hashing.
func benchKeys(b *testing.B, conn *pgx.Conn, s benchShard) []int64 {
	b.Helper()
	rows, err := conn.Query(context.Background(),
		`SELECT k FROM generate_series(1, $1::bigint) k WHERE hashint8(k) BETWEEN $2 AND $3 ORDER BY k`,
		benchKeyRange, s.min, s.max)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		b.Fatal(err)
	}
	if len(keys) < 1000 {
		b.Fatalf("only %d keys of [1, %d] fall in shard %d", len(keys), benchKeyRange, s.id)
	}
	return keys
}

// benchFixture is one distributed table t and everything the single-shard
// benchmarks need to reach its chosen shard directly.
type benchFixture struct {
	e          *env
	shard      benchShard
	shardTable string // t_<shardid>
	keys       []int64
	pgxDB      *sql.DB       // database/sql with pgx's driver, on the shard's worker
	pool       *pgxpool.Pool // native pgx, on the shard's worker
	next       atomic.Uint64 // the next key, across sub-benchmarks and goroutines
}

// newBenchFixture creates t (k bigint, v text) with an index on k (a primary
// key with withRows, filled with benchSelectRows rows of the chosen shard) and
// opens the baselines' connections to the worker holding that shard.
func newBenchFixture(b *testing.B, withRows bool) *benchFixture {
	b.Helper()
	ctx := context.Background()
	e := newEnv(b)
	ddl := []string{`CREATE TABLE t (k bigint NOT NULL, v text)`, `CREATE INDEX t_k_idx ON t (k)`}
	if withRows {
		ddl = []string{`CREATE TABLE t (k bigint PRIMARY KEY, v text)`}
	}
	s := benchDistribute(b, e, ddl...)[0]
	f := &benchFixture{e: e, shard: s, shardTable: fmt.Sprintf("t_%d", s.id)}
	wconn := e.worker(s.node)
	f.keys = benchKeys(b, wconn, s)

	if withRows {
		if len(f.keys) < benchSelectRows {
			b.Fatalf("only %d keys for %d rows", len(f.keys), benchSelectRows)
		}
		f.keys = f.keys[:benchSelectRows]
		if _, err := wconn.Exec(ctx, `INSERT INTO `+f.shardTable+` (k, v) SELECT k, 'value ' || k FROM unnest($1::bigint[]) k`, f.keys); err != nil {
			b.Fatal(err)
		}
		if _, err := wconn.Exec(ctx, `VACUUM ANALYZE `+f.shardTable); err != nil {
			b.Fatal(err)
		}
		// pgshard finds the rows where the baselines put them.
		var v string
		if err := e.DB.QueryRow(`SELECT v FROM t WHERE k = $1`, f.keys[7]).Scan(&v); err != nil {
			b.Fatal(err)
		}
		if want := fmt.Sprintf("value %d", f.keys[7]); v != want {
			b.Fatalf("pgshard read %q for key %d, want %q", v, f.keys[7], want)
		}
	} else {
		// pgshard routes the chosen keys to the chosen shard table.
		for _, k := range f.keys[:3] {
			e.exec(`INSERT INTO t (k, v) VALUES ($1, $2)`, k, benchValue)
		}
		var n int
		if err := wconn.QueryRow(ctx, `SELECT count(*) FROM `+f.shardTable).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n != 3 {
			b.Fatalf("%s holds %d of the 3 rows pgshard inserted", f.shardTable, n)
		}
	}

	dsn := s.node.DSN(e.dbname)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	f.pgxDB = db
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	f.pool = pool

	// database/sql keeps 2 idle connections by default: in the parallel
	// variants the others would be closed and reopened all the time, which
	// costs the pgx baseline a new server connection each time and pgshard
	// almost nothing. Keep enough for every goroutine, on both.
	conns := benchParallelism*runtime.GOMAXPROCS(0) + 2
	for _, d := range []*sql.DB{e.DB, f.pgxDB} {
		d.SetMaxIdleConns(conns)
	}
	return f
}

// key returns the next key, cycling through the fixture's keys.
func (f *benchFixture) key() int64 {
	return f.keys[int((f.next.Add(1)-1)%uint64(len(f.keys)))]
}

// benchRun times op, serially or from benchParallelism×GOMAXPROCS
// goroutines. Besides ns/op it reports cpu-ns/op: the CPU time (user and
// system, every thread of the test process, garbage collection included) per
// operation, from getrusage. The servers run on the same two cores, so this
// is the client-side cost alone, less disturbed by the servers' and other
// processes' noise than the wall time.
func benchRun(b *testing.B, parallel bool, op func() error) {
	b.ReportAllocs()
	var ops atomic.Int64
	cpu0 := benchCPUTime(b)
	if parallel {
		b.SetParallelism(benchParallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ops.Add(1)
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			ops.Add(1)
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if n := ops.Load(); n > 0 {
		b.ReportMetric(float64(benchCPUTime(b)-cpu0)/float64(n), "cpu-ns/op")
	}
}

// benchCPUTime is the process's user plus system CPU time so far.
func benchCPUTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchWarmUp runs op before the timer starts, so that connections are open
// and statements prepared on the servers: once, or for the parallel variants
// from as many goroutines at once as RunParallel will use, so that every
// pool holds a connection for each of them.
func benchWarmUp(b *testing.B, name string, parallel bool, op func() error) {
	b.Helper()
	n := 1
	if parallel {
		n = benchParallelism * runtime.GOMAXPROCS(0)
	}
	errs := make(chan error, n)
	var start sync.WaitGroup
	start.Add(1)
	for range n {
		go func() {
			start.Wait()
			var err error
			for range 20 {
				if err = op(); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	start.Done()
	for range n {
		if err := <-errs; err != nil {
			b.Fatalf("%s: %v", name, err)
		}
	}
}

func benchPrepare(b *testing.B, db *sql.DB, query string) *sql.Stmt {
	b.Helper()
	stmt, err := db.Prepare(query)
	if err != nil {
		b.Fatalf("preparing %s: %v", query, err)
	}
	b.Cleanup(func() { stmt.Close() })
	return stmt
}

// benchOp is one implementation's version of a benchmark's operation.
type benchOp struct {
	name string
	op   func() error
}

func BenchmarkInsertPrepared(b *testing.B)         { benchSubs(b, false, benchInsertOps(b)) }
func BenchmarkInsertPreparedParallel(b *testing.B) { benchSubs(b, true, benchInsertOps(b)) }
func BenchmarkPointSelect(b *testing.B)            { benchSubs(b, false, benchPointSelectOps(b)) }
func BenchmarkPointSelectParallel(b *testing.B)    { benchSubs(b, true, benchPointSelectOps(b)) }

// BenchmarkInsertPreparedInterleaved and BenchmarkPointSelectInterleaved run
// the same operations as the serial benchmarks, but alternate between the
// implementations at every iteration; see benchInterleaved.
func BenchmarkInsertPreparedInterleaved(b *testing.B) { benchInterleaved(b, benchInsertOps(b)) }
func BenchmarkPointSelectInterleaved(b *testing.B)    { benchInterleaved(b, benchPointSelectOps(b)) }

// benchSubs warms every op up, then times each in its own sub-benchmark.
func benchSubs(b *testing.B, parallel bool, ops []benchOp) {
	for _, o := range ops {
		benchWarmUp(b, o.name, parallel, o.op)
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) { benchRun(b, parallel, o.op) })
	}
}

// benchInsertOps: a prepared single-row INSERT, a new key each time.
func benchInsertOps(b *testing.B) []benchOp {
	f := newBenchFixture(b, false)
	ctx := context.Background()
	direct := `INSERT INTO ` + f.shardTable + ` (k, v) VALUES ($1, $2)`
	shardStmt := benchPrepare(b, f.e.DB, `INSERT INTO t (k, v) VALUES ($1, $2)`)
	pgxStmt := benchPrepare(b, f.pgxDB, direct)
	return []benchOp{
		{"pgshard", func() error { _, err := shardStmt.Exec(f.key(), benchValue); return err }},
		{"pgx", func() error { _, err := pgxStmt.Exec(f.key(), benchValue); return err }},
		{"pgxpool", func() error { _, err := f.pool.Exec(ctx, direct, f.key(), benchValue); return err }},
	}
}

// benchPointSelectOps: a prepared SELECT by primary key, one row of the
// chosen shard each time.
func benchPointSelectOps(b *testing.B) []benchOp {
	f := newBenchFixture(b, true)
	ctx := context.Background()
	direct := `SELECT v FROM ` + f.shardTable + ` WHERE k = $1`
	shardStmt := benchPrepare(b, f.e.DB, `SELECT v FROM t WHERE k = $1`)
	pgxStmt := benchPrepare(b, f.pgxDB, direct)
	check := func(v string, err error) error {
		if err == nil && len(v) < 7 {
			err = fmt.Errorf("read %q", v)
		}
		return err
	}
	return []benchOp{
		{"pgshard", func() error {
			var v string
			return check(v, shardStmt.QueryRow(f.key()).Scan(&v))
		}},
		{"pgx", func() error {
			var v string
			return check(v, pgxStmt.QueryRow(f.key()).Scan(&v))
		}},
		{"pgxpool", func() error {
			var v string
			return check(v, f.pool.QueryRow(ctx, direct, f.key()).Scan(&v))
		}},
	}
}

// BenchmarkPointUpdate and BenchmarkPointUpdateInterleaved: a prepared
// single-row UPDATE by primary key on one shard with one placement (an
// autocommit write: one statement on one worker, a plain commit).
func BenchmarkPointUpdate(b *testing.B)            { benchSubs(b, false, benchPointUpdateOps(b)) }
func BenchmarkPointUpdateInterleaved(b *testing.B) { benchInterleaved(b, benchPointUpdateOps(b)) }

func benchPointUpdateOps(b *testing.B) []benchOp {
	f := newBenchFixture(b, true)
	ctx := context.Background()
	direct := `UPDATE ` + f.shardTable + ` SET v = $2 WHERE k = $1`
	shardStmt := benchPrepare(b, f.e.DB, `UPDATE t SET v = $2 WHERE k = $1`)
	pgxStmt := benchPrepare(b, f.pgxDB, direct)
	check := func(n int64, err error) error {
		if err == nil && n != 1 {
			err = fmt.Errorf("updated %d rows", n)
		}
		return err
	}
	affected := func(res sql.Result, err error) (int64, error) {
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	return []benchOp{
		{"pgshard", func() error { return check(affected(shardStmt.Exec(f.key(), benchValue))) }},
		{"pgx", func() error { return check(affected(pgxStmt.Exec(f.key(), benchValue))) }},
		{"pgxpool", func() error {
			tag, err := f.pool.Exec(ctx, direct, f.key(), benchValue)
			return check(tag.RowsAffected(), err)
		}},
	}
}

// benchInterleaved runs every op once per iteration, rotating which goes
// first, and times each call on its own. On a shared, noisy machine the
// separate sub-benchmarks run seconds apart and see different background
// load; here the implementations are measured microseconds apart, so a burst
// of load hits them alike. It reports, for each implementation:
//
//	<name>-ns/op      the median wall time of one call
//	<name>-cpu-ns/op  the mean CPU time of the calling thread per call
//	                  (getrusage RUSAGE_THREAD, the goroutine locked to its
//	                  thread): the client work done on the caller's goroutine,
//	                  syscalls included, without GC workers, the network
//	                  poller or the servers
//
// and <base>/pgshard, the median wall time of base over pgshard's: the
// throughput of pgshard relative to base. ns/op, B/op and allocs/op are those
// of all the calls of one iteration together.
func benchInterleaved(b *testing.B, ops []benchOp) {
	for _, o := range ops {
		benchWarmUp(b, o.name, false, o.op)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, threadCPU := benchThreadCPU()
	b.ReportAllocs()
	wall := make([][]time.Duration, len(ops))
	cpu := make([]time.Duration, len(ops))
	iter := 0
	for b.Loop() {
		for j := range ops {
			i := (iter + j) % len(ops)
			c0, _ := benchThreadCPU()
			t0 := time.Now()
			err := ops[i].op()
			d := time.Since(t0)
			c1, _ := benchThreadCPU()
			if err != nil {
				b.Fatalf("%s: %v", ops[i].name, err)
			}
			wall[i] = append(wall[i], d)
			cpu[i] += c1 - c0
		}
		iter++
	}
	med := make([]float64, len(ops))
	for i, o := range ops {
		med[i] = benchMedian(wall[i])
		b.ReportMetric(med[i], o.name+"-ns/op")
		if threadCPU {
			b.ReportMetric(float64(cpu[i])/float64(iter), o.name+"-cpu-ns/op")
		}
	}
	for i, o := range ops[1:] {
		b.ReportMetric(med[i+1]/med[0], o.name+"/"+ops[0].name)
	}
}

// benchThreadCPU is the calling thread's user plus system CPU time; ok is
// false where RUSAGE_THREAD is not available.
func benchThreadCPU() (d time.Duration, ok bool) {
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

func benchMedian(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return float64(s[n/2])
	}
	return float64(s[n/2-1]+s[n/2]) / 2
}

// BenchmarkMultiShard compares multi-shard queries over 16 shards with the
// same query on one PostgreSQL holding all the rows: count(*), GROUP BY with
// avg (combined by PostgreSQL from partial aggregates), GROUP BY over
// timestamptz/float8/interval partials, a window function (the shards' rows
// combined by PostgreSQL), ORDER BY ... LIMIT 10
// (LIMIT pushed to the shards), and a full scan (merged-row throughput).
func BenchmarkMultiShard(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	shards := benchDistribute(b, e, `CREATE TABLE t (k bigint NOT NULL, v text)`)
	conns := map[*pgtest.Node]*pgx.Conn{}
	for _, s := range shards {
		c := conns[s.node]
		if c == nil {
			c = e.worker(s.node)
			conns[s.node] = c
		}
		table := fmt.Sprintf("t_%d", s.id)
		if _, err := c.Exec(ctx, `INSERT INTO `+table+` (k, v)
			SELECT k, 'value ' || k FROM generate_series(1, $1::bigint) k WHERE hashint8(k) BETWEEN $2 AND $3`,
			benchCountRows, s.min, s.max); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Exec(ctx, `VACUUM ANALYZE `+table); err != nil {
			b.Fatal(err)
		}
	}
	single := e.workers[0]
	sc := e.worker(single)
	for _, q := range []string{
		`CREATE TABLE single (k bigint NOT NULL, v text)`,
		fmt.Sprintf(`INSERT INTO single (k, v) SELECT k, 'value ' || k FROM generate_series(1, %d) k`, benchCountRows),
		`VACUUM ANALYZE single`,
	} {
		if _, err := sc.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	singleDB, err := sql.Open("pgx", single.DSN(e.dbname))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { singleDB.Close() })

	queries := []struct {
		name  string
		query string // %s is the table
		rows  int64  // rows the answer has
	}{
		{"count", `SELECT count(*) FROM %s`, 1},
		{"groupby", `SELECT k %% 100 AS g, count(*), avg(k), max(v) FROM %s GROUP BY 1`, 100},
		// 1000 groups: 16000 partial rows of timestamptz, float8 and
		// interval, whose transport between servers (binary) this measures.
		{"groupbytypes", `SELECT k %% 1000 AS g, min(to_timestamp(k)), max(k::float8 / 7), sum(k * interval '1 second') FROM %s GROUP BY 1`, 1000},
		// A window function: the shards' 20000 rows go to the combine step.
		{"window", `SELECT k, v, rank() OVER (ORDER BY k %% 97, k) FROM %s WHERE k <= 20000`, 20000},
		{"orderlimit", `SELECT k, v FROM %s ORDER BY v DESC LIMIT 10`, 10},
		{"scan", `SELECT k, v FROM %s`, benchCountRows},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			for _, o := range []struct {
				name  string
				db    *sql.DB
				table string
			}{{"pgshard", e.DB, "t"}, {"single", singleDB, "single"}} {
				sqlText := fmt.Sprintf(q.query, o.table)
				run := func() error {
					rows, err := o.db.Query(sqlText)
					if err != nil {
						return err
					}
					defer rows.Close()
					cols, _ := rows.Columns()
					vals := make([]any, len(cols))
					for i := range vals {
						vals[i] = new(sql.RawBytes)
					}
					var n int64
					for rows.Next() {
						if err := rows.Scan(vals...); err != nil {
							return err
						}
						n++
					}
					if err := rows.Err(); err != nil {
						return err
					}
					if n != q.rows {
						return fmt.Errorf("%s %s: %d rows, want %d", o.name, q.name, n, q.rows)
					}
					return nil
				}
				if err := run(); err != nil {
					b.Fatal(err)
				}
				b.Run(o.name, func(b *testing.B) { benchRun(b, false, run) })
			}
		})
	}
}

// BenchmarkPointSelectSessionSettings is BenchmarkPointSelect's pgshard
// operation on a connection whose session has SET two settings: what
// carrying them costs (each statement applies them on the worker connection
// it takes and resets them before giving it back). "pgshard" is the same
// statement on a connection that set nothing.
func BenchmarkPointSelectSessionSettings(b *testing.B) {
	f := newBenchFixture(b, true)
	ctx := context.Background()
	conn, err := f.e.DB.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	for _, set := range []string{`SET statement_timeout = '10s'`, `SET TimeZone = 'Asia/Kolkata'`} {
		if _, err := conn.ExecContext(ctx, set); err != nil {
			b.Fatal(err)
		}
	}
	withSet, err := conn.PrepareContext(ctx, `SELECT v FROM t WHERE k = $1`)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { withSet.Close() })
	plain := benchPrepare(b, f.e.DB, `SELECT v FROM t WHERE k = $1`)
	benchSubs(b, false, []benchOp{
		{"pgshard", func() error {
			var v string
			return plain.QueryRow(f.key()).Scan(&v)
		}},
		{"pgshard-set", func() error {
			var v string
			return withSet.QueryRow(f.key()).Scan(&v)
		}},
	})
}
