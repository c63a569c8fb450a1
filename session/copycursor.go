package session

import (
	"bytes"
	"context"
	"database/sql/driver"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/plan"
	"github.com/pgshard/pgshard/planner"
	"github.com/pgshard/pgshard/txn"
)

// Session is the engine's CopyCursor: COPY on the nodes, in this connection's
// transaction and session.
var _ engine.CopyCursor = (*Session)(nil)

// CopyIn joins the transaction on every node of placements, as a write,
// and returns a COPY FROM STDIN runner per node on the transaction's
// connection to it.
func (s *Session) CopyIn(ctx context.Context, placements []catalog.Placement) (map[catalog.Node]engine.CopyFromNode, error) {
	if s.tx == nil {
		return nil, sqlerr.New("25P01", "COPY FROM STDIN into a distributed table runs inside a transaction")
	}
	if s.tx.readOnly {
		return nil, sqlerr.New("25006", "cannot execute COPY FROM in a read-only transaction")
	}
	var nodes []catalog.Node
	seen := map[catalog.Node]bool{}
	for _, pl := range placements {
		if !seen[pl.Node] {
			seen[pl.Node] = true
			nodes = append(nodes, pl.Node)
		}
	}
	if err := s.tx.acquire(ctx, nodes); err != nil {
		return nil, s.txFailed(noBadConn(err))
	}
	out := make(map[catalog.Node]engine.CopyFromNode, len(nodes))
	for _, node := range nodes {
		dc, err := s.tx.participant(ctx, node, true)
		if err != nil {
			return nil, s.txFailed(noBadConn(err))
		}
		pc := dc.Conn()
		out[node] = func(ctx context.Context, sql string, r io.Reader) (int64, error) {
			// Each batch is sent only while the COPY's lease holds
			// (sendable, lease.go); else the transaction fails.
			if err := s.sendable(); err != nil {
				return 0, s.txFailed(err)
			}
			tag, err := txn.CopyFrom(ctx, pc, sql, r)
			return tag.RowsAffected(), err
		}
	}
	for _, pl := range placements {
		s.tx.wrotePlacement(pl)
	}
	return out, nil
}

// copyKeyChunk is how many key texts one round trip reads (each is a
// column of the SELECT, whose limit is 1664).
const copyKeyChunk = 500

// SessionKeys has the session read key texts as the type typ, as
// bindArgs does for an INSERT's key arguments (evalKeyTexts).
func (s *Session) SessionKeys(ctx context.Context, typ uint32, texts []string) ([]any, error) {
	out := make([]any, len(texts))
	for lo := 0; lo < len(texts); lo += copyKeyChunk {
		hi := min(lo+copyKeyChunk, len(texts))
		keys := make([]keyText, hi-lo)
		args := make([]any, hi-lo)
		nv := make([]driver.NamedValue, hi-lo)
		for i := range keys {
			keys[i] = keyText{index: i, typ: typ, text: texts[lo+i]}
		}
		if err := s.evalKeyTexts(ctx, keys, args, nv); err != nil {
			return nil, s.txFailed(err)
		}
		copy(out[lo:hi], args)
	}
	return out, nil
}

// SessionRows runs sql with $1 = n in the session, as the Eval step of an
// INSERT runs (evaluate): in the transaction's metadata session when it
// joined one. Each column is returned as formats says.
func (s *Session) SessionRows(ctx context.Context, sql string, n int, formats []engine.SessionColumn) ([][]any, error) {
	c, err := s.evalSession(ctx)
	if err != nil {
		return nil, s.txFailed(err)
	}
	out, err := queryRows(ctx, c, sql, n, formats)
	if err != nil {
		s.dropClosedSession(c)
		return nil, s.txFailed(fmt.Errorf("pgshard: computing column defaults on the metadata database: %w", err))
	}
	return out, nil
}

// queryRows runs sql with its one argument arg on c and returns its rows,
// each column as formats says: decoded to a Go value from binary
// (infinity as its text), its binary bytes, or its text. A connection
// whose mode does not describe statements (simple protocol, exec) cannot
// ask for binary results: the query is described first then.
func queryRows(ctx context.Context, c *pgx.Conn, sql string, arg any, formats []engine.SessionColumn) ([][]any, error) {
	resultFormats := make(pgx.QueryResultFormats, len(formats))
	anyBinary := false
	for i, f := range formats {
		if f != engine.SessionText {
			resultFormats[i], anyBinary = pgx.BinaryFormatCode, true
		}
	}
	args := []any{resultFormats, arg}
	if anyBinary && !engine.DescribesStatements(c.Config().DefaultQueryExecMode) {
		args = append([]any{pgx.QueryExecModeDescribeExec}, args...)
	}
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		fields := rows.FieldDescriptions()
		raws := rows.RawValues()
		if len(raws) != len(formats) {
			return nil, sqlerr.New(sqlerr.InternalError, "computing column defaults gave %d columns for %d", len(raws), len(formats))
		}
		values := make([]any, len(raws))
		for i, raw := range raws {
			switch {
			case raw == nil:
			case formats[i] == engine.SessionText:
				values[i] = string(raw)
			case formats[i] == engine.SessionRaw:
				values[i] = bytes.Clone(raw)
			default:
				v, err := decodeBinary(c.TypeMap(), fields[i].DataTypeOID, raw)
				if err != nil {
					return nil, err
				}
				values[i] = v
			}
		}
		out = append(out, values)
	}
	return out, rows.Err()
}

