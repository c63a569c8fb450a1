package planner_test

import (
	"database/sql"
	"testing"

	_ "github.com/pgshard/pgshard"
	"github.com/pgshard/pgshard/internal/pgtest"
)

func TestTmpGap(t *testing.T) {
	c := pgtest.StartTB(t, 3)
	db, err := sql.Open("pgshard", c.Nodes[0].DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	must := func(q string, args ...any) {
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	must(`CREATE TABLE cr (customer_id text, title text)`)
	must(`SELECT master_add_node($1, $2)`, c.Nodes[1].Host, c.Nodes[1].Port)
	must(`SELECT master_add_node($1, $2)`, c.Nodes[2].Host, c.Nodes[2].Port)
	must(`SELECT master_create_distributed_table('cr', 'customer_id')`)
	must(`SELECT master_create_worker_shards('cr', 4, 2)`)
	for _, q := range []string{
		`INSERT INTO cr (customer_id) VALUES ('HN' || $1)`,
		`INSERT INTO cr (customer_id, title) VALUES (lower($1), $1)`,
		`UPDATE cr SET title = now()::text || $1 WHERE customer_id = 'HNx'`,
	} {
		if _, err := db.Exec(q, "x"); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	var n int
	db.QueryRow(`SELECT count(*) FROM cr WHERE customer_id = 'HNx'`).Scan(&n)
	t.Logf("HNx rows: %d", n)
}
