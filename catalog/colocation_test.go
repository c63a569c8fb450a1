package catalog

import (
	"fmt"
	"testing"
)

var (
	nodeA = Node{Name: "10.0.0.1", Port: 5432}
	nodeB = Node{Name: "10.0.0.2", Port: 5432}
	nodeC = Node{Name: "10.0.0.3", Port: 5432}
)

// testTable is a table of count shards with pg_shard's ranges; placements[i]
// lists shard i's placements as node and state.
func testTable(relid uint32, group int64, keyType uint32, count int, placements func(i int) []Placement) *Table {
	t := &Table{RelationID: relid, Name: fmt.Sprintf("t%d", relid), KeyType: keyType, ColocationID: group}
	for i := 0; i < count; i++ {
		lo, hi := HashRange(i, count)
		id := int64(relid)*1000 + int64(i)
		s := Shard{ID: id, RelationID: relid, Min: lo, Max: hi}
		for j, p := range placements(i) {
			p.ID, p.ShardID = id*10+int64(j), id
			s.Placements = append(s.Placements, p)
		}
		t.Shards = append(t.Shards, s)
	}
	return t
}

func on(states ...any) func(int) []Placement {
	return func(int) []Placement {
		var out []Placement
		for i := 0; i < len(states); i += 2 {
			out = append(out, Placement{Node: states[i].(Node), State: states[i+1].(ShardState)})
		}
		return out
	}
}

func TestColocatedWith(t *testing.T) {
	both := on(nodeA, StateFinalized, nodeB, StateFinalized)
	base := testTable(1, 7, 25, 4, both)
	cases := []struct {
		name string
		u    *Table
		want bool
	}{
		{"same group", testTable(2, 7, 25, 4, both), true},
		// Placements are not compared: reads and writes check them per node.
		{"same group, other placement states", testTable(2, 7, 25, 4, on(nodeA, StateInactive, nodeB, StateFilling)), true},
		{"other group", testTable(2, 8, 25, 4, both), false},
		{"no group", testTable(2, 0, 25, 4, both), false},
		{"other key type", testTable(2, 7, 23, 4, both), false},
		{"other shard count", testTable(2, 7, 25, 8, both), false},
		{"no shards", testTable(2, 7, 25, 0, both), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := base.ColocatedWith(c.u); got != c.want {
				t.Fatalf("ColocatedWith = %v, want %v", got, c.want)
			}
			if got := c.u.ColocatedWith(base); got != c.want {
				t.Fatalf("reversed: ColocatedWith = %v, want %v", got, c.want)
			}
		})
	}
	if !base.ColocatedWith(base) {
		t.Fatal("a table is co-located with itself")
	}
	ungrouped := testTable(3, 0, 25, 4, both)
	if !ungrouped.ColocatedWith(ungrouped) {
		t.Fatal("a table without a group is co-located with itself")
	}
	shifted := testTable(2, 7, 25, 4, both)
	shifted.Shards[1].Min++
	shifted.Shards[0].Max++
	if base.ColocatedWith(shifted) {
		t.Fatal("tables with other ranges are co-located")
	}
}

func TestColocatedPlacements(t *testing.T) {
	a := testTable(1, 7, 25, 2, on(nodeA, StateFinalized, nodeB, StateFinalized, nodeC, StateFinalized))
	cases := []struct {
		name string
		b    func(int) []Placement
		want []Node
	}{
		{"all finalized", on(nodeA, StateFinalized, nodeB, StateFinalized, nodeC, StateFinalized), []Node{nodeA, nodeB, nodeC}},
		{"inactive", on(nodeA, StateInactive, nodeB, StateFinalized, nodeC, StateFinalized), []Node{nodeB, nodeC}},
		{"filling", on(nodeA, StateFinalized, nodeB, StateFilling, nodeC, StateFinalized), []Node{nodeA, nodeC}},
		{"missing", on(nodeC, StateFinalized), []Node{nodeC}},
		{"none", on(nodeA, StateInactive, nodeB, StateFilling), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := testTable(2, 7, 25, 2, c.b)
			for i := range a.Shards {
				var got []Node
				for _, p := range ColocatedPlacements([]*Table{a, b}, i) {
					if p.ShardID != a.Shards[i].ID {
						t.Fatalf("placement %+v is not of the first table's shard %d", p, a.Shards[i].ID)
					}
					got = append(got, p.Node)
				}
				if fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Fatalf("shard %d: nodes %v, want %v", i, got, c.want)
				}
			}
			// With the tables swapped: b's placements on the same nodes.
			for i := range b.Shards {
				var got []Node
				for _, p := range ColocatedPlacements([]*Table{b, a}, i) {
					got = append(got, p.Node)
				}
				if fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Fatalf("swapped, shard %d: nodes %v, want %v", i, got, c.want)
				}
			}
		})
	}
	if got := ColocatedPlacements([]*Table{a}, 0); len(got) != 3 {
		t.Fatalf("one table: %v", got)
	}
}

func TestLayoutSameAs(t *testing.T) {
	l := func(keyType uint32, shards ...shardLayout) *layout { return &layout{keyType: keyType, shards: shards} }
	s := func(min, max int32, nodes ...string) shardLayout {
		return shardLayout{min: min, max: max, nodes: nodes}
	}
	base := l(25, s(-10, -1, "a:1", "b:1"), s(0, 10, "b:1", "c:1"))
	cases := []struct {
		name string
		m    *layout
		want bool
	}{
		{"same", l(25, s(-10, -1, "a:1", "b:1"), s(0, 10, "b:1", "c:1")), true},
		{"key type", l(23, s(-10, -1, "a:1", "b:1"), s(0, 10, "b:1", "c:1")), false},
		{"range", l(25, s(-10, -2, "a:1", "b:1"), s(-1, 10, "b:1", "c:1")), false},
		{"nodes", l(25, s(-10, -1, "a:1", "b:1"), s(0, 10, "a:1", "c:1")), false},
		{"fewer copies", l(25, s(-10, -1, "a:1"), s(0, 10, "b:1")), false},
		{"shard count", l(25, s(-10, 10, "a:1", "b:1")), false},
		{"no shards", l(25), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := base.sameAs(c.m); got != c.want {
				t.Fatalf("sameAs = %v, want %v", got, c.want)
			}
		})
	}
}
