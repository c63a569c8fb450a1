package session

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/planner"
)

// TestPlanCacheBoundedByBytes: the plan cache keeps plans within its byte
// budget, drops the ones not used lately first, and keeps no plan larger
// than its largest entry.
func TestPlanCacheBoundedByBytes(t *testing.T) {
	// Each op is "put <sql> <size>" or "get <sql>"; a get of a plan that is
	// not cached is noted as a miss.
	cases := []struct {
		name             string
		budget, maxEntry int
		ops              []string
		cached           []string
		used             int
		misses           []string
	}{
		{name: "fits", budget: 100, maxEntry: 50,
			ops:    []string{"put a 30", "put b 30", "put c 30", "get a", "get b", "get c"},
			cached: []string{"a", "b", "c"}, used: 90},
		{name: "drops the plan not used since", budget: 100, maxEntry: 50,
			ops:    []string{"put a 30", "put b 30", "put c 30", "get a", "get c", "put d 30", "get b"},
			cached: []string{"a", "c", "d"}, used: 90, misses: []string{"b"}},
		{name: "drops as many as a new plan needs", budget: 100, maxEntry: 60,
			ops:    []string{"put a 30", "put b 30", "put c 30", "get c", "put d 60"},
			cached: []string{"c", "d"}, used: 90},
		{name: "every plan used: the clock goes round", budget: 100, maxEntry: 50,
			ops:    []string{"put a 40", "put b 40", "get a", "get b", "put c 40"},
			cached: []string{"b", "c"}, used: 80},
		{name: "too large is not cached", budget: 100, maxEntry: 50,
			ops:    []string{"put a 30", "put big 51", "get big"},
			cached: []string{"a"}, used: 30, misses: []string{"big"}},
		{name: "a new plan replaces the old one", budget: 100, maxEntry: 50,
			ops:    []string{"put a 30", "put a 45", "put b 50"},
			cached: []string{"a", "b"}, used: 95},
		{name: "a new plan too large drops the old one", budget: 100, maxEntry: 50,
			ops:    []string{"put a 30", "put a 80", "get a"},
			cached: nil, used: 0, misses: []string{"a"}},
		{name: "largest entry capped by the budget", budget: 40, maxEntry: 100,
			ops:    []string{"put a 41", "put b 40"},
			cached: []string{"b"}, used: 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sizes := map[string]int{}
			pc := &planCache{budget: tc.budget, maxEntry: tc.maxEntry, size: func(sql string, p *planner.Plan) int { return sizes[sql] }}
			var misses []string
			for _, op := range tc.ops {
				var verb, sql string
				var size int
				if _, err := fmt.Sscan(op, &verb, &sql, &size); err != nil && verb != "get" {
					t.Fatalf("op %q: %v", op, err)
				}
				switch verb {
				case "put":
					sizes[sql] = size
					pc.put(sql, &planner.Plan{SQL: sql})
				case "get":
					if p := pc.get(sql); p == nil {
						misses = append(misses, sql)
					} else if p.SQL != sql {
						t.Fatalf("get %s returned the plan of %s", sql, p.SQL)
					}
				}
			}
			var cached []string
			for sql := range pc.index {
				cached = append(cached, sql)
			}
			slices.Sort(cached)
			entries, used := pc.stats()
			if !slices.Equal(cached, tc.cached) || used != tc.used || entries != len(tc.cached) || !slices.Equal(misses, tc.misses) {
				t.Fatalf("cached %v (%d entries), %d bytes, misses %v; want %v, %d bytes, misses %v", cached, entries, used, misses, tc.cached, tc.used, tc.misses)
			}
			for i, e := range pc.ring {
				if e.pos != i || pc.index[e.sql] != e {
					t.Fatalf("ring entry %d (%s) says it is at %d", i, e.sql, e.pos)
				}
			}
		})
	}
}

// TestPlanCacheKeepsNoLargeLiteralInsert: with the default bounds, the plan
// of a multi-row INSERT of 100 KB of literals is not cached, and thousands
// of distinct ones leave the cache within its budget, while a small
// statement's plan is cached.
func TestPlanCacheKeepsNoLargeLiteralInsert(t *testing.T) {
	table := &catalog.Table{RelationID: 1, Schema: "public", Name: "stock", Method: 'h', KeyColumn: "s_w_id", KeyType: 23,
		Columns: []catalog.Column{{Name: "s_w_id", TypeOID: 23, TypeName: "integer"}, {Name: "s_data", TypeOID: 25, TypeName: "text"}}}
	for i := range 16 {
		lo, hi := catalog.HashRange(i, 16)
		table.Shards = append(table.Shards, catalog.Shard{ID: int64(10000 + i), RelationID: 1, Min: lo, Max: hi,
			Placements: []catalog.Placement{{ID: int64(i + 1), ShardID: int64(10000 + i), State: catalog.StateFinalized, Node: catalog.Node{Name: "localhost", Port: 1}}}})
	}
	snap, err := catalog.NewSnapshot(1, []catalog.Node{{Name: "localhost", Port: 1}}, []string{"public"}, []*catalog.Table{table}, map[string]string{"stock": "public"})
	if err != nil {
		t.Fatal(err)
	}
	var pc planCache
	small := `SELECT s_data FROM stock WHERE s_w_id = $1`
	p, err := planner.New(small, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pc.put(small, p) || pc.get(small) != p {
		t.Fatalf("the plan of %q (%d bytes) is not cached", small, p.RetainedBytes())
	}
	for i := range 50 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO stock VALUES ")
		for r := 0; sb.Len() < 100_000; r++ {
			if r > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "(%d, 'row %d of statement %d, with some text to make it longer')", r%7, r, i)
		}
		sql := sb.String()
		p, err := planner.New(sql, snap, nil)
		if err != nil {
			t.Fatal(err)
		}
		if pc.put(sql, p) || pc.get(sql) != nil {
			t.Fatalf("the plan of a %d-byte INSERT (estimated %d bytes) is cached", len(sql), p.RetainedBytes())
		}
	}
	if entries, used := pc.stats(); entries != 1 || used > planCacheMaxEntry {
		t.Fatalf("%d plans of %d bytes cached, want the small one", entries, used)
	}
}
