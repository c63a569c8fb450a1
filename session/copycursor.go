package session

import (
	"context"
	"database/sql/driver"
	"io"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// Session is the engine's CopyCursor: COPY on the nodes, in this connection's
// transaction and session.
var _ engine.CopyCursor = (*Session)(nil)

// CopyIn joins the transaction on every node of placements, as a write,
// and returns a COPY FROM STDIN runner per node on the transaction's
// connection to it.
func (cn *Session) CopyIn(ctx context.Context, placements []catalog.Placement) (map[catalog.Node]engine.CopyFromNode, error) {
	if cn.tx == nil {
		return nil, sqlerr.New("25P01", "COPY FROM STDIN into a distributed table runs inside a transaction")
	}
	if cn.tx.readOnly {
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
	if err := cn.tx.acquire(ctx, nodes); err != nil {
		return nil, cn.txFailed(noBadConn(err))
	}
	out := make(map[catalog.Node]engine.CopyFromNode, len(nodes))
	for _, node := range nodes {
		dc, err := cn.tx.participant(ctx, node, true)
		if err != nil {
			return nil, cn.txFailed(noBadConn(err))
		}
		pc := dc.Conn().PgConn()
		out[node] = func(ctx context.Context, sql string, r io.Reader) (int64, error) {
			tag, err := pc.CopyFrom(ctx, r, sql)
			return tag.RowsAffected(), err
		}
	}
	for _, pl := range placements {
		cn.tx.wrotePlacement(pl)
	}
	return out, nil
}

// copyKeyChunk is how many key texts one round trip reads (each is a
// column of the SELECT, whose limit is 1664).
const copyKeyChunk = 500

// SessionKeys has the session read key texts as the type typ, as
// bindArgs does for an INSERT's key arguments (evalKeyTexts).
func (cn *Session) SessionKeys(ctx context.Context, typ uint32, texts []string) ([]any, error) {
	out := make([]any, len(texts))
	for lo := 0; lo < len(texts); lo += copyKeyChunk {
		hi := min(lo+copyKeyChunk, len(texts))
		keys := make([]keyText, hi-lo)
		args := make([]any, hi-lo)
		nv := make([]driver.NamedValue, hi-lo)
		for i := range keys {
			keys[i] = keyText{index: i, typ: typ, text: texts[lo+i]}
		}
		if err := cn.evalKeyTexts(ctx, keys, args, nv); err != nil {
			return nil, cn.txFailed(err)
		}
		copy(out[lo:hi], args)
	}
	return out, nil
}

// CopyOut takes a connection for a read of shard index idx on the first
// of readPlacements whose node answers (failing over as readShard does)
// and returns the COPY TO runner on it.
func (cn *Session) CopyOut(ctx context.Context, p *planner.Plan, idx int) (func(ctx context.Context, sql string, w io.Writer) error, func(error), error) {
	var lastErr error
	placements := cn.readPlacements(p, idx)
	for _, pl := range placements {
		dc, release, err := cn.workerConn(ctx, pl.Node, false)
		if err == nil {
			pc := dc.Conn().PgConn()
			run := func(ctx context.Context, sql string, w io.Writer) error {
				_, err := pc.CopyTo(ctx, w, sql)
				return err
			}
			done := func(err error) {
				release()
				cn.txFailed(err)
			}
			return run, done, nil
		}
		if !cn.failoverAllowed(ctx, pl.Node, err) {
			return nil, nil, cn.txFailed(noBadConn(err))
		}
		lastErr = err
	}
	if len(placements) == 0 {
		return nil, nil, noReadPlacement(p, idx)
	}
	return nil, nil, unreachable(&p.Table.Shards[idx], lastErr)
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
func (cn *Session) StartCopy(owner any, w *engine.CopyWriter, done func()) {
	cn.copying = &copyIn{owner: owner, w: w, done: done}
}

// CopyOwner is the owner of the COPY FROM STDIN open on the session, nil
// when there is none.
func (cn *Session) CopyOwner() any {
	if cn.copying == nil {
		return nil
	}
	return cn.copying.owner
}

// CopyRow sends one row of the open COPY; a failure stops the COPY and
// fails the transaction.
func (cn *Session) CopyRow(ctx context.Context, args []driver.NamedValue) error {
	if err := cn.copying.w.Row(ctx, args); err != nil {
		cn.abortCopy()
		return cn.txFailed(err)
	}
	return nil
}

// FinishCopy ends the open COPY, if any, sending every row, and reports
// the rows copied; a failure fails the transaction.
func (cn *Session) FinishCopy(ctx context.Context) (int64, error) {
	return cn.finishCopy(ctx)
}

// CopyBusy refuses a statement while a COPY FROM STDIN is open on the
// session (copyBusy).
func (cn *Session) CopyBusy() error { return cn.copyBusy() }

// finishCopy ends the open COPY, if any, sending every row; a failure
// fails the transaction.
func (cn *Session) finishCopy(ctx context.Context) (int64, error) {
	c := cn.copying
	if c == nil {
		return 0, nil
	}
	cn.copying = nil
	defer c.done()
	n, err := c.w.Finish(ctx)
	return n, cn.txFailed(err)
}

// abortCopy stops the open COPY, if any, sending nothing more; the
// transaction must roll back (its caller fails it).
func (cn *Session) abortCopy() {
	if c := cn.copying; c != nil {
		cn.copying = nil
		c.w.Abort()
		c.done()
	}
}

// copyBusy refuses a statement while a COPY FROM STDIN is open on the
// connection: its rows stream on the transaction's worker connections.
func (cn *Session) copyBusy() error {
	if cn.copying == nil {
		return nil
	}
	return sqlerr.New(sqlerr.InvalidTxState, "a COPY FROM STDIN is in progress on this transaction; end it with Exec() (no arguments) first")
}
