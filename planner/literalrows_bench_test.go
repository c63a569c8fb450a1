package planner

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/catalog"
)

// BenchmarkPlanLiteralInsert plans a 200 KB multi-row INSERT of literals
// (a bulk loader's statement) and rewrites it for its shards: one shard
// (rows keyed alike) and all 16; scanned (New, planLiteralInsert) and
// parsed (planParsed: pg_query's parse and deparse).
func BenchmarkPlanLiteralInsert(b *testing.B) {
	snap := testSnapshot(b)
	env := testEnv()
	for _, shape := range []struct {
		name string
		key  func(i int) string
	}{
		{"one shard", func(int) string { return "HN802" }},
		{"16 shards", func(i int) string { return fmt.Sprintf("c%d", i) }},
	} {
		var sb strings.Builder
		sb.WriteString("INSERT INTO customer_reviews VALUES ")
		for i := 0; sb.Len() < 200_000; i++ {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "('%s', '2020-01-02', %d, 7, 'abcdefghij', 'some title of a product %d', '{}')", shape.key(i), i, i)
		}
		sql := sb.String()
		for _, way := range []struct {
			name string
			plan func(string, *catalog.Snapshot, Env) (*Plan, error)
		}{{"scanned", New}, {"parsed", planParsed}} {
			b.Run(shape.name+"/"+way.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(sql)))
				for b.Loop() {
					p, err := way.plan(sql, snap, env)
					if err != nil {
						b.Fatal(err)
					}
					shards, err := p.RowShards(nil)
					if err != nil {
						b.Fatal(err)
					}
					if p.parts == nil {
						if _, err := p.ShardSQL(shards[0]); err != nil {
							b.Fatal(err)
						}
					} else if _, err := p.SplitInsert(nil, shards); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkScanLiteralInsert plans 200 KB INSERTs of short rows (an
// order_line-shaped load: thousands of rows, the cost per row shows),
// all keyed to one shard, through the scanner.
func BenchmarkScanLiteralInsert(b *testing.B) {
	snap := literalSnapshot(b)
	env := testEnv()
	var sb strings.Builder
	sb.WriteString("INSERT INTO k_int4 VALUES ")
	rows := 0
	for i := 0; sb.Len() < 200_000; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "(%d, 7, 'abcdefghijklmnopqrstuvwx', %d.%02d)", i, i%1000, i%100)
		rows++
	}
	sql := sb.String()
	b.ReportAllocs()
	b.SetBytes(int64(len(sql)))
	b.ReportMetric(float64(rows), "rows")
	for b.Loop() {
		p, err := New(sql, snap, env)
		if err != nil {
			b.Fatal(err)
		}
		shards, err := p.RowShards(nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.ShardSQL(shards[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlanParamInsert plans a 10-row INSERT with parameters (what
// ORMs send), as a plan cache miss does: the literal-INSERT scanner
// declines it at its first parameter.
func BenchmarkPlanParamInsert(b *testing.B) {
	snap := testSnapshot(b)
	env := testEnv()
	values := make([]string, 10)
	for i := range values {
		values[i] = fmt.Sprintf("($%d, $%d)", 2*i+1, 2*i+2)
	}
	sql := "INSERT INTO items (id, name) VALUES " + strings.Join(values, ", ")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(sql, snap, env); err != nil {
			b.Fatal(err)
		}
	}
}
