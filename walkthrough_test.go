package pgshard_test

import (
	"strconv"
	"testing"

	_ "github.com/pgshard/pgshard"
)

const customerReviewsDDL = `CREATE TABLE customer_reviews (
    customer_id TEXT NOT NULL,
    review_date DATE,
    review_rating INTEGER,
    review_votes INTEGER,
    review_helpful_votes INTEGER,
    product_id CHAR(10),
    product_title TEXT,
    product_sales_rank BIGINT,
    product_group TEXT,
    product_category TEXT,
    product_subcategory TEXT,
    similar_product_ids CHAR(10)[]
)`

func TestSmoke(t *testing.T) {
	e := newEnv(t)
	e.exec(customerReviewsDDL)
	e.exec(`SELECT master_create_distributed_table('customer_reviews', 'customer_id')`)
	e.exec(`SELECT master_create_worker_shards('customer_reviews', 16, 2)`)
	ins, err := e.DB.Prepare(`INSERT INTO customer_reviews (customer_id, review_rating) VALUES ($1, $2)`)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := ins.Exec(strconv.Itoa(i), i%5); err != nil {
			t.Fatal(err)
		}
	}
	var r int
	if err := e.DB.QueryRow(`SELECT review_rating FROM customer_reviews WHERE customer_id = $1`, "42").Scan(&r); err != nil {
		t.Fatal(err)
	}
	if r != 2 {
		t.Fatalf("rating = %d", r)
	}
	if n := e.queryInt(`SELECT count(*) FROM customer_reviews`); n != 100 {
		t.Fatalf("count = %d", n)
	}
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard_placement`); n != 32 {
		t.Fatalf("placements = %d", n)
	}
}
