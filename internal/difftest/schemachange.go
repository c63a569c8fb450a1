package difftest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// SchemaStep is one step of a schema-change run (RunSchemaSteps): statements
// applied to the oracle and through pgshard, then queries read on both.
type SchemaStep struct {
	Name  string
	Stmts []SchemaStmt
	// InTx runs Stmts in one transaction on each side; Rollback ends it with
	// ROLLBACK (nothing may change on either side), else COMMIT.
	InTx, Rollback bool
	// Align, when set, is a query through pgshard returning one value whose
	// text is then bound as $1 to AlignOracle on the oracle: the value a
	// non-constant default (now()) got once on pgshard is given to the
	// oracle's rows too. If pgshard gave its rows several values, the storage
	// check and the step's queries see the difference.
	Align, AlignOracle string
	// Renames maps a table's name before the step to its name after it.
	Renames map[string]string
	// Queries are read after the step besides the corpus subset.
	Queries []Query
}

// SchemaStmt is one statement of a SchemaStep. With Code set both sides must
// fail with that SQLSTATE; with Code "0A000" pgshard must refuse it (its own
// refusal, not a server's) and the oracle is not asked, so that both keep
// the same shape.
type SchemaStmt struct {
	SQL  string
	Code string
}

// StepReport is the outcome of one SchemaStep: the statements' findings
// (named "stmt:<n>"), the queries' and the storage check's, and Skipped,
// the corpus queries the oracle itself rejected on the step's shape (a
// column or table gone): neither passes nor failures.
type StepReport struct {
	Step    string
	Counts  [numOutcomes]int
	Skipped int
	// SkippedWhy names each skipped query and the oracle's error.
	SkippedWhy []string
	Findings   []Finding
}

func (s *StepReport) add(f Finding) {
	s.Findings = append(s.Findings, f)
	s.Counts[f.Outcome]++
}

// Summary is the step's one-line count of outcomes.
func (s *StepReport) Summary() string {
	return fmt.Sprintf("step %-22s equal %4d  refused %3d  error %3d  wrong %3d  skipped %3d",
		s.Step, s.Counts[Equal], s.Counts[Refused], s.Counts[Error], s.Counts[Wrong], s.Skipped)
}

// schemaRun holds one schema-change run: pgshard's and the oracle's
// databases and the current names of the dataset's tables. It is used by
// one goroutine (the queries of a step fan out inside runQueries).
type schemaRun struct {
	cfg           *Config
	layout        Layout
	dbname        string // the layout's database on every node
	oracleDB      string // the oracle's database on Nodes[0]
	ds            *Dataset
	shardDSN      string
	oracleDSN     string
	shard, oracle *sql.DB
	ddlShard      *sql.Conn // the session DDL runs in on pgshard
	// kept is a pgshard session of its own Connector (another process's)
	// opened before the first step and kept across them: it reads each
	// step's queries before and after the step, so its worker connections
	// hold statements prepared on the shape before the step.
	kept           *sql.Conn
	names          map[string]string
	baselineFailed map[string]bool // corpus queries the oracle rejects before any step
}

// execBoth runs one statement of a step on pgshard then (unless pgshard
// refused it) on the oracle, each with exec, and classifies the pair.
func (r *schemaRun) execBoth(ctx context.Context, n int, st SchemaStmt, execShard, execOracle func(string) error) (Finding, bool) {
	f := Finding{Layout: r.layout, Query: Query{Name: fmt.Sprintf("stmt:%d", n), SQL: st.SQL}, Outcome: Equal}
	errS := execShard(st.SQL)
	codeS, ownS := sqlState(errS)
	if errS != nil && codeS == "0A000" && ownS {
		f.Outcome, f.Code, f.Why = Refused, codeS, errS.Error()
		return f, true
	}
	if st.Code == "0A000" {
		f.Outcome, f.Code = Wrong, codeS
		f.Why = fmt.Sprintf("pgshard did not refuse (error %v), the oracle was not asked: the two sides may now differ", errS)
		return f, false
	}
	errO := execOracle(st.SQL)
	codeO, _ := sqlState(errO)
	f.Code = codeS
	switch {
	case errS == nil && errO == nil:
		if st.Code != "" {
			f.Outcome, f.Why = Error, fmt.Sprintf("both sides succeeded, the step wants SQLSTATE %s (fix the step)", st.Code)
		}
	case errS != nil && errO != nil:
		if codeS != codeO {
			f.Outcome, f.Why = Error, fmt.Sprintf("pgshard failed with %s (%v), the oracle with %s (%v)", codeS, errS, codeO, errO)
		} else if st.Code != "" && codeS != st.Code {
			f.Outcome, f.Why = Error, fmt.Sprintf("both failed with %s, the step wants %s: %v", codeS, st.Code, errO)
		} else if st.Code == "" {
			f.Outcome, f.Why = Error, fmt.Sprintf("both failed with %s (the oracle: %v)", codeS, errO)
		}
	case errS != nil:
		f.Outcome, f.Why = Wrong, fmt.Sprintf("pgshard failed (%v) where the oracle succeeded: the two sides now differ", errS)
		return f, false
	default:
		f.Outcome, f.Why = Wrong, fmt.Sprintf("pgshard succeeded where the oracle failed with %s (%v): the two sides now differ", codeO, errO)
		return f, false
	}
	return f, true
}

