package pgshard

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
	"github.com/pgshard/pgshard/session"
)

// Connector is the state one *sql.DB shares across its connections: the
// node layer (session.Cluster: the metadata database pool, the catalog
// cache, one connection pool per worker node, the two-phase commit
// coordinator) and the plan cache. It is safe for concurrent use; Close
// releases it (database/sql calls Close when the DB is closed).
type Connector struct {
	cl    *session.Cluster
	plans planCache
}

var (
	_ driver.Connector = (*Connector)(nil)
)

// NewConnector parses dsn, a PostgreSQL URL or key=value string naming the
// metadata database, for sql.OpenDB. It does not connect; the first
// connection creates the metadata schema if missing and loads the catalog.
func NewConnector(dsn string) (*Connector, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgshard: parsing DSN: %w", err)
	}
	nodePoolSize := int(cfg.MaxConns)
	if !strings.Contains(dsn, "pool_max_conns") {
		nodePoolSize = session.DefaultNodePoolSize
	}
	return &Connector{cl: session.NewCluster(dsn, cfg, nodePoolSize)}, nil
}

// Driver returns the pgshard driver.
func (c *Connector) Driver() driver.Driver { return &Driver{} }

// Connect returns a new connection. It initializes the Connector on first
// use.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.cl.Closed() {
		return nil, errors.New("pgshard: connector is closed")
	}
	if err := c.cl.Init(ctx); err != nil {
		return nil, err
	}
	cn := &conn{c: c}
	cn.s = session.New(c.cl, cn.QueryContext)
	return cn, nil
}

// Close closes every pool and stops the background work (the metadata
// watcher, the resolver). It does not wait for connections still in use: a
// transaction left open, a statement still running. Their server
// connections are closed, so the servers roll back what they had open (a
// transaction's writes, its locks), and their holders get errors
// afterwards; each pool finishes closing in the background once its
// holders let go of them.
func (c *Connector) Close() error { return c.cl.Close() }

// Recover finishes or rolls back every prepared transaction pgshard left on
// the metadata database and the workers (a client that died, or lost a
// server, during a commit): committed when its commit record (or, for the
// older naming scheme, its coordinator's log) says so, rolled back
// otherwise. Prepared transactions younger than minAge are left alone, as
// their commit may still be under way (deciding them early is safe, but may
// roll back a commit that was about to succeed); those decided, and
// undecided ones whose preparing backend is gone, wait at most a second.
// An undecided one whose preparing backend is still connected (a live
// coordinator, about to record its decision) is left alone until it is 10 s
// old, whatever minAge is.
// Each process also runs it in the background every few seconds. It
// returns how many it committed and rolled back.
func (c *Connector) Recover(ctx context.Context, minAge time.Duration) (committed, rolledBack int, err error) {
	if err := c.cl.Init(ctx); err != nil {
		return 0, 0, err
	}
	return c.cl.Recover(ctx, minAge)
}

// planFor returns the plan of sql against the current catalog, from the plan
// cache when it is still current.
//
// A plan the cached catalog cannot make (SQLSTATE 55000: a distributed
// table without shards, say, which another process may have created a
// moment ago) is not refused on the cache's word alone: the catalog's
// version is confirmed first (one metadata round trip, on this error path
// only), and the statement planned again when it changed.
func (c *Connector) planFor(ctx context.Context, sql string) (*planner.Plan, error) {
	snap := c.cl.Snapshot()
	p, err := c.planWith(ctx, sql, snap)
	if err == nil && p.SchemaCheck {
		// A schema change the catalog says concerns no distributed table
		// with shards: confirmed before it runs on the metadata database
		// alone.
		if fresh, rerr := c.cl.Refresh(ctx); rerr == nil && fresh.Version != snap.Version {
			return c.planWith(ctx, sql, fresh)
		}
		return p, nil
	}
	if err == nil || sqlerr.Code(err) != sqlerr.ObjectNotInPrereq {
		return p, err
	}
	if fresh, rerr := c.cl.Refresh(ctx); rerr == nil && fresh.Version != snap.Version {
		return c.planWith(ctx, sql, fresh)
	}
	return p, err
}

// planWith returns the plan of sql against snap.
func (c *Connector) planWith(ctx context.Context, sql string, snap *catalog.Snapshot) (*planner.Plan, error) {
	if p := c.plans.get(sql); p != nil && p.Version == snap.Version {
		return p, nil
	}
	p, err := planner.New(sql, snap, c.cl.PlannerEnv(ctx))
	if err != nil {
		return nil, err
	}
	c.plans.put(sql, p)
	return p, nil
}
