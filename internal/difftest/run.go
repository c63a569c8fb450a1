package difftest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the oracle's driver, "pgx"

	_ "github.com/pgshard/pgshard" // the driver under test, "pgshard"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// Layout is one way of distributing the dataset: people and visits both
// get Shards shards with Replicas placements each. Options are extra DSN
// parameters (URL query syntax) for pgshard and for the oracle it is
// compared with, such as "default_query_exec_mode=simple_protocol" or
// "timezone=Asia/Kathmandu".
type Layout struct {
	Shards, Replicas int
	Options          string
}

// Option sets of DefaultLayouts.
const (
	SimpleProtocol = "default_query_exec_mode=simple_protocol"
	OddTimeZone    = "timezone=Asia/Kathmandu" // UTC+05:45
)

func (l Layout) String() string {
	s := fmt.Sprintf("%dx%d", l.Shards, l.Replicas)
	if l.Options != "" {
		r := strings.NewReplacer(SimpleProtocol, "simple", OddTimeZone, "tz+0545", "&", "+")
		s += "/" + r.Replace(l.Options)
	}
	return s
}

// DefaultLayouts are {1, 3, 16, 32} shards × replication {1, 2}; three of
// them run with pgx's simple protocol, a session time zone of UTC+05:45, or
// both.
var DefaultLayouts = []Layout{
	{1, 1, ""}, {1, 2, SimpleProtocol}, {3, 1, OddTimeZone}, {3, 2, ""},
	{16, 1, SimpleProtocol + "&" + OddTimeZone}, {16, 2, ""}, {32, 1, ""}, {32, 2, ""},
}

// dsnFor adds options to a node's DSN (which has a query part already).
func dsnFor(base, options string) string {
	if options != "" {
		return base + "&" + options
	}
	return base
}

// Config says what Run does.
type Config struct {
	// Nodes are the servers: Nodes[0] holds the metadata databases and the
	// oracle, the others are the workers. Run creates and drops its own
	// databases on them.
	Nodes []*pgtest.Node
	// Layouts to test; DefaultLayouts when empty.
	Layouts []Layout
	// Seed drives the dataset and the generated queries.
	Seed int64
	// People and Visits are the row counts (20000 and 30000 when zero).
	People, Visits int
	// CorpusFile is the path of queries.sql.
	CorpusFile string
	// Generated is how many random queries GenerateQueries adds.
	Generated int
	// Queries, when not nil, replace the corpus file and the generated
	// queries.
	Queries []Query
	// AfterLoad, when set, runs after a layout is loaded and before its
	// queries, with the layout's database name (the same on every node).
	AfterLoad func(ctx context.Context, l Layout, dbname string) error
	// BatchRows is the number of rows per multi-row INSERT (200 when zero);
	// TxBatches is the number of INSERTs per transaction (25 when zero).
	BatchRows, TxBatches int
	// Parallel is the number of queries in flight per layout (2 when zero).
	Parallel int
	// TxEvery runs every TxEvery-th query (by corpus position) inside a
	// transaction of its own, committed after, instead of in autocommit (3
	// when zero; -1 never): pgshard runs multi-shard statements differently
	// in a transaction.
	TxEvery int
	// LayoutParallel is the number of layouts loaded and queried at the same
	// time (2 when zero).
	LayoutParallel int
	// QueryTimeout bounds each query (60s when zero); a timeout is an error.
	QueryTimeout time.Duration
	// Keep leaves the databases in place after Run.
	Keep bool
	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
}

// Outcome classifies pgshard's answer to one query in one layout.
type Outcome int

// The outcomes, in report order.
const (
	Equal   Outcome = iota // answered, equal to the oracle
	Refused                // SQLSTATE 0A000 raised by pgshard itself
	Error                  // any other error, a server's 0A000 included
	Wrong                  // answered, different from the oracle
	numOutcomes
)

func (o Outcome) String() string {
	return [...]string{"equal", "refused", "error", "wrong"}[o]
}

// Finding is one query's outcome in one layout.
type Finding struct {
	Layout  Layout
	Query   Query
	Outcome Outcome
	// Why is the first difference (Wrong) or pgshard's error (Refused, Error).
	Why string
	// Code is the SQLSTATE of pgshard's error, if any.
	Code string
	// InTx is set when the query ran inside a transaction.
	InTx bool
	// Oracle and Got are the two answers (Got is nil unless pgshard answered).
	Oracle, Got *Result
}

// LayoutReport is the outcome of every query in one layout.
type LayoutReport struct {
	Layout   Layout
	Counts   [numOutcomes]int
	Findings []Finding // every query, in corpus order
	Load     time.Duration
	Queries  time.Duration
}