// copyFrom is the CopyFrom primitive of p, a COPY ... FROM STDIN plan:
// the one kept with the plan (planner.Build).
func copyFrom(p *planner.Plan) *engine.CopyFrom {
	return planner.Build(p).(*engine.CopyFrom)
}

// CopyOut takes a connection for a read of shard index idx on the first
// of readPlacements whose node answers (failing over as readShard does)
// and returns the COPY TO runner on it.
func (s *Session) CopyOut(ctx context.Context, p plan.Targeted, idx int) (func(ctx context.Context, sql string, w io.Writer) error, func(error), error) {
	var lastErr error
	placements := s.readPlacements(p, idx)
	for _, pl := range placements {
		dc, release, err := s.workerConn(ctx, pl.Node, false)
		if err == nil {
			pc := dc.Conn()
			run := func(ctx context.Context, sql string, w io.Writer) error {
				_, err := txn.CopyTo(ctx, pc, sql, w)
				return err
			}
			done := func(err error) {
				release()
				s.txFailed(err)
			}
			return run, done, nil
		}
		if !s.failoverAllowed(ctx, pl.Node, err) {
			return nil, nil, s.txFailed(noBadConn(err))
		}
		lastErr = err
	}
	if len(placements) == 0 {
		return nil, nil, noReadPlacement(p, idx)
	}
	return nil, nil, unreachable(&p.ShardTarget().Table.Shards[idx], lastErr)
}

// copyIn is a COPY FROM STDIN open on a prepared statement (its owner):
// from its first row to its end, it holds the write (done ends it) and the
// transaction's worker connections.
type copyIn struct {
	owner any
	w     *engine.CopyWriter
	done  func()
}

// StartCopy records w, a COPY FROM STDIN started in the transaction
// (engine.CopyFrom.Start), as open on the session, owned by owner (the
// prepared statement whose Execs take its rows); done ends its write.
func (s *Session) StartCopy(owner any, w *engine.CopyWriter, done func()) {
	s.copying = &copyIn{owner: owner, w: w, done: done}
}

// CopyOwner is the owner of the COPY FROM STDIN open on the session, nil
// when there is none.
func (s *Session) CopyOwner() any {
	if s.copying == nil {
		return nil
	}
	return s.copying.owner
}

// CopyRow sends one row of the open COPY; a failure stops the COPY and
// fails the transaction.
func (s *Session) CopyRow(ctx context.Context, args []driver.NamedValue) error {
	if err := s.copying.w.Row(ctx, args); err != nil {
		s.abortCopy()
		return s.txFailed(err)
	}
	return nil
}

// FinishCopy ends the open COPY, if any, sending every row, and reports
// the rows copied; a failure fails the transaction.
func (s *Session) FinishCopy(ctx context.Context) (int64, error) {
	return s.finishCopy(ctx)
}

// CopyBusy refuses a statement while a COPY FROM STDIN is open on the
// session (copyBusy).
func (s *Session) CopyBusy() error { return s.copyBusy() }

// finishCopy ends the open COPY, if any, sending every row; a failure
// fails the transaction.
func (s *Session) finishCopy(ctx context.Context) (int64, error) {
	c := s.copying
	if c == nil {
		return 0, nil
	}
	s.copying = nil
	defer c.done()
	n, err := c.w.Finish(ctx)
	return n, s.txFailed(err)
}

// abortCopy stops the open COPY, if any, sending nothing more; the
// transaction must roll back (its caller fails it).
func (s *Session) abortCopy() {
	if c := s.copying; c != nil {
		s.copying = nil
		c.w.Abort()
		c.done()
	}
}

// copyBusy refuses a statement while a COPY FROM STDIN is open on the
// connection: its rows stream on the transaction's worker connections.
func (s *Session) copyBusy() error {
	if s.copying == nil {
		return nil
	}
	return sqlerr.New(sqlerr.InvalidTxState, "a COPY FROM STDIN is in progress on this transaction; end it with Exec() (no arguments) first")
}
