package pgshard_test

// BenchmarkLoadLiterals: TPC-C-shaped initial data loaded as large,
// distinct multi-row INSERTs of literals (what go-tpc's loader sends),
// through pgshard and through pgx directly on one server, in the same run.
// It reports the time and the Go heap of each load.
//
//	go test -c -o /tmp/pgshard.test .
//	PGSHARD_BENCH_LOAD_STATEMENTS=1000 /tmp/pgshard.test \
//	    -test.run '^$' -test.bench BenchmarkLoadLiterals -test.benchtime 1x
//
// PGSHARD_BENCH_LOAD_STATEMENTS sets the number of INSERTs per load (default
// 200; go-tpc's loader sends about 1000), PGSHARD_BENCH_LOAD_THREADS the
// number of goroutines sending them (default 2).

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadTables are the TPC-C tables the benchmark loads, each with the
// column it is distributed by.
var loadTables = []struct {
	name, key, ddl string
}{
	{"warehouse", "w_id", `CREATE TABLE warehouse (w_id int NOT NULL, w_name varchar(10), w_street_1 varchar(20),
		w_street_2 varchar(20), w_city varchar(20), w_state char(2), w_zip char(9), w_tax numeric(4,4),
		w_ytd numeric(12,2), PRIMARY KEY (w_id))`},
	{"district", "d_w_id", `CREATE TABLE district (d_id int NOT NULL, d_w_id int NOT NULL, d_name varchar(10),
		d_street_1 varchar(20), d_street_2 varchar(20), d_city varchar(20), d_state char(2), d_zip char(9),
		d_tax numeric(4,4), d_ytd numeric(12,2), d_next_o_id int, PRIMARY KEY (d_w_id, d_id))`},
	{"item", "i_id", `CREATE TABLE item (i_id int NOT NULL, i_im_id int, i_name varchar(24), i_price numeric(5,2),
		i_data varchar(50), PRIMARY KEY (i_id))`},
	{"stock", "s_w_id", `CREATE TABLE stock (s_i_id int NOT NULL, s_w_id int NOT NULL, s_quantity int,
		s_dist_01 char(24), s_dist_02 char(24), s_dist_03 char(24), s_dist_04 char(24), s_dist_05 char(24),
		s_dist_06 char(24), s_dist_07 char(24), s_dist_08 char(24), s_dist_09 char(24), s_dist_10 char(24),
		s_ytd int, s_order_cnt int, s_remote_cnt int, s_data varchar(50), PRIMARY KEY (s_w_id, s_i_id))`},
	{"customer", "c_w_id", `CREATE TABLE customer (c_id int NOT NULL, c_d_id int NOT NULL, c_w_id int NOT NULL,
		c_first varchar(16), c_middle char(2), c_last varchar(16), c_street_1 varchar(20), c_street_2 varchar(20),
		c_city varchar(20), c_state char(2), c_zip char(9), c_phone char(16), c_since timestamp, c_credit char(2),
		c_credit_lim numeric(12,2), c_discount numeric(4,4), c_balance numeric(12,2), c_ytd_payment numeric(12,2),
		c_payment_cnt int, c_delivery_cnt int, c_data varchar(500), PRIMARY KEY (c_w_id, c_d_id, c_id))`},
	{"orders", "o_w_id", `CREATE TABLE orders (o_id int NOT NULL, o_d_id int NOT NULL, o_w_id int NOT NULL, o_c_id int,
		o_entry_d timestamp, o_carrier_id int, o_ol_cnt int, o_all_local int, PRIMARY KEY (o_w_id, o_d_id, o_id))`},
	{"order_line", "ol_w_id", `CREATE TABLE order_line (ol_o_id int NOT NULL, ol_d_id int NOT NULL, ol_w_id int NOT NULL,
		ol_number int NOT NULL, ol_i_id int, ol_supply_w_id int, ol_delivery_d timestamp, ol_quantity int,
		ol_amount numeric(6,2), ol_dist_info char(24), PRIMARY KEY (ol_w_id, ol_d_id, ol_o_id, ol_number))`},
}

// loadWarehouses is how many warehouses the rows are spread over: each
// INSERT holds one warehouse's rows (as go-tpc loads them), so it goes to
// one shard, except item's, which are distributed by item id and spread
// over every shard.
const loadWarehouses = 8

