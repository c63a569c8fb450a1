package engine_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// metaEnv is testEnv with a metadata database: the first server's
// "postgres" database, where a test creates the templates of its
// distributed tables (Describe describes queries of them there).
type metaEnv struct{ testEnv }

func (metaEnv) Describe(sql string) ([]planner.ColumnDesc, error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, Servers().Nodes[0].DSN(""))
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	sd, err := conn.Prepare(ctx, "", sql)
	if err != nil {
		return nil, err
	}
	out := make([]planner.ColumnDesc, len(sd.Fields))
	for i, f := range sd.Fields {
		out[i] = planner.ColumnDesc{Name: f.Name, TypeOID: f.DataTypeOID}
	}
	return out, nil
}

// TestMaterialize: a subquery runs first through the engine on its own
// (Cursor.Statement), then the statement over its rows carried as binary
// arrays: on the metadata database when no distributed table is left in
// it, through the shards when one is.
func TestMaterialize(t *testing.T) {
	st := newShardedTable(t, "mat_kv", 4, 1)
	st.fill(t, 25)
	ExecOn(t, st.table.Shards[0].Placements[0].Node, `CREATE TABLE IF NOT EXISTS mat_kv (k bigint PRIMARY KEY, v text)`)
	ctx := context.Background()
	tests := []struct {
		sql  string
		args []any
		want []string
	}{
		{`SELECT count(*), sum(k) FROM (SELECT k FROM mat_kv ORDER BY k DESC LIMIT 5) s`, nil, []string{"5 115"}},
		{`SELECT count(*), max(v) FROM (SELECT v FROM mat_kv WHERE k < $1 ORDER BY k LIMIT 3) s`, []any{int64(3)}, []string{"2 v2"}},
		// "v9" > "v8" > "v7" > every other v, bytewise and in any locale.
		{`WITH top AS (SELECT k FROM mat_kv ORDER BY v DESC, k LIMIT 3) SELECT x.k, x.v FROM mat_kv x JOIN top USING (k) ORDER BY x.k`, nil,
			[]string{"7 v7", "8 v8", "9 v9"}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			p, err := planner.New(tt.sql, st.snap, metaEnv{})
			if err != nil {
				t.Fatal(err)
			}
			prim := planner.Build(p)
			if _, ok := prim.(Materialize); !ok {
				t.Fatalf("built %s, want Materialize", Tree(prim))
			}
			vc := &testCursor{snap: st.snap, env: metaEnv{}}
			got := rowsOf(t)(prim.Query(ctx, vc, args(tt.args...)))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("rows %q, want %q", got, tt.want)
			}
			if n := countCalls(vc, "statement"); n != 2 {
				t.Fatalf("calls %q, want the subquery and the statement run through the engine", vc.calls())
			}
		})
	}
	t.Run("limit", func(t *testing.T) {
		old := MaxMaterializedBytes
		MaxMaterializedBytes = 10
		defer func() { MaxMaterializedBytes = old }()
		p, err := planner.New(tests[0].sql, st.snap, metaEnv{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = planner.Build(p).Query(ctx, &testCursor{snap: st.snap, env: metaEnv{}}, nil)
		if sqlerr.Code(err) != "54000" {
			t.Fatalf("err %v, want 54000", err)
		}
	})
}

// countCalls counts the calls of vc's log that are call.
func countCalls(vc *testCursor, call string) int {
	n := 0
	for _, c := range vc.calls() {
		if c == call || strings.HasPrefix(c, call+" ") {
			n++
		}
	}
	return n
}
