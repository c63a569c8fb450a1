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
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
	"github.com/pgshard/pgshard/txn"
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
	// coord commits across servers, recovers what is left in doubt and
	// watches the worker statements for waits on it (package txn).
	coord *txn.Coordinator
	// types caches the descriptions of result types (Combine and
	// Materialize carry values of them between servers).
	types engine.TypeCache
	// fanout reserves worker connections for streaming multi-shard reads.
	fanout *fanoutGate
	// live holds every open server connection of the Connector's pools and
	// of its connections' metadata sessions, for Close.
	live liveConns
}

// liveConns is the set of open server connections of a Connector: Close
// ends those still in use, which a transaction left open would otherwise
// hold forever. Safe for concurrent use.
type liveConns struct {
	mu     sync.Mutex
	closed bool
	conns  map[*pgconn.PgConn]struct{}
}

// add records an open connection; it returns false, recording nothing,
// once closeAll has run (the caller closes the connection).
func (l *liveConns) add(pc *pgconn.PgConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if l.conns == nil {
		l.conns = map[*pgconn.PgConn]struct{}{}
	}
	l.conns[pc] = struct{}{}
	return true
}

// remove forgets a connection being closed.
func (l *liveConns) remove(pc *pgconn.PgConn) {
	l.mu.Lock()
	delete(l.conns, pc)
	l.mu.Unlock()
}

// closeAll closes the network connection of every recorded server
// connection, and refuses new ones. Whatever a connection's session had
// open is rolled back by its server when the socket closes; its holder
// gets an error at its next use. Closing a net.Conn is safe while another
// goroutine uses it.
func (l *liveConns) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for pc := range l.conns {
		_ = pc.Conn().Close()
	}
	l.conns = nil
}

// track makes cfg's pool record its connections in l (keeping the hooks
// cfg already has).
func (l *liveConns) track(cfg *pgxpool.Config) {
	afterConnect, beforeClose := cfg.AfterConnect, cfg.BeforeClose
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if afterConnect != nil {
			if err := afterConnect(ctx, conn); err != nil {
				return err
			}
		}
		if !l.add(conn.PgConn()) {
			return errors.New("pgshard: connector is closed")
		}
		engine.AcceptBinaryArrays(conn.TypeMap())
		return nil
	}
	cfg.BeforeClose = func(conn *pgx.Conn) {
		l.remove(conn.PgConn())
		if beforeClose != nil {
			beforeClose(conn)
		}
	}
}

// nodePool is the connection pool of one worker node.
//
// No statement waits for one of its connections while holding another
// pooled connection, unless it reserved them all first: a statement that
// needs connections on several nodes reserves them at once (fanoutGate)
// before taking any, and a transaction that already holds a connection
// takes further ones without waiting (transaction.participant). So a wait
// in get ends when some statement ends.
type nodePool struct {
	node catalog.Node
	pool *pgxpool.Pool
	// sql wraps the pool's connections as pgx's database/sql connections,
	// so rows convert to driver values exactly as with the "pgx" driver.
	sql driver.Connector
	// slots holds one token per connection taken from pool, in use or idle:
	// at most the pool's size, so that a free slot is a free connection and
	// tryGet can tell without waiting whether there is one.
	slots chan struct{}
	// idle keeps a few wrapped connections between statements: wrapping and
	// unwrapping one per statement costs allocations and a timer. An idle
	// connection keeps its slot.
	idle chan *stdlib.Conn
}

// idleConnsPerNode bounds the wrapped connections kept idle per node; the
// rest go back to the node's pgxpool, which manages their lifetime.
const idleConnsPerNode = 8

func newNodePool(n catalog.Node, pool *pgxpool.Pool) *nodePool {
	return &nodePool{
		node:  n,
		pool:  pool,
		sql:   stdlib.GetPoolConnector(pool),
		slots: make(chan struct{}, max(int(pool.Config().MaxConns), 1)),
		idle:  make(chan *stdlib.Conn, idleConnsPerNode),
	}
}

// get returns a connection to the node: an idle wrapped one, or a new one
// from the pool. It waits, until ctx ends, while every connection of the
// pool is in use; its caller must then hold no other pooled connection,
// unless under a fanoutGate reservation (see nodePool).
func (np *nodePool) get(ctx context.Context) (*stdlib.Conn, error) {
	return np.take(ctx, true)
}

