package session

import (
	"context"
	"database/sql/driver"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/plan"
)

// Session is the engine's Cursor: the primitives of a plan reach the nodes
// through it, in this connection's session and transaction. The methods
// below adapt the node layer (placements.go: placements, fail-over, replicated
// writes, marking; fanout.go: reservations; transaction.go and package txn:
// transactions and their commit).
var _ engine.Cursor = (*Session)(nil)

// Bind runs the plan's Eval step (bindArgs).
func (s *Session) Bind(ctx context.Context, x plan.Targeted, nargs []driver.NamedValue) ([]any, []driver.NamedValue, error) {
	p := x.ShardTarget()
	return s.bindArgs(ctx, p, nargs)
}

// ReadShard is readShard.
func (s *Session) ReadShard(ctx context.Context, x plan.Targeted, idx int, sql string, args []driver.NamedValue) (driver.Rows, error) {
	p := x.ShardTarget()
	return s.readShard(ctx, p, idx, sql, args)
}

// WriteShard is writeShard. A write the fence of a repair or move refused
// is not run again here: outside a transaction, Exec or Query runs the
// whole statement again (rerunRefused, retry.go).
func (s *Session) WriteShard(ctx context.Context, x plan.Targeted, shard *catalog.Shard, sql string, args []driver.NamedValue, wantRows bool) (driver.Result, driver.Rows, error) {
	p := x.ShardTarget()
	return s.writeShard(ctx, p, shard, sql, args, wantRows)
}

// Atomically is atomically.
func (s *Session) Atomically(ctx context.Context, nodes []catalog.Node, f func() error) error {
	return s.atomically(ctx, nodes, f)
}

// Fanout plans the lanes of a streaming read (planFanout) and starts it
// under the fan-out gate (streamShards).
func (s *Session) Fanout(ctx context.Context, x plan.Targeted, shards []int, mustStream bool, open func(ctx context.Context, pos int) (driver.Rows, error)) ([]driver.Rows, func(), bool, error) {
	p := x.ShardTarget()
	fp := s.planFanout(p, shards)
	if mustStream && fp.split {
		return nil, nil, true, nil
	}
	sources, release, err := s.streamShards(ctx, fp, open)
	return sources, release, fp.split, err
}

// InTransaction reports whether a transaction is open.
func (s *Session) InTransaction() bool { return s.tx != nil }

// TextResults tells whether the worker connections' query mode returns
// every value as text (the simple protocol or exec).
func (s *Session) TextResults() bool {
	return !engine.DescribesStatements(s.c.poolConfig.ConnConfig.DefaultQueryExecMode)
}

// OnShard runs fn on a placement a read of shard index idx may use
// (onPlacement), failing over as reads do.
func (s *Session) OnShard(ctx context.Context, x plan.Targeted, idx int, fn func(c *pgx.Conn) error) error {
	p := x.ShardTarget()
	return s.onPlacement(ctx, p, idx, fn)
}

// OnSession runs fn on the session's connection to the metadata database
// (metaConn: the pool's when the session changed nothing).
func (s *Session) OnSession(ctx context.Context, fn func(c *pgx.Conn) error) error {
	pc, done, err := s.metaConn(ctx)
	if err != nil {
		return err
	}
	defer done()
	return fn(pc)
}

// ResultTypes is the connector's cache of result types.
func (s *Session) ResultTypes() *engine.TypeCache { return &s.c.types }

// WritePlacement runs sql on one placement in the statement's
// transaction (writePlacement); a failure fails the transaction.
func (s *Session) WritePlacement(ctx context.Context, pl catalog.Placement, sql string) error {
	if _, _, err := s.writePlacement(ctx, pl, sql, nil, false, false); err != nil {
		return s.txFailed(noBadConn(err))
	}
	return nil
}

// TxMode describes the open transaction.
func (s *Session) TxMode() (open, readOnly, statementSnapshots bool) {
	if s.tx == nil {
		return false, false, true
	}
	return true, s.tx.readOnly, !strings.Contains(s.tx.begin, "REPEATABLE READ") && !strings.Contains(s.tx.begin, "SERIALIZABLE")
}

// Statement runs sql in this Session, as the application's own (Query).
func (s *Session) Statement(ctx context.Context, sql string, args []driver.NamedValue) (driver.Rows, error) {
	return s.Query(ctx, sql, args)
}

// SessionTextRows runs sql on the metadata database in this session
// (metaQuery), its values in text form.
func (s *Session) SessionTextRows(ctx context.Context, sql string, args ...any) ([][]*string, error) {
	rows, err := s.metaQuery(ctx, sql, append([]any{pgx.QueryResultFormats{pgx.TextFormatCode}}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]*string
	for rows.Next() {
		raws := rows.RawValues()
		row := make([]*string, len(raws))
		for i, raw := range raws {
			if raw != nil {
				str := string(raw)
				row[i] = &str
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// MetadataVersion reads the metadata's current version.
func (s *Session) MetadataVersion(ctx context.Context) (int64, error) {
	return catalog.CurrentVersion(ctx, s.c.meta)
}

// onPlacement calls fn with a connection to the first reachable placement
// a read of plan p's shard index idx may use (readPlacements), failing over
// as reads do, and releases it after.
func (s *Session) onPlacement(ctx context.Context, x plan.Targeted, idx int, fn func(c *pgx.Conn) error) error {
	p := x.ShardTarget()
	var lastErr error
	placements := s.readPlacements(p, idx)
	for _, pl := range placements {
		err := s.onConn(ctx, pl.Node, fn)
		if err != nil && s.tx == nil && staleShape(err) {
			// The worker connection's prepared statement predates a
			// schema change (pgx has dropped it from its cache): prepared
			// again, as retryStale does.
			err = s.againWhileStale(err, func() error { return s.onConn(ctx, pl.Node, fn) })
		}
		if err == nil {
			return nil
		}
		if !s.failoverAllowed(ctx, pl.Node, err) {
			return s.txFailed(noBadConn(err))
		}
		lastErr = err
	}
	if len(placements) == 0 {
		return noReadPlacement(p, idx)
	}
	return unreachable(&p.Table.Shards[idx], lastErr)
}

// onConn calls fn with a connection to node (workerConn) and releases it
// after.
func (s *Session) onConn(ctx context.Context, node catalog.Node, fn func(c *pgx.Conn) error) error {
	dc, release, err := s.workerConn(ctx, node, false)
	if err != nil {
		return err
	}
	defer release()
	return fn(dc.Conn())
}
