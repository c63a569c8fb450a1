package planner

import (
	"math"
	"testing"

	"github.com/pgshard/pgshard/catalog"
)

const referenceGoldenFile = "testdata/reference_cases.txt"

// referenceSnapshot is testSnapshot with two reference tables: country
// (code text, name text, region int) and currency (code text, rate int),
// each one shard with a placement on every node.
func referenceSnapshot(tb testing.TB) *catalog.Snapshot {
	tb.Helper()
	tables := testSnapshot(tb).Tables()
	ref := func(relid uint32, id int64, name string, cols []catalog.Column) *catalog.Table {
		s := catalog.Shard{ID: id, RelationID: relid, Min: math.MinInt32, Max: math.MaxInt32}
		for j, n := range testNodes {
			s.Placements = append(s.Placements, catalog.Placement{ID: id*10 + int64(j), ShardID: id, State: catalog.StateFinalized, Node: n})
		}
		return &catalog.Table{RelationID: relid, Schema: "public", Name: name, Method: catalog.MethodReference,
			KeyIndex: -1, Columns: cols, Shards: []catalog.Shard{s}}
	}
	tables = append(tables,
		ref(16500, 20000, "country", []catalog.Column{
			{Name: "code", TypeOID: oidText, TypeName: "text"},
			{Name: "name", TypeOID: oidText, TypeName: "text"},
			{Name: "region", TypeOID: oidInt4, TypeName: "integer"},
		}),
		ref(16510, 20001, "currency", []catalog.Column{
			{Name: "code", TypeOID: oidText, TypeName: "text"},
			{Name: "rate", TypeOID: oidInt4, TypeName: "integer", Default: "random()"},
		}))
	names := map[string]string{}
	for _, t := range tables {
		names[t.Name] = "public"
	}
	for _, n := range []string{"accounts", "users", "logs"} {
		names[n] = "public"
	}
	snap, err := catalog.NewSnapshot(7, testNodes, []string{"public"}, tables, names)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// TestReferenceGolden: the plans of statements on reference tables, alone
// and with distributed tables (testdata/reference_cases.txt; -update
// rewrites it).
func TestReferenceGolden(t *testing.T) {
	snap := referenceSnapshot(t)
	env := testEnv()
	cases := readGolden(t, referenceGoldenFile)
	changed := false
	for i := range cases {
		c := &cases[i]
		got := render(c.sql, snap, env)
		if got != c.want {
			if *update {
				c.want = got
				changed = true
				continue
			}
			t.Errorf("%s:%d:\n%s\n---- got:\n%s\n---- want:\n%s", referenceGoldenFile, c.line, c.sql, got, c.want)
		}
	}
	if *update && changed {
		writeGolden(t, referenceGoldenFile, cases)
	}
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
}

// TestReferencePlanInvariants: TestPlanInvariants' rules on the reference
// table cases (every shard statement names shard tables only).
func TestReferencePlanInvariants(t *testing.T) {
	checkPlanInvariants(t, referenceSnapshot(t), referenceGoldenFile)
}
