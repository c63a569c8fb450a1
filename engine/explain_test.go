package engine_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
)

// TestExplain: EXPLAIN is a walk of the tree it explains — the shard chosen
// with its placements and SQL, or every shard and the merge above them —
// and each shard's own EXPLAIN comes from the server that would run it.
func TestExplain(t *testing.T) {
	st := newShardedTable(t, "ex_kv", 4, 2)
	st.fill(t, 8)
	ctx := context.Background()
	tests := []struct {
		sql  string
		args []any
		want []string // lines that must appear, in this order
	}{
		{`EXPLAIN SELECT v FROM ex_kv WHERE k = $1`, []any{int64(3)}, []string{
			"pgshard: Router to shard ", "of ex_kv (4 shards); reads from the first reachable finalized placement",
			"  placements: ", "(finalized), ",
			"  SQL: SELECT v FROM ex_kv_", "WHERE k = $1",
			"  Index Scan using ex_kv_",
			"pgshard: tree Route",
		}},
		{`EXPLAIN SELECT k FROM ex_kv ORDER BY k LIMIT 2`, nil, []string{
			"pgshard: Scatter over 4 of 4 shards of ex_kv",
			"  merge: merge the shards' sorted rows as they stream in (k-way, keys ", "then OFFSET",
			"  shard ", "    SQL: SELECT k FROM ex_kv_", "ORDER BY 1 LIMIT 2", "  Limit",
			"pgshard: tree SortMerge(Combine)",
		}},
		{`EXPLAIN UPDATE ex_kv SET v = 'x'`, nil, []string{
			"pgshard: Scatter over 4 of 4 shards of ex_kv",
			"  merge: run on each shard in one transaction (two-phase commit), add up rows affected",
			"    SQL: UPDATE ex_kv_",
			"pgshard: tree ScatterWrite",
		}},
		{`EXPLAIN INSERT INTO ex_kv (k, v) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')`, nil, []string{
			"pgshard: INSERT split by shard into ", "statements of ex_kv, committed together",
			"    SQL: INSERT INTO ex_kv_",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			prim := planner.Build(st.plan(t, tt.sql))
			ex, ok := prim.(*Explain)
			if !ok {
				t.Fatalf("built %T, want *Explain", prim)
			}
			if len(ex.Inputs()) != 1 || ex.Inputs()[0] == nil {
				t.Fatalf("Explain has inputs %v, want the tree it explains", ex.Inputs())
			}
			vc := &testCursor{}
			lines := rowsOf(t)(prim.Query(ctx, vc, args(tt.args...)))
			text := strings.Join(lines, "\n")
			pos := 0
			for _, w := range tt.want {
				i := strings.Index(text[pos:], w)
				if i < 0 {
					t.Fatalf("EXPLAIN lacks %q after position %d:\n%s", w, pos, text)
				}
				pos += i + len(w)
			}
			for _, c := range vc.calls() {
				if strings.HasPrefix(c, "write") || strings.HasPrefix(c, "atomically") {
					t.Fatalf("EXPLAIN wrote: calls %q", vc.calls())
				}
			}
		})
	}
}
