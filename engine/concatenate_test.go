package engine_test

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
)

// describeAs is the metadata database of a test in which every query
// returns the same columns.
type describeAs []planner.ColumnDesc

func (describeAs) Function(name string) (planner.FunctionInfo, bool) { return testEnv{}.Function(name) }
func (d describeAs) Describe(string) ([]planner.ColumnDesc, error)   { return d, nil }

// TestConcatenate: a UNION ALL the shards cannot run together runs arm by
// arm, each arm a statement of the session opened only once the one before
// it has been read to the end, and returns every arm's rows (duplicates
// kept) under the first arm's column names.
func TestConcatenate(t *testing.T) {
	tables := newShardedTables(t, 4, 1, "cat_a", "cat_b")
	a, b := tables[0], tables[1]
	a.fill(t, 6)
	b.fill(t, 4)
	ctx := context.Background()
	env := describeAs{{Name: "v", TypeOID: 25}}
	p, err := planner.New(`SELECT v AS first FROM cat_a WHERE k > $1 UNION ALL SELECT v FROM cat_b`, a.snap, env)
	if err != nil {
		t.Fatal(err)
	}
	prim := planner.Build(p)
	if _, ok := prim.(*Concatenate); !ok {
		t.Fatalf("built %T, want Concatenate\n%s", prim, p.Describe())
	}
	vc := &testCursor{snap: a.snap, env: env}
	rows, err := prim.Query(ctx, vc, args(int64(2)))
	if err != nil {
		t.Fatal(err)
	}
	if cols := rows.Columns(); !slices.Equal(cols, []string{"first"}) {
		t.Fatalf("columns %q, want the first arm's", cols)
	}
	// The second arm is not opened while the first has rows.
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		t.Fatal(err)
	}
	for _, l := range vc.calls() {
		if strings.HasPrefix(l, "statement") && strings.Contains(l, "cat_b") {
			t.Fatalf("calls %q: the second arm opened before the first was read", vc.calls())
		}
	}
	got := append(readRows(t, rows, nil), fmt.Sprint(dest[0]))
	sort.Strings(got)
	if want := []string{"v1", "v2", "v3", "v3", "v4", "v4", "v5", "v6"}; !slices.Equal(got, want) {
		t.Fatalf("rows %q, want %q", got, want)
	}
	vc.mu.Lock()
	log := slices.Clone(vc.log)
	vc.mu.Unlock()
	second := slices.IndexFunc(log, func(l string) bool { return strings.HasPrefix(l, "statement") && strings.Contains(l, "cat_b") })
	if !strings.HasPrefix(log[0], "statement") || !strings.Contains(log[0], "cat_a") || second < 0 {
		t.Fatalf("log %q: want the first arm's statement, then the second's", log)
	}
	for i, l := range log {
		for _, s := range a.table.Shards {
			if l == fmt.Sprintf("read %d", s.ID) && i > second {
				t.Fatalf("log %q: the first arm read shard %d after the second arm opened", log, s.ID)
			}
		}
	}

	// Arms whose columns differ in type are not concatenated: PostgreSQL
	// would convert them (the arms then run first).
	p, err = planner.New(`SELECT k FROM cat_a UNION ALL SELECT v FROM cat_b`, a.snap, mixedTypes{})
	if err == nil && p.Kind == planner.Concatenate {
		t.Fatalf("arms of different types concatenated:\n%s", p.Describe())
	}
}

// mixedTypes describes a query as one bigint column when it reads k, else
// one text column.
type mixedTypes struct{}

func (mixedTypes) Function(name string) (planner.FunctionInfo, bool) { return testEnv{}.Function(name) }
func (mixedTypes) Describe(sql string) ([]planner.ColumnDesc, error) {
	if strings.Contains(sql, "SELECT k") {
		return []planner.ColumnDesc{{Name: "k", TypeOID: 20}}, nil
	}
	return []planner.ColumnDesc{{Name: "v", TypeOID: 25}}, nil
}
