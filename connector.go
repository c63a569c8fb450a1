package pgshard

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/planner"
)

// metadataRefreshInterval bounds how long a metadata change made by another
// process can go unseen when its notification is lost.
const metadataRefreshInterval = time.Second

// Connector is the state one *sql.DB shares across its connections: the
// metadata database pool, the catalog cache, one connection pool per worker
// node and the plan cache. It is safe for concurrent use; Close releases it
// (database/sql calls Close when the DB is closed).
type Connector struct {
	dsn        string
	poolConfig *pgxpool.Config

	initMu  sync.Mutex
	inited  atomic.Bool
	meta    *pgxpool.Pool
	cache   *catalog.Cache
	stopBG  context.CancelFunc
	bgDone  sync.WaitGroup
	funcs   functionCache
	plans   planCache
	closed  atomic.Bool
	nodesMu sync.Mutex
	nodes   map[catalog.Node]*nodePool
	// txLogReady remembers the servers where pgshard.transaction_log exists.
	txLogMu    sync.Mutex
	txLogReady map[string]bool
	// types caches format_type names of result type OIDs (combine queries).
	typeMu sync.Mutex
	types  map[typeRef]typeInfo
	// fanout reserves worker connections for streaming multi-shard reads.
	fanout *fanoutGate
}

// nodePool is the connection pool of one worker node.
type nodePool struct {
	node catalog.Node
	pool *pgxpool.Pool
	// sql wraps the pool's connections as pgx's database/sql connections,
	// so rows convert to driver values exactly as with the "pgx" driver.
	sql driver.Connector
	// idle keeps a few wrapped connections between statements: wrapping and
	// unwrapping one per statement costs allocations and a timer.
	idle chan *stdlib.Conn
}

// idleConnsPerNode bounds the wrapped connections kept idle per node; the
// rest go back to the node's pgxpool, which manages their lifetime.
const idleConnsPerNode = 8

// get returns a connection to the node: an idle wrapped one, or a new one
// from the pool.
func (np *nodePool) get(ctx context.Context) (*stdlib.Conn, error) {
	for {
		select {
		case dc := <-np.idle:
			if dc.Conn().IsClosed() {
				dc.Close()
				continue
			}
			return dc, nil
		default:
		}
		// None idle: take one from the pool, or the first one given back
		// idle meanwhile. Idle connections are taken from the pool too, so
		// with the pool exhausted only waiting on both cannot miss one.
		type connected struct {
			conn driver.Conn
			err  error
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan connected, 1)
		go func() {
			c, err := np.sql.Connect(cctx)
			done <- connected{c, err}
		}()
		select {
		case r := <-done:
			cancel()
			if r.err != nil {
				return nil, r.err
			}
			return r.conn.(*stdlib.Conn), nil
		case dc := <-np.idle:
			cancel()
			go func() {
				if r := <-done; r.err == nil {
					np.put(r.conn.(*stdlib.Conn))
				}
			}()
			if dc.Conn().IsClosed() {
				dc.Close()
				continue
			}
			return dc, nil
		}
	}
}

// put gives a connection back: kept idle when it is healthy and idle, else
// closed (which returns it to, or removes it from, the pool).
func (np *nodePool) put(dc *stdlib.Conn) {
	pc := dc.Conn().PgConn()
	if dc.Conn().IsClosed() || pc.IsBusy() || pc.TxStatus() != 'I' {
		dc.Close()
		return
	}

	select {
	case np.idle <- dc:
	default:
		dc.Close()
	}
}

// flush forgets every connection to the node that is not in use (and
// those in use once released): after the node restarted they are all dead,
// and each would fail a statement once.
func (np *nodePool) flush() {
	np.drain()
	np.pool.Reset()
}

// drain closes the idle connections.
func (np *nodePool) drain() {
	for {
		select {
		case dc := <-np.idle:
			dc.Close()
		default:
			return
		}
	}
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
		nodePoolSize = defaultNodePoolSize
	}
	return &Connector{dsn: dsn, poolConfig: cfg, nodes: map[catalog.Node]*nodePool{}, fanout: newFanoutGate(nodePoolSize)}, nil
}

// Driver returns the pgshard driver.
func (c *Connector) Driver() driver.Driver { return &Driver{} }

