package planner

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// TestLiteralRowsPlanLikeEveryRow: an INSERT of literal rows, planned from
// its first row (planLiteralRows), gets the plan the ordinary planner makes
// from all its rows: the same kind, keys, values computed beforehand, shard
// statements and per-shard parts; statements it does not apply to are
// planned the ordinary way.
func TestLiteralRowsPlanLikeEveryRow(t *testing.T) {
	snap := testSnapshot(t)
	env := testEnv()
	many := func(n int, row func(i int) string) string {
		rows := make([]string, n)
		for i := range rows {
			rows[i] = row(i)
		}
		return strings.Join(rows, ", ")
	}
	cases := []struct {
		name string
		sql  string
		fast bool // planned from the first row
	}{
		{"text keys, several shards", `INSERT INTO customer_reviews (customer_id, review_rating, product_title) VALUES ` +
			many(40, func(i int) string { return fmt.Sprintf("('c%d', %d, 'title %d')", i, i, i) }), true},
		{"all columns, casts and NULLs", `INSERT INTO customer_reviews VALUES ` +
			many(20, func(i int) string {
				return fmt.Sprintf("('k%d', '2020-01-%02d'::date, %d, NULL, 'B%04d', E'a\\'b', '{x,y}')", i, 1+i%28, -i, i)
			}), true},
		{"one shard", `INSERT INTO customer_reviews (customer_id, review_rating) VALUES ('HN802', 1), ('HN802', 2), ('HN802', 3)`, true},
		{"bigint keys, RETURNING", `INSERT INTO items (id, name) VALUES ` +
			many(30, func(i int) string { return fmt.Sprintf("(%d, 'n%d')", i*7919, i) }) + ` RETURNING id, name`, true},
		{"key cast to its type", `INSERT INTO items (id, name) VALUES (1::bigint, 'a'), (2::int8, 'b'), (3::int4, 'c')`, true},
		{"ON CONFLICT with a parameter", `INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c') ON CONFLICT (id) DO UPDATE SET name = $1`, true},
		{"NULL key", `INSERT INTO items (id, name) VALUES (1, 'a'), (NULL, 'b')`, true},
		{"key written as numeric", `INSERT INTO items (id, name) VALUES (1, 'a'), (2.5, 'b')`, false},
		{"non-key cast key", `INSERT INTO items (id, name) VALUES (1, 'a'), ('2'::text, 'b')`, false},
		{"sequence default", `INSERT INTO events (payload) VALUES ('a'), ('b'), ('c')`, false},
		{"volatile default on a replicated table", `INSERT INTO orders (order_id, customer_id) VALUES (1, 'a'), (2, 'b')`, false},
		{"key left out", `INSERT INTO customer_reviews (review_rating) VALUES (1), (2)`, false},
		{"a parameter", `INSERT INTO items (id, name) VALUES (1, 'a'), ($1, 'b')`, false},
		{"a function", `INSERT INTO items (id, name) VALUES (1, lower('A')), (2, 'b')`, false},
		{"DEFAULT", `INSERT INTO items (id, price) VALUES (1, DEFAULT), (2, 3)`, false},
		{"rows of different lengths", `INSERT INTO items (id, name) VALUES (1, 'a'), (2)`, false},
		{"ordinary table", `INSERT INTO accounts (id, name) VALUES (1, 'a'), (2, 'b')`, false},
		{"one row", `INSERT INTO items (id, name) VALUES (1, 'a')`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, gerr := New(tc.sql, snap, env)
			tree, err := pg_query.Parse(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			want, werr := plan(tc.sql, tree, snap, env)
			if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
				t.Fatalf("error %v, ordinary planner's %v", gerr, werr)
			}
			if gerr != nil {
				return
			}
			if got.literalRows != tc.fast {
				t.Fatalf("planned from the first row: %v, want %v", got.literalRows, tc.fast)
			}
			if got.Kind != want.Kind || !reflect.DeepEqual(withoutNodes(got.InsertKeys), withoutNodes(want.InsertKeys)) || !reflect.DeepEqual(got.Eval, want.Eval) ||
				!reflect.DeepEqual(got.ShardParams, want.ShardParams) || got.Modifies != want.Modifies {
				t.Fatalf("plan %v keys %v eval %+v params %v, ordinary planner's %v %v %+v %v",
					got.Kind, got.InsertKeys, got.Eval, got.ShardParams, want.Kind, want.InsertKeys, want.Eval, want.ShardParams)
			}
			args := []any{"p1"}
			shards, err := got.RowShards(args)
			if wshards, werr := want.RowShards(args); !reflect.DeepEqual(shards, wshards) || (err == nil) != (werr == nil) {
				t.Fatalf("row shards %v (%v), ordinary planner's %v (%v)", shards, err, wshards, werr)
			}
			if err != nil || len(shards) == 0 {
				return
			}
			// What an execution asks for: the one shard's statement, or
			// the parts of several.
			if len(shards) == 1 || slices.Equal(shards, slices.Repeat(shards[:1], len(shards))) {
				g, gerr := got.ShardSQL(shards[0])
				w, werr := want.ShardSQL(shards[0])
				if g != w || (gerr == nil) != (werr == nil) {
					t.Fatalf("shard %d: %q (%v), ordinary planner's %q (%v)", shards[0], g, gerr, w, werr)
				}
			} else {
				g, gerr := got.SplitInsert(args, shards)
				w, werr := want.SplitInsert(args, shards)
				if !reflect.DeepEqual(g, w) || (gerr == nil) != (werr == nil) {
					t.Fatalf("split %v:\n%+v (%v)\nordinary planner's\n%+v (%v)", shards, g, gerr, w, werr)
				}
			}
			if got.rowsDropped {
				// Rewritten for the shards of its rows only: any other
				// rewriting fails rather than lose rows.
				if _, err := got.SplitInsert(args, roundRobin(len(got.InsertKeys), got.ShardCount())); err == nil {
					t.Fatal("a plan without its rows split them another way")
				}
				for i := 0; i < got.ShardCount(); i++ {
					if i == shards[0] && got.parts == nil {
						continue
					}
					if s, err := got.ShardSQL(i); err == nil {
						t.Fatalf("a plan without its rows rewrote them for shard %d: %q", i, s)
					}
				}
				return
			}
			for i := 0; i < got.ShardCount(); i++ {
				g, gerr := got.ShardSQL(i)
				w, werr := want.ShardSQL(i)
				if g != w || (gerr == nil) != (werr == nil) {
					t.Fatalf("shard %d: %q (%v), ordinary planner's %q (%v)", i, g, gerr, w, werr)
				}
			}
			if len(got.InsertKeys) > 1 {
				split := roundRobin(len(got.InsertKeys), got.ShardCount())
				g, gerr := got.SplitInsert(args, split)
				w, werr := want.SplitInsert(args, split)
				if !reflect.DeepEqual(g, w) || (gerr == nil) != (werr == nil) {
					t.Fatalf("split %v:\n%+v (%v)\nordinary planner's\n%+v (%v)", split, g, gerr, w, werr)
				}
			}
			// Rewriting for shards left the plan's own rows alone.
			again, _ := want.ShardSQL(0)
			if s, _ := got.ShardSQL(0); s != again {
				t.Fatalf("shard 0 after splitting: %q, want %q", s, again)
			}
		})
	}
}

// roundRobin assigns n rows to shards 0..shards-1 in turn.
func roundRobin(n, shards int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i % shards
	}
	return out
}

// withoutNodes returns the values without the parse-tree nodes the
// ordinary planner keeps for literals (Value.lit): two plans of one
// statement from different trees have equal values but different nodes.
func withoutNodes(vs []Value) []Value {
	out := make([]Value, len(vs))
	for i, v := range vs {
		v.lit = nil
		out[i] = v
	}
	return out
}
