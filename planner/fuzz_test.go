package planner

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// goldenSQL returns the SQL texts of the golden file, for the fuzz corpus.
func goldenSQL(tb testing.TB) []string {
	data, err := os.ReadFile(goldenFile)
	if err != nil {
		tb.Fatal(err)
	}
	var out, cur []string
	inOutput := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "----":
			out = append(out, strings.Join(cur, "\n"))
			cur, inOutput = nil, true
		case strings.TrimSpace(line) == "":
			inOutput = false
		case inOutput, strings.HasPrefix(line, "#") && len(cur) == 0:
		default:
			cur = append(cur, line)
		}
	}
	return out
}

// fuzzArgs are argument sets Route is tried with: none, NULLs, strings,
// integers of several Go types, odd values.
var fuzzArgs = [][]any{
	nil,
	{nil, nil, nil, nil},
	{"tomato", "apple", "x", "y", "z", "w"},
	{int64(42), 7, int32(-1), uint64(1 << 63), 3.5, true},
	{[]byte("tomato"), "", "-0", " 12 ", "9999999999999999999999", "{}"},
	{struct{}{}, []int{1}, map[string]int{}, nil, "a"},
}

func FuzzPlan(f *testing.F) {
	for _, sql := range goldenSQL(f) {
		f.Add(sql)
	}
	snap := testSnapshot(f)
	env := testEnv()
	f.Fuzz(func(t *testing.T, sql string) {
		p, err := New(sql, snap, env)
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code == "" {
				t.Fatalf("error is not a PgError: %T %v", err, err)
			}
			return
		}
		_ = p.Describe()
		if p.Kind == Explain {
			p = p.Explain.Inner
		}
		switch p.Kind {
		case Passthrough, Admin:
			return
		case Materialize:
			if _, _, err := p.Materialize.SQL(MaterializeInput{Names: make([][]string, len(p.Materialize.Subqueries)), Types: make([][]string, len(p.Materialize.Subqueries))}); err != nil {
				t.Fatalf("materialized statement: %v", err)
			}
			return
		}
		for _, args := range fuzzArgs {
			if i, err := p.Route(args); err == nil && (i < 0 || i >= p.ShardCount()) {
				t.Fatalf("Route(%v) = %d, out of range", args, i)
			}
		}
		if p.Eval != nil {
			if _, err := pg_query.Parse(p.Eval.SQL); err != nil {
				t.Fatalf("eval SQL does not parse: %v\n%s", err, p.Eval.SQL)
			}
		}
		orig, err := pg_query.Parse(sql)
		if err != nil {
			t.Fatalf("planned SQL does not parse: %v", err)
		}
		// pg_query's deparser does not round-trip every tree (it writes
		// OPERATOR(%) '' as % ''): only a rewrite that breaks a text the
		// deparser itself round-trips is the planner's fault.
		if text, err := pg_query.Deparse(orig); err != nil {
			return
		} else if _, err := pg_query.Parse(text); err != nil {
			return
		}
		for i := 0; i < p.ShardCount(); i++ {
			if p.rowsDropped && (p.parts != nil || p.shardSQL[i].sql == "") {
				continue // rewritten for its rows' shards only (compareLiteralInsert checks those)
			}
			text, err := p.ShardSQL(i)
			if err != nil {
				t.Fatalf("ShardSQL(%d): %v\n%s", i, err, sql)
			}
			tree, err := pg_query.Parse(text)
			if err != nil {
				t.Fatalf("shard %d SQL does not parse: %v\n%s\nfrom\n%s", i, err, text, sql)
			}
			if text == "" && p.Kind == SchemaChange {
				continue // nothing for the shards (a sequence default)
			}
			if len(tree.Stmts) != len(orig.Stmts) {
				t.Fatalf("shard SQL has %d statements, the original %d\n%s", len(tree.Stmts), len(orig.Stmts), text)
			}
		}
	})
}