// CorpusBug is a query the oracle itself rejected: the corpus must be fixed.
type CorpusBug struct {
	Query Query
	Err   string
}

// Report is the result of Run.
type Report struct {
	Seed             int64
	People, Visits   int
	CorpusQueries    int
	GeneratedQueries int
	TxEvery          int
	CorpusBugs       []CorpusBug
	Layouts          []*LayoutReport
	Oracle           time.Duration
	Total            time.Duration
}

// Counts sums the outcomes over every layout.
func (r *Report) Counts() [numOutcomes]int {
	var c [numOutcomes]int
	for _, l := range r.Layouts {
		for i, n := range l.Counts {
			c[i] += n
		}
	}
	return c
}

// Failed reports whether any query was answered wrongly, failed with an
// error other than a 0A000 refusal, or was rejected by the oracle.
func (r *Report) Failed() bool {
	c := r.Counts()
	return c[Wrong] > 0 || c[Error] > 0 || len(r.CorpusBugs) > 0
}

func (cfg *Config) defaults() {
	if len(cfg.Layouts) == 0 {
		cfg.Layouts = DefaultLayouts
	}
	if cfg.People == 0 {
		cfg.People = 20000
	}
	if cfg.Visits == 0 {
		cfg.Visits = 30000
	}
	if cfg.BatchRows == 0 {
		cfg.BatchRows = 200
	}
	if cfg.TxBatches == 0 {
		cfg.TxBatches = 25
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 2
	}
	if cfg.TxEvery == 0 {
		cfg.TxEvery = 3
	}
	if cfg.LayoutParallel == 0 {
		cfg.LayoutParallel = 2
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = 60 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
}

// Run loads the dataset into the oracle (database difftest_oracle on
// Nodes[0], loaded with COPY) and, through pgshard, into every layout (a
// database difftest_s<shards>_r<replicas>[_o<hash of options>] on every
// node, loaded with multi-row INSERTs in transactions), runs every query on
// both and returns the report. The error is for failures of the harness
// itself (a server that cannot be reached, a load that fails); pgshard's
// answers, right or wrong, are in the report. Run blocks until done.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	cfg.defaults()
	if len(cfg.Nodes) < 2 {
		return nil, errors.New("difftest: need a metadata node and at least one worker")
	}
	corpus, generated := cfg.Queries, []Query(nil)
	if corpus == nil {
		var err error
		if corpus, err = LoadCorpus(cfg.CorpusFile); err != nil {
			return nil, err
		}
		generated = GenerateQueries(cfg.Seed, cfg.Generated)
	}
	queries := append(append([]Query{}, corpus...), generated...)
	ds := Generate(cfg.Seed, cfg.People, cfg.Visits)
	rep := &Report{Seed: cfg.Seed, People: cfg.People, Visits: cfg.Visits,
		CorpusQueries: len(corpus), GeneratedQueries: len(generated), TxEvery: cfg.TxEvery}

	// The oracle: one plain database on the metadata node.
	t0 := time.Now()
	const oracleDB = "difftest_oracle"
	if err := createDatabase(ctx, cfg.Nodes[0], oracleDB); err != nil {
		return nil, err
	}
	if !cfg.Keep {
		defer dropDatabase(context.WithoutCancel(ctx), cfg.Nodes[0], oracleDB)
	}
	oracle, err := sql.Open("pgx", cfg.Nodes[0].DSN(oracleDB))
	if err != nil {
		return nil, err
	}
	defer oracle.Close()
	for _, t := range ds.Tables() {
		if _, err := oracle.ExecContext(ctx, t.DDL); err != nil {
			return nil, fmt.Errorf("difftest: oracle: %w", err)
		}
	}
	if err := copyAll(ctx, cfg.Nodes[0].DSN(oracleDB), ds); err != nil {
		return nil, fmt.Errorf("difftest: loading the oracle: %w", err)
	}
	if _, err := oracle.ExecContext(ctx, "ANALYZE"); err != nil {
		return nil, fmt.Errorf("difftest: oracle: %w", err)
	}
	// The oracle's answers, per set of options: each layout is compared
	// with the oracle read the same way (protocol, session time zone).
	answers := map[string][]*Result{}
	for _, l := range cfg.Layouts {
		if answers[l.Options] != nil {
			continue
		}
		db := oracle
		if l.Options != "" {
			if db, err = sql.Open("pgx", dsnFor(cfg.Nodes[0].DSN(oracleDB), l.Options)); err != nil {
				return nil, err
			}
			defer db.Close()
		}
		res := make([]*Result, len(queries))
		errs := make([]error, len(queries))
		forEach(len(queries), 2*cfg.Parallel, func(i int) {
			qctx, cancel := context.WithTimeout(ctx, cfg.QueryTimeout)
			defer cancel()
			res[i], errs[i] = fetch(qctx, db, queries[i])
		})
		for i, err := range errs {
			if err != nil {
				mode := ""
				if l.Options != "" {
					mode = " (with " + l.Options + ")"
				}
				rep.CorpusBugs = append(rep.CorpusBugs, CorpusBug{Query: queries[i], Err: err.Error() + mode})
			}
		}
		answers[l.Options] = res
	}
	rep.Oracle = time.Since(t0)
	cfg.Logf("oracle: %d rows loaded, %d queries, %d rejected (corpus bugs), %v",
		len(ds.People.Rows)+len(ds.Visits.Rows)+len(ds.Depts.Rows), len(queries), len(rep.CorpusBugs), rep.Oracle.Round(time.Millisecond))

	// Layouts run cfg.Layouts at a time: one loads while another answers
	// queries (both mostly wait on round trips).
	rep.Layouts = make([]*LayoutReport, len(cfg.Layouts))
	errs := make([]error, len(cfg.Layouts))
	sem := make(chan struct{}, cfg.LayoutParallel)
	var wg sync.WaitGroup
	for i, l := range cfg.Layouts {
		wg.Add(1)
		sem <- struct{}{} // layouts start in order
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			lr, err := runLayout(ctx, &cfg, l, ds, queries, answers[l.Options])
			if err != nil {
				errs[i] = fmt.Errorf("difftest: layout %s: %w", l, err)
				return
			}
			rep.Layouts[i] = lr
			cfg.Logf("layout %s: equal %d, refused %d, error %d, wrong %d (load %v, queries %v)", l,
				lr.Counts[Equal], lr.Counts[Refused], lr.Counts[Error], lr.Counts[Wrong],
				lr.Load.Round(time.Millisecond), lr.Queries.Round(time.Millisecond))
		}()
	}
	wg.Wait()
	rep.Layouts = slices.DeleteFunc(rep.Layouts, func(l *LayoutReport) bool { return l == nil })
	rep.Total = time.Since(start)
	return rep, errors.Join(errs...)
}

