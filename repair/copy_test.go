package repair

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/pgtest"
)

const shardID = 10000

var templateDDL = []string{
	`CREATE SCHEMA "App"`,
	`CREATE TABLE "App"."Docs" (
		id bigserial PRIMARY KEY,
		body text,
		data bytea,
		tags text[],
		doc jsonb,
		n numeric,
		ts timestamptz DEFAULT now(),
		twice bigint GENERATED ALWAYS AS (id * 2) STORED,
		CHECK (n IS NULL OR n >= 0)
	)`,
	`CREATE INDEX docs_body ON "App"."Docs" (md5(body))`,
}

// rowsSQL generates rows lo..hi of the test data: NULLs in every nullable
// column, text with newlines, tabs, backslashes and quotes, bytea with zero
// bytes, arrays with NULLs, jsonb.
const rowsSQL = `
	INSERT INTO "App"."Docs_10000" (id, body, data, tags, doc, n, ts)
	SELECT g,
	       CASE WHEN g %% 10 = 0 THEN NULL ELSE 'line ' || g || E'\nnext\tline \\back\\slash "q" ' || repeat('x', g %% 50) || %s END,
	       CASE WHEN g %% 7 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') || '\x00ff'::bytea END,
	       CASE WHEN g %% 5 = 0 THEN NULL ELSE ARRAY['a' || g, NULL, E'q"u\\o,te{}\n'] END,
	       CASE WHEN g %% 3 = 0 THEN NULL ELSE jsonb_build_object('g', g, 's', E'x\ny\\', 'arr', jsonb_build_array(1, 'two', NULL)) END,
	       CASE WHEN g %% 11 = 0 THEN NULL ELSE g / 7.0 END,
	       timestamptz '2020-01-01 00:00:00+00' + g * interval '1 minute'
	FROM generate_series(%d, %d) g`

type fixture struct {
	c              *pgtest.Cluster
	meta           *pgx.Conn
	source, target catalog.Node
	src, tgt       *pgx.Conn // the workers
	ddl            *catalog.TemplateDDL
}

func connectNode(ctx context.Context, n catalog.Node) (*pgx.Conn, error) {
	return pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/postgres?sslmode=disable&connect_timeout=5", n.Name, n.Port))
}

