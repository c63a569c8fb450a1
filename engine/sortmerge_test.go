package engine_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
)

// TestSortMerge: ORDER BY ... LIMIT over every shard is a k-way merge of
// the shards' sorted rows, cut at LIMIT after OFFSET, with the sort columns
// the shards added for the merge dropped.
func TestSortMerge(t *testing.T) {
	st := newShardedTable(t, "sm_kv", 4, 1)
	st.fill(t, 40)
	ctx := context.Background()
	seq := func(from, to, step int) []string {
		var out []string
		for k := from; step > 0 && k <= to || step < 0 && k >= to; k += step {
			out = append(out, fmt.Sprint(k))
		}
		return out
	}
	tests := []struct {
		sql  string
		args []any
		want []string
	}{
		{`SELECT k FROM sm_kv ORDER BY k`, nil, seq(1, 40, 1)},
		{`SELECT k FROM sm_kv ORDER BY k DESC LIMIT 5`, nil, seq(40, 36, -1)},
		{`SELECT k FROM sm_kv ORDER BY k LIMIT $1 OFFSET $2`, []any{int64(3), int64(10)}, seq(11, 13, 1)},
		{`SELECT v FROM sm_kv WHERE k < 10 ORDER BY k DESC`, nil, []string{"v9", "v8", "v7", "v6", "v5", "v4", "v3", "v2", "v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			prim := planner.Build(st.plan(t, tt.sql))
			if _, ok := prim.(*SortMerge); !ok {
				t.Fatalf("built %T, want SortMerge", prim)
			}
			vc := &testCursor{}
			got := rowsOf(t)(prim.Query(ctx, vc, args(tt.args...)))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("rows %q, want %q", got, tt.want)
			}
			if calls := vc.calls(); !slices.Contains(calls, "fanout 4") {
				t.Fatalf("calls %q: the shards did not stream at once", calls)
			}
		})
	}
}
