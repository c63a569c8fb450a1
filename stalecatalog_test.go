package pgshard_test

import (
	"database/sql"
	"fmt"
	"testing"
)

// TestShardsCreatedByAnotherProcessAreUsedAtOnce: one handle (a migration
// tool, say) creates a table's shards while another (the application) has
// already cached the table as distributed without shards. The
// application's next statement must use the shards at once rather than
// fail with 55000 until its catalog catches up: a cache that cannot answer
// confirms the metadata version before it refuses.
func TestShardsCreatedByAnotherProcessAreUsedAtOnce(t *testing.T) {
	e := newEnv(t)
	app, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for i := range 5 {
		table := fmt.Sprintf("migrated_%d", i)
		e.exec(fmt.Sprintf(`CREATE TABLE %s (k int NOT NULL, v int)`, table))
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, table)
		// The application caches the table without shards...
		if _, err := app.Exec(fmt.Sprintf(`INSERT INTO %s (k, v) VALUES (1, 1)`, table)); sqlState(t, err) != "55000" {
			t.Fatalf("before the shards exist: %v, want SQLSTATE 55000", err)
		}
		// ...the migration creates them, and the application writes at once.
		e.exec(`SELECT master_create_worker_shards($1, 4, 1)`, table)
		if _, err := app.Exec(fmt.Sprintf(`INSERT INTO %s (k, v) VALUES (1, 1), (2, 2), (3, 3)`, table)); err != nil {
			t.Fatalf("try %d: the first write after the shards were created: %v", i, err)
		}
		if n := e.queryInt(fmt.Sprintf(`SELECT count(*) FROM %s`, table)); n != 3 {
			t.Fatalf("try %d: %d rows, want 3", i, n)
		}
	}
}
