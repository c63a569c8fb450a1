package txn

import (
	"context"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgshard/pgshard/catalog"
)

// Cluster is what the coordinator needs of the driver around it: the
// metadata database, the workers, and the marking of placements. Its
// methods are safe for concurrent use.
type Cluster interface {
	// Meta is the metadata database's pool: decisions are recorded there.
	Meta() *pgxpool.Pool
	// Nodes are the workers of the current catalog, which recovery visits.
	Nodes() []catalog.Node
	// NodePool is the pool of a worker (the older scheme's coordinator log
	// is read through it).
	NodePool(node catalog.Node) (*pgxpool.Pool, error)
	// NodeConfig is a new copy of the configuration of a worker's
	// connections, for the connections the coordinator opens outside the
	// pools.
	NodeConfig(node catalog.Node) (*pgxpool.Config, error)
	// MarkInactive marks placements that missed a committed write inactive
	// in the catalog, and reloads it, before the write is acknowledged.
	MarkInactive(ctx context.Context, placements []catalog.Placement) error
}

// Participant is one server's connection in a transaction that wrote: a
// worker's, or the metadata session's, whose COMMIT is then the decision.
// Commit uses it on its own goroutines, one per participant.
type Participant interface {
	// Node is the worker, zero for the metadata session.
	Node() catalog.Node
	// Conn is the connection, its transaction open.
	Conn() *pgx.Conn
	// Placements are those written through it: marked inactive when its
	// COMMIT PREPARED fails after the decision.
	Placements() []catalog.Placement
}

// Coordinator commits transactions across servers (Commit), finishes the
// ones left in doubt (Recover, RunResolver) and those a statement waits for
// (RunLockWatch, with Tracer on the worker connections). One serves one
// Connector; it is safe for concurrent use.
type Coordinator struct {
	cl    Cluster
	twopc twoPhaseState
	// lockwait is the registry of the worker connections' statement
	// clocks (lockwait.go).
	lockwait lockWatch
	// txLogReady remembers the servers where pgshard.transaction_log (the
	// older scheme's coordinator log) exists.
	txLogMu    sync.Mutex
	txLogReady map[string]bool
}

// New returns the coordinator of a cluster.
func New(cl Cluster) *Coordinator { return &Coordinator{cl: cl} }

// Tracer is the pgx.QueryTracer of the connections of worker node's pool:
// it keeps their statement clocks for the lock-wait watcher.
func (co *Coordinator) Tracer(node catalog.Node) pgx.QueryTracer {
	return &lockWaitTracer{w: &co.lockwait, node: node}
}

// AfterConnect is the worker connections' pgconn AfterConnect: it learns
// whether the backend's process id can name prepared transactions
// (verifyBackendPID).
func AfterConnect(ctx context.Context, pc *pgconn.PgConn) error { return verifyBackendPID(ctx, pc) }

// EnsureCommitRecord creates the decision table in the metadata database
// on conn when it is missing, and the table of write fences the resolver
// reads (catalog.EnsureFenceRecords); run it once, when the driver
// initializes.
func EnsureCommitRecord(ctx context.Context, conn *pgx.Conn) error {
	if err := ensureCommitRecord(ctx, conn); err != nil {
		return err
	}
	return catalog.EnsureFenceRecords(ctx, conn)
}

// connectNode opens a connection of its own to a worker.
func (co *Coordinator) connectNode(ctx context.Context, n catalog.Node) (*pgx.Conn, error) {
	cfg, err := co.cl.NodeConfig(n)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg.ConnConfig)
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
