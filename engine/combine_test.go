package engine_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// TestCombine: PostgreSQL combines the shards' partial rows (GROUP BY,
// DISTINCT, avg) on a placement of the first shard, the values carried
// in binary; every shard is read once for its partial rows, the first once
// more to name the types, and the combine query is one read of it.
func TestCombine(t *testing.T) {
	st := newShardedTable(t, "comb_kv", 4, 2)
	st.fill(t, 25)
	ctx := context.Background()
	tests := []struct {
		sql  string
		args []any
		want []string
	}{
		// v1..v9 have length 2 (k 1..9, avg 5), v10..v25 length 3 (avg 17.5).
		{`SELECT length(v), count(*), avg(k) FROM comb_kv GROUP BY 1 ORDER BY 1`, nil,
			[]string{"2 9 5.0000000000000000", "3 16 17.5000000000000000"}},
		{`SELECT DISTINCT length(v) FROM comb_kv ORDER BY 1`, nil, []string{"2", "3"}},
		{`SELECT length(v), count(*) FROM comb_kv WHERE k > $1 GROUP BY 1 ORDER BY 1`, []any{int64(20)}, []string{"3 5"}},
		{`SELECT max(v) FROM comb_kv GROUP BY length(v) HAVING count(*) > $1`, []any{int64(10)}, []string{"v25"}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			prim := planner.Build(st.plan(t, tt.sql))
			if _, ok := prim.(Combine); !ok {
				t.Fatalf("built %s, want Combine", Tree(prim))
			}
			vc := &testCursor{}
			got := rowsOf(t)(prim.Query(ctx, vc, args(tt.args...)))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("rows %q, want %q", got, tt.want)
			}
			var onShard, reads int
			for _, c := range vc.calls() {
				switch {
				case strings.HasPrefix(c, "on shard "):
					onShard++
				case strings.HasPrefix(c, "read "):
					reads++
				}
			}
			if onShard != 5 || reads != 1 {
				t.Fatalf("calls %q, want 4 partial reads, the types named on one shard, one combine read", vc.calls())
			}
		})
	}
}

// TestCombineLimit: partial rows beyond MaxCombineBytes fail the statement
// with 54000 rather than being held.
func TestCombineLimit(t *testing.T) {
	st := newShardedTable(t, "comblim_kv", 2, 1)
	st.fill(t, 50)
	old := MaxCombineBytes
	MaxCombineBytes = 200
	defer func() { MaxCombineBytes = old }()
	_, err := planner.Build(st.plan(t, `SELECT v, count(*) FROM comblim_kv GROUP BY v`)).Query(context.Background(), &testCursor{}, nil)
	if sqlerr.Code(err) != "54000" || !strings.Contains(err.Error(), "200 bytes") {
		t.Fatalf("err %v, want 54000 naming the limit", err)
	}
}