// code returns err's SQLSTATE, "" when it has none.
func code(err error) string {
	c, _ := sqlState(err)
	return c
}

// sqlState returns err's SQLSTATE and whether pgshard raised it itself (a
// server's error names its source file and routine, pgshard's do not).
func sqlState(err error) (code string, own bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code, pgErr.File == "" && pgErr.Routine == ""
	}
	return "", false
}

// applyStep runs a step's statements on both sides. It returns false when
// the two sides may now have different shapes or rows (the run stops).
func (r *schemaRun) applyStep(ctx context.Context, step SchemaStep, rep *StepReport) (bool, error) {
	execShard := func(q string) error { _, err := r.ddlShard.ExecContext(ctx, q); return err }
	execOracle := func(q string) error { _, err := r.oracle.ExecContext(ctx, q); return err }
	var txS, txO *sql.Tx
	if step.InTx {
		var err error
		if txS, err = r.ddlShard.BeginTx(ctx, nil); err != nil {
			return false, fmt.Errorf("BEGIN through pgshard: %w", err)
		}
		if txO, err = r.oracle.BeginTx(ctx, nil); err != nil {
			txS.Rollback()
			return false, fmt.Errorf("BEGIN on the oracle: %w", err)
		}
		// A failed statement aborts the transaction: later statements then
		// fail alike on both sides (25P02).
		execShard = func(q string) error { _, err := txS.ExecContext(ctx, q); return err }
		execOracle = func(q string) error { _, err := txO.ExecContext(ctx, q); return err }
	}
	ok := true
	for i, st := range step.Stmts {
		f, same := r.execBoth(ctx, i+1, st, execShard, execOracle)
		rep.add(f)
		if !same {
			ok = false
			break
		}
	}
	if step.InTx {
		end := func(tx *sql.Tx) error {
			if step.Rollback {
				return tx.Rollback()
			}
			return tx.Commit()
		}
		errS, errO := end(txS), end(txO)
		if (errS == nil) != (errO == nil) {
			rep.add(Finding{Layout: r.layout, Outcome: Wrong, Query: Query{Name: "stmt:end", SQL: "COMMIT or ROLLBACK"},
				Why: fmt.Sprintf("pgshard: %v, the oracle: %v", errS, errO)})
			ok = false
		}
	}
	if ok && step.Align != "" {
		var v sql.NullString
		if err := r.shard.QueryRowContext(ctx, step.Align).Scan(&v); err != nil {
			return false, fmt.Errorf("align %s: %w", step.Align, err)
		}
		if _, err := r.oracle.ExecContext(ctx, step.AlignOracle, v); err != nil {
			return false, fmt.Errorf("align %s: %w", step.AlignOracle, err)
		}
	}
	if ok {
		for from, to := range step.Renames {
			for orig, cur := range r.names {
				if cur == from {
					r.names[orig] = to
				}
			}
		}
	}
	return ok, nil
}

