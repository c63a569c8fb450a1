package pgshard_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// shardStats is what a placement's shard table (or the template) says about
// its last ANALYZE and VACUUM, read straight from its server.
type shardStats struct {
	reltuples float64
	analyzed  bool
	vacuumed  bool
	// columns are the columns pg_stats has statistics for, sorted.
	columns string
}

// readShardStats reads table's statistics on the server of q.
func readShardStats(t *testing.T, q *pgx.Conn, table string) shardStats {
	t.Helper()
	var s shardStats
	err := q.QueryRow(context.Background(), `SELECT c.reltuples::float8, s.last_analyze IS NOT NULL, s.last_vacuum IS NOT NULL,
			coalesce((SELECT string_agg(attname::text, ',' ORDER BY attname) FROM pg_stats WHERE schemaname = 'public' AND tablename = $1), '')
		FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = ('public.' || quote_ident($1))::regclass`, table).
		Scan(&s.reltuples, &s.analyzed, &s.vacuumed, &s.columns)
	if err != nil {
		t.Fatalf("statistics of %s: %v", table, err)
	}
	return s
}

// TestAnalyzeVacuumReachEveryPlacement: ANALYZE and VACUUM of a distributed
// table (4 shards, 2 replicas) and of a reference table run through pgshard
// on the template and on every finalized placement's shard table: each
// shard table's reltuples becomes its own row count (-1 before: never
// analyzed), its last_analyze / last_vacuum is set, and a column list
// gathers statistics of those columns only. VACUUM in a transaction block
// fails with 25001, as PostgreSQL's; ANALYZE in one runs and commits with
// it. ANALYZE returns no rows.
func TestAnalyzeVacuumReachEveryPlacement(t *testing.T) {
	cases := []struct {
		name  string
		table string
		// stmt runs through pgshard; inTx runs it in a BeginTx transaction.
		stmt string
		inTx bool
		// refused is the SQLSTATE it fails with ("" when it runs).
		refused  string
		analyzed bool
		vacuumed bool
		columns  string
	}{
		{name: "analyze distributed", table: "t", stmt: `ANALYZE t`, analyzed: true, columns: "k,v"},
		{name: "analyze columns", table: "t", stmt: `ANALYZE t (v)`, analyzed: true, columns: "v"},
		{name: "analyze in a transaction", table: "t", stmt: `ANALYZE VERBOSE t`, inTx: true, analyzed: true, columns: "k,v"},
		{name: "analyze reference", table: "item", stmt: `ANALYZE item`, analyzed: true, columns: "i_id,i_name"},
		{name: "vacuum distributed", table: "t", stmt: `VACUUM t`, vacuumed: true},
		{name: "vacuum analyze reference", table: "item", stmt: `VACUUM (ANALYZE) item`, analyzed: true, vacuumed: true, columns: "i_id,i_name"},
		{name: "vacuum in a transaction", table: "t", stmt: `VACUUM t`, inTx: true, refused: "25001"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.exec(`CREATE TABLE t (k bigint PRIMARY KEY, v text)`)
			e.exec(`SELECT master_create_distributed_table('t', 'k')`)
			e.exec(`SELECT master_create_worker_shards('t', 4, 2)`)
			e.exec(`CREATE TABLE item (i_id int PRIMARY KEY, i_name text)`)
			e.exec(`SELECT master_create_reference_table('item')`)
			e.exec(`INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 40) g`)
			e.exec(`INSERT INTO item SELECT g, 'item ' || g FROM generate_series(1, 30) g`)
			ctx := context.Background()

			placements := e.placements(tc.table)
			if len(placements) < len(e.workers) {
				t.Fatalf("%s has %d placements on %d workers", tc.table, len(placements), len(e.workers))
			}
			for _, p := range placements {
				shard := fmt.Sprintf("%s_%d", tc.table, p.ShardID)
				if s := readShardStats(t, e.workerAt(p.Host, p.Port), shard); s.reltuples != -1 || s.analyzed || s.vacuumed {
					t.Fatalf("%s on %s:%d before the statement: %+v, want never analyzed nor vacuumed", shard, p.Host, p.Port, s)
				}
			}

			var err error
			if tc.inTx {
				tx, berr := e.DB.BeginTx(ctx, nil)
				if berr != nil {
					t.Fatal(berr)
				}
				if _, err = tx.ExecContext(ctx, tc.stmt); err != nil {
					_ = tx.Rollback()
				} else if err = tx.Commit(); err != nil {
					t.Fatalf("commit: %v", err)
				}
			} else {
				rows, qerr := e.DB.QueryContext(ctx, tc.stmt)
				if err = qerr; err == nil {
					n := 0
					for rows.Next() {
						n++
					}
					if cols, _ := rows.Columns(); n != 0 || len(cols) != 0 {
						t.Fatalf("%s returned %d rows of columns %v, want none", tc.stmt, n, cols)
					}
					err = rows.Close()
				}
			}
			if tc.refused != "" {
				if got := sqlState(t, err); got != tc.refused {
					t.Fatalf("%s: got %v (SQLSTATE %s), want SQLSTATE %s", tc.stmt, err, got, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.stmt, err)
			}

			total := 0
			for _, p := range placements {
				if p.State != 1 {
					continue
				}
				w := e.workerAt(p.Host, p.Port)
				shard := fmt.Sprintf("%s_%d", tc.table, p.ShardID)
				var rows int
				if err := w.QueryRow(ctx, `SELECT count(*) FROM `+shard).Scan(&rows); err != nil {
					t.Fatal(err)
				}
				total += rows
				s := readShardStats(t, w, shard)
				if s.analyzed != tc.analyzed || s.vacuumed != tc.vacuumed || s.columns != tc.columns {
					t.Errorf("%s on %s:%d: %+v, want analyzed %v, vacuumed %v, statistics of columns %q", shard, p.Host, p.Port, s, tc.analyzed, tc.vacuumed, tc.columns)
				}
				if int(s.reltuples) != rows {
					t.Errorf("%s on %s:%d: reltuples %v, want its %d rows", shard, p.Host, p.Port, s.reltuples, rows)
				}
			}
			want := 2 * 40 // 2 replicas of each row
			if tc.table == "item" {
				want = 30 * len(e.workers)
			}
			if total != want {
				t.Fatalf("placements of %s hold %d rows in all, want %d", tc.table, total, want)
			}
			meta := e.worker(e.c.Nodes[0])
			if s := readShardStats(t, meta, tc.table); s.analyzed != tc.analyzed || s.vacuumed != tc.vacuumed {
				t.Errorf("template %s: %+v, want analyzed %v, vacuumed %v", tc.table, s, tc.analyzed, tc.vacuumed)
			}
		})
	}
}

// TestAnalyzeSeveralTablesRefused: ANALYZE of a distributed table with other
// tables in one statement is refused (0A000) before anything runs; bare
// ANALYZE runs on the metadata database.
func TestAnalyzeSeveralTablesRefused(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE t (k bigint PRIMARY KEY, v text)`)
	e.exec(`SELECT master_create_distributed_table('t', 'k')`)
	e.exec(`SELECT master_create_worker_shards('t', 2, 1)`)
	e.exec(`CREATE TABLE plain (a int)`)
	_, err := e.DB.Exec(`ANALYZE plain, t`)
	expectError(t, err, "0A000", "run one ANALYZE per table")
	if !strings.Contains(err.Error(), `"t"`) {
		t.Fatalf("error does not name the table: %v", err)
	}
	e.exec(`ANALYZE`)
}