func runLayout(ctx context.Context, cfg *Config, l Layout, ds *Dataset, queries []Query, answers []*Result) (*LayoutReport, error) {
	lr := &LayoutReport{Layout: l}
	name := fmt.Sprintf("difftest_s%d_r%d", l.Shards, l.Replicas)
	if l.Options != "" {
		h := fnv.New32a()
		h.Write([]byte(l.Options))
		name += fmt.Sprintf("_o%08x", h.Sum32())
	}
	t0 := time.Now()
	for _, n := range cfg.Nodes {
		if err := createDatabase(ctx, n, name); err != nil {
			return nil, err
		}
		if !cfg.Keep {
			defer dropDatabase(context.WithoutCancel(ctx), n, name)
		}
	}
	db, err := sql.Open("pgshard", dsnFor(cfg.Nodes[0].DSN(name), l.Options))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	exec := func(q string, args ...any) error {
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("%s: %w", oneLine(q, 120), err)
		}
		return nil
	}
	for _, w := range cfg.Nodes[1:] {
		if err := exec(`SELECT master_add_node($1, $2)`, w.Host, w.Port); err != nil {
			return nil, err
		}
	}
	for _, t := range ds.Tables() {
		if err := exec(t.DDL); err != nil {
			return nil, err
		}
		if t.Key == "" {
			continue
		}
		if err := exec(`SELECT master_create_distributed_table($1, $2)`, t.Name, t.Key); err != nil {
			return nil, err
		}
		if err := exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', %d, %d)`, t.Name, l.Shards, l.Replicas)); err != nil {
			return nil, err
		}
	}
	if err := loadAll(ctx, db, ds, cfg); err != nil {
		return nil, fmt.Errorf("loading through pgshard: %w", err)
	}
	if cfg.AfterLoad != nil {
		if err := cfg.AfterLoad(ctx, l, name); err != nil {
			return nil, fmt.Errorf("after load: %w", err)
		}
	}
	lr.Load = time.Since(t0)

	t1 := time.Now()
	var valid []int
	for i := range queries {
		if answers[i] != nil {
			valid = append(valid, i)
		}
	}
	lr.Findings = make([]Finding, len(valid))
	forEach(len(valid), cfg.Parallel, func(k int) {
		i := valid[k]
		inTx := cfg.TxEvery > 0 && i%cfg.TxEvery == cfg.TxEvery-1
		lr.Findings[k] = classify(ctx, cfg, db, l, queries[i], answers[i], inTx)
	})
	for _, f := range lr.Findings {
		lr.Counts[f.Outcome]++
	}
	lr.Queries = time.Since(t1)
	return lr, nil
}

