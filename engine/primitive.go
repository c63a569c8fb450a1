package engine

import (
	"context"
	"database/sql/driver"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/plan"
)

// Primitive is one node of a plan's tree. A primitive is immutable once
// built and safe for concurrent use: everything of one execution (the
// session, its transaction, the arguments) comes in as arguments.
//
// Exec runs the primitive for its effect and reports the rows it affected;
// Query returns its rows, which the caller must Close (rows of a write are
// read whole before Query returns; rows of a read stream, holding worker
// connections until closed). Both block on the nodes and honour ctx; args
// are the statement's own arguments, before Eval.
type Primitive interface {
	Exec(ctx context.Context, vc Cursor, args []driver.NamedValue) (driver.Result, error)
	Query(ctx context.Context, vc Cursor, args []driver.NamedValue) (driver.Rows, error)
	// Inputs are the primitive's children in the tree, nil for a leaf.
	Inputs() []Primitive
	// Describe writes the primitive's lines of EXPLAIN to d: what it runs
	// where, after binding args (the shards chosen, the SQL each one gets).
	// It runs only what EXPLAIN itself runs on the nodes: the shards' own
	// EXPLAIN, and Eval.
	Describe(ctx context.Context, vc Cursor, args []driver.NamedValue, d *Description) error
}

// Cursor is how primitives reach the nodes, for one database/sql
// connection: in its session (settings, temporary objects) and its
// transaction when one is open. It is used by one statement at a time
// (database/sql serialises the use of a connection), never concurrently
// except where a method says so. Every method blocks on the network and
// honours ctx.
type Cursor interface {
	// Bind runs p's Eval step, if any, in the session and returns the
	// statement's arguments as values (args) and as driver values with
	// Eval's appended (bound).
	Bind(ctx context.Context, p plan.Targeted, nargs []driver.NamedValue) (args []any, bound []driver.NamedValue, err error)
	// ReadShard runs a read of shard index idx of p's table on the first of
	// its readable placements that answers, failing over to the next when
	// one cannot be reached (outside a transaction), marking nothing. The
	// rows hold a worker connection until closed. Safe for concurrent use
	// by the goroutines of one Fanout.
	ReadShard(ctx context.Context, p plan.Targeted, idx int, sql string, args []driver.NamedValue) (driver.Rows, error)
	// WriteShard runs a write on every writable placement of shard: in the
	// transaction, or (outside one) with placements that missed it marked
	// inactive before it is acknowledged. With wantRows the first
	// placement's RETURNING rows are returned, read whole.
	WriteShard(ctx context.Context, p plan.Targeted, shard *catalog.Shard, sql string, args []driver.NamedValue, wantRows bool) (driver.Result, driver.Rows, error)
	// WritePlacement runs sql (without arguments: a LOCK TABLE, say) on one
	// placement, in the transaction of the atomic statement it is part of
	// (inside Atomically's f); a failure fails that transaction.
	WritePlacement(ctx context.Context, pl catalog.Placement, sql string) error
	// Atomically runs f as one atomic statement writing on nodes: in the
	// open transaction, or in an implicit one committed (two-phase across
	// servers) when f succeeds and rolled back when it fails.
	Atomically(ctx context.Context, nodes []catalog.Node, f func() error) error
	// Fanout starts a streaming read of shards (indexes into p's table's
	// shards) under the fan-out reservation of the nodes' connections: one
	// source per lane, open(ctx, pos) opening shards[pos]. split reports
	// (before anything is opened, sources nil) that some node has more
	// shards than connections, so that they cannot all stream at once;
	// when mustStream is set nothing is opened then. release gives the
	// reservation back once the sources are closed.
	Fanout(ctx context.Context, p plan.Targeted, shards []int, mustStream bool, open func(ctx context.Context, pos int) (driver.Rows, error)) (sources []driver.Rows, release func(), split bool, err error)
	// InTransaction reports whether a transaction is open: shards then run
	// one after the other on its one connection per node.
	InTransaction() bool
	// TextResults reports that every value a shard returns arrives as
	// text (the worker connections' query mode is the simple protocol or
	// exec), printed under the session's settings.
	TextResults() bool
	// TxMode describes the open transaction: open, READ ONLY, and whether
	// it takes a snapshot per statement (READ COMMITTED) so that a
	// statement run on several servers reads the same committed rows on
	// each.
	TxMode() (open, readOnly, statementSnapshots bool)
	// Statement runs sql as a statement of this session, planned and run
	// as the application's own would be (a subquery run first, the SELECT
	// of INSERT ... SELECT, its EXPLAIN). The rows stream as Query's.
	Statement(ctx context.Context, sql string, args []driver.NamedValue) (driver.Rows, error)
	// SessionTextRows runs sql on the metadata database in this session
	// (its settings, sequences, temporary objects) and returns its rows in
	// text form, nil for NULL.
	SessionTextRows(ctx context.Context, sql string, args ...any) ([][]*string, error)
	// MetadataVersion reads the metadata's current version (the catalog
	// version a plan was made against moves on with every change).
	MetadataVersion(ctx context.Context) (int64, error)
	// AdminArgs evaluates the FROM clause of a call of administrative
	// function fn on the metadata database: one argument list per row.
	// It refuses (0A000), running nothing, where fn may not run (inside a
	// transaction), as RunAdmin does.
	AdminArgs(ctx context.Context, fn, sql string, args []any) ([][]any, error)
	// RunAdmin runs one call of an administrative function on the
	// metadata, the table it names resolved by the session's search_path,
	// and reloads the catalog before it returns.
	RunAdmin(ctx context.Context, fn string, call []any) error
	// MetaQuery runs sql on the metadata database in this session: in the
	// open transaction when there is one (inside Atomically's f, the
	// atomic statement's, which a failure fails), else on its own. It
	// returns the rows' values as pgx decodes them.
	MetaQuery(ctx context.Context, sql string, args ...any) ([][]any, error)
	// SchemaChanged is called after a schema change committed metadata
	// version: it reloads the catalog and, outside a transaction, waits
	// until every live process has seen that version (bounded by
	// catalog.LeaseDuration), so that no cached plan of the old shape
	// runs anywhere after the change returns.
	SchemaChanged(ctx context.Context, version int64) error
	// OnShard calls fn with a connection to the first placement a read of
	// shard index idx of p's table may use (as ReadShard picks it) that can
	// be reached, failing over to the next when fn fails because that one
	// cannot (outside a transaction): fn may run more than once and must
	// start afresh each time. It is for reads that need pgx itself (values
	// in binary, raw bytes, a statement only described); fn must not keep
	// the connection. Safe for concurrent use for different shards.
	OnShard(ctx context.Context, p plan.Targeted, idx int, fn func(c *pgx.Conn) error) error
	// OnSession calls fn with this session's connection to the metadata
	// database (its settings, search_path, temporary objects), or one
	// like it; fn must not keep it.
	OnSession(ctx context.Context, fn func(c *pgx.Conn) error) error
	// ResultTypes is the cache of result types' descriptions shared by the
	// connections of one cluster.
	ResultTypes() *TypeCache
}
