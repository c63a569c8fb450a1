package txn

import (
	"context"
	"testing"
)

// TestRecoverLeavesLiveCoordinatorAlone: Recover and RecoverNode with
// minAge 0 (what master_copy_shard_placement and master_move_shard_placement
// run on their nodes before copying) leave alone an undecided prepared
// transaction whose preparing sessions are still connected: its
// coordinator, in another process and stopped between PREPARE and its
// decision, then commits it. An undecided one whose preparing session is
// gone is still rolled back at once.
func TestRecoverLeavesLiveCoordinatorAlone(t *testing.T) {
	makeTable(t, "live_kv")
	ctx := context.Background()
	co := New(newTestCluster(t))
	other := New(newTestCluster(t)) // another process: co's in-flight ids are not its own

	tests := []struct {
		name    string
		recover func() (int, int, error)
	}{
		{"Recover", func() (int, int, error) { return other.Recover(ctx, 0) }},
		{"RecoverNode", func() (int, int, error) { return other.RecoverNode(ctx, nodeOf(1), 0) }},
	}
	for k, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p0, p1 := connect(t, 0, nil), connect(t, 1, nil)
			exec(t, p0, "BEGIN")
			exec(t, p0, "INSERT INTO live_kv VALUES ($1, 'a')", k)
			exec(t, p1, "BEGIN")
			exec(t, p1, "INSERT INTO live_kv VALUES ($1, 'b')", k)
			var (
				ran                   bool
				committed, rolledBack int
				recErr                error
				inDoubt               []string
			)
			Step = func(s string) {
				if s == StepBeforeDecision {
					ran = true
					inDoubt = prepared(t, 1)
					committed, rolledBack, recErr = tt.recover()
				}
			}
			defer func() { Step = func(string) {} }()
			ps := []Participant{&testParticipant{node: nodeOf(0), conn: p0}, &testParticipant{node: nodeOf(1), conn: p1}}
			if err := co.Commit(ctx, nil, ps); err != nil {
				t.Fatalf("commit, recovery having run before its decision (%d committed, %d rolled back, %v): %v", committed, rolledBack, recErr, err)
			}
			if !ran || len(inDoubt) != 1 {
				t.Fatalf("recovery ran %v, with %q prepared on worker 1; want it run with one", ran, inDoubt)
			}
			if recErr != nil || committed+rolledBack != 0 {
				t.Fatalf("recovery before the decision: %d committed, %d rolled back, %v; want nothing done", committed, rolledBack, recErr)
			}
			if a, b := valueOn(t, 0, "live_kv", k), valueOn(t, 1, "live_kv", k); a != "a" || b != "b" {
				t.Fatalf("after commit: %q on worker 0, %q on worker 1; want a and b", a, b)
			}
		})
	}

	t.Run("preparer gone", func(t *testing.T) {
		c := connect(t, 1, nil)
		id := newTxID()
		exec(t, c, "BEGIN")
		exec(t, c, "INSERT INTO live_kv VALUES (100, 'abandoned')")
		exec(t, c, "PREPARE TRANSACTION "+quoteLiteral(participantGID(id, 0, backendPID(c.PgConn()))))
		if backendPID(c.PgConn()) == 0 {
			t.Fatal("the connection's backend pid is not verified")
		}
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// The backend ends once it reads the connection's end.
		for i := 0; ; i++ {
			_, rolledBack, err := other.RecoverNode(ctx, nodeOf(1), 0)
			if err != nil {
				t.Fatal(err)
			}
			if rolledBack == 1 {
				break
			}
			if i == 50 {
				t.Fatalf("the abandoned transaction is still prepared: %q", prepared(t, 1))
			}
			exec(t, connect(t, 1, nil), "SELECT pg_sleep(0.1)")
		}
		if v := valueOn(t, 1, "live_kv", 100); v != "" {
			t.Fatalf("the abandoned write is there: %q", v)
		}
	})
}
