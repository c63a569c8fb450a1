package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/pgshard/pgshard/catalog"
	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/plan"
)

// Primitives built by hand from their own fields, with no plan: the shard
// statements are written here, as the planner would write them.

// shardStatements gives every shard of a table the statement format, with
// the shard's table name for its %s; the shards it runs on are those of
// the keys in args at keyArgs (positions, after Eval's values), or all of
// them when keyArgs is empty.
type shardStatements struct {
	table   *catalog.Table
	format  string
	keyArgs []int
}

func (q shardStatements) ShardSQL(idx int) (string, error) {
	s := &q.table.Shards[idx]
	return fmt.Sprintf(q.format, q.table.ShardTableName(s.ID)), nil
}

func (q shardStatements) TargetShards(args []any) ([]int, error) {
	if len(q.keyArgs) == 0 {
		all := make([]int, len(q.table.Shards))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	var out []int
	for _, a := range q.keyArgs {
		i, err := plan.ShardIndex(q.table, args[a])
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out, nil
}

func (q shardStatements) Route(args []any) (int, error) {
	shards, err := q.TargetShards(args)
	if err != nil {
		return 0, err
	}
	if len(shards) != 1 {
		return 0, errors.New("shardStatements: not one shard")
	}
	return shards[0], nil
}

func (q shardStatements) RowShards([]any) ([]int, error) {
	return nil, errors.New("shardStatements: no VALUES rows")
}

func (q shardStatements) SplitInsert([]any, []int) ([]plan.InsertPart, error) {
	return nil, errors.New("shardStatements: no VALUES rows")
}

// TestRouteByHand: a Route made of a Target and shard statements reads
// the one shard its key argument pins, with the arguments its
// ShardParams pick.
func TestRouteByHand(t *testing.T) {
	st := newShardedTable(t, "byhand_route_kv", 4, 2)
	st.fill(t, 20)
	ctx := context.Background()
	r := &Route{
		// The statement's $1 is the key, $2 unused by the shards: the
		// shard statement takes $1 only.
		Target: &plan.Target{Table: st.table, ShardParams: []int{1}},
		Shards: shardStatements{table: st.table, format: "SELECT v FROM %s WHERE k = $1", keyArgs: []int{0}},
	}
	for _, k := range []int64{1, 7, 20} {
		vc := &testCursor{}
		got := rowsOf(t)(r.Query(ctx, vc, args(k, "ignored")))
		if want := []string{fmt.Sprintf("v%d", k)}; !slices.Equal(got, want) {
			t.Fatalf("k=%d: rows %q, want %q", k, got, want)
		}
		idx, err := plan.ShardIndex(st.table, k)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{fmt.Sprintf("read %d", st.table.Shards[idx].ID)}; !slices.Equal(vc.calls(), want) {
			t.Fatalf("k=%d: calls %q, want %q", k, vc.calls(), want)
		}
	}
}

// TestScatterByHand: a Scatter made of a Target and shard statements reads
// every shard (or the shards of its key arguments) and passes on their
// rows; a ScatterWrite made the same way updates the shards in one atomic
// statement and adds up the rows affected.
func TestScatterByHand(t *testing.T) {
	st := newShardedTable(t, "byhand_scatter_kv", 4, 1)
	st.fill(t, 30)
	ctx := context.Background()
	tests := []struct {
		name    string
		keyArgs []int
		args    []any
		want    []string
	}{
		// $1 is a key the shards do not see; $2 is the shards' $1.
		{"every shard", nil, []any{int64(3), "v1%"}, []string{"1", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19"}},
		{"the key's shard", []int{0}, []any{int64(13), "v1%"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := shardStatements{table: st.table, format: "SELECT k FROM %s WHERE v LIKE $1", keyArgs: tt.keyArgs}
			s := &Scatter{Target: &plan.Target{Table: st.table, ShardParams: []int{2}}, Shards: q}
			shards, err := q.TargetShards(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == nil {
				// The rows of "v1%" in the key's shard alone.
				for _, k := range []int64{1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19} {
					if i, _ := plan.ShardIndex(st.table, k); i == shards[0] {
						want = append(want, fmt.Sprint(k))
					}
				}
			}
			vc := &testCursor{}
			got := rowsOf(t)(s.Query(ctx, vc, args(tt.args...)))
			sort.Strings(got)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Fatalf("rows %q, want %q", got, want)
			}
			if len(tt.keyArgs) > 0 && len(shards) != 1 {
				t.Fatalf("%d shards for one key, want 1", len(shards))
			}
			reads := 0
			for _, c := range vc.calls() {
				if len(c) > 5 && c[:5] == "read " {
					reads++
				}
			}
			if reads != len(shards) {
				t.Fatalf("calls %q: %d shard reads, want %d", vc.calls(), reads, len(shards))
			}
		})
	}

	w := &ScatterWrite{
		Target: &plan.Target{Table: st.table, Modifies: true},
		Shards: shardStatements{table: st.table, format: "UPDATE %s SET v = v || '!' WHERE k <= $1"},
	}
	res, err := w.Exec(ctx, &testCursor{}, args(int64(12)))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 12 {
		t.Fatalf("%d rows affected, want 12", n)
	}
	got := rowsOf(t)(bangedKeys(st).Query(ctx, &testCursor{}, nil))
	if len(got) != 12 {
		t.Fatalf("%d rows end in !, want 12: %q", len(got), got)
	}
}

// bangedKeys is a Scatter of the keys of st's rows whose v ends in "!".
func bangedKeys(st *shardedTable) *Scatter {
	return &Scatter{
		Target: &plan.Target{Table: st.table},
		Shards: shardStatements{table: st.table, format: "SELECT k FROM %s WHERE v LIKE '%%!'"},
	}
}
