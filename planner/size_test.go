package planner

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestRetainedBytesEstimate: RetainedBytes is within a factor of 3 of the
// heap a plan and its shard statements (all of them computed) really keep,
// for small statements of every kind and for large INSERTs of literals
// (which hold the statements of their rows' shards only).
func TestRetainedBytesEstimate(t *testing.T) {
	snap := testSnapshot(t)
	env := testEnv()
	rows := make([]string, 1500)
	for i := range rows {
		rows[i] = fmt.Sprintf("('c%d', '2020-01-02', %d, 7, 'abcdefghij', 'some title of a product %d', '{}')", i, i, i)
	}
	cases := []struct {
		sql    string
		copies int // plans measured at once, to rise above the heap's noise
	}{
		{"SELECT 1", 200},
		{"SELECT * FROM customer_reviews WHERE customer_id = $1", 200},
		{"SELECT * FROM customer_reviews", 200},
		{"SELECT count(*) FROM customer_reviews", 200},
		{"SELECT review_rating, count(*) FROM customer_reviews WHERE review_date > '2020-01-01' GROUP BY 1 ORDER BY 2 DESC LIMIT 10", 200},
		{"SELECT * FROM customer_reviews ORDER BY review_date LIMIT 10", 200},
		{"INSERT INTO customer_reviews (customer_id, review_rating) VALUES ($1, $2)", 200},
		{"UPDATE customer_reviews SET review_rating = 3 WHERE review_votes > 3", 200},
		{"INSERT INTO customer_reviews VALUES " + strings.Join(rows, ", "), 3},
		{"INSERT INTO customer_reviews VALUES " + strings.ReplaceAll(strings.Join(rows, ", "), "('c", "('HN802-"), 3},
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for _, tc := range cases {
		name := tc.sql
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			plans := make([]*Plan, tc.copies)
			before := heap()
			for i := range plans {
				// Each copy its own text, as distinct statements are.
				p, err := New(strings.Clone(tc.sql), snap, env)
				if err != nil {
					t.Fatal(err)
				}
				for s := 0; s < p.ShardCount() && !p.rowsDropped; s++ {
					if _, err := p.ShardSQL(s); err != nil {
						t.Fatal(err)
					}
				}
				plans[i] = p
			}
			measured := float64(heap()-before) / float64(len(plans))
			runtime.KeepAlive(plans)
			est := float64(plans[0].RetainedBytes())
			t.Logf("%d bytes of SQL: estimated %.0f, measured %.0f bytes (%.2fx)", len(tc.sql), est, measured, est/measured)
			if est < measured/3 || est > measured*3 {
				t.Fatalf("estimated %.0f bytes, measured %.0f", est, measured)
			}
		})
	}
}
