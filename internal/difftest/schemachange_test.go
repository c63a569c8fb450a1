package difftest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// schemaSteps are the schema changes of TestDifferentialSchemaChanges, in
// order; each reads back what it changed. Statements with a Code must fail
// with it on both sides (0A000: pgshard refuses, the oracle is not asked).
var schemaSteps = []SchemaStep{
	{Name: "add_column_default", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE people ADD COLUMN tier int NOT NULL DEFAULT 3`},
	}, Queries: []Query{
		{Name: "tier_groups", SQL: `SELECT tier, count(*) FROM people GROUP BY tier`},
		{Name: "tier_point", SQL: `SELECT id, tier FROM people WHERE id = 7`},
	}},
	// now() is evaluated once by pgshard (as one server evaluates it once
	// per statement): the oracle's rows are given pgshard's value, and the
	// storage check then requires every placement to hold that one value.
	{Name: "add_column_now", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE visits ADD COLUMN seen timestamptz DEFAULT now()`},
		{SQL: `ALTER TABLE visits ALTER COLUMN seen DROP DEFAULT`},
	}, Align: `SELECT seen FROM visits WHERE person_id = 7 LIMIT 1`, AlignOracle: `UPDATE visits SET seen = $1::timestamptz`,
		Queries: []Query{
			{Name: "seen_one_value", SQL: `SELECT seen, count(*) FROM visits GROUP BY seen`},
			{Name: "seen_min_max", SQL: `SELECT min(seen) = max(seen), count(seen) = count(*) FROM visits`},
		}},
	{Name: "refused_changes", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE people ADD COLUMN r float8 DEFAULT random()`, Code: "0A000"},
		{SQL: `CREATE UNIQUE INDEX people_name_uq ON people (name)`, Code: "0A000"},
		{SQL: `ALTER TABLE people DROP COLUMN id`, Code: "0A000"},
		{SQL: `ALTER TABLE visits ALTER COLUMN person_id TYPE int`, Code: "0A000"},
	}, Queries: []Query{
		{Name: "people_unchanged", SQL: `SELECT count(*), count(tier), sum(id) FROM people`},
	}},
	{Name: "update_new_column", Stmts: []SchemaStmt{
		{SQL: `UPDATE people SET tier = age % 5 WHERE age IS NOT NULL`},
		{SQL: `UPDATE visits SET seen = seen + interval '1 day' WHERE amount > 100`},
	}, Queries: []Query{
		{Name: "tier_sums", SQL: `SELECT tier, count(*), sum(salary) FROM people GROUP BY tier`},
		{Name: "tier_join", SQL: `SELECT p.tier, count(*), min(v.seen) FROM people p JOIN visits v ON v.person_id = p.id GROUP BY p.tier`},
	}},
	{Name: "rename_column", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE people RENAME COLUMN score TO rating`},
	}, Queries: []Query{
		{Name: "rating_points", SQL: `SELECT id, rating FROM people WHERE id IN (7, 8, 9)`},
		{Name: "rating_aggregates", SQL: `SELECT avg(rating), max(rating), count(rating) FROM people`},
		{Name: "score_gone", SQL: `SELECT count(*) FROM information_schema.columns WHERE table_name = 'people' AND column_name = 'score'`},
	}},
	{Name: "retype_bigint", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE people ALTER COLUMN age TYPE bigint`},
		{SQL: `ALTER TABLE visits ALTER COLUMN visit_id TYPE bigint`},
	}, Queries: []Query{
		{Name: "age_groups", SQL: `SELECT age, count(*) FROM people GROUP BY age`},
		{Name: "visit_id_sum", SQL: `SELECT sum(visit_id), max(visit_id) FROM visits`},
	}},
	{Name: "retype_using", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE people ALTER COLUMN active TYPE text USING CASE WHEN active THEN 'yes' WHEN NOT active THEN 'no' END`},
	}, Queries: []Query{
		{Name: "active_text", SQL: `SELECT active, count(*) FROM people GROUP BY active`},
		{Name: "active_point", SQL: `SELECT id, active FROM people WHERE id = 12`},
	}},
	{Name: "not_null", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE people ALTER COLUMN name SET NOT NULL`, Code: "23502"},
		{SQL: `ALTER TABLE visits ALTER COLUMN seen SET NOT NULL`},
		{SQL: `INSERT INTO visits (person_id, visit_id, amount) VALUES (7, 900001, 1)`, Code: "23502"},
		{SQL: `ALTER TABLE visits ALTER COLUMN seen DROP NOT NULL`},
		{SQL: `INSERT INTO visits (person_id, visit_id, amount) VALUES (7, 900001, 1)`},
	}, Queries: []Query{
		{Name: "seen_null_row", SQL: `SELECT person_id, visit_id, amount, seen FROM visits WHERE person_id = 7`},
	}},
	{Name: "check_constraints", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE people ADD CONSTRAINT salary_negative CHECK (salary < 0)`, Code: "23514"},
		{SQL: `ALTER TABLE people ADD CONSTRAINT tier_small CHECK (tier < 10)`},
		{SQL: `UPDATE people SET tier = 11 WHERE id = 7`, Code: "23514"},
		{SQL: `INSERT INTO people (id, name, tier) VALUES (999999991, 'check', 12)`, Code: "23514"},
		{SQL: `INSERT INTO people (id, name, tier) VALUES (999999991, 'check', 9)`},
	}, Queries: []Query{
		{Name: "check_rows", SQL: `SELECT id, name, tier FROM people WHERE id IN (7, 999999991)`},
	}},
	{Name: "indexes", Stmts: []SchemaStmt{
		{SQL: `CREATE INDEX people_tier_idx ON people (tier)`},
		{SQL: `CREATE UNIQUE INDEX people_id_tier ON people (id, tier)`},
		{SQL: `CREATE INDEX CONCURRENTLY visits_amount_idx ON visits (amount)`},
		{SQL: `CREATE UNIQUE INDEX visits_person_visit ON visits (person_id, visit_id, seen)`},
		{SQL: `INSERT INTO people (id, name, tier) VALUES (7, 'dup', 1)`, Code: "23505"},
		{SQL: `DROP INDEX people_tier_idx`},
	}, Queries: []Query{
		{Name: "tier_ordered", SQL: `SELECT id FROM people WHERE tier = 2 ORDER BY id LIMIT 20`, Ordered: true},
		{Name: "amount_range", SQL: `SELECT count(*), sum(amount) FROM visits WHERE amount BETWEEN 10 AND 20`},
	}},
	{Name: "defaults", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE people ALTER COLUMN tier SET DEFAULT 4`},
		{SQL: `INSERT INTO people (id, name) VALUES (999999992, 'dflt')`},
		{SQL: `ALTER TABLE people ALTER COLUMN tier DROP DEFAULT`},
		{SQL: `INSERT INTO people (id, name) VALUES (999999993, 'no default')`, Code: "23502"},
		{SQL: `ALTER TABLE people ADD COLUMN code text DEFAULT 'p-' || 'x'`},
	}, Queries: []Query{
		{Name: "default_rows", SQL: `SELECT id, name, tier, code FROM people WHERE id >= 999999990`},
		{Name: "code_groups", SQL: `SELECT code, count(*) FROM people GROUP BY code`},
	}},
	{Name: "foreign_keys", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE visits ADD CONSTRAINT visits_person_fk FOREIGN KEY (person_id) REFERENCES people (id)`, Code: "23503"},
		{SQL: `DELETE FROM visits v WHERE NOT EXISTS (SELECT 1 FROM people p WHERE p.id = v.person_id)`},
		{SQL: `ALTER TABLE visits ADD CONSTRAINT visits_person_fk FOREIGN KEY (person_id) REFERENCES people (id)`},
		{SQL: `INSERT INTO visits (person_id, visit_id, amount) VALUES (999999999, 1, 1)`, Code: "23503"},
		{SQL: `ALTER TABLE ranks ADD CONSTRAINT ranks_dept_key UNIQUE (dept)`, Code: "23505"}, // eng twice
		{SQL: `DELETE FROM ranks WHERE floor = 9`},
		{SQL: `ALTER TABLE ranks ADD CONSTRAINT ranks_dept_key UNIQUE (dept)`},
		{SQL: `ALTER TABLE people ADD CONSTRAINT people_dept_fk FOREIGN KEY (dept) REFERENCES ranks (dept)`, Code: "23503"},
		{SQL: `ALTER TABLE people ADD CONSTRAINT people_dept_fk FOREIGN KEY (dept) REFERENCES ranks (dept) NOT VALID`},
		{SQL: `INSERT INTO people (id, name, tier, dept) VALUES (999999994, 'fk', 1, 'nowhere')`, Code: "23503"},
	}, Queries: []Query{
		{Name: "fk_orphans", SQL: `SELECT count(*) FROM visits v WHERE NOT EXISTS (SELECT 1 FROM people p WHERE p.id = v.person_id)`},
		{Name: "fk_rows", SQL: `SELECT count(*), count(visit_id) FROM visits`},
	}},
	{Name: "committed_transaction", InTx: true, Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE events ADD COLUMN note text DEFAULT 'e'`},
		{SQL: `UPDATE events SET note = label WHERE id % 3 = 0`},
		{SQL: `CREATE INDEX events_note ON events (note)`},
	}, Queries: []Query{
		{Name: "events_note", SQL: `SELECT note, count(*) FROM events GROUP BY note`},
	}},
	{Name: "concurrently_in_transaction", InTx: true, Rollback: true, Stmts: []SchemaStmt{
		{SQL: `CREATE INDEX CONCURRENTLY people_age_c ON people (age)`, Code: "25001"},
	}},
	{Name: "drop_column", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE people DROP COLUMN joined`},
		{SQL: `ALTER TABLE visits DROP COLUMN note`},
	}, Queries: []Query{
		{Name: "people_star", SQL: `SELECT * FROM people WHERE id < 40`},
		{Name: "visits_star", SQL: `SELECT * FROM visits WHERE person_id < 40`},
	}},
	{Name: "rename_table", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE visits RENAME TO trips`},
	}, Renames: map[string]string{"visits": "trips"}, Queries: []Query{
		{Name: "trips_join", SQL: `SELECT p.id, count(*), sum(t.amount) FROM people p JOIN trips t ON t.person_id = p.id WHERE p.id < 200 GROUP BY p.id`},
		{Name: "trips_count", SQL: `SELECT count(*), count(DISTINCT person_id) FROM trips`},
	}},
	{Name: "rename_table_back", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE trips RENAME TO visits`},
		{SQL: `INSERT INTO visits (person_id, visit_id, amount, seen) VALUES (8, 900002, 2.5, '2024-05-01 10:00+00')`},
	}, Renames: map[string]string{"trips": "visits"}, Queries: []Query{
		{Name: "visits_back", SQL: `SELECT person_id, visit_id, amount, seen FROM visits WHERE person_id IN (7, 8)`},
	}},
	{Name: "truncate_reinsert", Stmts: []SchemaStmt{
		{SQL: `TRUNCATE days`},
		{SQL: daysRows(40)},
	}, Queries: []Query{
		{Name: "days_groups", SQL: `SELECT day, count(*), max(label) FROM days GROUP BY day`},
		{Name: "days_ordered", SQL: `SELECT day, id, stamp, label FROM days ORDER BY day, id`, Ordered: true},
	}},
	{Name: "alter_reference", Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE ranks ADD COLUMN title text DEFAULT 'none'`},
		{SQL: `UPDATE ranks SET title = upper(head) WHERE head IS NOT NULL`},
		{SQL: `ALTER TABLE ranks RENAME COLUMN floor TO level`},
		{SQL: `ALTER TABLE ranks ALTER COLUMN level TYPE bigint`},
	}, Queries: []Query{
		{Name: "ranks_join", SQL: `SELECT p.id, r.title, r.level FROM people p JOIN ranks r ON r.dept = p.dept WHERE p.id < 50`},
		{Name: "ranks_all", SQL: `SELECT * FROM ranks`},
	}},
	{Name: "rolled_back", InTx: true, Rollback: true, Stmts: []SchemaStmt{
		{SQL: `ALTER TABLE people ADD COLUMN ghost int DEFAULT 1`},
		{SQL: `ALTER TABLE people DROP COLUMN name`},
		{SQL: `UPDATE people SET tier = 0`},
		{SQL: `TRUNCATE events`},
	}, Queries: []Query{
		{Name: "people_kept", SQL: `SELECT count(name), sum(tier) FROM people`},
		{Name: "events_kept", SQL: `SELECT count(*) FROM events`},
	}},
	{Name: "comment_drop_table", Stmts: []SchemaStmt{
		{SQL: `COMMENT ON TABLE people IS 'people, sharded'`},
		{SQL: `COMMENT ON COLUMN people.tier IS 'a tier'`},
		{SQL: `DROP TABLE stamps`},
	}, Queries: []Query{
		{Name: "stamps_gone", SQL: `SELECT count(*) FROM pg_class WHERE relname = 'stamps'`},
	}},
}

// daysRows is an INSERT of n literal rows into days.
func daysRows(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO days (day, id, stamp, label) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(date '2024-03-01' + %d, %d, timestamp '2024-03-01 08:00' + interval '%d minutes', 'row %d')", i%7, i, 37*i, i%5)
	}
	return b.String()
}

// TestDifferentialSchemaChanges applies schemaSteps to the oracle and,
// through pgshard, to one layout (4 shards × 2 replicas on 2 workers) and,
// after each step, requires the step's queries and a rotating tenth of the
// corpus to answer as the oracle does, every placement to have the
// oracle's columns, and the placements to hold the oracle's rows (replicas
// alike, template empty): 0 wrong and 0 errors. Corpus queries the oracle
// rejects after a step (a column or table gone) are counted as skipped.
func TestDifferentialSchemaChanges(t *testing.T) {
	corpus, err := LoadCorpus("../../testdata/differential/queries.sql")
	if err != nil {
		t.Fatal(err)
	}
	c := pgtest.StartTB(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	// A rotating tenth of the corpus per step keeps the run near a minute
	// on 2 cores under -race; across the steps most of the corpus is read.
	const every = 10
	reps, err := RunSchemaSteps(ctx, Config{
		Nodes: c.Nodes, Layouts: []Layout{{Shards: 4, Replicas: 2}}, Seed: 20240601, People: 2000, Visits: 3000,
		Logf: func(f string, a ...any) {
			t.Logf("[%s] "+f, append([]any{time.Since(start).Round(time.Second)}, a...)...)
		},
	}, corpus, every, schemaSteps)
	if err != nil {
		t.Fatal(err)
	}
	var total [numOutcomes]int
	skipped := 0
	var refusals []string
	for _, r := range reps {
		for i, n := range r.Counts {
			total[i] += n
		}
		skipped += r.Skipped
		if os.Getenv("DIFFTEST_VERBOSE") != "" && r.Skipped > 0 {
			t.Logf("step %s skipped (the oracle rejects them on this shape):\n  %s", r.Step, strings.Join(r.SkippedWhy, "\n  "))
		}
		if r.Counts[Wrong]+r.Counts[Error] > 0 {
			t.Errorf("step %s:\n%s", r.Step, r.ShowFindings())
		}
		for _, f := range r.Findings {
			if f.Outcome == Refused {
				refusals = append(refusals, fmt.Sprintf("%s %s: %s", r.Step, oneLine(f.Query.SQL, 100), cut(f.Why, 160)))
			}
		}
	}
	t.Logf("total: equal %d, refused %d, error %d, wrong %d, skipped %d, in %v",
		total[Equal], total[Refused], total[Error], total[Wrong], skipped, time.Since(start).Round(time.Second))
	t.Logf("refusals:\n  %s", strings.Join(refusals, "\n  "))
	if len(reps) != len(schemaSteps)+1 {
		t.Fatalf("the run ended after %d of %d steps (the two sides differed)", len(reps)-1, len(schemaSteps))
	}
	if total[Equal] == 0 {
		t.Fatal("no query compared equal")
	}
}
