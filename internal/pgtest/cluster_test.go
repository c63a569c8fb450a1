package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestClusterStartStopKill(t *testing.T) {
	c := StartTB(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range c.Nodes {
		conn, err := pgx.Connect(ctx, n.DSN(""))
		if err != nil {
			t.Fatalf("connect %s: %v", n.Addr(), err)
		}
		var mpt int
		if err := conn.QueryRow(ctx, "SELECT current_setting('max_prepared_transactions')::int").Scan(&mpt); err != nil {
			t.Fatal(err)
		}
		if mpt == 0 {
			t.Fatalf("max_prepared_transactions is 0 on %s", n.Addr())
		}
		conn.Close(ctx)
	}
	n := c.Nodes[0]
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, n.DSN("")); err == nil {
		t.Fatal("connected to a killed node")
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, n.DSN(""))
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	conn.Close(ctx)
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, n.DSN("")); err == nil {
		t.Fatal("connected to a stopped node")
	}
}