// runQueries answers queries on the oracle, then through pgshard (every
// TxEvery-th inside a transaction), and adds the findings to rep. A
// query the oracle rejects is skipped when it is a corpus query the
// oracle answered before any step and the oracle's error is of class 42
// (an undefined column or table, an operator or function the changed type
// lacks) or 22 (a value of the changed type that a cast rejects): the step
// removed what it reads. pgshard must then fail it too (any error; an
// answer is wrong). Any other rejection is a bug of the corpus or of the
// step and counts as an error.
func (r *schemaRun) runQueries(ctx context.Context, queries []Query, corpus bool, rep *StepReport) {
	// Every side answers in sessions opened for these queries: a session
	// that prepared a statement before a column's type changed fails it
	// once, on a plain server too ("cached plan must not change result
	// type", 0A000), which is not what this test compares.
	oracle, err := sql.Open("pgx", r.oracleDSN)
	if err != nil {
		rep.add(Finding{Layout: r.layout, Outcome: Error, Query: Query{Name: "oracle"}, Why: err.Error()})
		return
	}
	defer oracle.Close()
	answers := make([]*Result, len(queries))
	oerrs := make([]error, len(queries))
	forEachInSession(len(queries), 2*r.cfg.Parallel, func() (*sql.Conn, error) { return openSession(ctx, oracle, r.cfg) },
		func(sess *sql.Conn, openErr error, i int) bool {
			if openErr != nil {
				oerrs[i] = openErr
				return false
			}
			qctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
			defer cancel()
			answers[i], oerrs[i] = fetch(qctx, sess, queries[i])
			return oerrs[i] == nil
		})
	var valid, skip []int
	for i, err := range oerrs {
		switch c := code(err); {
		case err == nil:
			valid = append(valid, i)
		case corpus && !r.baselineFailed[queries[i].Name] && (strings.HasPrefix(c, "42") || strings.HasPrefix(c, "22")):
			skip = append(skip, i)
		default:
			rep.add(Finding{Layout: r.layout, Query: queries[i], Outcome: Error,
				Why: "the oracle rejected the query (a bug of the step's queries or of the corpus): " + err.Error()})
		}
	}
	// pgshard answers in sessions opened for these queries too, and, for
	// the step's own queries, in the session kept from before the step
	// (r.kept), which must not fail where the fresh ones answer.
	shard, err := sql.Open("pgshard", r.shardDSN)
	if err != nil {
		rep.add(Finding{Layout: r.layout, Outcome: Error, Query: Query{Name: "pgshard"}, Why: err.Error()})
		return
	}
	defer shard.Close()
	// The queries the oracle rejects run too: pgshard must reject them as
	// well (an answer means it read a column or table the step removed).
	run := append(slices.Clone(valid), skip...)
	found := make([]Finding, len(run))
	forEachInSession(len(run), r.cfg.Parallel, func() (*sql.Conn, error) { return openSession(ctx, shard, r.cfg) },
		func(sess *sql.Conn, openErr error, k int) bool {
			i := run[k]
			inTx := r.cfg.TxEvery > 0 && i%r.cfg.TxEvery == r.cfg.TxEvery-1
			if openErr != nil {
				found[k] = Finding{Layout: r.layout, Query: queries[i], Oracle: answers[i], InTx: inTx,
					Outcome: Error, Why: "opening a session: " + openErr.Error()}
				return false
			}
			if k >= len(valid) {
				qctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
				defer cancel()
				got, err := fetch(qctx, sess, queries[i])
				found[k] = Finding{Layout: r.layout, Query: queries[i], Outcome: Equal, Got: got, Why: fmt.Sprint(err)}
				if err == nil {
					found[k].Outcome = Wrong
					found[k].Why = "pgshard answered a query the oracle rejects on this shape: " + oerrs[i].Error()
				}
				return err == nil
			}
			found[k] = classify(ctx, r.cfg, sess, r.layout, queries[i], answers[i], inTx)
			return found[k].Got != nil
		})
	if !corpus {
		// The session opened before the step answers alike, at the first
		// try: no 0A000 "cached plan must not change result type" from its
		// worker statements, no shard shape mismatch (issue 12).
		for _, i := range valid {
			inTx := r.cfg.TxEvery > 0 && i%r.cfg.TxEvery == r.cfg.TxEvery-1
			f := classify(ctx, r.cfg, r.kept, r.layout, queries[i], answers[i], inTx)
			f.Query.Name += " (session opened before the step)"
			rep.add(f)
		}
	}
	for k, f := range found {
		if k >= len(valid) && f.Outcome == Equal {
			rep.Skipped++
			rep.SkippedWhy = append(rep.SkippedWhy, fmt.Sprintf("%s: the oracle: %v; pgshard: %s", f.Query.Name, oerrs[run[k]], f.Why))
			continue
		}
		rep.add(f)
	}
}

