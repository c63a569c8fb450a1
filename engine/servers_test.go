package engine

import (
	"context"
	"database/sql/driver"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// cluster is the two PostgreSQL servers every engine test runs its shards
// on, started once by TestMain. Each test makes its own tables.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := pgtest.Start(ctx, 2)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "engine tests: starting 2 PostgreSQL servers: %v\n", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	_ = c.Close()
	os.Exit(code)
}

// execOn runs sql on a server directly.
func execOn(t *testing.T, node catalog.Node, sql string) {
	t.Helper()
	c, err := openNode(node)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.(driver.ExecerContext).ExecContext(context.Background(), sql, nil); err != nil {
		t.Fatalf("%s on %s: %v", sql, node, err)
	}
}

// openNode opens a new connection to the "postgres" database of node with
// pgx's database/sql driver, able to send binary arrays (as the driver's
// connections are: AcceptBinaryArrays).
func openNode(node catalog.Node) (driver.Conn, error) {
	c, err := stdlib.GetDefaultDriver().Open(dsnOf(node))
	if err != nil {
		return nil, err
	}
	AcceptBinaryArrays(c.(*stdlib.Conn).Conn().TypeMap())
	return c, nil
}

// connectNode opens a new pgx connection to the "postgres" database of
// node, able to send binary arrays.
func connectNode(ctx context.Context, node catalog.Node) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, dsnOf(node))
	if err != nil {
		return nil, err
	}
	AcceptBinaryArrays(c.TypeMap())
	return c, nil
}

// dsnOf is the DSN of the "postgres" database of node, with the session
// settings of sessionParams.
func dsnOf(node catalog.Node) string {
	for _, n := range cluster.Nodes {
		if n.Host == node.Name && n.Port == node.Port {
			return n.DSN("") + sessionParams
		}
	}
	return "postgres://no-such-server"
}

// sessionParams are the session settings ("&DateStyle=...", as DSN
// parameters) of every connection the engine tests open while a test has
// set them (withSessionParams); "" for the servers' defaults.
var sessionParams string

// withSessionParams opens the test's connections with the settings params
// until it ends. Engine tests do not run in parallel.
func withSessionParams(t *testing.T, params string) {
	old := sessionParams
	sessionParams = params
	t.Cleanup(func() { sessionParams = old })
}
