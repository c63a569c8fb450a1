package engine_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/plan"
	"github.com/pgshard/pgshard/planner"
)

var _ CopyCursor = (*testCursor)(nil)

// CopyIn begins a transaction on a new connection to each node (logged
// "copy in <nodes>"), which commitCopy ends.
func (c *testCursor) CopyIn(ctx context.Context, placements []catalog.Placement) (map[catalog.Node]CopyFromNode, error) {
	out := map[catalog.Node]CopyFromNode{}
	var names []string
	if c.tx == nil {
		c.tx = map[catalog.Node]driver.Conn{}
	}
	for _, pl := range placements {
		if out[pl.Node] != nil {
			continue
		}
		names = append(names, pl.Node.String())
		conn, _, err := c.writeConn(ctx, pl.Node)
		if err != nil {
			return nil, err
		}
		pc := conn.(*stdlib.Conn).Conn().PgConn()
		out[pl.Node] = func(ctx context.Context, sql string, r io.Reader) (int64, error) {
			c.logf("copy %s on %s", sql, pl.Node)
			tag, err := pc.CopyFrom(ctx, r, sql)
			return tag.RowsAffected(), err
		}
	}
	sort.Strings(names)
	c.logf("copy in %s", strings.Join(names, " "))
	return out, nil
}

