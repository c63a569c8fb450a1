package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
	"github.com/pgshard/pgshard/txn"
)

// metadataRefreshInterval bounds how long a metadata change made by another
// process can go unseen when its notification is lost.
const metadataRefreshInterval = time.Second

// Cluster is the node layer one *sql.DB shares across its connections:
// the metadata database pool, the catalog cache, one connection pool per
// worker node, the fan-out reservations, the type cache and the two-phase
// commit coordinator (package txn). It is safe for concurrent use; Close
// releases it.
type Cluster struct {
	dsn        string
	poolConfig *pgxpool.Config

	initMu  sync.Mutex
	inited  atomic.Bool
	meta    *pgxpool.Pool
	cache   *catalog.Cache
	stopBG  context.CancelFunc
	bgDone  sync.WaitGroup
	funcs   functionCache
	closed  atomic.Bool
	nodesMu sync.Mutex
	nodes   map[catalog.Node]*nodePool
	// coord commits across servers, recovers what is left in doubt and
	// watches the worker statements for waits on it (package txn).
	coord *txn.Coordinator
	// types caches the descriptions of result types (Combine and
	// Materialize carry values of them between servers).
	types engine.TypeCache
	// fanout reserves worker connections for streaming multi-shard reads.
	fanout *fanoutGate
	// live holds every open server connection of the Cluster's pools and
	// of its sessions' metadata connections, for Close.
	live liveConns
	// plans caches the plans of the statements its sessions run
	// (plancache.go, statement.go).
	plans planCache
}

// NewCluster returns the Cluster of the metadata database cfg (parsed
// from dsn) and its workers, whose pools hold nodePoolSize connections
// each. It does not connect: Init does.
func NewCluster(dsn string, cfg *pgxpool.Config, nodePoolSize int) *Cluster {
	c := &Cluster{dsn: dsn, poolConfig: cfg, nodes: map[catalog.Node]*nodePool{}, fanout: newFanoutGate(nodePoolSize)}
	c.coord = txn.New(txnCluster{c})
	return c
}

// DefaultNodePoolSize is each worker pool's size when the DSN does not set
// pool_max_conns.
const DefaultNodePoolSize = 32

// Closed reports whether Close has run.
func (c *Cluster) Closed() bool { return c.closed.Load() }

// Init creates the metadata schema if missing, loads the catalog and
// starts the background work (the catalog watcher, the resolver of
// in-doubt transactions, the lock-wait watcher), on first use; later calls
// return at once. It blocks on the metadata database.
func (c *Cluster) Init(ctx context.Context) error {
	if c.inited.Load() {
		return nil
	}
	c.initMu.Lock()
	defer c.initMu.Unlock()
	if c.inited.Load() {
		return nil
	}
	metaConfig := c.poolConfig.Copy()
	c.live.track(metaConfig)
	meta, err := pgxpool.NewWithConfig(ctx, metaConfig)
	if err != nil {
		return fmt.Errorf("pgshard: metadata database: %w", err)
	}
	pc, err := meta.Acquire(ctx)
	if err != nil {
		meta.Close()
		return fmt.Errorf("pgshard: connecting to metadata database: %w", err)
	}
	err = catalog.EnsureSchema(ctx, pc.Conn())
	if err == nil {
		err = txn.EnsureCommitRecord(ctx, pc.Conn())
	}
	pc.Release()
	if err != nil {
		meta.Close()
		return err
	}
	cache := catalog.NewCache(meta)
	if _, err := cache.Refresh(ctx, true); err != nil {
		meta.Close()
		return err
	}
	c.meta, c.cache = meta, cache
	c.funcs.pool = meta
	bg, cancel := context.WithCancel(context.Background())
	c.stopBG = cancel
	c.bgDone.Add(3)
	go func() {
		defer c.bgDone.Done()
		cache.Watch(bg, metadataRefreshInterval)
	}()
	go func() {
		defer c.bgDone.Done()
		c.coord.RunResolver(bg)
	}()
	go func() {
		defer c.bgDone.Done()
		c.coord.RunLockWatch(bg)
	}()
	c.inited.Store(true)
	return nil
}

