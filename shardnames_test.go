package pgshard_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// longNameCases are table names whose "<name>_<shardid>" is longer than
// PostgreSQL's 63-byte identifiers: truncated, two shards' names would be
// one table.
var longNameCases = []struct {
	label  string
	schema string // "" for public
	name   string
}{
	{"58 bytes", "", "t" + strings.Repeat("x", 56) + "y"},
	{"63 bytes in a schema", "Long Schema", strings.Repeat("z", 63)},
	{"29 two-byte characters (58 bytes)", "", strings.Repeat("ä", 29)},
}

// qualified is the quoted, schema-qualified name of a test table.
func qualified(schema, name string) string {
	if schema == "" {
		schema = "public"
	}
	return pgx.Identifier{schema, name}.Sanitize()
}

// shardTables returns, per worker address, the names of the ordinary
// tables in schema whose name starts with prefix.
func (e *env) shardTables(schema, prefix string) map[string][]string {
	e.t.Helper()
	if schema == "" {
		schema = "public"
	}
	out := map[string][]string{}
	for _, w := range e.workers {
		rows, err := e.worker(w).Query(context.Background(), `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind = 'r' AND n.nspname = $1 AND starts_with(c.relname, $2) ORDER BY 1`, schema, prefix)
		if err != nil {
			e.t.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			e.t.Fatal(err)
		}
		out[w.Addr()] = names
	}
	return out
}

// TestLongTableNameShardsDoNotCollide: two co-located 2-shard tables, one
// with a long name; moving the other's first shard onto the node holding
// the long table's second shard moves the long table's first shard there
// too. Its table must be a table of its own: no row is lost and each
// shard has a physical table.
func TestLongTableNameShardsDoNotCollide(t *testing.T) {
	for _, tc := range longNameCases {
		t.Run(tc.label, func(t *testing.T) {
			e := newEnv(t)
			long := qualified(tc.schema, tc.name)
			if tc.schema != "" {
				e.exec(`CREATE SCHEMA ` + pgx.Identifier{tc.schema}.Sanitize())
			}
			e.exec(`CREATE TABLE short (k int NOT NULL, v int)`)
			e.exec(`CREATE TABLE ` + long + ` (k int NOT NULL, v int, CONSTRAINT ` +
				pgx.Identifier{"pkey_" + strings.Repeat("c", 55)}.Sanitize() + ` PRIMARY KEY (k))`)
			for _, tb := range []string{"short", long} {
				e.exec(`SELECT master_create_distributed_table($1, 'k')`, tb)
				e.exec(`SELECT master_create_worker_shards($1, 2, 1)`, tb)
			}
			e.exec(`INSERT INTO ` + long + ` (k, v) SELECT g, g FROM generate_series(1, 1000) g`)
			e.exec(`INSERT INTO short (k, v) SELECT g, g FROM generate_series(1, 100) g`)

			ps := e.placements("short")
			if len(ps) != 2 || ps[0].Host+fmt.Sprint(ps[0].Port) == ps[1].Host+fmt.Sprint(ps[1].Port) {
				t.Fatalf("short's placements: %+v", ps)
			}
			e.exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, ps[0].ShardID, ps[0].Host, ps[0].Port, ps[1].Host, ps[1].Port)

			var n, distinct, sum int64
			if err := e.DB.QueryRow(`SELECT count(*), count(DISTINCT k), sum(v) FROM `+long).Scan(&n, &distinct, &sum); err != nil {
				t.Fatal(err)
			}
			if n != 1000 || distinct != 1000 || sum != 500500 {
				t.Fatalf("after the move: %d rows, %d distinct keys, sum %d; want 1000, 1000, 500500", n, distinct, sum)
			}
			// Each shard has its own table, all on the node moved to.
			prefix := tc.name[:16]
			tables := e.shardTables(tc.schema, prefix)
			var all []string
			for addr, names := range tables {
				for _, name := range names {
					if len(name) > 63 {
						t.Errorf("%s: shard table name %q is longer than 63 bytes", addr, name)
					}
				}
				all = append(all, names...)
			}
			if len(all) != 2 || all[0] == all[1] {
				t.Fatalf("physical tables of %s's two shards: %v", long, tables)
			}
			if n := e.directCount(tc.schema, tables); n != 1000 {
				t.Fatalf("the shard tables on the workers hold %d rows, want 1000", n)
			}
			t.Logf("shard tables: %v", tables)
		})
	}
}