// Connect returns a new connection. It initializes the Connector on first
// use.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.closed.Load() {
		return nil, errors.New("pgshard: connector is closed")
	}
	if err := c.init(ctx); err != nil {
		return nil, err
	}
	return &conn{c: c}, nil
}

func (c *Connector) init(ctx context.Context) error {
	if c.inited.Load() {
		return nil
	}
	c.initMu.Lock()
	defer c.initMu.Unlock()
	if c.inited.Load() {
		return nil
	}
	meta, err := pgxpool.NewWithConfig(ctx, c.poolConfig.Copy())
	if err != nil {
		return fmt.Errorf("pgshard: metadata database: %w", err)
	}
	pc, err := meta.Acquire(ctx)
	if err != nil {
		meta.Close()
		return fmt.Errorf("pgshard: connecting to metadata database: %w", err)
	}
	err = catalog.EnsureSchema(ctx, pc.Conn())
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
	c.bgDone.Add(2)
	go func() {
		defer c.bgDone.Done()
		cache.Watch(bg, metadataRefreshInterval)
	}()
	go func() {
		defer c.bgDone.Done()
		c.recoverLoop(bg)
	}()
	c.inited.Store(true)
	return nil
}

// recoveryInterval is how often the driver looks for prepared transactions
// left in doubt by a client that died during two-phase commit; it leaves
// alone those younger than that, whose commit may still be under way.
const recoveryInterval = time.Minute

// recoverLoop runs Recover every recoveryInterval until ctx ends.
func (c *Connector) recoverLoop(ctx context.Context) {
	t := time.NewTicker(recoveryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, recoveryInterval)
		_, _, _ = c.recover(rctx, recoveryInterval)
		cancel()
	}
}

// Close closes every pool and stops the metadata watcher. Connections still
// in use fail afterwards.
func (c *Connector) Close() error {
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
	for _, np := range c.nodes {
		np.drain()
		np.pool.Close()
	}
	c.nodes = map[catalog.Node]*nodePool{}
	c.nodesMu.Unlock()
	if c.meta != nil {
		c.meta.Close()
	}
	return nil
}

// snapshot returns the current catalog snapshot.
func (c *Connector) snapshot() *catalog.Snapshot { return c.cache.Snapshot() }

// refresh reloads the catalog after this process changed it.
func (c *Connector) refresh(ctx context.Context) error {
	_, err := c.cache.Refresh(ctx, false)
	return err
}

// node returns the pool of a worker node, creating it on first use.
func (c *Connector) node(n catalog.Node) (*nodePool, error) {
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
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("pgshard: pool for worker %s: %w", n, err)
	}
	np := &nodePool{node: n, pool: pool, sql: stdlib.GetPoolConnector(pool), idle: make(chan *stdlib.Conn, idleConnsPerNode)}
	c.nodes[n] = np
	return np, nil
}

// nodeConfig is the metadata DSN with the worker's host and port: the same
// user, password (or passfile), database and TLS settings.
func (c *Connector) nodeConfig(n catalog.Node) (*pgxpool.Config, error) {
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
		cfg.MaxConns = defaultNodePoolSize
	}
	return cfg, nil
}

// defaultNodePoolSize is each worker pool's size when the DSN does not set
// pool_max_conns.
const defaultNodePoolSize = 32

// withHostPort rewrites a URL or key=value DSN to point at host:port.
func withHostPort(dsn, host string, port int) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("pgshard: parsing DSN: %w", err)
		}
		u.Host = net.JoinHostPort(host, strconv.Itoa(port))
		q := u.Query()
		q.Del("host")
		q.Del("port")
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// key=value: later settings override earlier ones.
	return dsn + " host=" + quoteKV(host) + " port=" + strconv.Itoa(port), nil
}