// loadEnvInt reads a positive integer environment variable, or def.
func loadEnvInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// loadStatement returns INSERT number i (from 0) of load iteration iter:
// 100-300 KB of literal rows of one table. Statement 0 fills warehouse and
// 1 district; the others cycle through item, stock, customer, orders and
// order_line. Keys are unique across statements and iterations.
func loadStatement(iter, i int) string {
	rng := rand.New(rand.NewPCG(uint64(iter), uint64(i)))
	str := func(n int) string {
		const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		var sb strings.Builder
		sb.WriteByte('\'')
		for range n {
			sb.WriteByte(letters[rng.IntN(len(letters))])
		}
		sb.WriteByte('\'')
		return sb.String()
	}
	num := func(max, scale int) string {
		v := rng.IntN(max)
		return fmt.Sprintf("%d.%0*d", v/pow10(scale), scale, v%pow10(scale))
	}
	ts := func() string {
		return fmt.Sprintf("'2026-%02d-%02d %02d:%02d:%02d'", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60))
	}
	w := iter*1000 + 1 + i%loadWarehouses
	base := i * 10_000
	var sb strings.Builder
	switch i {
	case 0:
		sb.WriteString("INSERT INTO warehouse VALUES ")
		for r := range loadWarehouses {
			if r > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "(%d, %s, %s, %s, %s, %s, %s, %s, %s)", iter*1000+1+r, str(8), str(15), str(15), str(12), str(2), str(9), num(2000, 4), num(30000000, 2))
		}
		return sb.String()
	case 1:
		sb.WriteString("INSERT INTO district VALUES ")
		for r := range loadWarehouses * 10 {
			if r > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "(%d, %d, %s, %s, %s, %s, %s, %s, %s, %s, 3001)", 1+r%10, iter*1000+1+r/10, str(8), str(15), str(15), str(12), str(2), str(9), num(2000, 4), num(3000000, 2))
		}
		return sb.String()
	}
	size := 100_000 + rng.IntN(200_001)
	var table string
	var row func(r int) string
	switch i % 10 {
	case 0:
		table = "item"
		row = func(r int) string {
			return fmt.Sprintf("(%d, %d, %s, %s, %s)", iter*10_000_000+base+r, rng.IntN(10000), str(14+rng.IntN(10)), num(10000, 2), str(26+rng.IntN(24)))
		}
	case 1, 2, 3:
		table = "stock"
		row = func(r int) string {
			d := make([]string, 10)
			for j := range d {
				d[j] = str(24)
			}
			return fmt.Sprintf("(%d, %d, %d, %s, 0, 0, 0, %s)", base+r, w, 10+rng.IntN(91), strings.Join(d, ", "), str(26+rng.IntN(24)))
		}
	case 4, 5:
		table = "customer"
		row = func(r int) string {
			return fmt.Sprintf("(%d, %d, %d, %s, 'OE', %s, %s, %s, %s, %s, %s, %s, %s, 'GC', 50000.00, %s, -10.00, 10.00, 1, 0, %s)",
				base+r, 1+r%10, w, str(8+rng.IntN(8)), str(8+rng.IntN(8)), str(15), str(15), str(12), str(2), str(9), str(16), ts(), num(5000, 4), str(300+rng.IntN(200)))
		}
	case 6:
		table = "orders"
		row = func(r int) string {
			return fmt.Sprintf("(%d, %d, %d, %d, %s, %d, %d, 1)", base+r, 1+r%10, w, 1+rng.IntN(3000), ts(), 1+rng.IntN(10), 5+rng.IntN(11))
		}
	default:
		table = "order_line"
		row = func(r int) string {
			return fmt.Sprintf("(%d, %d, %d, %d, %d, %d, %s, 5, %s, %s)", base+r/15, 1+r%10, w, 1+r%15, 1+rng.IntN(100000), w, ts(), num(1000000, 2), str(24))
		}
	}
	sb.WriteString("INSERT INTO " + table + " VALUES ")
	for r := 0; sb.Len() < size; r++ {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(row(r))
	}
	return sb.String()
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// loadResult is what one load measured.
type loadResult struct {
	elapsed time.Duration
	// peakHeap is the highest Go heap (live and not yet collected objects)
	// seen during the load, above the heap after a collection before it.
	peakHeap uint64
	// retained is the live heap after a collection once the load is done,
	// above the same baseline: what the driver keeps.
	retained uint64
	bytes    int64 // of SQL text sent
}

