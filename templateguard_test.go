package pgshard_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestTemplateTablesRefuseWrites: the template of a distributed table on the
// metadata database never takes rows. A DO block (which pgshard cannot see
// into) that writes the distributed table, and a client writing the template
// straight on the metadata database, fail with 0A000 naming the table,
// instead of silently writing the empty template; writes through pgshard,
// reads of the template and a schema the guard was removed from (an older
// pgshard's) keep working, and the guard comes back when a process opens it.
func TestTemplateTablesRefuseWrites(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE kv (k bigint PRIMARY KEY, v text)`)
	e.exec(`SELECT master_create_distributed_table('kv', 'k')`)
	e.exec(`SELECT master_create_worker_shards('kv', 4, 2)`)
	e.exec(`INSERT INTO kv VALUES (1, 'a'), (2, 'b')`)
	e.exec(`UPDATE kv SET v = 'c' WHERE k = 2`)
	e.exec(`DELETE FROM kv WHERE k = 1`)
	if n := e.queryInt(`SELECT count(*) FROM kv`); n != 1 {
		t.Fatalf("count(*) = %d through pgshard, want 1", n)
	}

	ctx := context.Background()
	meta, err := pgx.Connect(ctx, e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close(ctx)
	// Through pgshard, only what it cannot see into reaches the template
	// (TRUNCATE and COPY of a distributed table it refuses itself).
	viaPgshard := []string{
		`DO $$ BEGIN INSERT INTO kv VALUES (3, 'c'); END $$`,
		`DO $$ BEGIN UPDATE kv SET v = 'x' WHERE k = 2; END $$`,
		`DO $$ BEGIN DELETE FROM kv; END $$`,
	}
	onMetadata := append(viaPgshard,
		`INSERT INTO kv VALUES (4, 'd')`,
		`UPDATE kv SET v = 'x'`,
		`DELETE FROM kv`,
		`TRUNCATE kv`,
		`COPY kv FROM PROGRAM 'echo 5'`,
	)
	for _, q := range viaPgshard {
		t.Run("through pgshard: "+q, func(t *testing.T) {
			_, err := e.DB.Exec(q)
			expectError(t, err, "0A000", `distributed table "public.kv"`)
		})
	}
	for _, q := range onMetadata {
		t.Run("on the metadata database: "+q, func(t *testing.T) {
			_, err := meta.Exec(ctx, q)
			expectError(t, err, "0A000", `distributed table "public.kv"`)
		})
	}
	if n := e.queryInt(`SELECT count(*) FROM kv`); n != 1 {
		t.Fatalf("count(*) = %d through pgshard after the refused writes, want 1", n)
	}
	var onTemplate int
	if err := meta.QueryRow(ctx, `SELECT count(*) FROM kv`).Scan(&onTemplate); err != nil || onTemplate != 0 {
		t.Fatalf("template rows = %d (%v), want 0", onTemplate, err)
	}

	// An older schema: the guard is missing; opening pgshard installs it.
	if _, err := meta.Exec(ctx, `DROP TRIGGER pgs_distributed_table_guard ON kv; DROP FUNCTION pgs_distribution_metadata.reject_template_write()`); err != nil {
		t.Fatal(err)
	}
	if _, err := meta.Exec(ctx, `INSERT INTO kv VALUES (9, 'z'); DELETE FROM kv`); err != nil {
		t.Fatalf("without the guard: %v", err)
	}
	db2, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.Ping(); err != nil {
		t.Fatal(err)
	}
	if _, err := db2.Exec(`SELECT 1`); err != nil {
		t.Fatal(err)
	}
	_, err = meta.Exec(ctx, `INSERT INTO kv VALUES (4, 'd')`)
	expectError(t, err, "0A000", `distributed table "public.kv"`)
}