// directCount is the number of rows in the given physical tables of
// schema on every worker, read straight from the workers.
func (e *env) directCount(schema string, tables map[string][]string) int64 {
	e.t.Helper()
	if schema == "" {
		schema = "public"
	}
	var total int64
	for _, w := range e.workers {
		for _, name := range tables[w.Addr()] {
			var n int64
			if err := e.worker(w).QueryRow(context.Background(), `SELECT count(*) FROM `+pgx.Identifier{schema, name}.Sanitize()).Scan(&n); err != nil {
				e.t.Fatal(err)
			}
			total += n
		}
	}
	return total
}

// TestLegacyTruncatedShardNames: shards created by an older pgshard, whose
// long names PostgreSQL truncated to 63 bytes, keep being found under the
// truncated names; a move that would put such a shard's table onto a node
// where another shard already has that truncated name is refused, changing
// nothing; a move elsewhere works.
func TestLegacyTruncatedShardNames(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	name := "legacy_" + strings.Repeat("n", 53) // 60 bytes
	e.exec(`CREATE TABLE short (k int NOT NULL, v int)`)
	e.exec(`CREATE TABLE ` + name + ` (k int NOT NULL, v int)`)
	for _, tb := range []string{"short", name} {
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, tb)
		e.exec(`SELECT master_create_worker_shards($1, 2, 1)`, tb)
	}
	e.exec(`INSERT INTO ` + name + ` (k, v) SELECT g, g FROM generate_series(1, 300) g`)

	// Make it what an older pgshard left: the shard tables under the names
	// PostgreSQL truncated "<name>_<shardid>" to, and no record of names.
	for _, p := range e.placements(name) {
		legacy := fmt.Sprintf("%s_%d", name, p.ShardID)[:63]
		conn := e.workerAt(p.Host, p.Port)
		var current string
		if err := conn.QueryRow(ctx, `SELECT relname FROM pg_class WHERE relkind = 'r' AND starts_with(relname, 'legacy_')`).Scan(&current); err != nil {
			t.Fatal(err)
		}
		if current != legacy {
			if _, err := conn.Exec(ctx, `ALTER TABLE `+pgx.Identifier{current}.Sanitize()+` RENAME TO `+pgx.Identifier{legacy}.Sanitize()); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.exec(`DROP TABLE IF EXISTS pgs_distribution_metadata.shard_table_name`)

	db := e.reopen()
	count := func() int64 {
		t.Helper()
		var n int64
		if err := db.QueryRow(`SELECT count(*) FROM ` + name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 300 {
		t.Fatalf("legacy shards: %d rows, want 300", n)
	}
	if _, err := db.Exec(`INSERT INTO `+name+` (k, v) VALUES ($1, 1), ($2, 2)`, 1001, 1002); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 302 {
		t.Fatalf("legacy shards after an insert: %d rows, want 302", n)
	}

	// short's first shard moves with the long table's first shard; onto
	// the node of the second, whose legacy name is the same, it is refused.
	ps := e.placements("short")
	before := fmt.Sprint(e.placements(name), e.placements("short"))
	_, err := db.Exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, ps[0].ShardID, ps[0].Host, ps[0].Port, ps[1].Host, ps[1].Port)
	expectError(t, err, "42P07", "truncated")
	if after := fmt.Sprint(e.placements(name), e.placements("short")); after != before {
		t.Fatalf("a refused move changed placements: %s -> %s", before, after)
	}
	if n := count(); n != 302 {
		t.Fatalf("after the refused move: %d rows, want 302", n)
	}

	// Onto a node without the table it works, under the legacy name.
	var free string
	var freePort int
	for _, w := range e.workers {
		if (w.Host != ps[0].Host || w.Port != ps[0].Port) && (w.Host != ps[1].Host || w.Port != ps[1].Port) {
			free, freePort = w.Host, w.Port
			break
		}
	}
	if _, err := db.Exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, ps[0].ShardID, ps[0].Host, ps[0].Port, free, freePort); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 302 {
		t.Fatalf("after the move: %d rows, want 302", n)
	}
	tables := e.shardTables("", "legacy_")
	if got := len(tables[fmt.Sprintf("%s:%d", free, freePort)]); got != 1 {
		t.Fatalf("shard tables after the move: %v", tables)
	}
	if n := e.directCount("", tables); n != 302 {
		t.Fatalf("the shard tables on the workers hold %d rows, want 302", n)
	}
}
