package engine_test

import (
	"context"
	"slices"
	"testing"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
)

// TestAggregate: count and sum over every shard are added up in Go from
// one row per shard.
func TestAggregate(t *testing.T) {
	st := newShardedTable(t, "agg_kv", 4, 1)
	st.fill(t, 25)
	ctx := context.Background()
	tests := []struct {
		sql  string
		args []any
		want []string
	}{
		{`SELECT count(*) FROM agg_kv`, nil, []string{"25"}},
		{`SELECT count(*), sum(k) FROM agg_kv`, nil, []string{"25 325"}},
		{`SELECT count(*), sum(k) FROM agg_kv WHERE k > $1`, []any{int64(20)}, []string{"5 115"}},
		{`SELECT sum(k) FROM agg_kv WHERE k > 100`, nil, []string{"<nil>"}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			prim := planner.Build(st.plan(t, tt.sql))
			if _, ok := prim.(*Aggregate); !ok {
				t.Fatalf("built %T, want Aggregate", prim)
			}
			vc := &testCursor{}
			got := rowsOf(t)(prim.Query(ctx, vc, args(tt.args...)))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("rows %q, want %q", got, tt.want)
			}
			if n := len(vc.calls()); n != 4 {
				t.Fatalf("calls %q, want one read per shard", vc.calls())
			}
		})
	}
}
