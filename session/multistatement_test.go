package session_test

import (
	"context"
	"database/sql/driver"
	"slices"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/internal/pgtest"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// TestSessionRunsStatementStrings runs query strings of several statements
// with the Session alone: the implicit block commits every placement's
// writes together or none, a failure names its statement and keeps its
// SQLSTATE, the Session is out of the block afterwards, and inside a
// transaction the string joins it (COMMIT as text refused before anything
// runs).
func TestSessionRunsStatementStrings(t *testing.T) {
	f := newFixture(t, "session_multistatement")
	ctx := context.Background()
	w1, w2 := servers.Nodes[1], servers.Nodes[2]
	// onWorkers checks that both workers hold exactly want.
	onWorkers := func(t *testing.T, want []int64) {
		t.Helper()
		for _, w := range []*pgtest.Node{w1, w2} {
			if got := f.keysOn(w); !slices.Equal(got, want) {
				t.Errorf("worker %s holds %v, want %v", w.Addr(), got, want)
			}
		}
	}
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a failure rolls back every statement before it", func(t *testing.T) {
			_, err := f.s.Exec(ctx, `INSERT INTO kv VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'); UPDATE kv SET v = 'x' WHERE k > 2; SELECT 1/0`, nil)
			if sqlerr.Code(err) != "22012" || !strings.Contains(err.Error(), "statement 3 of 3") {
				t.Fatalf("got %v, want 22012 naming statement 3 of 3", err)
			}
			if f.s.InTransaction() {
				t.Fatal("the Session is still in the string's block")
			}
			onWorkers(t, nil)
		}},
		{"the block commits on every placement", func(t *testing.T) {
			res, err := f.s.Exec(ctx, `INSERT INTO kv VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'); INSERT INTO kv VALUES (5, 'e'); UPDATE kv SET v = 'x' WHERE k > 2`, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 3 {
				t.Fatalf("the last statement affected %d rows (%v), want 3", n, err)
			}
			if f.s.InTransaction() {
				t.Fatal("the Session is still in the string's block")
			}
			onWorkers(t, []int64{1, 2, 3, 4, 5})
		}},
		{"COMMIT in the string keeps what ran before it", func(t *testing.T) {
			_, err := f.s.Exec(ctx, `INSERT INTO kv VALUES (6, 'f'); COMMIT; INSERT INTO kv VALUES (7, 'g'); INSERT INTO kv VALUES (1, 'dup')`, nil)
			if sqlerr.Code(err) != "23505" || !strings.Contains(err.Error(), "statement 4 of 4") {
				t.Fatalf("got %v, want 23505 naming statement 4 of 4", err)
			}
			onWorkers(t, []int64{1, 2, 3, 4, 5, 6})
		}},
		{"Query returns the first statement's rows only under the simple protocol", func(t *testing.T) {
			_, err := f.s.Query(ctx, `SELECT k FROM kv; INSERT INTO kv VALUES (8, 'h')`, nil)
			if sqlerr.Code(err) != sqlerr.SyntaxError {
				t.Fatalf("got %v, want %s", err, sqlerr.SyntaxError)
			}
			onWorkers(t, []int64{1, 2, 3, 4, 5, 6})
		}},
		{"inside a transaction the string joins it", func(t *testing.T) {
			tx, err := f.s.Begin(driver.TxOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.s.Exec(ctx, `INSERT INTO kv VALUES (10, 'a'); INSERT INTO kv VALUES (11, 'b'), (12, 'c')`, nil); err != nil {
				t.Fatal(err)
			}
			_, err = f.s.Exec(ctx, `INSERT INTO kv VALUES (13, 'd'); COMMIT`, nil)
			if sqlerr.Code(err) != sqlerr.FeatureNotSupported || !strings.Contains(err.Error(), "statement 2 of 2") {
				t.Fatalf("got %v, want %s naming statement 2 of 2", err, sqlerr.FeatureNotSupported)
			}
			if !f.s.InTransaction() {
				t.Fatal("the string ended the application's transaction")
			}
			if got := f.keys("SELECT k FROM kv WHERE k >= 10 ORDER BY k"); !slices.Equal(got, []int64{10, 11, 12}) {
				t.Errorf("inside the transaction: %v, want [10 11 12] (13 must not have run)", got)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			onWorkers(t, []int64{1, 2, 3, 4, 5, 6})
		}},
	}
	for _, st := range steps {
		t.Run(st.name, st.run)
	}
}
