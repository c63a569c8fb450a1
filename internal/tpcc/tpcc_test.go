package tpcc_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/internal/pgtest"
	"github.com/pgshard/pgshard/internal/tpcc"
)

// TestWorkloadOnOneServer checks the kit itself on a plain PostgreSQL: the
// initial population and the data after a run satisfy every consistency
// condition, and the run has no errors.
func TestWorkloadOnOneServer(t *testing.T) {
	c := pgtest.StartTB(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db, err := sql.Open("pgx", c.Nodes[0].DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := tpcc.Small(2)
	if err := tpcc.Create(ctx, db, tpcc.Sharding{}); err != nil {
		t.Fatal(err)
	}
	if err := tpcc.Load(ctx, db, cfg, 1); err != nil {
		t.Fatal(err)
	}
	if err := tpcc.Check(ctx, db, cfg, true); err != nil {
		t.Fatalf("initial population: %v", err)
	}
	st := tpcc.Run(ctx, db, cfg, tpcc.RunConfig{Terminals: 4, Duration: 2 * time.Minute, Transactions: 150, Seed: 7, Retries: 5})
	t.Log(st)
	for _, err := range st.Errors {
		t.Error(err)
	}
	if st.Done[tpcc.NewOrderKind] == 0 || st.Done[tpcc.DeliveryKind] == 0 {
		t.Fatalf("the run did too little to check: %v", st)
	}
	if err := tpcc.Check(ctx, db, cfg, false); err != nil {
		t.Fatalf("after the run: %v", err)
	}
}

// TestCheckFindsViolations tampers with a consistent population and expects
// the conditions it breaks to be reported: the checks can fail.
func TestCheckFindsViolations(t *testing.T) {
	c := pgtest.StartTB(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db, err := sql.Open("pgx", c.Nodes[0].DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := tpcc.Small(1)
	if err := tpcc.Create(ctx, db, tpcc.Sharding{}); err != nil {
		t.Fatal(err)
	}
	if err := tpcc.Load(ctx, db, cfg, 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, tamper, want string
	}{
		{"w_ytd", `UPDATE warehouse SET w_ytd = w_ytd + 1`, "condition 1:"},
		{"next_o_id", `UPDATE district SET d_next_o_id = d_next_o_id + 1 WHERE d_id = 3`, "condition 2:"},
		{"new_order gap", `DELETE FROM new_order WHERE no_d_id = 2 AND no_o_id = (SELECT min(no_o_id) + 1 FROM new_order WHERE no_d_id = 2)`, "condition 3:"},
		{"order line lost", `DELETE FROM order_line WHERE ol_d_id = 4 AND ol_o_id = 1 AND ol_number = 1`, "condition 6:"},
		{"carrier", `UPDATE orders SET o_carrier_id = 1 WHERE o_d_id = 5 AND o_id = (SELECT max(no_o_id) FROM new_order WHERE no_d_id = 5)`, "condition 5:"},
		{"balance", `UPDATE customer SET c_balance = c_balance + 5 WHERE c_d_id = 6 AND c_id = 1`, "condition 10:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.ExecContext(ctx, tc.tamper); err != nil {
				t.Fatal(err)
			}
			err := tpcc.Check(ctx, db, cfg, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("after %q: got %v, want a %s violation", tc.tamper, err, tc.want)
			}
		})
	}
}
