package pgshard_test

import (
	"context"
	"testing"
)

// TestAdminFunctionsFollowSearchPath: after SET search_path, the table a
// session names in master_create_distributed_table and
// master_create_worker_shards is the one its search_path finds (here
// "Sch ema".t), not the same-named table the metadata pool would find
// (public.t).
func TestAdminFunctionsFollowSearchPath(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.exec(`CREATE SCHEMA "Sch ema"`)
	e.exec(`CREATE TABLE public.t (k int NOT NULL, v text)`)
	e.exec(`CREATE TABLE "Sch ema".t (k int NOT NULL, v text)`)
	conn, err := e.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		`SET search_path TO "Sch ema", public`,
		`SELECT master_create_distributed_table('t', 'k')`,
		`SELECT master_create_worker_shards('t', 4, 1)`,
		`INSERT INTO t (k, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var distributed string
	if err := e.DB.QueryRow(`SELECT relation_id::regclass::text FROM pgs_distribution_metadata.partition`).Scan(&distributed); err != nil {
		t.Fatal(err)
	}
	if distributed != `"Sch ema".t` {
		t.Fatalf("distributed %s, want \"Sch ema\".t", distributed)
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("count through the session: %d, %v; want 3", n, err)
	}
	if n := e.queryInt(`SELECT count(*) FROM public.t`); n != 0 {
		t.Fatalf("public.t holds %d rows, want 0", n)
	}
}