// tryGet is get without waiting: it returns nil, nil at once when every
// connection of the pool is in use.
func (np *nodePool) tryGet(ctx context.Context) (*stdlib.Conn, error) {
	return np.take(ctx, false)
}

func (np *nodePool) take(ctx context.Context, wait bool) (*stdlib.Conn, error) {
	for {
		// An idle connection first: it has its slot already.
		select {
		case dc := <-np.idle:
			if np.alive(dc) {
				return dc, nil
			}
			continue
		default:
		}
		if !wait {
			select {
			case np.slots <- struct{}{}:
				return np.connect(ctx)
			default:
				return nil, nil
			}
		}
		// None idle: wait for a free slot, or for a connection given back
		// idle meanwhile (it keeps its slot, so only waiting on both cannot
		// miss one).
		select {
		case dc := <-np.idle:
			if np.alive(dc) {
				return dc, nil
			}
		case np.slots <- struct{}{}:
			return np.connect(ctx)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// connect takes a connection from the pool for a slot just taken, giving
// the slot back when that fails.
func (np *nodePool) connect(ctx context.Context) (*stdlib.Conn, error) {
	c, err := np.sql.Connect(ctx)
	if err != nil {
		<-np.slots
		return nil, err
	}
	return c.(*stdlib.Conn), nil
}

// alive reports whether an idle connection is still open; a closed one is
// discarded.
func (np *nodePool) alive(dc *stdlib.Conn) bool {
	if !dc.Conn().IsClosed() {
		return true
	}
	np.discard(dc)
	return false
}

// discard closes a connection taken with get (which returns it to, or
// removes it from, the pool) and gives its slot back.
func (np *nodePool) discard(dc *stdlib.Conn) {
	dc.Close()
	<-np.slots
}

// put gives a connection taken with get back: kept idle when it is healthy
// and idle, else discarded.
func (np *nodePool) put(dc *stdlib.Conn) {
	pc := dc.Conn().PgConn()
	if dc.Conn().IsClosed() || pc.IsBusy() || pc.TxStatus() != 'I' {
		np.discard(dc)
		return
	}
	select {
	case np.idle <- dc:
	default:
		np.discard(dc)
	}
}

// open opens a connection to the node outside its pool, with the pool's
// settings, for a transaction that already holds pooled connections and
// finds every connection of this pool in use (see transaction.participant).
// Its user closes it. The server's max_connections bounds how many are
// open; beyond it the server refuses with SQLSTATE 53300.
func (np *nodePool) open(ctx context.Context) (*stdlib.Conn, error) {
	c, err := stdlib.GetConnector(*np.pool.Config().ConnConfig).Connect(ctx)
	if err != nil {
		return nil, err
	}
	engine.AcceptBinaryArrays(c.(*stdlib.Conn).Conn().TypeMap())
	return c.(*stdlib.Conn), nil
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
			np.discard(dc)
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
	c := &Connector{dsn: dsn, poolConfig: cfg, nodes: map[catalog.Node]*nodePool{}, fanout: newFanoutGate(nodePoolSize)}
	c.coord = txn.New(txnCluster{c})
	return c, nil
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
	c.live.track(cfg)
	cfg.ConnConfig.Tracer = c.coord.Tracer(n)
	cfg.ConnConfig.AfterConnect = txn.AfterConnect
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
		// Encode writes a space as '+', which libpq and pgx read as '+'
		// (a literal '+' it writes as %2B).
		u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
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
//
// A plan the cached catalog cannot make (SQLSTATE 55000: a distributed
// table without shards, say, which another process may have created a
// moment ago) is not refused on the cache's word alone: the catalog's
// version is confirmed first (one metadata round trip, on this error path
// only), and the statement planned again when it changed.
func (c *Connector) planFor(ctx context.Context, sql string) (*planner.Plan, error) {
	snap := c.snapshot()
	p, err := c.planWith(ctx, sql, snap)
	if err == nil || sqlerr.Code(err) != sqlerr.ObjectNotInPrereq {
		return p, err
	}
	if fresh, rerr := c.cache.Refresh(ctx, false); rerr == nil && fresh.Version != snap.Version {
		return c.planWith(ctx, sql, fresh)
	}
	return p, err
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
