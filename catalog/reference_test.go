package catalog

import (
	"math"
	"slices"
	"testing"
)

// TestReferenceTableInSnapshot: a reference table's one shard serves every
// shard index (ShardAt), it is co-located with every valid distributed
// table, its placements are in node order whatever their ids, and
// ColocatedPlacements keeps only the nodes where it is finalized.
func TestReferenceTableInSnapshot(t *testing.T) {
	a, b, c := Node{"h", 3}, Node{"h", 1}, Node{"h", 2}
	ref := &Table{RelationID: 2, Schema: "public", Name: "item", Method: MethodReference, KeyIndex: -1,
		Shards: []Shard{{ID: 20, Min: math.MinInt32, Max: math.MaxInt32, Placements: []Placement{
			{ID: 1, ShardID: 20, State: StateFinalized, Node: a},
			{ID: 2, ShardID: 20, State: StateInactive, Node: b},
			{ID: 3, ShardID: 20, State: StateFinalized, Node: c},
		}}}}
	dist := &Table{RelationID: 1, Schema: "public", Name: "orders", Method: MethodHash, KeyColumn: "k", KeyIndex: 0, ColocationID: 1}
	for i := 0; i < 2; i++ {
		lo, hi := HashRange(i, 2)
		dist.Shards = append(dist.Shards, Shard{ID: int64(10 + i), Min: lo, Max: hi, Placements: []Placement{
			{ID: int64(10 + i), ShardID: int64(10 + i), State: StateFinalized, Node: []Node{b, c}[i]},
		}})
	}
	badRef := &Table{RelationID: 3, Schema: "public", Name: "bad", Method: MethodReference, KeyIndex: -1,
		Shards: []Shard{{ID: 30, Min: math.MinInt32, Max: -1}, {ID: 31, Min: 0, Max: math.MaxInt32}}}
	if _, err := NewSnapshot(1, []Node{b, c, a}, nil, []*Table{ref, dist, badRef}, nil); err != nil {
		t.Fatal(err)
	}
	if !ref.Reference() || dist.Reference() {
		t.Fatal("Reference() is wrong")
	}
	if ref.ShardAt(1) != &ref.Shards[0] || dist.ShardAt(1) != &dist.Shards[1] {
		t.Fatal("ShardAt does not give a reference table's one shard for every index")
	}
	var order []Node
	for _, p := range ref.Shards[0].Placements {
		order = append(order, p.Node)
	}
	if !slices.Equal(order, []Node{b, c, a}) {
		t.Fatalf("reference placements in order %v, want node order", order)
	}
	if !dist.ColocatedWith(ref) || !ref.ColocatedWith(dist) {
		t.Fatal("a reference table is not co-located with a distributed table")
	}
	if badRef.Invalid == nil || dist.ColocatedWith(badRef) {
		t.Fatalf("a reference table of two shards is not invalid (%v)", badRef.Invalid)
	}
	// Shard 0 of orders is on b, where item's placement is inactive: no
	// placement; shard 1 is on c, where it is finalized.
	if ps := ColocatedPlacements([]*Table{dist, ref}, 0); len(ps) != 0 {
		t.Fatalf("shard 0 with item inactive on its node: %v, want none", ps)
	}
	if ps := ColocatedPlacements([]*Table{dist, ref}, 1); len(ps) != 1 || ps[0].Node != c {
		t.Fatalf("shard 1: %v, want its placement on %v", ps, c)
	}
}
