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
	// Generated is how many random queries GenerateQueries adds
	// (GenerateSetQueries adds a quarter as many set operations).
	Generated int
	// Queries, when not nil, replace the corpus file and the generated
	// queries.
	Queries []Query
	// AfterLoad, when set, runs after a layout is loaded and before its
	// queries, with the layout's database name (the same on every node).
	AfterLoad func(ctx context.Context, l Layout, dbname string) error
	// Session are statements (SET TimeZone ..., SET search_path ...) run
	// on every connection, the oracle's and pgshard's, before its first
	// use: the settings a client makes after connecting, where a layout's
	// Options are the ones it makes in its DSN. Every load and query of
	// Run goes through such a session.
	Session []string
	// Schema, when set, is the schema the dataset's tables are created in
	// by their unqualified names: the session's search_path (a layout's
	// Options or Session) must put it first, which Run checks on every
	// session. Run creates it, and in public an ordinary table of the same
	// name and columns as each distributed table, holding three of its
	// rows: an unqualified name resolved in the wrong schema answers from
	// these.
	Schema string
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
// Nodes[0], loaded with COPY, cloned per set of layout options as
// difftest_oracle_read[_o<hash of options>] and given the literal rows in a
// session with those options) and, through pgshard, into every layout (a
// database difftest_s<shards>_r<replicas>[_o<hash of options>] on every
// node, loaded with multi-row INSERTs in transactions, then the literal
// rows), runs every query on both, each in a session of cfg.Session, and
// returns the report. The error is for failures of the harness
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
		generated = append(GenerateQueries(cfg.Seed, cfg.Generated), GenerateSetQueries(cfg.Seed, cfg.Generated/4)...)
	}
	queries := append(append([]Query{}, corpus...), generated...)
	ds := Generate(cfg.Seed, cfg.People, cfg.Visits)
	rep := &Report{Seed: cfg.Seed, People: cfg.People, Visits: cfg.Visits,
		CorpusQueries: len(corpus), GeneratedQueries: len(generated), TxEvery: cfg.TxEvery}

	// The oracles: plain databases on the metadata node, one per set of
	// layout options, so that each layout is compared with an oracle loaded
	// and read the same way (protocol, session settings). The typed rows
	// go once, with COPY (a path independent of the driver under test),
	// into a base database that is cloned per set of options; the literal
	// rows are then inserted in a session with those options.
	t0 := time.Now()
	const oracleBase = "difftest_oracle"
	if err := createDatabase(ctx, cfg.Nodes[0], oracleBase, ""); err != nil {
		return nil, err
	}
	if !cfg.Keep {
		defer dropDatabase(context.WithoutCancel(ctx), cfg.Nodes[0], oracleBase)
	}
	if err := loadOracleBase(ctx, &cfg, cfg.Nodes[0].DSN(oracleBase), ds); err != nil {
		return nil, fmt.Errorf("difftest: loading the oracle: %w", err)
	}
	cfg.Logf("oracle: %d rows loaded with COPY in %v", ds.Rows(), time.Since(t0).Round(time.Millisecond))
	answers := map[string][]*Result{}
	for _, l := range cfg.Layouts {
		if answers[l.Options] != nil {
			continue
		}
		name := oracleBase + "_read" + optionsSuffix(l.Options)
		if err := createDatabase(ctx, cfg.Nodes[0], name, oracleBase); err != nil {
			return nil, err
		}
		if !cfg.Keep {
			defer dropDatabase(context.WithoutCancel(ctx), cfg.Nodes[0], name)
		}
		mode := ""
		if l.Options != "" {
			mode = " (with " + l.Options + ")"
		}
		db, err := sql.Open("pgx", dsnFor(cfg.Nodes[0].DSN(name), l.Options))
		if err != nil {
			return nil, err
		}
		defer db.Close()
		if err := errors.Join(loadLiterals(ctx, &cfg, db, ds)...); err != nil {
			return nil, fmt.Errorf("difftest: oracle%s: %w", mode, err)
		}
		res := make([]*Result, len(queries))
		errs := make([]error, len(queries))
		forEachInSession(len(queries), 2*cfg.Parallel, func() (*sql.Conn, error) { return openSession(ctx, db, &cfg) },
			func(sess *sql.Conn, openErr error, i int) bool {
				if openErr != nil {
					errs[i] = openErr
					return false
				}
				qctx, cancel := context.WithTimeout(ctx, cfg.QueryTimeout)
				defer cancel()
				res[i], errs[i] = fetch(qctx, sess, queries[i])
				return errs[i] == nil
			})
		for i, err := range errs {
			if err != nil {
				rep.CorpusBugs = append(rep.CorpusBugs, CorpusBug{Query: queries[i], Err: err.Error() + mode})
			}
		}
		answers[l.Options] = res
		cfg.Logf("oracle%s: answered at %v", mode, time.Since(t0).Round(time.Millisecond))
	}
	rep.Oracle = time.Since(t0)
	cfg.Logf("oracle: %d rows loaded, %d queries, %d rejected (corpus bugs), %v",
		ds.Rows(), len(queries), len(rep.CorpusBugs), rep.Oracle.Round(time.Millisecond))

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
			lr, err := runLayout(ctx, &cfg, l, ds, queries, answers[l.Options], oracleBase+"_read"+optionsSuffix(l.Options))
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

