package pgshard_test

import (
	"context"
	"strings"
	"testing"
)

// setupEvents makes events, distributed on id over 8 shards with 2
// replicas, and plain_events, an ordinary table on the metadata database
// holding the same 600 rows: one key of every type the merge compares,
// NULLs in each, text with accents and mixed case.
func setupEvents(t *testing.T) *env {
	e := newEnv(t)
	ddl := `CREATE TABLE %s (id bigint PRIMARY KEY, grp int, amount numeric(12,3), score float8, at timestamptz,
		day date, name text, flag bool, tag uuid, blob bytea, dur interval, j jsonb)`
	e.exec(strings.Replace(ddl, "%s", "events", 1))
	e.exec(`SELECT master_create_distributed_table('events', 'id')`)
	e.exec(`SELECT master_create_worker_shards('events', 8, 2)`)
	e.exec(strings.Replace(ddl, "%s", "plain_events", 1))
	fill := `INSERT INTO %s SELECT i, i % 5,
		CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 37 % 101) / 8.0 END,
		CASE WHEN i % 11 = 0 THEN NULL WHEN i % 13 = 0 THEN 'NaN'::float8 ELSE (i * 17 % 89) / 3.0 - 10 END,
		CASE WHEN i % 9 = 0 THEN NULL ELSE timestamptz '2024-01-01 00:00:00+00' + (i * 7919 % 1000) * interval '37 minutes' END,
		CASE WHEN i % 10 = 0 THEN NULL WHEN i = 5 THEN 'infinity'::date ELSE date '2000-01-01' + (i * 31 % 400) END,
		CASE WHEN i % 8 = 0 THEN NULL ELSE (ARRAY['é','a','B','z','Ä','', 'ab', 'A'])[i % 8 + 1] || (i % 3) END,
		CASE WHEN i % 6 = 0 THEN NULL ELSE i % 4 = 1 END,
		md5(i::text)::uuid,
		CASE WHEN i % 12 = 0 THEN NULL ELSE decode(lpad(to_hex(i * 97 % 256), 2, '0'), 'hex') END,
		CASE WHEN i % 5 = 0 THEN NULL ELSE (i % 3) * interval '1 mon' + (i % 50) * interval '1 day' END,
		jsonb_build_object('k', i % 4)
		FROM generate_series(1, 600) i`
	e.exec(strings.Replace(fill, "%s", "events", 1))
	e.exec(strings.Replace(fill, "%s", "plain_events", 1))
	return e
}

func TestSortMergeEqualsSinglePostgres(t *testing.T) {
	e := setupEvents(t)
	for _, c := range []struct {
		q    string
		args []any
	}{
		{q: `SELECT id, name FROM %s ORDER BY name, id`},
		{q: `SELECT id, name FROM %s ORDER BY name COLLATE "und-x-icu" DESC, id`},
		{q: `SELECT id, amount FROM %s ORDER BY amount DESC NULLS LAST, id LIMIT 17 OFFSET 5`},
		{q: `SELECT id, score FROM %s ORDER BY score, id LIMIT $1 OFFSET $2`, args: []any{10, 20}},
		{q: `SELECT id, score FROM %s WHERE grp = $1 ORDER BY score DESC, id OFFSET $2`, args: []any{2, 100}},
		{q: `SELECT id, at FROM %s ORDER BY at DESC, id`},
		{q: `SELECT * FROM %s ORDER BY day NULLS FIRST, id LIMIT 30`},
		{q: `SELECT * FROM %s ORDER BY 6 DESC NULLS LAST, 1 LIMIT 30 OFFSET 2`},
		{q: `SELECT id, flag, tag FROM %s ORDER BY flag, tag LIMIT 40`},
		{q: `SELECT id, blob FROM %s ORDER BY blob DESC, id`},
		{q: `SELECT id, dur FROM %s ORDER BY dur, id LIMIT 100`},
		{q: `SELECT id, j FROM %s ORDER BY j, id LIMIT 10`},
		{q: `SELECT id, grp FROM %s ORDER BY grp % 3, 2 DESC, id`},
		{q: `SELECT id, name AS n FROM %s ORDER BY n DESC, id`},
		{q: `SELECT id FROM %s ORDER BY lower(name), id DESC LIMIT 50`},
		{q: `SELECT id FROM %s ORDER BY id LIMIT ALL`},
		{q: `SELECT id FROM %s ORDER BY id DESC LIMIT NULL OFFSET 590`},
		{q: `SELECT id FROM %s ORDER BY id LIMIT 0`},
		{q: `SELECT id FROM %s ORDER BY id OFFSET 1000`},
		{q: `SELECT id, name FROM %s WHERE id IN (3, 77, 150, 599, 1000) ORDER BY name, id`},
		{q: `SELECT id, name FROM %s WHERE id = ANY($1) ORDER BY name DESC, id LIMIT 2`, args: []any{[]int64{3, 77, 150, 599}}},
		{q: `SELECT id, amount FROM %s ORDER BY amount * 2 + score NULLS FIRST, id LIMIT 25`},
	} {
		t.Run(c.q, func(t *testing.T) {
			want := queryText(t, e.DB, strings.ReplaceAll(c.q, "%s", "plain_events"), c.args...)
			for run := 0; run < 2; run++ { // the second run uses what the first learnt
				got := queryText(t, e.DB, strings.ReplaceAll(c.q, "%s", "events"), c.args...)
				if got != want {
					t.Fatalf("run %d: pgshard:\n%s\nsingle PostgreSQL:\n%s", run, got, want)
				}
			}
		})
	}
}

func TestSortMergeStreamsAndFallsBack(t *testing.T) {
	e := setupEvents(t)
	explain := func(q string) string {
		t.Helper()
		return strings.Join(queryLines(t, e, "EXPLAIN "+q), "\n")
	}
	got := explain(`SELECT id, name FROM events ORDER BY name DESC, id LIMIT 5 OFFSET 2`)
	for _, want := range []string{"merge the shards' sorted rows as they stream in (k-way, keys [column 2 desc nulls first, column 1])",
		"then OFFSET 2 LIMIT 5", "LIMIT 7"} {
		if !strings.Contains(got, want) {
			t.Fatalf("EXPLAIN lacks %q:\n%s", want, got)
		}
	}

	// Reading a few rows of a big ordered result and closing stops the
	// shard queries; the connection is usable after.
	rows, err := e.DB.Query(`SELECT id, name FROM events ORDER BY name, id`)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3 && rows.Next(); i++ {
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}

	// Bad bounds are PostgreSQL's errors.
	_, err = e.DB.Query(`SELECT id FROM events ORDER BY id LIMIT $1`, -1)
	expectError(t, err, "2201W", "LIMIT must not be negative")
	_, err = e.DB.Query(`SELECT id FROM events ORDER BY id OFFSET $1`, -3)
	expectError(t, err, "2201X", "OFFSET must not be negative")

	// In a transaction the shards share one connection per node: the rows
	// are combined, and the transaction's own writes are seen.
	ctx := context.Background()
	tx, err := e.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO events (id, name) VALUES (1000, '')`); err != nil {
		t.Fatal(err)
	}
	var first int64
	if err := tx.QueryRow(`SELECT id FROM events WHERE name IS NOT NULL ORDER BY name, id DESC LIMIT 1`).Scan(&first); err != nil || first != 1000 {
		t.Fatalf("first = %d, %v", first, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
}
