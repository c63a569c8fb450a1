package planner

import (
	"strings"
	"testing"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// TestReplicatedWriteReadingSystemColumnIsRefused: a write to a replicated
// table (customer_reviews, orders and items have two placements per shard)
// that reads a system column whose value differs between replicas (xmin,
// xmax, cmin, cmax, ctid, tableoid) is refused with 0A000; RETURNING them,
// reading them in a SELECT, or writing a table with one placement per shard
// (events) is allowed.
func TestReplicatedWriteReadingSystemColumnIsRefused(t *testing.T) {
	snap := testSnapshot(t)
	env := testEnv()
	cases := []struct {
		sql    string
		refuse string // the system column named in the error; "" when allowed
	}{
		{`UPDATE customer_reviews SET review_rating = xmin::text::int WHERE customer_id = 'a'`, "xmin"},
		{`UPDATE customer_reviews SET review_rating = 1 WHERE customer_id = 'a' AND ctid = '(0,1)'`, "ctid"},
		{`UPDATE customer_reviews r SET review_rating = r.xmax::text::int WHERE customer_id = 'a'`, "xmax"},
		{`UPDATE customer_reviews SET review_rating = cmin::text::int WHERE customer_id = 'a'`, "cmin"},
		{`UPDATE customer_reviews SET review_rating = cmax::text::int WHERE customer_id = 'a'`, "cmax"},
		{`UPDATE customer_reviews SET review_rating = tableoid::int WHERE customer_id = 'a'`, "tableoid"},
		{`DELETE FROM customer_reviews WHERE customer_id = 'a' AND ctid = '(0,1)'`, "ctid"},
		{`DELETE FROM customer_reviews WHERE ctid = '(0,1)'`, "ctid"},
		{`UPDATE customer_reviews SET review_rating = 2 WHERE xmin::text = '5'`, "xmin"},
		{`UPDATE orders SET amount = 1 FROM customer_reviews r WHERE orders.customer_id = r.customer_id AND r.customer_id = 'a' AND r.ctid = '(0,1)'`, "ctid"},
		{`DELETE FROM customer_reviews WHERE customer_id = 'a' AND EXISTS (SELECT 1 FROM customer_reviews r WHERE r.customer_id = 'a' AND r.xmin::text = '7')`, "xmin"},
		{`INSERT INTO customer_reviews (customer_id, review_rating) VALUES ('a', 1) ON CONFLICT (customer_id) DO UPDATE SET review_rating = customer_reviews.xmin::text::int`, "xmin"},
		// Allowed: RETURNING reports one replica's values and writes nothing.
		{`UPDATE customer_reviews SET review_rating = 1 WHERE customer_id = 'a' RETURNING ctid, xmin`, ""},
		{`INSERT INTO customer_reviews (customer_id, review_rating) VALUES ('a', 1) RETURNING ctid`, ""},
		// Allowed: plain reads.
		{`SELECT ctid, xmin, tableoid FROM customer_reviews WHERE customer_id = 'a'`, ""},
		{`SELECT xmin FROM customer_reviews`, ""},
		// Allowed: one placement per shard, nothing to diverge.
		{`UPDATE events SET payload = xmin::text WHERE id = 1`, ""},
		{`DELETE FROM events WHERE id = 1 AND ctid = '(0,1)'`, ""},
		// Allowed: an ordinary column named like nothing special.
		{`UPDATE customer_reviews SET review_rating = 3 WHERE customer_id = 'a'`, ""},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			_, err := New(c.sql, snap, env)
			if c.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want 0A000 naming %s", c.refuse)
			}
			if code := sqlerr.Code(err); code != sqlerr.FeatureNotSupported {
				t.Fatalf("SQLSTATE %s, want 0A000: %v", code, err)
			}
			if !strings.Contains(err.Error(), `system column "`+c.refuse+`"`) {
				t.Fatalf("error %q does not name system column %q", err, c.refuse)
			}
		})
	}
}
