package session

import (
	"context"
	"database/sql/driver"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
)

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
