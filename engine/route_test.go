package engine_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
)

// TestRoute: a single-key statement runs on its one shard only, a read on
// one placement and a write on every placement; a multi-row INSERT whose
// rows fall in different shards is one atomic statement of one INSERT per
// shard, its RETURNING rows in VALUES order.
func TestRoute(t *testing.T) {
	st := newShardedTable(t, "route_kv", 4, 2)
	st.fill(t, 20)
	ctx := context.Background()
	shardOf := func(k int64) int64 {
		p := st.plan(t, `SELECT v FROM route_kv WHERE k = $1`)
		idx, err := p.Route([]any{k})
		if err != nil {
			t.Fatal(err)
		}
		return st.table.Shards[idx].ID
	}
	for k := int64(1); k <= 20; k++ {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			vc := &testCursor{}
			p := st.plan(t, `SELECT v FROM route_kv WHERE k = $1`)
			got := rowsOf(t)(planner.Build(p).Query(ctx, vc, args(k)))
			if want := []string{fmt.Sprintf("v%d", k)}; !slices.Equal(got, want) {
				t.Fatalf("read %q, want %q", got, want)
			}
			if want := []string{fmt.Sprintf("read %d", shardOf(k))}; !slices.Equal(vc.calls(), want) {
				t.Fatalf("calls %q, want %q", vc.calls(), want)
			}
		})
	}

	t.Run("update writes every placement", func(t *testing.T) {
		vc := &testCursor{}
		p := st.plan(t, `UPDATE route_kv SET v = 'w' WHERE k = $1`)
		res, err := planner.Build(p).Exec(ctx, vc, args(int64(7)))
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("%d rows affected, want 1", n)
		}
		id := shardOf(7)
		var want []string
		for _, s := range st.table.Shards {
			if s.ID == id {
				for _, pl := range s.Placements {
					want = append(want, fmt.Sprintf("write %d on %s", id, pl.Node))
				}
			}
		}
		slices.Sort(want)
		if !slices.Equal(vc.calls(), want) {
			t.Fatalf("calls %q, want %q", vc.calls(), want)
		}
	})

	t.Run("multi-row insert across shards", func(t *testing.T) {
		vc := &testCursor{}
		p := st.plan(t, `INSERT INTO route_kv (k, v) VALUES (101, 'a'), (102, 'b'), (103, 'c'), (104, 'd') RETURNING k, v`)
		got := rowsOf(t)(planner.Build(p).Query(ctx, vc, nil))
		if want := []string{"101 a", "102 b", "103 c", "104 d"}; !slices.Equal(got, want) {
			t.Fatalf("RETURNING %q, want %q", got, want)
		}
		calls := vc.calls()
		if calls[0] != "atomically "+Servers().Nodes[0].Addr()+" "+Servers().Nodes[1].Addr() && calls[0] != "atomically "+Servers().Nodes[1].Addr()+" "+Servers().Nodes[0].Addr() {
			t.Fatalf("first call %q, want one atomic statement on both servers", calls[0])
		}
		shards := map[int64]bool{}
		for _, k := range []int64{101, 102, 103, 104} {
			shards[shardOf(k)] = true
		}
		if writes := len(calls) - 1; writes != 2*len(shards) {
			t.Fatalf("%d placement writes for %d shards of 2 placements: %q", writes, len(shards), calls)
		}
		for _, k := range []int64{101, 104} {
			vc := &testCursor{}
			got := rowsOf(t)(planner.Build(st.plan(t, `SELECT v FROM route_kv WHERE k = $1`)).Query(ctx, vc, args(k)))
			if len(got) != 1 {
				t.Fatalf("key %d: read %q", k, got)
			}
		}
	})
}