// runLoad sends statements 0..n-1 of iteration iter through db from
// threads goroutines, sampling the heap every millisecond.
func runLoad(b *testing.B, db *sql.DB, iter, n, threads int) loadResult {
	b.Helper()
	const metric = "/memory/classes/heap/objects:bytes"
	read := func(s []metrics.Sample) uint64 {
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	// The first two statements fill warehouse and district, before the rest.
	for i := range 2 {
		if _, err := db.Exec(loadStatement(iter, i)); err != nil {
			b.Fatalf("statement %d: %v", i, err)
		}
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
	var next atomic.Int64
	next.Store(2)
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, threads)
	start := time.Now()
	for range threads {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				q := loadStatement(iter, i)
				sent.Add(int64(len(q)))
				if _, err := db.ExecContext(context.Background(), q); err != nil {
					errs <- fmt.Errorf("statement %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	peak := <-peakc
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	runtime.GC()
	after := read([]metrics.Sample{{Name: metric}})
	r := loadResult{elapsed: elapsed, bytes: sent.Load()}
	if peak > base {
		r.peakHeap = peak - base
	}
	if after > base {
		r.retained = after - base
	}
	return r
}

// BenchmarkLoadLiterals loads the same statements three ways per iteration:
// through pgx's database/sql driver into plain tables on worker 1, and
// through pgshard into the same tables distributed over 16 shards on the 4
// workers, with replication factor 1 and 2. It reports, for each, seconds
// per load, the peak heap and the heap retained after the load, in MB, and
// pgshard's ratios to pgx.
func BenchmarkLoadLiterals(b *testing.B) {
	n := loadEnvInt(b, "PGSHARD_BENCH_LOAD_STATEMENTS", 200)
	threads := loadEnvInt(b, "PGSHARD_BENCH_LOAD_THREADS", 2)
	if n < 3 {
		b.Fatal("PGSHARD_BENCH_LOAD_STATEMENTS must be at least 3")
	}
	e := newEnv(b)
	direct, err := sql.Open("pgx", e.workers[0].DSN(e.dbname))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { direct.Close() })
	dbs := map[string]*sql.DB{"pgx": direct}
	for _, rf := range []int{1, 2} {
		name := fmt.Sprintf("pgshard-rf%d", rf)
		// Each replication factor in its own database.
		re := e
		if rf != 1 {
			re = newEnv(b)
		}
		for _, t := range loadTables {
			re.exec(t.ddl)
			re.exec(`SELECT master_create_distributed_table($1, $2)`, t.name, t.key)
			re.exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', %d, %d)`, t.name, benchShardCount, rf))
		}
		dbs[name] = re.DB
	}
	for _, t := range loadTables {
		if _, err := direct.Exec(t.ddl); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	results := map[string][]loadResult{}
	order := []string{"pgx", "pgshard-rf1", "pgshard-rf2"}
	for iter := 0; iter < b.N; iter++ {
		for _, name := range order {
			r := runLoad(b, dbs[name], iter, n, threads)
			results[name] = append(results[name], r)
			b.Logf("iteration %d, %s: %d statements, %.0f MB of SQL, %.1f s, peak heap %.1f MB, retained %.1f MB",
				iter, name, n, float64(r.bytes)/(1<<20), r.elapsed.Seconds(), float64(r.peakHeap)/(1<<20), float64(r.retained)/(1<<20))
		}
	}
	b.StopTimer()
	mean := func(name string, f func(loadResult) float64) float64 {
		var sum float64
		for _, r := range results[name] {
			sum += f(r)
		}
		return sum / float64(len(results[name]))
	}
	secs := func(r loadResult) float64 { return r.elapsed.Seconds() }
	peak := func(r loadResult) float64 { return float64(r.peakHeap) / (1 << 20) }
	kept := func(r loadResult) float64 { return float64(r.retained) / (1 << 20) }
	for _, name := range order {
		short := strings.TrimPrefix(name, "pgshard-")
		b.ReportMetric(mean(name, secs), short+"-s")
		b.ReportMetric(mean(name, peak), short+"-peak-MB")
		b.ReportMetric(mean(name, kept), short+"-kept-MB")
	}
	for _, name := range order[1:] {
		short := strings.TrimPrefix(name, "pgshard-")
		b.ReportMetric(mean(name, secs)/mean("pgx", secs), short+"/pgx-time")
		b.ReportMetric(mean(name, peak)/max(mean("pgx", peak), 1e-9), short+"/pgx-peak")
	}
	// Every row arrived, through pgshard as directly.
	for _, t := range loadTables {
		var want int64
		if err := direct.QueryRow(`SELECT count(*) FROM ` + t.name).Scan(&want); err != nil {
			b.Fatal(err)
		}
		for _, name := range order[1:] {
			var got int64
			if err := dbs[name].QueryRow(`SELECT count(*) FROM ` + t.name).Scan(&got); err != nil {
				b.Fatal(err)
			}
			if got != want {
				b.Fatalf("%s: %s has %d rows, pgx loaded %d", name, t.name, got, want)
			}
		}
	}
}
