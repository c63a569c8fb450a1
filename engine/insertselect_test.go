package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
)

// TestInsertSelectPushdown: INSERT ... SELECT between co-located tables runs
// shard by shard on the workers, as one atomic statement, each target shard
// written on every placement after the source's placements there are
// locked (replicas read the same rows); its EXPLAIN says so.
func TestInsertSelectPushdown(t *testing.T) {
	ts := newShardedTables(t, 4, 2, "iss_src", "iss_dst")
	src, dst := ts[0], ts[1]
	src.fill(t, 30)
	ctx := context.Background()
	const q = `INSERT INTO iss_dst (k, v) SELECT k, v || '+' FROM iss_src WHERE k > $1`
	p := dst.plan(t, q)
	prim := planner.Build(p)
	if _, ok := prim.(*InsertSelect); !ok {
		t.Fatalf("built %T, want InsertSelect", prim)
	}
	vc := &testCursor{}
	res, err := prim.Exec(ctx, vc, args(int64(10)))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 20 {
		t.Fatalf("%d rows inserted, want 20", n)
	}
	var atomically, writes, locks int
	for _, c := range vc.calls() {
		switch {
		case strings.HasPrefix(c, "atomically "):
			atomically++
		case strings.HasPrefix(c, "write placement "):
			locks++
		case strings.HasPrefix(c, "write "):
			writes++
		}
	}
	if atomically != 1 || writes != 4*2 || locks != 4*2 {
		t.Fatalf("calls %q: want one atomic statement, 8 source locks and 8 target placement writes", vc.calls())
	}
	for _, s := range dst.table.Shards {
		var counts []string
		for _, pl := range s.Placements {
			counts = append(counts, queryOn(t, pl.Node, fmt.Sprintf(`SELECT count(*) FROM %s WHERE v LIKE '%%+'`, dst.table.ShardTableName(s.ID)))...)
		}
		if counts[0] != counts[1] {
			t.Fatalf("placements of shard %d hold %q rows", s.ID, counts)
		}
	}
	got := rowsOf(t)(planner.Build(dst.plan(t, `SELECT count(*) FROM iss_dst`)).Query(ctx, &testCursor{}, nil))
	if !slices.Equal(got, []string{"20"}) {
		t.Fatalf("iss_dst holds %q rows, want 20", got)
	}

	lines := rowsOf(t)(planner.Build(dst.plan(t, "EXPLAIN "+q)).Query(ctx, &testCursor{}, args(int64(10))))
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "pgshard: INSERT ... SELECT pushed down to 4 of 4 shards of iss_dst (co-located with iss_src)") {
		t.Fatalf("EXPLAIN:\n%s", strings.Join(lines, "\n"))
	}
}
