package pgshard_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/pgtest"
	"github.com/pgshard/pgshard/internal/tpcc"
)

// background reports whether q is the periodic work of the process's
// background resolver (its liveness record, the in-doubt scan it runs on the
// metadata database and on every node, commit record cleanup, the catalog
// version poll, the scan for recorded write fences left to drop) or
// the planner's lookup of a function's kind and volatility (once per name
// and process), not a statement of a transaction.
func background(q string) bool {
	for _, s := range []string{"FROM pg_proc WHERE proname", "pg_prepared_xacts", "pgs_distribution_metadata.process", "DELETE FROM pgs_distribution_metadata.commit_record", "pgs_distribution_metadata.metadata_version", "FROM pgs_distribution_metadata.write_fence"} {
		if strings.Contains(q, s) {
			return true
		}
	}
	return false
}

// TestTPCCStatementsOnTheServers counts, with pg_stat_statements, what
// every server receives while the TPC-C transactions run through pgshard
// on one warehouse (8 shards, factor 1), where every transaction writes on
// one node and only that node gets statements (item, a reference table, is
// read from that node's copy): no PREPARE
// TRANSACTION anywhere, nothing on the metadata database, one BEGIN and one
// COMMIT per transaction that writes, none for the read-only ones (the
// plain SELECTs of a READ COMMITTED transaction on nodes it has not
// written run outside it) and otherwise
// only the transaction's own statements. Then the specification's row-constructor
// forms, pinned to one warehouse: EXPLAIN names one shard, and the DELETE
// run outside a transaction reaches its worker as that one statement, with
// no transaction around it.
func TestTPCCStatementsOnTheServers(t *testing.T) {
	c := pgtest.StartTBWith(t, 5, pgtest.Options{Settings: map[string]string{
		"shared_preload_libraries":         "'pg_stat_statements'",
		"pg_stat_statements.track_utility": "on",
	}})
	e := newEnvOn(t, c, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stats := make([]*pgx.Conn, len(c.Nodes))
	for i, n := range c.Nodes {
		conn, err := pgx.Connect(ctx, n.DSN(e.dbname))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE EXTENSION pg_stat_statements"); err != nil {
			t.Fatal(err)
		}
		stats[i] = conn
	}
	// counts returns, per node, the calls of each statement in this test's
	// database since the last reset, and resets them.
	counts := func() []map[string]int64 {
		out := make([]map[string]int64, len(stats))
		for i, conn := range stats {
			rows, err := conn.Query(ctx, `SELECT regexp_replace(query, '\s+', ' ', 'g'), calls FROM pg_stat_statements
				WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat_statements%'`)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]int64{}
			for rows.Next() {
				var q string
				var n int64
				if err := rows.Scan(&q, &n); err != nil {
					t.Fatal(err)
				}
				m[q] += n
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			out[i] = m
			if _, err := conn.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	cfg := tpcc.Small(1)
	if err := tpcc.Create(ctx, e.DB, tpcc.Sharding{Shards: 8, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tpcc.Load(ctx, e.DB, cfg, 1); err != nil {
		t.Fatal(err)
	}
	term := tpcc.NewTerminal(e.DB, cfg, 1, 11)
	for _, tx := range []struct {
		name string
		run  func() error
		// writes is set for the transactions that write: the read-only
		// ones read committed rows with plain SELECTs, each outside a
		// transaction, as PostgreSQL would read them in one.
		writes bool
	}{
		{"new-order", func() error { return term.NewOrder(ctx) }, true},
		{"payment", func() error { return term.Payment(ctx) }, true},
		{"order-status", func() error { return term.OrderStatus(ctx) }, false},
		{"delivery", func() error { _, err := term.Delivery(ctx); return err }, true},
		{"stock-level", func() error { _, err := term.StockLevel(ctx); return err }, false},
	} {
		t.Run(tx.name, func(t *testing.T) {
			counts()
			const n = 10
			for i := 0; i < n; i++ {
				if err := tx.run(); err != nil && !strings.Contains(err.Error(), "rolled back on an unused item") {
					t.Fatal(err)
				}
			}
			got := counts()
			var begins, commits, rollbacks int64
			var reached []int
			for i, m := range got {
				foreground := false
				for q, calls := range m {
					upper := strings.ToUpper(q)
					if i > 0 && !background(q) {
						foreground = true
					}
					switch {
					case background(q):
						// The resolver scans every node's prepared
						// transactions on its own schedule.
					case i == 0:
						t.Errorf("the metadata database ran %q %d times", q, calls)
					case strings.HasPrefix(upper, "PREPARE TRANSACTION"), strings.HasPrefix(upper, "COMMIT PREPARED"):
						t.Errorf("node %d ran %q: two-phase commit of a transaction that wrote on one node", i, q)
					case strings.HasPrefix(upper, "BEGIN"):
						begins += calls
					case upper == "COMMIT":
						commits += calls
					case upper == "ROLLBACK":
						rollbacks += calls
					case strings.HasPrefix(upper, "SET ") || strings.HasPrefix(upper, "SAVEPOINT") || strings.HasPrefix(upper, "SELECT SET_CONFIG"):
						t.Errorf("node %d ran %q %d times: a statement the transaction did not send", i, q, calls)
					}
				}
				if foreground {
					reached = append(reached, i)
				}
			}
			// One warehouse: its rows, and item's copy beside them, are on
			// one node, which alone gets statements.
			if len(reached) != 1 {
				t.Errorf("nodes %v got statements, want the warehouse's node alone: %v", reached, got[1:])
			}
			want := int64(0)
			if tx.writes {
				want = n
			}
			if begins != want || begins != commits+rollbacks {
				t.Errorf("%d BEGIN, %d COMMIT and %d ROLLBACK for %d transactions: want %d BEGIN and as many ends", begins, commits, rollbacks, n, want)
			}
		})
	}

	t.Run("row constructors", func(t *testing.T) {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`SELECT s_quantity FROM stock WHERE (s_w_id, s_i_id) IN (($1, $2), ($3, $4)) FOR UPDATE`, []any{1, 5, 1, 7}},
			{`SELECT s_quantity FROM stock WHERE (s_w_id = $1 AND s_i_id = $2) OR (s_w_id = $3 AND s_i_id = $4)`, []any{1, 5, 1, 7}},
			{`UPDATE stock SET s_ytd = s_ytd + 1 WHERE (s_w_id, s_i_id) IN (($1, $2), ($3, $4))`, []any{1, 5, 1, 7}},
			{`DELETE FROM new_order WHERE (no_w_id, no_d_id, no_o_id) IN (($1, $2, $3), ($4, $5, $6))`, []any{1, 1, 40, 1, 2, 41}},
		} {
			rows, err := e.DB.QueryContext(ctx, "EXPLAIN "+q.sql, q.args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var l string
				if err := rows.Scan(&l); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, l)
			}
			rows.Close()
			if len(plan) == 0 || !strings.HasPrefix(plan[0], "pgshard: Scatter over 1 of 8 shards") {
				t.Errorf("EXPLAIN %s:\n%s\nwant one shard", q.sql, strings.Join(plan, "\n"))
			}
		}
		counts()
		const del = `DELETE FROM new_order WHERE (no_w_id, no_d_id, no_o_id) IN (($1, $2, $3), ($4, $5, $6))`
		res, err := e.DB.ExecContext(ctx, del, 1, 1, cfg.Customers, 1, 2, cfg.Customers)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 2 {
			t.Fatalf("deleted %d new orders, want 2", n)
		}
		var sent []string
		for i, m := range counts() {
			for q, calls := range m {
				sent = append(sent, fmt.Sprintf("node %d: %d × %s", i, calls, q))
			}
		}
		if len(sent) != 1 || !strings.Contains(sent[0], "1 × DELETE FROM new_order_") {
			t.Errorf("the servers received:\n%s\nwant the one shard's DELETE alone", strings.Join(sent, "\n"))
		}
	})
}