// forEach calls fn(0..n-1) from the given number of goroutines and waits.
func forEach(n, workers int, fn func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}

// classify runs q through pgshard (inside a transaction when inTx) and
// compares with the oracle's answer.
func classify(ctx context.Context, cfg *Config, db *sql.DB, l Layout, q Query, want *Result, inTx bool) Finding {
	f := Finding{Layout: l, Query: q, Oracle: want, InTx: inTx}
	qctx, cancel := context.WithTimeout(ctx, cfg.QueryTimeout)
	defer cancel()
	var got *Result
	var err error
	if inTx {
		got, err = fetchInTx(qctx, db, q)
	} else {
		got, err = fetch(qctx, db, q)
	}
	if err != nil {
		f.Why = err.Error()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			f.Code = pgErr.Code
		}
		switch {
		case f.Code == "0A000" && (pgErr.File != "" || pgErr.Routine != ""):
			// A server's own feature_not_supported (it names its source
			// file and routine; pgshard's refusals do not): pgshard sent
			// a server something it cannot run, it did not refuse.
			f.Outcome = Error
			f.Why = fmt.Sprintf("0A000 raised by a PostgreSQL server (%s), not a pgshard refusal: %s", pgErr.Routine, f.Why)
		case f.Code == "0A000":
			f.Outcome = Refused
		default:
			f.Outcome = Error
		}
		return f
	}
	f.Got = got
	if why := Compare(want, got, q.Ordered); why != "" {
		f.Outcome, f.Why = Wrong, why
	}
	return f
}

// fetchInTx runs q inside a transaction of its own, committed after.
func fetchInTx(ctx context.Context, db *sql.DB, q Query) (*Result, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("BEGIN: %w", err)
	}
	res, err := fetch(ctx, tx, q)
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("COMMIT: %w", err)
	}
	return res, nil
}

// copyAll loads every table of ds into the plain database at dsn with COPY:
// the oracle's data takes a path independent of the driver under test.
func copyAll(ctx context.Context, dsn string, ds *Dataset) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, t := range ds.Tables() {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{t.Name}, t.Columns, pgx.CopyFromRows(t.Rows)); err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	return nil
}

// loadAll loads every table of ds into db, the tables concurrently.
func loadAll(ctx context.Context, db *sql.DB, ds *Dataset, cfg *Config) error {
	tables := ds.Tables()
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := load(ctx, db, t, cfg.BatchRows, cfg.TxBatches); err != nil {
				errs[i] = fmt.Errorf("%s: %w", t.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// load inserts t's rows with multi-row INSERTs of batch rows (parameters),
// batchesPerTx INSERTs per transaction.
func load(ctx context.Context, db *sql.DB, t *Table, batch, batchesPerTx int) error {
	var tx *sql.Tx
	n := 0
	for lo := 0; lo < len(t.Rows); lo += batch {
		hi := min(lo+batch, len(t.Rows))
		if tx == nil {
			var err error
			if tx, err = db.BeginTx(ctx, nil); err != nil {
				return err
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", t.Name, strings.Join(t.Columns, ", "))
		args := make([]any, 0, (hi-lo)*len(t.Columns))
		for r := lo; r < hi; r++ {
			if r > lo {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for c := range t.Columns {
				if c > 0 {
					b.WriteString(", ")
				}
				args = append(args, t.Rows[r][c])
				fmt.Fprintf(&b, "$%d", len(args))
			}
			b.WriteByte(')')
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			tx.Rollback()
			return fmt.Errorf("rows %d..%d: %w", lo, hi-1, err)
		}
		n++
		if n%batchesPerTx == 0 || hi == len(t.Rows) {
			if err := tx.Commit(); err != nil {
				return fmt.Errorf("commit after row %d: %w", hi-1, err)
			}
			tx = nil
		}
	}
	return nil
}

func createDatabase(ctx context.Context, n *pgtest.Node, name string) error {
	conn, err := pgx.Connect(ctx, n.DSN(""))
	if err != nil {
		return fmt.Errorf("difftest: connect %s: %w", n.Addr(), err)
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("difftest: drop database %s on %s: %w", name, n.Addr(), err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return fmt.Errorf("difftest: create database %s on %s: %w", name, n.Addr(), err)
	}
	return nil
}

func dropDatabase(ctx context.Context, n *pgtest.Node, name string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, n.DSN(""))
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// oneLine collapses whitespace (for SQL text) and cuts s to n runes.
func oneLine(s string, n int) string {
	return cut(strings.Join(strings.Fields(s), " "), n)
}

// cut cuts s to n runes.
func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