// Close closes every pool and stops the metadata watcher. It does not wait
// for connections still in use: a transaction left open, a statement still
// running. Their server connections are closed, so the servers roll back
// what they had open (a transaction's writes, its locks), and their
// holders get errors afterwards; each pool finishes closing in the
// background once its holders let go of them.
func (c *Cluster) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.initMu.Lock()
	defer c.initMu.Unlock()
	if c.stopBG != nil {
		c.stopBG()
		c.bgDone.Wait()
	}
	if c.cache != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.cache.Close(ctx)
		cancel()
	}
	c.nodesMu.Lock()
	nodes := c.nodes
	c.nodes = map[catalog.Node]*nodePool{}
	c.nodesMu.Unlock()
	// A pool's Close closes its idle connections, then waits until those in
	// use come back: run them all, let the idle ones close, then end the
	// rest.
	var pools sync.WaitGroup
	closePool := func(closeFn func()) {
		pools.Add(1)
		go func() {
			defer pools.Done()
			closeFn()
		}()
	}
	for _, np := range nodes {
		np.drain()
		closePool(np.pool.Close)
	}
	if c.meta != nil {
		closePool(c.meta.Close)
	}
	closed := make(chan struct{})
	go func() {
		pools.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(closeIdleWait):
	}
	c.live.closeAll()
	select {
	case <-closed:
	case <-time.After(closeIdleWait):
	}
	return nil
}

// closeIdleWait bounds each of Close's two waits for the pools: for their
// idle connections to close, then for connections it ended to come back.
const closeIdleWait = 200 * time.Millisecond

// snapshot returns the current catalog snapshot.
func (c *Cluster) snapshot() *catalog.Snapshot { return c.cache.Snapshot() }

// refresh reloads the catalog after this process changed it.
func (c *Cluster) refresh(ctx context.Context) error {
	_, err := c.cache.Refresh(ctx, false)
	return err
}

// node returns the pool of a worker node, creating it on first use.
func (c *Cluster) node(n catalog.Node) (*nodePool, error) {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	if np, ok := c.nodes[n]; ok {
		return np, nil
	}
	if c.closed.Load() {
		return nil, errors.New("pgshard: connector is closed")
	}
	cfg, err := c.nodeConfig(n)
	if err != nil {
		return nil, err
	}
	c.live.track(cfg)
	cfg.ConnConfig.Tracer = c.coord.Tracer(n)
	cfg.ConnConfig.AfterConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
		markStatements(pc, c.cache.Snapshot().Version)
		return txn.AfterConnect(ctx, pc)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("pgshard: pool for worker %s: %w", n, err)
	}
	np := newNodePool(n, pool)
	c.nodes[n] = np
	return np, nil
}

// nodeConfig is the metadata DSN with the worker's host and port: the same
// user, password (or passfile), database and TLS settings.
func (c *Cluster) nodeConfig(n catalog.Node) (*pgxpool.Config, error) {
	dsn, err := withHostPort(c.dsn, n.Name, n.Port)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgshard: worker %s: %w", n, err)
	}
	// pgconn read the passfile for the worker's host while parsing; without
	// an entry there, the metadata database's password applies.
	if cfg.ConnConfig.Password == "" {
		cfg.ConnConfig.Password = c.poolConfig.ConnConfig.Password
	}
	if !strings.Contains(c.dsn, "pool_max_conns") {
		cfg.MaxConns = DefaultNodePoolSize
	}
	return cfg, nil
}

// BeginWrite starts a write: it returns the catalog snapshot to write with
// (confirmed within the lease, refreshing first when needed), the lease the
// write runs under (checked before each send: Session.sendable) and the func
// that ends the write. See catalog.Cache.BeginWrite.
func (c *Cluster) BeginWrite(ctx context.Context) (*catalog.Snapshot, catalog.WriteLease, func(), error) {
	snap, lease, done, err := c.cache.BeginWrite()
	if err == nil {
		return snap, lease, done, nil
	}
	if _, rerr := c.cache.Refresh(ctx, false); rerr != nil {
		return nil, catalog.WriteLease{}, nil, fmt.Errorf("%w: %v", err, rerr)
	}
	return c.cache.BeginWrite()
}

// Snapshot returns the current catalog snapshot.
func (c *Cluster) Snapshot() *catalog.Snapshot { return c.cache.Snapshot() }

// Refresh reloads the catalog when its version moved on (one metadata
// round trip) and returns the current snapshot.
func (c *Cluster) Refresh(ctx context.Context) (*catalog.Snapshot, error) {
	return c.cache.Refresh(ctx, false)
}

// PlannerEnv is the planner.Env of one planning call made with ctx: what
// pg_proc says of functions, the result columns of a query, on the
// metadata pool.
func (c *Cluster) PlannerEnv(ctx context.Context) planner.Env {
	return funcEnv{ctx: ctx, cache: &c.funcs}
}

// SimpleProtocol reports whether the DSN makes pgx send statements with
// the simple protocol (default_query_exec_mode=simple_protocol).
func (c *Cluster) SimpleProtocol() bool {
	return c.poolConfig.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol
}

// Ping checks that the metadata database answers.
func (c *Cluster) Ping(ctx context.Context) error { return c.meta.Ping(ctx) }

// metaSessionConfig is the configuration of a connection's own session on
// the metadata database.
func (c *Cluster) metaSessionConfig() pgx.ConnConfig {
	return *c.poolConfig.ConnConfig.Copy()
}