func quoteKV(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// beginWrite starts a write: it returns the catalog snapshot to write with
// (confirmed within the lease, refreshing first when needed) and the func
// that ends the write. See catalog.Cache.BeginWrite.
func (c *Connector) beginWrite(ctx context.Context) (*catalog.Snapshot, func(), error) {
	snap, done, err := c.cache.BeginWrite()
	if err == nil {
		return snap, done, nil
	}
	if _, rerr := c.cache.Refresh(ctx, false); rerr != nil {
		return nil, nil, fmt.Errorf("%w: %v", err, rerr)
	}
	return c.cache.BeginWrite()
}

// planFor returns the plan of sql against the current catalog, from the plan
// cache when it is still current.
func (c *Connector) planFor(ctx context.Context, sql string) (*planner.Plan, error) {
	return c.planWith(ctx, sql, c.snapshot())
}

// planWith returns the plan of sql against snap.
func (c *Connector) planWith(ctx context.Context, sql string, snap *catalog.Snapshot) (*planner.Plan, error) {
	if p := c.plans.get(sql); p != nil && p.Version == snap.Version {
		return p, nil
	}
	p, err := planner.New(sql, snap, funcEnv{ctx: ctx, cache: &c.funcs})
	if err != nil {
		return nil, err
	}
	c.plans.put(sql, p)
	return p, nil
}

// planCache maps SQL text to its latest plan. It is bounded: when full, half
// of it is dropped (plans are cheap to rebuild).
type planCache struct {
	mu    sync.RWMutex
	plans map[string]*planner.Plan
}

const planCacheSize = 4096

func (pc *planCache) get(sql string) *planner.Plan {
	pc.mu.RLock()
	p := pc.plans[sql]
	pc.mu.RUnlock()
	return p
}

func (pc *planCache) put(sql string, p *planner.Plan) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.plans == nil {
		pc.plans = map[string]*planner.Plan{}
	}
	if len(pc.plans) >= planCacheSize {
		n := 0
		for k := range pc.plans {
			delete(pc.plans, k)
			if n++; n >= planCacheSize/2 {
				break
			}
		}
	}
	pc.plans[sql] = p
}

// functionCache remembers what pg_proc says of each function name, for the
// planner (aggregates, volatility). Function definitions rarely change; the
// cache lives as long as the Connector.
type functionCache struct {
	pool *pgxpool.Pool
	mu   sync.RWMutex
	info map[string]functionEntry
}

type functionEntry struct {
	info  planner.FunctionInfo
	found bool
}

// funcEnv is the planner.Env of one planning call.
type funcEnv struct {
	ctx   context.Context
	cache *functionCache
	// session, when set, is the metadata session queries are described in
	// (a session with its own search_path or temporary tables).
	session *pgx.Conn
}

func (e funcEnv) Function(name string) (planner.FunctionInfo, bool) {
	fc := e.cache
	fc.mu.RLock()
	ent, ok := fc.info[name]
	fc.mu.RUnlock()
	if ok {
		return ent.info, ent.found
	}
	var n int
	var agg, win, imm bool
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	err := fc.pool.QueryRow(ctx, `SELECT count(*), coalesce(bool_or(prokind = 'a'), false), coalesce(bool_or(prokind = 'w'), false),
		coalesce(bool_and(provolatile = 'i'), false) FROM pg_proc WHERE proname = $1`, name).Scan(&n, &agg, &win, &imm)
	if err != nil {
		// Unknown: answer what makes the planner refuse rather than guess
		// (an aggregate, a window function, not immutable). Not cached, so
		// the next plan asks again.
		return planner.FunctionInfo{Aggregate: true, Window: true}, true
	}
	ent = functionEntry{info: planner.FunctionInfo{Aggregate: agg, Window: win, Immutable: imm}, found: n > 0}
	fc.mu.Lock()
	if fc.info == nil {
		fc.info = map[string]functionEntry{}
	}
	fc.info[name] = ent
	fc.mu.Unlock()
	return ent.info, ent.found
}

// Describe prepares sql (unnamed) on the metadata database, where the
// distributed tables have their templates, and returns its result columns.
func (e funcEnv) Describe(sql string) ([]planner.ColumnDesc, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	pc := e.session
	if pc == nil {
		conn, err := e.cache.pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer conn.Release()
		pc = conn.Conn()
	}
	sd, err := pc.PgConn().Prepare(ctx, "", sql, nil)
	if err != nil {
		return nil, err
	}
	out := make([]planner.ColumnDesc, len(sd.Fields))
	for i, f := range sd.Fields {
		out[i] = planner.ColumnDesc{Name: f.Name, TypeOID: f.DataTypeOID}
	}
	return out, nil
}

// metaSessionConfig is the configuration of a connection's own session on
// the metadata database.
func (c *Connector) metaSessionConfig() pgx.ConnConfig {
	return *c.poolConfig.ConnConfig.Copy()
}