func mustExec(t *testing.T, ctx context.Context, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func setup(t *testing.T, ctx context.Context) *fixture {
	f := &fixture{c: pgtest.StartTB(t, 3)}
	node := func(i int) catalog.Node { return catalog.Node{Name: f.c.Nodes[i].Host, Port: f.c.Nodes[i].Port} }
	f.source, f.target = node(1), node(2)
	conn := func(i int) *pgx.Conn {
		conn, err := connectNode(ctx, node(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	f.meta, f.src, f.tgt = conn(0), conn(1), conn(2)

	if err := catalog.EnsureSchema(ctx, f.meta); err != nil {
		t.Fatal(err)
	}
	mustExec(t, ctx, f.meta, templateDDL...)
	var relid uint32
	if err := f.meta.QueryRow(ctx, `SELECT '"App"."Docs"'::regclass::oid`).Scan(&relid); err != nil {
		t.Fatal(err)
	}
	mustExec(t, ctx, f.meta,
		fmt.Sprintf(`INSERT INTO pgs_distribution_metadata.shard VALUES (%d, %d, 't', '-2147483648', '2147483647')`, shardID, relid),
		fmt.Sprintf(`INSERT INTO pgs_distribution_metadata.shard_placement VALUES (1, %d, 1, '%s', %d), (2, %d, 1, '%s', %d)`,
			shardID, f.source.Name, f.source.Port, shardID, f.target.Name, f.target.Port))
	var err error
	if f.ddl, err = catalog.ReadTemplateDDL(ctx, f.meta, relid); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*pgx.Conn{f.src, f.tgt} {
		mustExec(t, ctx, w, f.ddl.ShardStatements(shardID)...)
	}
	mustExec(t, ctx, f.src, fmt.Sprintf(rowsSQL, "''", 1, 50000))
	// The target missed writes: rows missing, rows it should not have, and a
	// row that differs.
	mustExec(t, ctx, f.tgt,
		fmt.Sprintf(rowsSQL, "''", 1, 30000),
		`DELETE FROM "App"."Docs_10000" WHERE id % 3 = 0`,
		fmt.Sprintf(rowsSQL, "'junk'", 60001, 60100),
		`UPDATE "App"."Docs_10000" SET body = 'stale' WHERE id = 1`)
	return f
}

// digest is the md5 of every row of the shard table on conn, in text form.
func digest(t *testing.T, ctx context.Context, conn *pgx.Conn) (sum string, count int64) {
	t.Helper()
	err := conn.QueryRow(ctx, `SELECT coalesce(md5(string_agg(t::text, '' ORDER BY t::text)), ''), count(*) FROM "App"."Docs_10000" t`).
		Scan(&sum, &count)
	if err != nil {
		t.Fatal(err)
	}
	return sum, count
}

// tableOID is the shard table's oid on conn: it changes when it's recreated.
func tableOID(t *testing.T, ctx context.Context, conn *pgx.Conn) uint32 {
	t.Helper()
	var oid uint32
	if err := conn.QueryRow(ctx, `SELECT '"App"."Docs_10000"'::regclass::oid`).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	return oid
}

func (f *fixture) setStates(t *testing.T, ctx context.Context, src, tgt int) {
	t.Helper()
	mustExec(t, ctx, f.meta, fmt.Sprintf(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = CASE id WHEN 1 THEN %d ELSE %d END`, src, tgt))
}

func (f *fixture) states(t *testing.T, ctx context.Context) (src, tgt int) {
	t.Helper()
	err := f.meta.QueryRow(ctx, `SELECT (SELECT shard_state FROM pgs_distribution_metadata.shard_placement WHERE id = 1),
		(SELECT shard_state FROM pgs_distribution_metadata.shard_placement WHERE id = 2)`).Scan(&src, &tgt)
	if err != nil {
		t.Fatal(err)
	}
	return src, tgt
}

func TestCopyShardPlacement(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := setup(t, ctx)
	wantSum, wantCount := digest(t, ctx, f.src)
	if wantCount != 50000 {
		t.Fatalf("source has %d rows", wantCount)
	}

	t.Run("errors change nothing", func(t *testing.T) {
		sum, count := digest(t, ctx, f.tgt)
		oid := tableOID(t, ctx, f.tgt)
		for _, tc := range []struct {
			name             string
			shard            int64
			srcState         int
			tgtState         int
			source, target   catalog.Node
			wantCode, wanted string
		}{
			{"unknown source", shardID, 1, 3, catalog.Node{Name: "127.0.0.1", Port: 1}, f.target,
				"22023", `could not find placement matching "127.0.0.1:1"`},
			{"unknown target", shardID, 1, 3, f.source, catalog.Node{Name: "nohost", Port: f.target.Port},
				"22023", fmt.Sprintf(`could not find placement matching "nohost:%d"`, f.target.Port)},
			{"both unknown: source first", shardID, 1, 3, catalog.Node{Name: "a", Port: 1}, catalog.Node{Name: "b", Port: 2},
				"22023", `could not find placement matching "a:1"`},
			{"source inactive", shardID, 3, 3, f.source, f.target,
				"22023", "source placement must be in finalized state"},
			{"target finalized", shardID, 1, 1, f.source, f.target,
				"22023", "target placement must be in inactive state"},
			{"unknown shard", 99999, 1, 3, f.source, f.target,
				"42704", "shard with ID 99999 does not exist"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f.setStates(t, ctx, tc.srcState, tc.tgtState)
				err := CopyShardPlacement(ctx, f.meta, connectNode, tc.shard, tc.source, tc.target)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != tc.wantCode || pgErr.Message != tc.wanted {
					t.Fatalf("got %v, want SQLSTATE %s %q", err, tc.wantCode, tc.wanted)
				}
				if s, tg := f.states(t, ctx); s != tc.srcState || tg != tc.tgtState {
					t.Errorf("states changed to %d, %d", s, tg)
				}
				if gotSum, gotCount := digest(t, ctx, f.tgt); gotSum != sum || gotCount != count {
					t.Errorf("target rows changed")
				}
				if got := tableOID(t, ctx, f.tgt); got != oid {
					t.Errorf("target table was recreated")
				}
			})
		}
	})

	t.Run("source table missing rolls the target back", func(t *testing.T) {
		sum, count := digest(t, ctx, f.tgt)
		oid := tableOID(t, ctx, f.tgt)
		f.setStates(t, ctx, 1, 3)
		mustExec(t, ctx, f.src, `ALTER TABLE "App"."Docs_10000" RENAME TO moved`)
		err := CopyShardPlacement(ctx, f.meta, connectNode, shardID, f.source, f.target)
		mustExec(t, ctx, f.src, `ALTER TABLE "App".moved RENAME TO "Docs_10000"`)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
			t.Fatalf("got %v, want the source's undefined_table", err)
		}
		if s, tg := f.states(t, ctx); s != 1 || tg != 3 {
			t.Errorf("states changed to %d, %d", s, tg)
		}
		if gotSum, gotCount := digest(t, ctx, f.tgt); gotSum != sum || gotCount != count || tableOID(t, ctx, f.tgt) != oid {
			t.Errorf("target changed")
		}
	})

	t.Run("deadline while the source blocks", func(t *testing.T) {
		sum, count := digest(t, ctx, f.tgt)
		oid := tableOID(t, ctx, f.tgt)
		f.setStates(t, ctx, 1, 3)
		// The source's COPY waits for this lock until the deadline passes.
		locker, err := connectNode(ctx, f.source)
		if err != nil {
			t.Fatal(err)
		}
		defer locker.Close(ctx)
		mustExec(t, ctx, locker, `BEGIN`, `LOCK TABLE "App"."Docs_10000" IN ACCESS EXCLUSIVE MODE`)
		short, cancelShort := context.WithTimeout(ctx, time.Second)
		defer cancelShort()
		start := time.Now()
		err = CopyShardPlacement(short, f.meta, connectNode, shardID, f.source, f.target)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want a deadline error", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("returned %v after the deadline", d)
		}
		mustExec(t, ctx, locker, `ROLLBACK`)
		if s, tg := f.states(t, ctx); s != 1 || tg != 3 {
			t.Errorf("states changed to %d, %d", s, tg)
		}
		if gotSum, gotCount := digest(t, ctx, f.tgt); gotSum != sum || gotCount != count || tableOID(t, ctx, f.tgt) != oid {
			t.Errorf("target changed")
		}
	})

	t.Run("repair", func(t *testing.T) {
		if sum, _ := digest(t, ctx, f.tgt); sum == wantSum {
			t.Fatal("target does not differ before the repair")
		}
		f.setStates(t, ctx, 1, 3)
		start := time.Now()
		if err := CopyShardPlacement(ctx, f.meta, connectNode, shardID, f.source, f.target); err != nil {
			t.Fatal(err)
		}
		t.Logf("repaired %d rows in %v", wantCount, time.Since(start))
		if sum, count := digest(t, ctx, f.tgt); sum != wantSum || count != wantCount {
			t.Errorf("target has %d rows, digest %s; source %d, %s", count, sum, wantCount, wantSum)
		}
		if s, tg := f.states(t, ctx); s != 1 || tg != 1 {
			t.Errorf("states = %d, %d; want 1, 1", s, tg)
		}
		var idx *string
		if err := f.tgt.QueryRow(ctx, `SELECT to_regclass('"App".docs_body_10000')::text`).Scan(&idx); err != nil || idx == nil {
			t.Errorf("index docs_body_10000 missing on the repaired target: %v", err)
		}
		// The rebuilt shard keeps its constraints.
		_, err := f.tgt.Exec(ctx, `INSERT INTO "App"."Docs_10000" (id, n) VALUES (1000000, -1)`)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
			t.Errorf("CHECK on the repaired shard: got %v", err)
		}
	})

	t.Run("target without shard table or schema", func(t *testing.T) {
		mustExec(t, ctx, f.tgt, `DROP SCHEMA "App" CASCADE`)
		f.setStates(t, ctx, 1, 3)
		if err := CopyShardPlacement(ctx, f.meta, connectNode, shardID, f.source, f.target); err != nil {
			t.Fatal(err)
		}
		if sum, count := digest(t, ctx, f.tgt); sum != wantSum || count != wantCount {
			t.Errorf("target has %d rows, digest %s; source %d, %s", count, sum, wantCount, wantSum)
		}
		if s, tg := f.states(t, ctx); s != 1 || tg != 1 {
			t.Errorf("states = %d, %d; want 1, 1", s, tg)
		}
	})

	t.Run("target down", func(t *testing.T) {
		f.setStates(t, ctx, 1, 3)
		if err := f.c.Nodes[2].Stop(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := f.c.Nodes[2].Start(ctx); err != nil {
				t.Error(err)
			}
		}()
		err := CopyShardPlacement(ctx, f.meta, connectNode, shardID, f.source, f.target)
		if err == nil {
			t.Fatal("repair to a stopped node succeeded")
		}
		t.Logf("error: %v", err)
		if s, tg := f.states(t, ctx); s != 1 || tg != 3 {
			t.Errorf("states = %d, %d; want 1, 3", s, tg)
		}
	})
}