// commitCopy commits (or, after a failure, rolls back) CopyIn's
// transactions.
func (c *testCursor) commitCopy(t *testing.T, commit bool) {
	t.Helper()
	end := "COMMIT"
	if !commit {
		end = "ROLLBACK"
	}
	for _, conn := range c.tx {
		if _, err := conn.(driver.ExecerContext).ExecContext(context.Background(), end, nil); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	c.tx = nil
}

func (c *testCursor) SessionKeys(context.Context, uint32, []string) ([]any, error) {
	return nil, errors.New("testCursor: no session")
}

func (c *testCursor) SessionRows(context.Context, string, int, []SessionColumn) ([][]any, error) {
	return nil, errors.New("testCursor: no session")
}

// CopyOut opens a connection to the shard's first finalized placement
// (logged "copy out <shard id>"), closed by done.
func (c *testCursor) CopyOut(ctx context.Context, read plan.Targeted, idx int) (func(context.Context, string, io.Writer) error, func(error), error) {
	s := &read.ShardTarget().Table.Shards[idx]
	c.logf("copy out %d", s.ID)
	conn, err := OpenNode(s.Finalized()[0].Node)
	if err != nil {
		return nil, nil, err
	}
	run := func(ctx context.Context, sql string, w io.Writer) error {
		_, err := conn.(*stdlib.Conn).Conn().PgConn().CopyTo(ctx, w, sql)
		return err
	}
	return run, func(error) { conn.Close() }, nil
}

// TestCopyFrom: rows taken one by one go, in batches, to every placement of
// the shard planner.ShardIndex picks for their key, and nowhere else; the
// count is reported once per row whatever the replicas; the log shows one
// transaction on both nodes and the batches.
func TestCopyFrom(t *testing.T) {
	saved := CopyBatchBytes
	CopyBatchBytes = 512
	defer func() { CopyBatchBytes = saved }()
	st := newShardedTable(t, "copy_from_kv", 4, 2)
	p := st.plan(t, `COPY copy_from_kv (v, k) FROM STDIN`)
	prim, ok := planner.Build(p).(*CopyFrom)
	if !ok {
		t.Fatalf("tree %s", Tree(planner.Build(p)))
	}
	if _, err := prim.Exec(context.Background(), &testCursor{}, nil); err == nil || !strings.Contains(err.Error(), "tx.Prepare") {
		t.Fatalf("Exec of CopyFrom: %v", err)
	}
	vc := &testCursor{}
	ctx := context.Background()
	w, err := prim.Start(ctx, vc)
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	for k := 1; k <= n; k++ {
		var v any = fmt.Sprintf("v%d\t\\", k)
		if k%7 == 0 {
			v = nil
		}
		if err := w.Row(ctx, args(v, int64(k))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := w.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vc.commitCopy(t, true)
	if got != n {
		t.Fatalf("Finish reported %d rows, want %d", got, n)
	}
	batches := 0
	for _, l := range vc.calls() {
		if strings.HasPrefix(l, "copy COPY") {
			batches++
		}
	}
	if calls := vc.calls(); !slices.Contains(calls, "copy in "+joinNodes(st)) {
		t.Fatalf("log %v", calls)
	}
	if batches < 8*2 {
		t.Fatalf("%d batches: the rows were not streamed in batches", batches)
	}
	total := 0
	for idx := range st.table.Shards {
		s := &st.table.Shards[idx]
		var first []string
		for j, pl := range s.Placements {
			rows := queryOn(t, pl.Node, fmt.Sprintf(`SELECT k, coalesce(v, 'NULL') FROM %s ORDER BY k`, catalog.ShardName(st.table.Name, s.ID)))
			for _, r := range rows {
				k, _ := strconv.ParseInt(strings.Fields(r)[0], 10, 64)
				if want, _ := planner.ShardIndex(st.table, k); want != idx {
					t.Fatalf("key %d on shard index %d, hashes to %d", k, idx, want)
				}
			}
			if j == 0 {
				first = rows
				total += len(rows)
			} else if !slices.Equal(rows, first) {
				t.Fatalf("replicas of shard %d differ", s.ID)
			}
		}
	}
	if total != n {
		t.Fatalf("%d rows stored, want %d", total, n)
	}
}

func joinNodes(st *shardedTable) string {
	var names []string
	for _, n := range st.snap.Nodes {
		names = append(names, n.String())
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// TestCopyFromBadRow: a row of the wrong arity fails the writer with 22P04
// and its number; every later call returns the same error.
func TestCopyFromBadRow(t *testing.T) {
	st := newShardedTable(t, "copy_bad_kv", 2, 1)
	vc := &testCursor{}
	ctx := context.Background()
	w, err := planner.Build(st.plan(t, `COPY copy_bad_kv FROM STDIN`)).(*CopyFrom).Start(ctx, vc)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Row(ctx, args(int64(1), "a")); err != nil {
		t.Fatal(err)
	}
	err = w.Row(ctx, args(int64(2)))
	if err == nil || !strings.Contains(err.Error(), "row 2") || !strings.Contains(err.Error(), "22P04") {
		t.Fatalf("bad row: %v", err)
	}
	if _, ferr := w.Finish(ctx); ferr == nil || ferr.Error() != err.Error() {
		t.Fatalf("Finish after a bad row: %v", ferr)
	}
	vc.commitCopy(t, false)
}

// TestCopyTo: every shard's rows, one row per line of COPY's text format,
// the shards read one after the other; Describe lists each shard's COPY.
func TestCopyTo(t *testing.T) {
	st := newShardedTable(t, "copy_to_kv", 4, 2)
	st.fill(t, 50)
	p := st.plan(t, `COPY copy_to_kv TO STDOUT`)
	vc := &testCursor{}
	got := rowsOf(t)(planner.Build(p).Query(context.Background(), vc, nil))
	var want []string
	for k := 1; k <= 50; k++ {
		want = append(want, fmt.Sprintf("%d\tv%d\n", k, k))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
	calls := vc.calls()
	if len(calls) != 4 || !strings.HasPrefix(calls[0], "copy out ") {
		t.Fatalf("log %v", calls)
	}
	d := &Description{}
	if err := planner.Build(p).Describe(context.Background(), vc, nil, d); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(d.Lines, "\n")
	if !strings.Contains(text, "COPY TO STDOUT over 4 of 4 shards") || !strings.Contains(text, "TO STDOUT") || strings.Count(text, "SQL: COPY public.copy_to_kv_") != 4 {
		t.Fatalf("description:\n%s", text)
	}
}

// TestCopyFromBinaryThenText: a COPY of typed values goes to the shards in
// COPY's binary format; at the first value whose binary form could differ
// from what the text stores (a key given as a string), the rows buffered
// are sent in binary and every later batch goes in the text format. Every
// row is stored with its values, once, on its key's shard.
func TestCopyFromBinaryThenText(t *testing.T) {
	saved := CopyBatchBytes
	CopyBatchBytes = 512
	defer func() { CopyBatchBytes = saved }()
	st := newShardedTable(t, "copy_bin_kv", 4, 1)
	p := st.plan(t, `COPY copy_bin_kv (k, v) FROM STDIN`)
	if !p.Copy.Binary {
		t.Fatal("a COPY of bigint and text is not planned in binary")
	}
	vc := &testCursor{}
	ctx := context.Background()
	w, err := planner.Build(p).(*CopyFrom).Start(ctx, vc)
	if err != nil {
		t.Fatal(err)
	}
	const n, switchAt = 600, 300
	want := map[int64]string{}
	for k := int64(1); k <= n; k++ {
		var key any = k
		if k == switchAt {
			key = " 300 " // read by the server, as text
		}
		v := fmt.Sprintf("v%d\t\\\n", k)
		var val any = v
		if k%9 == 0 {
			val, v = nil, "NULL"
		}
		want[k] = v
		if err := w.Row(ctx, args(key, val)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := w.Finish(ctx); err != nil || got != n {
		t.Fatalf("Finish: %d rows, %v", got, err)
	}
	vc.commitCopy(t, true)
	// Each shard took batches in both formats (the log is sorted: the
	// order of the batches is not in it).
	for _, s := range st.table.Shards {
		var binary, text int
		for _, l := range vc.calls() {
			switch {
			case !strings.HasPrefix(l, "copy COPY") || !strings.Contains(l, fmt.Sprintf(`_%d" (`, s.ID)):
			case strings.Contains(l, "FROM STDIN (FORMAT binary) on"):
				binary++
			default:
				text++
			}
		}
		if binary == 0 || text == 0 {
			t.Fatalf("shard %d: %d binary and %d text batches, want some of each", s.ID, binary, text)
		}
	}
	stored := 0
	for idx := range st.table.Shards {
		s := &st.table.Shards[idx]
		for _, r := range queryOn(t, s.Placements[0].Node, fmt.Sprintf(`SELECT k || ' ' || coalesce(v, 'NULL') FROM %s`, catalog.ShardName(st.table.Name, s.ID))) {
			ks, v, _ := strings.Cut(r, " ")
			k, _ := strconv.ParseInt(ks, 10, 64)
			if shard, _ := planner.ShardIndex(st.table, k); shard != idx {
				t.Fatalf("key %d on shard index %d, hashes to %d", k, idx, shard)
			}
			if want[k] != v {
				t.Fatalf("key %d holds %q, want %q", k, v, want[k])
			}
			stored++
		}
	}
	if stored != n {
		t.Fatalf("%d rows stored, want %d", stored, n)
	}
}
