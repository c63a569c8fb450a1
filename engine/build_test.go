package engine_test

import (
	"testing"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
)

// TestBuild: the tree each kind of plan builds.
func TestBuild(t *testing.T) {
	st := newShardedTable(t, "build_kv", 4, 1)
	tests := []struct{ sql, want string }{
		{`SELECT v FROM build_kv WHERE k = 1`, "Route"},
		{`INSERT INTO build_kv (k, v) VALUES (1, 'a'), (2, 'b')`, "Route"},
		{`UPDATE build_kv SET v = 'x' WHERE k = $1`, "Route"},
		{`SELECT v FROM build_kv`, "Scatter"},
		{`UPDATE build_kv SET v = 'x'`, "ScatterWrite"},
		{`DELETE FROM build_kv WHERE k IN (1, 2)`, "ScatterWrite"},
		{`SELECT count(*) FROM build_kv`, "Aggregate"},
		{`SELECT k FROM build_kv ORDER BY k LIMIT 3`, "SortMerge(Combine)"},
		{`SELECT k, v FROM build_kv ORDER BY v`, "SortMerge(Combine)"},
		{`EXPLAIN SELECT v FROM build_kv WHERE k = 1`, "Explain(Route)"},
		{`EXPLAIN SELECT k FROM build_kv ORDER BY k LIMIT 3`, "Explain(SortMerge(Combine))"},
		{`COPY build_kv (k, v) FROM STDIN`, "CopyFrom"},
		{`COPY build_kv TO STDOUT`, "CopyTo"},
		{`SELECT 1`, "<nil>"},
		{`SELECT v FROM build_kv UNION SELECT v FROM build_kv ORDER BY 1`, "Materialize"},
		{`SELECT k, v FROM build_kv UNION SELECT k, v FROM build_kv`, "Scatter"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			prim := planner.Build(st.plan(t, tt.sql))
			got := "<nil>"
			if prim != nil {
				got = Tree(prim)
			}
			if got != tt.want {
				t.Fatalf("tree %s, want %s", got, tt.want)
			}
		})
	}
}

// TestBuildKeptWithPlan: the tree is made once per plan and shared, so
// that running a cached plan builds nothing: the second Build of a plan
// returns the same primitives and allocates nothing.
func TestBuildKeptWithPlan(t *testing.T) {
	st := newShardedTable(t, "buildkept_kv", 4, 1)
	for _, sql := range []string{
		`SELECT v FROM buildkept_kv WHERE k = $1`,
		`INSERT INTO buildkept_kv (k, v) VALUES ($1, $2)`,
		`SELECT v FROM buildkept_kv`,
		`UPDATE buildkept_kv SET v = 'x'`,
		`SELECT k FROM buildkept_kv ORDER BY k LIMIT 3`,
	} {
		t.Run(sql, func(t *testing.T) {
			p := st.plan(t, sql)
			first := planner.Build(p)
			if first == nil {
				t.Fatalf("no tree")
			}
			if again := planner.Build(p); again != first {
				t.Fatalf("second Build made a new tree %s (%p), want the first (%p)", Tree(again), again, first)
			}
			if n := testing.AllocsPerRun(100, func() { _ = planner.Build(p) }); n != 0 {
				t.Fatalf("Build of a built plan allocates %v times, want 0", n)
			}
		})
	}
}