// optionsSuffix names the databases of a set of DSN options: "" for none,
// else "_o" and a hash of them.
func optionsSuffix(options string) string {
	if options == "" {
		return ""
	}
	h := fnv.New32a()
	h.Write([]byte(options))
	return fmt.Sprintf("_o%08x", h.Sum32())
}

func runLayout(ctx context.Context, cfg *Config, l Layout, ds *Dataset, queries []Query, answers []*Result, oracleDB string) (*LayoutReport, error) {
	lr := &LayoutReport{Layout: l}
	name := fmt.Sprintf("difftest_s%d_r%d", l.Shards, l.Replicas) + optionsSuffix(l.Options)
	t0 := time.Now()
	for _, n := range cfg.Nodes {
		if err := createDatabase(ctx, n, name, ""); err != nil {
			return nil, err
		}
		if !cfg.Keep {
			defer dropDatabase(context.WithoutCancel(ctx), n, name)
		}
	}
	if cfg.Schema != "" {
		// The schema and the decoys in public go to the metadata database
		// directly (pgshard creates the schema on the workers with the
		// shards).
		if err := createSchemaAndDecoys(ctx, cfg, cfg.Nodes[0].DSN(name), ds); err != nil {
			return nil, err
		}
	}
	db, err := sql.Open("pgshard", dsnFor(cfg.Nodes[0].DSN(name), l.Options))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	setup, err := openSession(ctx, db, cfg)
	if err != nil {
		return nil, err
	}
	defer setup.Close()
	exec := func(q string, args ...any) error {
		if _, err := setup.ExecContext(ctx, q, args...); err != nil {
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
		if t.Reference {
			if err := exec(`SELECT master_create_reference_table($1)`, t.Name); err != nil {
				return nil, err
			}
			continue
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
	// A load that fails is an error finding, not the end of the layout:
	// the queries then show what the failure did to the answers.
	typedErrs := loadAll(ctx, db, ds, cfg)
	literalErrs := loadLiterals(ctx, cfg, db, ds)
	var loadFindings []Finding
	for i, t := range ds.Tables() {
		for _, e := range []struct {
			name, what string
			err        error
		}{{"load:", "rows", typedErrs[i]}, {"load-literals:", "literal rows", literalErrs[i]}} {
			if e.err != nil {
				loadFindings = append(loadFindings, Finding{Layout: l, Outcome: Error, Why: e.err.Error(),
					Query: Query{Name: e.name + t.Name, SQL: fmt.Sprintf("(loading the %s of %s through pgshard)", e.what, t.Name)}})
			}
		}
	}
	storage, err := checkStorage(ctx, cfg, l, name, oracleDB, ds)
	if err != nil {
		return nil, err
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
	forEachInSession(len(valid), cfg.Parallel, func() (*sql.Conn, error) { return openSession(ctx, db, cfg) },
		func(sess *sql.Conn, openErr error, k int) bool {
			i := valid[k]
			inTx := cfg.TxEvery > 0 && i%cfg.TxEvery == cfg.TxEvery-1
			if openErr != nil {
				lr.Findings[k] = Finding{Layout: l, Query: queries[i], Oracle: answers[i], InTx: inTx,
					Outcome: Error, Why: "opening a session: " + openErr.Error()}
				return false
			}
			lr.Findings[k] = classify(ctx, cfg, sess, l, queries[i], answers[i], inTx)
			// A session that failed a statement starts afresh: a broken
			// connection or an aborted state must not spoil the next query.
			return lr.Findings[k].Got != nil
		})
	lr.Findings = append(append(lr.Findings, loadFindings...), storage...)
	for _, f := range lr.Findings {
		lr.Counts[f.Outcome]++
	}
	lr.Queries = time.Since(t1)
	return lr, nil
}

// checkStorage reads, directly from the servers and bypassing pgshard, the
// rows every distributed table holds in its shard placements and in its
// template table on the metadata database (database dbname on every node),
// and compares them with the oracle's table (database oracleDB on
// Nodes[0]). It returns one finding per table, named "storage:<table>":
// wrong when the shards' first placements together hold other rows than
// the oracle, when another placement differs from its shard's first, or
// when the template holds rows (a write that went there instead of to the
// shards is lost to every distributed read).
func checkStorage(ctx context.Context, cfg *Config, l Layout, dbname, oracleDB string, ds *Dataset) ([]Finding, error) {
	schema := "public"
	if cfg.Schema != "" {
		schema = cfg.Schema
	}
	open := func(n *pgtest.Node, db string) (*sql.DB, error) { return sql.Open("pgx", n.DSN(db)) }
	meta, err := open(cfg.Nodes[0], dbname)
	if err != nil {
		return nil, err
	}
	defer meta.Close()
	oracle, err := open(cfg.Nodes[0], oracleDB)
	if err != nil {
		return nil, err
	}
	defer oracle.Close()
	workers := map[int]*sql.DB{}
	for _, n := range cfg.Nodes[1:] {
		db, err := open(n, dbname)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		workers[n.Port] = db
	}
	var out []Finding
	for _, t := range ds.Tables() {
		if t.Key == "" && !t.Reference {
			continue
		}
		qualified := pgx.Identifier{schema, t.Name}.Sanitize()
		cols := strings.Join(t.Columns, ", ")
		f := Finding{Layout: l, Outcome: Equal, Query: Query{Name: "storage:" + t.Name,
			SQL: fmt.Sprintf("SELECT %s FROM <each shard placement of %s, read on its worker>, and the template %s on the metadata database", cols, qualified, qualified)}}
		want, err := fetch(ctx, oracle, Query{SQL: fmt.Sprintf("SELECT %s FROM %s", cols, qualified)})
		if err != nil {
			return nil, fmt.Errorf("storage check: oracle %s: %w", t.Name, err)
		}
		f.Oracle = want
		template, err := fetch(ctx, meta, Query{SQL: fmt.Sprintf("SELECT %s FROM ONLY %s", cols, qualified)})
		if err != nil {
			return nil, fmt.Errorf("storage check: template %s: %w", t.Name, err)
		}
		pls, err := finalizedPlacements(ctx, meta, qualified)
		if err != nil {
			return nil, fmt.Errorf("storage check: %w", err)
		}
		got := &Result{Columns: want.Columns, Types: want.Types}
		first := map[int64]*Result{}
		for _, p := range pls {
			w := workers[p.port]
			if w == nil {
				return nil, fmt.Errorf("storage check: %s has a placement on port %d, which is no worker", t.Name, p.port)
			}
			shardTable := pgx.Identifier{schema, fmt.Sprintf("%s_%d", t.Name, p.shard)}.Sanitize()
			res, err := fetch(ctx, w, Query{SQL: fmt.Sprintf("SELECT %s FROM %s", cols, shardTable)})
			if err != nil {
				return nil, fmt.Errorf("storage check: %s on port %d: %w", shardTable, p.port, err)
			}
			if prev := first[p.shard]; prev != nil {
				if why := Compare(prev, res, false); why != "" && f.Outcome == Equal {
					f.Outcome, f.Why = Wrong, fmt.Sprintf("placements of shard %d differ: on port %d %s", p.shard, p.port, why)
				}
				continue
			}
			first[p.shard] = res
			got.Rows = append(got.Rows, res.Rows...)
		}
		f.Got = got
		switch {
		case len(template.Rows) > 0:
			f.Outcome, f.Why = Wrong, fmt.Sprintf("the template table %s on the metadata database holds %d rows (writes that never reached the shards)", qualified, len(template.Rows))
			f.Got = template
		case f.Outcome == Equal:
			if why := Compare(want, got, false); why != "" {
				f.Outcome, f.Why = Wrong, "the shards together hold other rows than the oracle: "+why
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// openSession takes a connection of db and runs cfg.Session on it; with
// cfg.Schema set, it checks that the session's current_schema() is that
// schema. The caller closes the connection.
func openSession(ctx context.Context, db *sql.DB, cfg *Config) (*sql.Conn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, stmt := range cfg.Session {
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			c.Close()
			return nil, fmt.Errorf("session statement %s: %w", stmt, err)
		}
	}
	if cfg.Schema != "" {
		var cur sql.NullString
		if err := c.QueryRowContext(ctx, "SELECT current_schema()").Scan(&cur); err != nil {
			c.Close()
			return nil, fmt.Errorf("reading current_schema(): %w", err)
		}
		if cur.String != cfg.Schema {
			c.Close()
			return nil, fmt.Errorf("the session's search_path does not put schema %q first (current_schema() is %q): set it in the layout's options or in Config.Session", cfg.Schema, cur.String)
		}
	}
	return c, nil
}

// forEachInSession calls fn(sess, openErr, i) for every i in 0..n-1 from
// the given number of goroutines, each with a session of its own opened by
// open, and waits. A worker whose fn returns false (the session may be
// spoiled) closes its session and opens another for its next call; a
// session that cannot be opened is passed as nil with openErr.
func forEachInSession(n, workers int, open func() (*sql.Conn, error), fn func(sess *sql.Conn, openErr error, i int) bool) {
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sess *sql.Conn
			defer func() {
				if sess != nil {
					sess.Close()
				}
			}()
			for i := range work {
				var openErr error
				if sess == nil {
					sess, openErr = open()
				}
				if !fn(sess, openErr, i) && sess != nil {
					sess.Close()
					sess = nil
				}
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
func classify(ctx context.Context, cfg *Config, db session, l Layout, q Query, want *Result, inTx bool) Finding {
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

// session is what *sql.DB and *sql.Conn have in common.
type session interface {
	queryer
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// fetchInTx runs q inside a transaction of its own, committed after.
func fetchInTx(ctx context.Context, db session, q Query) (*Result, error) {
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

// loadOracleBase creates the dataset's tables in the plain database at dsn
// (in cfg.Schema, with the decoys in public, when set) and loads their
// typed rows with COPY: the oracle's data takes a path independent of the
// driver under test. The literal rows are left to loadLiterals.
func loadOracleBase(ctx context.Context, cfg *Config, dsn string, ds *Dataset) error {
	if cfg.Schema != "" {
		if err := createSchemaAndDecoys(ctx, cfg, dsn, ds); err != nil {
			return err
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	schema := "public"
	if cfg.Schema != "" {
		schema = cfg.Schema
	}
	if _, err := conn.Exec(ctx, "SELECT set_config('search_path', $1, false)", pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	for _, t := range ds.Tables() {
		if _, err := conn.Exec(ctx, t.DDL); err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{schema, t.Name}, t.Columns, pgx.CopyFromRows(t.Rows)); err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	_, err = conn.Exec(ctx, "ANALYZE")
	return err
}

// createSchemaAndDecoys creates cfg.Schema in the database at dsn and, in
// public, a decoy for each distributed table of ds: an ordinary table of
// the same name and columns holding the table's first three rows.
func createSchemaAndDecoys(ctx context.Context, cfg *Config, dsn string, ds *Dataset) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{cfg.Schema}.Sanitize()); err != nil {
		return fmt.Errorf("creating schema %s: %w", cfg.Schema, err)
	}
	if _, err := conn.Exec(ctx, "SET search_path TO public"); err != nil {
		return err
	}
	for _, t := range ds.Tables() {
		if t.Key == "" && !t.Reference {
			continue
		}
		if _, err := conn.Exec(ctx, t.DDL); err != nil {
			return fmt.Errorf("decoy %s: %w", t.Name, err)
		}
		rows := t.Rows[:min(3, len(t.Rows))]
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"public", t.Name}, t.Columns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("decoy %s: %w", t.Name, err)
		}
	}
	return nil
}

// loadLiterals inserts every table's literal rows into db, one INSERT
// each, in one session (cfg.Session), so that the server reads them under
// that session's settings. It returns an error per table (nil when all its
// rows went in), in ds.Tables() order; a failed row does not stop the
// others.
func loadLiterals(ctx context.Context, cfg *Config, db *sql.DB, ds *Dataset) []error {
	tables := ds.Tables()
	errs := make([]error, len(tables))
	sess, err := openSession(ctx, db, cfg)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	defer sess.Close()
	for i, t := range tables {
		failed := 0
		for _, row := range t.Literals {
			q := fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", t.Name, strings.Join(t.Columns, ", "), row)
			if _, err := sess.ExecContext(ctx, q); err != nil {
				failed++
				if errs[i] == nil {
					errs[i] = fmt.Errorf("literal row %s: %w", q, err)
				}
			}
		}
		if failed > 1 {
			errs[i] = fmt.Errorf("%d of %d literal rows failed, the first: %w", failed, len(t.Literals), errs[i])
		}
	}
	return errs
}

// loadAll loads the typed rows of every table of ds into db, the tables
// concurrently, each in a session of its own (cfg.Session). It returns an
// error per table (nil when it loaded), in ds.Tables() order.
func loadAll(ctx context.Context, db *sql.DB, ds *Dataset, cfg *Config) []error {
	tables := ds.Tables()
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess, err := openSession(ctx, db, cfg)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", t.Name, err)
				return
			}
			defer sess.Close()
			if err := load(ctx, sess, t, cfg.BatchRows, cfg.TxBatches); err != nil {
				errs[i] = fmt.Errorf("%s: %w", t.Name, err)
			}
		}()
	}
	wg.Wait()
	return errs
}

// load inserts t's rows with multi-row INSERTs of batch rows (parameters),
// batchesPerTx INSERTs per transaction.
func load(ctx context.Context, db session, t *Table, batch, batchesPerTx int) error {
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

// createDatabase (re)creates database name on n, as a copy of template
// when template is not "".
func createDatabase(ctx context.Context, n *pgtest.Node, name, template string) error {
	conn, err := pgx.Connect(ctx, n.DSN(""))
	if err != nil {
		return fmt.Errorf("difftest: connect %s: %w", n.Addr(), err)
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("difftest: drop database %s on %s: %w", name, n.Addr(), err)
	}
	create := "CREATE DATABASE " + id
	if template != "" {
		create += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, create); err != nil {
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

// placement is one finalized placement of a shard: the shard's id and its
// worker's port.
type placement struct {
	shard int64
	port  int
}

// finalizedPlacements lists the finalized placements of table (a regclass
// text) from the metadata database, by shard id then placement id.
func finalizedPlacements(ctx context.Context, meta *sql.DB, table string) ([]placement, error) {
	rows, err := meta.QueryContext(ctx, `SELECT s.id, p.node_port FROM pgs_distribution_metadata.shard s
		JOIN pgs_distribution_metadata.shard_placement p ON p.shard_id = s.id
		WHERE s.relation_id = $1::regclass AND p.shard_state = 1 ORDER BY s.id, p.id`, table)
	if err != nil {
		return nil, fmt.Errorf("placements of %s: %w", table, err)
	}
	defer rows.Close()
	var pls []placement
	for rows.Next() {
		var p placement
		if err := rows.Scan(&p.shard, &p.port); err != nil {
			return nil, fmt.Errorf("placements of %s: %w", table, err)
		}
		pls = append(pls, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("placements of %s: %w", table, err)
	}
	return pls, nil
}
