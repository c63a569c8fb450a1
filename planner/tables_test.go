package planner

import (
	"fmt"
	"testing"
)

// TestPlanTables: a plan lists the distributed tables its shard statement
// references (each once, Table first) and the one it writes, which the
// driver checks placements of per shard.
func TestPlanTables(t *testing.T) {
	snap := testSnapshot(t)
	env := testEnv()
	cases := []struct {
		sql    string
		tables string
		target string
	}{
		{`SELECT 1`, `[]`, ``},
		{`SELECT * FROM orders WHERE customer_id = 'a'`, `[orders]`, ``},
		{`SELECT * FROM orders o JOIN customer_reviews r USING (customer_id) WHERE o.customer_id = 'a'`, `[orders customer_reviews]`, ``},
		{`SELECT count(*) FROM orders o1 JOIN orders o2 USING (customer_id)`, `[orders]`, ``},
		{`UPDATE orders SET amount = 1 FROM customer_reviews r WHERE orders.customer_id = r.customer_id AND r.customer_id = 'a'`, `[orders customer_reviews]`, `orders`},
		{`DELETE FROM orders WHERE customer_id = 'a' AND EXISTS (SELECT FROM customer_reviews r WHERE r.customer_id = orders.customer_id)`, `[orders customer_reviews]`, `orders`},
		{`WITH x AS (SELECT customer_id FROM customer_reviews WHERE customer_id = 'a') UPDATE orders SET amount = 1 WHERE customer_id = 'a' AND customer_id IN (SELECT customer_id FROM x)`, `[customer_reviews orders]`, `orders`},
		{`INSERT INTO orders (customer_id, amount) VALUES ('a', 1)`, `[orders]`, `orders`},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			p, err := New(c.sql, snap, env)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tb := range p.Tables() {
				names = append(names, tb.Name)
			}
			if got := fmt.Sprint(names); got != c.tables {
				t.Errorf("Tables() = %s, want %s", got, c.tables)
			}
			if len(names) > 0 && p.Tables()[0] != p.Table {
				t.Errorf("Tables()[0] is %s, not Table %s", names[0], p.Table.Name)
			}
			target := ""
			if p.Target() != nil {
				target = p.Target().Name
			}
			if target != c.target {
				t.Errorf("Target() = %q, want %q", target, c.target)
			}
		})
	}
}
