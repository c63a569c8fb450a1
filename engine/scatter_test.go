package engine_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
)

// TestScatter: a multi-shard read returns every shard's rows, streamed from
// every shard at once (one fan-out), or from the shards its key list pins.
func TestScatter(t *testing.T) {
	st := newShardedTable(t, "scatter_kv", 4, 1)
	st.fill(t, 30)
	ctx := context.Background()
	all := make([]string, 30)
	for k := range all {
		all[k] = fmt.Sprint(k + 1)
	}
	sort.Strings(all)
	tests := []struct {
		name  string
		sql   string
		args  []any
		want  []string
		reads int
	}{
		{"every shard", `SELECT k FROM scatter_kv`, nil, all, 4},
		{"pruned by key list", `SELECT k FROM scatter_kv WHERE k IN (3, 4)`, nil, []string{"3", "4"}, -1},
		{"filter on a shard", `SELECT k FROM scatter_kv WHERE v = $1`, []any{"v17"}, []string{"17"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := st.plan(t, tt.sql)
			prim := planner.Build(p)
			if _, ok := prim.(*Scatter); !ok {
				t.Fatalf("%s built %T, want Scatter", tt.sql, prim)
			}
			vc := &testCursor{}
			got := rowsOf(t)(prim.Query(ctx, vc, args(tt.args...)))
			sort.Strings(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("rows %q, want %q", got, tt.want)
			}
			shards, err := TargetShards(p, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if tt.reads >= 0 && len(shards) != tt.reads {
				t.Fatalf("%d shards, want %d", len(shards), tt.reads)
			}
			var want []string
			if len(shards) > 1 {
				want = append(want, fmt.Sprintf("fanout %d", len(shards)))
			}
			for _, idx := range shards {
				want = append(want, fmt.Sprintf("read %d", st.table.Shards[idx].ID))
			}
			sort.Strings(want)
			if !slices.Equal(vc.calls(), want) {
				t.Fatalf("calls %q, want %q", vc.calls(), want)
			}
		})
	}
}

// TestScatterWrite: a multi-shard UPDATE is one atomic statement that
// writes every shard's placements and adds up the rows affected.
func TestScatterWrite(t *testing.T) {
	st := newShardedTable(t, "scatterw_kv", 4, 2)
	st.fill(t, 12)
	ctx := context.Background()
	p := st.plan(t, `UPDATE scatterw_kv SET v = v || '!' WHERE k <= $1`)
	prim := planner.Build(p)
	if _, ok := prim.(*ScatterWrite); !ok {
		t.Fatalf("built %T, want ScatterWrite", prim)
	}
	vc := &testCursor{}
	res, err := prim.Exec(ctx, vc, args(int64(10)))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 10 {
		t.Fatalf("%d rows affected, want 10", n)
	}
	calls := vc.calls()
	if len(calls) != 1+4*2 || calls[0][:len("atomically")] != "atomically" {
		t.Fatalf("calls %q, want one atomic statement and 8 placement writes", calls)
	}
	got := rowsOf(t)(planner.Build(st.plan(t, `SELECT v FROM scatterw_kv WHERE v LIKE '%!'`)).Query(ctx, &testCursor{}, nil))
	if len(got) != 10 {
		t.Fatalf("%d rows updated on the first placements, want 10", len(got))
	}
	// The second placements got the write too.
	for _, s := range st.table.Shards {
		for _, pl := range s.Placements {
			b := queryOn(t, pl.Node, fmt.Sprintf(`SELECT count(*) FROM %s WHERE v NOT LIKE '%%!' AND k <= 10`, st.table.ShardTableName(s.ID)))
			if !slices.Equal(b, []string{"0"}) {
				t.Fatalf("placement %d of shard %d holds %s rows without the write", pl.ID, s.ID, b)
			}
		}
	}
}

// TestScatterWriteOnOneShard: a write whose row-constructor IN list or OR
// of conjunctions on the key leaves one shard runs as that shard's write
// alone, on each of its placements, with no implicit transaction around it
// (no two-phase commit between the placements of one shard).
func TestScatterWriteOnOneShard(t *testing.T) {
	st := newShardedTable(t, "scatterw1_kv", 4, 2)
	st.fill(t, 12)
	ctx := context.Background()
	tests := []struct {
		name string
		sql  string
		args []any
		want int64
	}{
		{"row constructor IN", `UPDATE scatterw1_kv SET v = v || '!' WHERE (k, v) IN (($1, $2), ($3, $4))`, []any{int64(5), "v5", int64(5), "v6"}, 1},
		{"OR of conjunctions", `DELETE FROM scatterw1_kv WHERE (k = $1 AND v = $2) OR (k = $3 AND v = $4)`, []any{int64(7), "v7", int64(7), "x"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := st.plan(t, tt.sql)
			prim := planner.Build(p)
			if _, ok := prim.(*ScatterWrite); !ok {
				t.Fatalf("built %T, want ScatterWrite", prim)
			}
			shards, err := TargetShards(p, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if len(shards) != 1 {
				t.Fatalf("%d target shards, want 1", len(shards))
			}
			s := st.table.Shards[shards[0]]
			vc := &testCursor{}
			res, err := prim.Exec(ctx, vc, args(tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != tt.want {
				t.Fatalf("%d rows affected, want %d", n, tt.want)
			}
			var want []string
			for _, pl := range s.Writable() {
				want = append(want, fmt.Sprintf("write %d on %s", s.ID, pl.Node))
			}
			sort.Strings(want)
			if !slices.Equal(vc.calls(), want) {
				t.Fatalf("calls %q, want %q (no atomic statement around one shard)", vc.calls(), want)
			}
			d := &Description{Prefix: "EXPLAIN "}
			if err := prim.Describe(ctx, &testCursor{}, args(tt.args...), d); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(d.Lines, "  merge: one shard: run as a single-shard write on every writable placement, no implicit transaction") {
				t.Fatalf("EXPLAIN lines %q lack the single-shard write", d.Lines)
			}
		})
	}
}