// readBefore reads queries through the kept session before a step, so
// that its worker connections prepare them on the shape before the step;
// their answers and errors (a query may read what only the step makes)
// are not compared.
func (r *schemaRun) readBefore(ctx context.Context, queries []Query) {
	for _, q := range queries {
		qctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
		_, _ = fetch(qctx, r.kept, q)
		cancel()
	}
}

// shape returns the dataset as the oracle holds it now: each table under
// its current name with its current columns (read from the oracle's
// catalog); a table that is gone keeps no key, so the storage check passes
// it by.
func (r *schemaRun) shape(ctx context.Context) (*Dataset, error) {
	cur := func(t *Table) (*Table, error) {
		c := *t
		c.Name = r.names[t.Name]
		c.Columns = nil
		rows, err := r.oracle.QueryContext(ctx, `SELECT a.attname FROM pg_attribute a
			WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, c.Name)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var col string
			if err := rows.Scan(&col); err != nil {
				return nil, err
			}
			c.Columns = append(c.Columns, col)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(c.Columns) == 0 {
			c.Key, c.Reference = "", false
		}
		return &c, nil
	}
	out := &Dataset{}
	for _, p := range []struct {
		dst **Table
		src *Table
	}{{&out.People, r.ds.People}, {&out.Visits, r.ds.Visits}, {&out.Events, r.ds.Events}, {&out.Days, r.ds.Days},
		{&out.Stamps, r.ds.Stamps}, {&out.Ranks, r.ds.Ranks}, {&out.Depts, r.ds.Depts}} {
		t, err := cur(p.src)
		if err != nil {
			return nil, err
		}
		*p.dst = t
	}
	return out, nil
}

// checkShapes compares, for every distributed and reference table of ds,
// the columns (name, type, NOT NULL), indexes and constraints of each
// shard placement (read on its worker), and of the template table on the metadata database, with the
// oracle's table: a schema change that missed a
// placement, or one rolled back on the oracle but not on a placement,
// shows here. It returns one finding per table, named "shape:<table>".
func (r *schemaRun) checkShapes(ctx context.Context, ds *Dataset) ([]Finding, error) {
	// Index and constraint names differ between a table and its shards
	// (pgshard suffixes them with the shard id), so indexes are described
	// by their columns and predicate, foreign keys by their kind alone
	// (their definition names the shard of the referenced table).
	const cols = `SELECT 'column', a.attname::text, format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		UNION ALL
		SELECT CASE WHEN i.indisprimary THEN 'primary key' WHEN i.indisunique THEN 'unique index' ELSE 'index' END,
			(SELECT string_agg(a.attname, ', ' ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
				JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum),
			coalesce(pg_get_expr(i.indpred, i.indrelid, true), '') || CASE WHEN i.indisvalid THEN '' ELSE ' invalid' END
		FROM pg_index i WHERE i.indrelid = to_regclass($1)
		UNION ALL
		SELECT 'constraint ' || c.contype::text, CASE WHEN c.contype = 'f' THEN '' ELSE pg_get_constraintdef(c.oid, true) END,
			CASE WHEN c.convalidated THEN '' ELSE 'not valid' END
		FROM pg_constraint c WHERE c.conrelid = to_regclass($1)`
	want := func(db queryer, table string) (*Result, error) {
		return fetch(ctx, db, Query{SQL: cols, Args: []any{table}})
	}
	meta, err := sql.Open("pgx", r.cfg.Nodes[0].DSN(r.dbname))
	if err != nil {
		return nil, err
	}
	defer meta.Close()
	workers := map[int]*sql.DB{}
	for _, n := range r.cfg.Nodes[1:] {
		db, err := sql.Open("pgx", n.DSN(r.dbname))
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
		f := Finding{Layout: r.layout, Outcome: Equal, Query: Query{Name: "shape:" + t.Name,
			SQL: fmt.Sprintf("the columns, indexes and constraints of each shard placement of %s and of its template against the oracle's", t.Name)}}
		w, err := want(r.oracle, t.Name)
		if err != nil {
			return nil, fmt.Errorf("shape of %s on the oracle: %w", t.Name, err)
		}
		f.Oracle = w
		pls, err := finalizedPlacements(ctx, meta, t.Name)
		if err != nil {
			return nil, err
		}
		if len(pls) == 0 {
			f.Outcome, f.Why = Wrong, "no finalized placement"
		}
		tmpl, err := want(meta, t.Name)
		if err != nil {
			return nil, fmt.Errorf("shape of the template %s: %w", t.Name, err)
		}
		if why := Compare(w, tmpl, false); why != "" {
			f.Outcome, f.Why, f.Got = Wrong, fmt.Sprintf("the template %s on the metadata database: %s", t.Name, why), tmpl
			pls = nil
		}
		for _, p := range pls {
			db := workers[p.port]
			if db == nil {
				return nil, fmt.Errorf("%s has a placement on port %d, which is no worker", t.Name, p.port)
			}
			g, err := want(db, fmt.Sprintf("%s_%d", t.Name, p.shard))
			if err != nil {
				return nil, fmt.Errorf("shape of %s_%d on port %d: %w", t.Name, p.shard, p.port, err)
			}
			if why := Compare(w, g, false); why != "" {
				f.Outcome, f.Why, f.Got = Wrong, fmt.Sprintf("placement %s_%d on port %d: %s", t.Name, p.shard, p.port, why), g
				break
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// corpusSubset returns the corpus queries step k reads: every n-th, from
// the k-th on, so that consecutive steps read different queries.
func corpusSubset(corpus []Query, k, n int) []Query {
	var out []Query
	for i := k % n; i < len(corpus); i += n {
		out = append(out, corpus[i])
	}
	return out
}

// RunSchemaSteps is a schema-change run: it loads the dataset into the
// oracle and into the one layout of cfg (Run with cfg.Layouts of length
// one, no queries), then, after the load and before the databases are
// dropped, applies each step to both sides and, after each, reads the
// step's queries and a subset of the corpus (every every-th query, from
// the step's index on) on both, checks the shape of every placement and
// the rows stored in them (checkStorage). A step whose statements leave
// the two sides different ends the run. It returns a report per step (the
// first, "load", is the load's storage check) and the error of the
// harness, if any. corpus queries the oracle rejects before any step are
// reported as errors in the load step.
func RunSchemaSteps(ctx context.Context, cfg Config, corpus []Query, every int, steps []SchemaStep) ([]*StepReport, error) {
	if len(cfg.Layouts) != 1 {
		return nil, errors.New("difftest: a schema-change run takes one layout")
	}
	cfg.defaults()
	var reports []*StepReport
	ds := Generate(cfg.Seed, cfg.People, cfg.Visits)
	cfg.Queries = []Query{}
	cfg.AfterLoad = func(ctx context.Context, l Layout, dbname string) error {
		r := &schemaRun{cfg: &cfg, layout: l, dbname: dbname, oracleDB: "difftest_oracle_read" + optionsSuffix(l.Options), ds: ds,
			names: map[string]string{}, baselineFailed: map[string]bool{}}
		for _, t := range ds.Tables() {
			r.names[t.Name] = t.Name
		}
		r.shardDSN = dsnFor(cfg.Nodes[0].DSN(dbname), l.Options)
		var err error
		if r.shard, err = sql.Open("pgshard", r.shardDSN); err != nil {
			return err
		}
		defer r.shard.Close()
		r.oracleDSN = dsnFor(cfg.Nodes[0].DSN(r.oracleDB), l.Options)
		if r.oracle, err = sql.Open("pgx", r.oracleDSN); err != nil {
			return err
		}
		defer r.oracle.Close()
		if r.ddlShard, err = openSession(ctx, r.shard, &cfg); err != nil {
			return err
		}
		defer r.ddlShard.Close()
		keptDB, err := sql.Open("pgshard", r.shardDSN)
		if err != nil {
			return err
		}
		defer keptDB.Close()
		if r.kept, err = openSession(ctx, keptDB, &cfg); err != nil {
			return err
		}
		defer r.kept.Close()
		load := &StepReport{Step: "load"}
		for _, q := range corpus {
			if _, err := fetch(ctx, r.oracle, q); err != nil {
				r.baselineFailed[q.Name] = true
				load.add(Finding{Layout: l, Query: q, Outcome: Error, Why: "the oracle rejected a corpus query before any step: " + err.Error()})
			}
		}
		if err := r.check(ctx, load); err != nil {
			return err
		}
		reports = append(reports, load)
		cfg.Logf("%s", load.Summary())
		for k, step := range steps {
			rep := &StepReport{Step: step.Name}
			reports = append(reports, rep)
			r.readBefore(ctx, step.Queries)
			same, err := r.applyStep(ctx, step, rep)
			if err != nil {
				return fmt.Errorf("step %s: %w", step.Name, err)
			}
			if !same {
				cfg.Logf("%s (the two sides now differ: run ended)", rep.Summary())
				return nil
			}
			r.runQueries(ctx, step.Queries, false, rep)
			r.runQueries(ctx, corpusSubset(corpus, k, every), true, rep)
			if err := r.check(ctx, rep); err != nil {
				return fmt.Errorf("step %s: %w", step.Name, err)
			}
			cfg.Logf("%s", rep.Summary())
		}
		return nil
	}
	_, err := Run(ctx, cfg)
	return reports, err
}

// check adds the shape and storage checks of the current shape to rep.
func (r *schemaRun) check(ctx context.Context, rep *StepReport) error {
	ds, err := r.shape(ctx)
	if err != nil {
		return fmt.Errorf("reading the oracle's shape: %w", err)
	}
	shapes, err := r.checkShapes(ctx, ds)
	if err != nil {
		return err
	}
	// The rows of a table whose placements have other columns than the
	// oracle's cannot be read alike: its shape finding stands for it.
	for _, f := range shapes {
		if f.Outcome == Equal {
			continue
		}
		for _, t := range ds.Tables() {
			if "shape:"+t.Name == f.Query.Name {
				t.Key, t.Reference = "", false
			}
		}
	}
	dropped, err := r.checkDropped(ctx, ds)
	if err != nil {
		return err
	}
	shapes = append(shapes, dropped...)
	storage, err := checkStorage(ctx, r.cfg, r.layout, r.dbname, r.oracleDB, ds)
	if err != nil {
		return err
	}
	for _, f := range slices.Concat(shapes, storage) {
		rep.add(f)
	}
	return nil
}

// ShowFindings renders the findings of a step that are not equal, each
// with its SQL, why, and both answers cut to a few rows.
func (s *StepReport) ShowFindings() string {
	var b strings.Builder
	for _, f := range s.Findings {
		if f.Outcome == Equal {
			continue
		}
		fmt.Fprintf(&b, "  [%s] %s %s: %s\n    %s\n", s.Step, f.Outcome, f.Query.Name, cut(f.Why, 400), oneLine(f.Query.SQL, 300))
		if f.Outcome == Wrong {
			fmt.Fprintf(&b, "    oracle: %s\n    pgshard: %s\n", f.Oracle.Show(5), f.Got.Show(5))
		}
	}
	return b.String()
}

// checkDropped checks, for every distributed or reference table of the
// dataset that the oracle no longer has (DROP TABLE), that no shard table
// of it is left on any worker and no template on the metadata database.
// It returns one finding per such table, named "dropped:<table>".
func (r *schemaRun) checkDropped(ctx context.Context, ds *Dataset) ([]Finding, error) {
	var out []Finding
	for i, t := range ds.Tables() {
		orig := r.ds.Tables()[i]
		if len(t.Columns) > 0 || (orig.Key == "" && !orig.Reference) {
			continue
		}
		f := Finding{Layout: r.layout, Outcome: Equal, Query: Query{Name: "dropped:" + t.Name,
			SQL: fmt.Sprintf("the tables named %s or %s_<shard id> on every node", t.Name, t.Name)}}
		for _, n := range r.cfg.Nodes {
			db, err := sql.Open("pgx", n.DSN(r.dbname))
			if err != nil {
				return nil, err
			}
			var left []string
			rows, err := db.QueryContext(ctx, `SELECT relname FROM pg_class WHERE relkind IN ('r', 'p')
				AND relname ~ ('^' || $1 || '(_[0-9]+)?$') ORDER BY relname`, t.Name)
			if err == nil {
				for rows.Next() {
					var name string
					if err = rows.Scan(&name); err != nil {
						break
					}
					left = append(left, name)
				}
				rows.Close()
				if err == nil {
					err = rows.Err()
				}
			}
			db.Close()
			if err != nil {
				return nil, fmt.Errorf("tables left of %s on %s: %w", t.Name, n.Addr(), err)
			}
			if len(left) > 0 && f.Outcome == Equal {
				f.Outcome, f.Why = Wrong, fmt.Sprintf("dropped on the oracle, but %s still has %s", n.Addr(), strings.Join(left, ", "))
			}
		}
		out = append(out, f)
	}
	return out, nil
}
