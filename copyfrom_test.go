package pgshard_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard"
	"github.com/pgshard/pgshard/engine"
)

// TestCopyFromSource loads rows with pgshard.CopyFrom (a pgx.CopyFromSource,
// no database/sql statement) into a table of 8 shards with replication
// factor 2, in batches small enough that every shard takes many and the
// batch buffers are reused many times: every row is on the shard whose
// range holds the worker's own hash of its key and on the same shard as an
// INSERT of the same values puts it, replicas are identical. A duplicate
// key fails the whole load with 23505 and the row's number, leaving the
// table as it was; a table that is not distributed is refused with 42P01.
func TestCopyFromSource(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	saved := engine.CopyBatchBytes
	engine.CopyBatchBytes = 2 << 10
	t.Cleanup(func() { engine.CopyBatchBytes = saved })
	for _, name := range []string{"cf", "ins_cf"} {
		e.exec(fmt.Sprintf(`CREATE TABLE %s (a int, k bigint NOT NULL, b text, c numeric DEFAULT 7, d bytea, UNIQUE (k))`, name))
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, name)
		e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', 8, 2)`, name))
	}
	const rows = 1500
	var data [][]any
	for i := range rows {
		var b any = fmt.Sprintf("it's \"%d\"\r\n\\N\ttab", i)
		if i%5 == 0 {
			b = nil
		}
		var k any = int64(i) * 1_000_000_007
		if i%2 == 1 {
			k = int32(-i) // a Go type of its own, hashed as the column's type
		}
		data = append(data, []any{i, k, b, []byte{0, byte(i), '\\', '\t'}})
	}
	n, err := pgshard.CopyFrom(ctx, e.DB, pgx.Identifier{"cf"}, []string{"a", "k", "b", "d"}, pgx.CopyFromRows(data))
	if err != nil || n != rows {
		t.Fatalf("pgshard.CopyFrom: %d rows, %v; want %d", n, err, rows)
	}
	tx, err := e.DB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range data {
		if _, err := tx.Exec(`INSERT INTO ins_cf (a, k, b, d) VALUES ($1, $2, $3, $4)`, r...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if stored := e.assertRowsHashIntoTheirShards("cf", "hashint8(k)"); stored != rows*2 {
		t.Fatalf("%d rows stored over all placements, want %d", stored, rows*2)
	}
	e.assertReplicasIdentical("cf")
	copied, inserted := e.shardContents("cf"), e.shardContents("ins_cf")
	if len(copied) != len(inserted) {
		t.Fatalf("%d shards vs %d", len(copied), len(inserted))
	}
	for i := range copied {
		if !slices.Equal(copied[i], inserted[i]) {
			t.Fatalf("shard %d of cf holds other rows than the same shard of ins_cf:\n%.1500v\nwant\n%.1500v", i, copied[i], inserted[i])
		}
	}

	t.Run("duplicate key", func(t *testing.T) {
		var more [][]any
		for i := range 1000 {
			more = append(more, []any{i, int64(rows + i), "new", nil})
		}
		more[699][1] = data[10][1] // row 700 repeats a key loaded above
		n, err := pgshard.CopyFrom(ctx, e.DB, pgx.Identifier{"cf"}, []string{"a", "k", "b", "d"}, pgx.CopyFromRows(more))
		if code := sqlState(t, err); code != "23505" || !strings.Contains(err.Error(), "row 700") {
			t.Fatalf("pgshard.CopyFrom: %d rows, %v; want 23505 naming row 700", n, err)
		}
		if got := e.queryInt(`SELECT count(*) FROM cf`); got != rows {
			t.Fatalf("cf holds %d rows after the failed load, want %d", got, rows)
		}
		e.assertReplicasIdentical("cf")
	})
	t.Run("not distributed", func(t *testing.T) {
		e.exec(`CREATE TABLE plain (k bigint)`)
		_, err := pgshard.CopyFrom(ctx, e.DB, pgx.Identifier{"plain"}, []string{"k"}, pgx.CopyFromRows([][]any{{int64(1)}}))
		if code := sqlState(t, err); code != "42P01" {
			t.Fatalf("pgshard.CopyFrom into a plain table: %v; want 42P01", err)
		}
	})
}
