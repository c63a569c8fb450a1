package engine

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/plan"
)

// CopyCursor is the Cursor of a connection that can run PostgreSQL's COPY
// on the nodes; session.Session implements it. Every method blocks
// on the network and honours ctx.
type CopyCursor interface {
	Cursor
	// CopyIn joins the open transaction on the nodes of placements, as a
	// write on each (noting the placements written, for the commit), and
	// returns one CopyFromNode per node. It refuses outside a transaction
	// (25P01) and in a read-only one (25006).
	CopyIn(ctx context.Context, placements []catalog.Placement) (map[catalog.Node]CopyFromNode, error)
	// SessionKeys has the session read texts as shard key values of type
	// typ (a type catalog.KeyTextDependsOnSettings accepts), as it reads an
	// INSERT's key arguments given as text, and returns the typed values
	// (time.Time, or infinity as text), in order.
	SessionKeys(ctx context.Context, typ uint32, texts []string) ([]any, error)
	// SessionRows runs sql, a query whose one parameter $1 is n, in the
	// session (where an INSERT's values computed beforehand are), and
	// returns its rows, column i as formats[i] says.
	SessionRows(ctx context.Context, sql string, n int, formats []SessionColumn) ([][]any, error)
	// CopyOut takes a connection to a placement a read of shard index idx
	// of read may use (the first whose node answers, as ReadShard) and returns
	// run, which runs a COPY ... TO STDOUT there writing each of its data
	// messages (one row of COPY's output) to w in one Write, and done,
	// which must be called with run's error once run has returned: it
	// gives the connection back (and fails the transaction on an error).
	// Only run may be called from another goroutine.
	CopyOut(ctx context.Context, read plan.Targeted, idx int) (run func(ctx context.Context, sql string, w io.Writer) error, done func(error), err error)
}

// CopyFromNode runs one COPY ... FROM STDIN (sql) on the transaction's
// connection to one node, its data read from r, and returns the rows
// copied. The CopyFromNodes of different nodes may run at once; one node's
// runs one COPY at a time.
type CopyFromNode func(ctx context.Context, sql string, r io.Reader) (int64, error)

// CopyFrom is COPY t (cols) FROM STDIN on a distributed table. It runs only
// as a CopyWriter (Start), which the database/sql statement prepared with
// the COPY holds from its first row to its end (lib/pq's CopyIn
// convention); Exec and Query refuse. It is immutable once built and shared
// by every connection running its plan.
type CopyFrom struct {
	// Table is the distributed table the rows go into.
	Table *catalog.Table
	// Target is the COPY as a statement on Table's shards (EXPLAIN lists
	// its placements).
	Target *plan.Target
	// Columns are the columns each row is sent with, in order: the Given
	// ones the caller's rows hold, then those whose values DefaultsSQL
	// computes; Types are their type OIDs.
	Columns []string
	Types   []uint32
	// KeyIndex is the position of the table's key in Columns.
	KeyIndex int
	// Given is how many of Columns each row the caller gives holds.
	Given int
	// DefaultsSQL computes the values of Columns[Given:] for $1 rows in the
	// session (one row per data row); empty when there are none.
	DefaultsSQL string
	// Binary is set when the rows start out in COPY's binary format
	// (copybinary.go).
	Binary bool
	// Statements writes each shard's COPY (the planner's).
	Statements CopyStatements
}

// CopyStatements writes the COPY statements each shard runs; the planner
// implements it. Its methods are safe for concurrent use.
type CopyStatements interface {
	// CopyShardSQL returns the COPY shard index i runs, for COPY TO with
	// the statement's HEADER only when first is set.
	CopyShardSQL(i int, first bool) (string, error)
	// CopyFromShardSQL returns the COPY FROM STDIN shard index i runs for
	// a batch of rows, in COPY's binary format when binary is set.
	CopyFromShardSQL(i int, binary bool) (string, error)
	// CopyShards returns the indexes of the shards a COPY TO reads,
	// ascending.
	CopyShards() ([]int, error)
}

func (c *CopyFrom) Inputs() []Primitive { return nil }

func (c *CopyFrom) Exec(context.Context, Cursor, []driver.NamedValue) (driver.Result, error) {
	return nil, CopyInConventionError(c.Table.Name)
}

func (c *CopyFrom) Query(context.Context, Cursor, []driver.NamedValue) (driver.Rows, error) {
	return nil, CopyInConventionError(c.Table.Name)
}

// CopyInConventionError is the error of a COPY FROM STDIN run other than
// through a statement prepared in a transaction.
func CopyInConventionError(table string) error {
	return sqlerr.Unsupported("COPY FROM STDIN into distributed table \"%s\" runs through a statement prepared in a transaction (lib/pq's CopyIn convention): stmt, _ := tx.Prepare(\"COPY t (a, b) FROM STDIN\"); stmt.Exec(a, b) per row; stmt.Exec() to finish; stmt.Close()", table)
}

// Describe lists what a COPY FROM sends where.
func (c *CopyFrom) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	t := c.Table
	format := "COPY text format"
	if c.Binary {
		format = "COPY binary format (text from the first value whose binary form could differ)"
	}
	d.Add("pgshard: COPY FROM STDIN into %s, rows split by the hash of %s (column %d) over %d shards, streamed in %s to every writable placement in batches of %d KB, in the transaction (two-phase commit)", t.Name, t.KeyColumn, c.KeyIndex+1, len(t.Shards), format, CopyBatchBytes>>10)
	for i := range t.Shards {
		s := &t.Shards[i]
		sql, err := c.Statements.CopyShardSQL(i, true)
		if err != nil {
			return err
		}
		d.Add("  shard %d on %s", s.ID, d.Placements(c.Target, s))
		d.Add("    SQL: %s", sql)
	}
	return nil
}

// CopyBatchBytes is the size at which a shard's buffered rows are sent to
// its placements as one COPY. Tests lower it to have small loads take
// several batches; it must not change while a COPY runs.
var CopyBatchBytes = 256 << 10

// copyLaneDepth is how many batches wait for each node at most: with the
// shards' buffers, it bounds a CopyWriter's memory.
const copyLaneDepth = 4

// copyPendingRows is how many rows whose key the session must read are
// kept before it reads their keys in one round trip.
const copyPendingRows = 500

// CopyWriter is one running COPY FROM STDIN: it takes rows (Row), hashes
// each key as an INSERT of the row would (plan.ShardIndex on the value,
// read by the session first when its text depends on the settings), encodes
// the row into its shard's buffer in COPY's binary format while the plan
// and the values allow (copybinary.go), else in COPY's text format, and
// sends a buffer
// once it is CopyBatchBytes long to each of the shard's placements, one
// goroutine per node streaming COPYs on the transaction's connection to it.
// Memory is bounded by the buffers (one per shard) and copyLaneDepth
// batches per node; rows are never all held.
//
// A CopyWriter is used by one goroutine at a time (the statement's). Its
// first error is sticky: every later call returns it, and nothing is
// committed (the caller fails the transaction). Finish or Abort must end
// it: they wait for the node goroutines.
type CopyWriter struct {
	c      *CopyFrom
	vc     CopyCursor
	tm     *pgtype.Map
	shards []copyShard
	lanes  map[catalog.Node]*copyLane
	// free holds the buffers of batches sent: a shard's next buffer is
	// taken from it, so that a load allocates about as many buffers as it
	// keeps at once, not one per batch.
	free    chan *copyBatch
	rows    int64
	pending []copyPending
	scratch []byte
	vals    []any               // the row being added
	nv      []driver.NamedValue // the row given to Values
	// defaults is how the columns left out travel (resolvePending).
	defaults *copyDefaults
	// binary is set while the rows are written in COPY's binary format
	// (copybinary.go); once unset, it stays so.
	binary bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ended  bool

	mu  sync.Mutex
	err error
	// failedSet is set once err is: failed reads it without the lock on
	// every row.
	failedSet atomic.Bool
}

type copyShard struct {
	// limit is the size at which buf is sent: CopyBatchBytes, except for
	// the first batches, staggered over the shards so that the nodes get
	// work early and the shards' batches do not all fall due at once.
	limit int
	buf   []byte
	rows  []int64 // the row number of each line of buf
	lanes []*copyLane
	// batch is the copyBatch buf and rows go out in (their buffers
	// came from it).
	batch *copyBatch
}

// copyBatch is one shard's rows sent as one COPY to each of its
// placements; refs counts the lanes still sending it, the last of which
// gives its buffers back to the writer (recycle).
type copyBatch struct {
	shard  int
	binary bool // data is in COPY's binary format
	data   []byte
	rows   []int64
	refs   atomic.Int32
}

// copyLane is the goroutine sending batches to one node.
type copyLane struct {
	node   catalog.Node
	run    CopyFromNode
	ch     chan *copyBatch
	copied int64 // rows the node's COPYs reported; read after wg.Wait
}

// copyPending is a row whose key text the session must read (keyText),
// or whose columns left out the session must compute (CopyFrom.DefaultsSQL).
type copyPending struct {
	row     int64
	vals    []any
	keyText bool
}

// Start begins the COPY: it joins the transaction on every node of the
// table's writable placements and starts one goroutine per node. ctx
// bounds the joining; the node goroutines run until Finish or Abort.
func (c *CopyFrom) Start(ctx context.Context, vc CopyCursor) (*CopyWriter, error) {
	t := c.Table
	var placements []catalog.Placement
	for i := range t.Shards {
		ws := t.Shards[i].Writable()
		if len(ws) == 0 {
			return nil, sqlerr.New(sqlerr.ObjectNotInPrereq, "shard %d has no finalized placement; repair one with master_copy_shard_placement", t.Shards[i].ID)
		}
		placements = append(placements, ws...)
	}
	runs, err := vc.CopyIn(ctx, placements)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := &CopyWriter{c: c, vc: vc, tm: pgtype.NewMap(), shards: make([]copyShard, len(t.Shards)), lanes: map[catalog.Node]*copyLane{}, ctx: wctx, cancel: cancel, binary: c.Binary}
	w.free = make(chan *copyBatch, len(w.shards)+copyLaneDepth*len(runs))
	for i := range t.Shards {
		w.shards[i].limit = max(CopyBatchBytes*(i+1)/len(w.shards), 1)
		w.shards[i].batch = &copyBatch{}
		for _, pl := range t.Shards[i].Writable() {
			lane := w.lanes[pl.Node]
			if lane == nil {
				lane = &copyLane{node: pl.Node, run: runs[pl.Node], ch: make(chan *copyBatch, copyLaneDepth)}
				if lane.run == nil {
					cancel()
					return nil, sqlerr.New(sqlerr.InternalError, "no COPY connection to %s", pl.Node)
				}
				w.lanes[pl.Node] = lane
				w.wg.Add(1)
				go w.runLane(lane)
			}
			w.shards[i].lanes = append(w.shards[i].lanes, lane)
		}
	}
	return w, nil
}

// runLane sends the node's batches one COPY each, until its channel is
// closed; after the writer's first error it only drains.
func (w *CopyWriter) runLane(lane *copyLane) {
	defer w.wg.Done()
	var r bytes.Reader
	for b := range lane.ch {
		if w.failed() == nil {
			sql, err := w.c.Statements.CopyFromShardSQL(b.shard, b.binary)
			if err == nil {
				var n int64
				r.Reset(b.data)
				n, err = lane.run(w.ctx, sql, &r)
				lane.copied += n
			}
			if err != nil {
				w.fail(w.batchError(b, lane.node, err))
			}
		}
		w.recycle(b)
	}
}

// recycle gives b's buffers back to the writer once the last of its lanes
// is done with it.
func (w *CopyWriter) recycle(b *copyBatch) {
	if b.refs.Add(-1) != 0 {
		return
	}
	b.data, b.rows = b.data[:0], b.rows[:0]
	select {
	case w.free <- b:
	default:
	}
}

func (w *CopyWriter) failed() error {
	if !w.failedSet.Load() {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// fail records err unless an error is recorded already, and returns the
// recorded one.
func (w *CopyWriter) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		w.failedSet.Store(true)
	}
	return w.err
}

// Values takes one row given as plain values (pgx.CopyFromSource's), in
// the order of the COPY's columns, as Row does; vals is not kept.
func (w *CopyWriter) Values(ctx context.Context, vals []any) error {
	nv := w.nv[:0]
	for i, v := range vals {
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	w.nv = nv
	return w.Row(ctx, nv)
}

// Rows reports how many rows the writer has taken so far.
func (w *CopyWriter) Rows() int64 { return w.rows }

// Row takes one row: its values in the order of the COPY's columns.
func (w *CopyWriter) Row(ctx context.Context, args []driver.NamedValue) error {
	if err := w.failed(); err != nil {
		return err
	}
	if w.ended {
		return sqlerr.New(sqlerr.InvalidTxState, "COPY into \"%s\" has ended", w.c.Table.Name)
	}
	w.rows++
	cp := w.c
	if len(args) != cp.Given {
		return w.fail(sqlerr.New("22P04", "COPY %s, row %d: %d values for %d columns (%v)", w.c.Table.Name, w.rows, len(args), cp.Given, cp.Columns[:cp.Given]))
	}
	vals := w.vals[:0]
	for _, a := range args {
		vals = append(vals, a.Value)
	}
	w.vals = vals
	var key string
	var keyText bool
	if cp.KeyIndex < cp.Given {
		key, keyText = settingKeyText(w.c.Table.KeyType, vals[cp.KeyIndex])
	}
	if keyText || cp.DefaultsSQL != "" {
		// Kept beyond the call, with room for the defaults.
		vals = append(make([]any, 0, len(cp.Columns)), vals...)
		if keyText {
			vals[cp.KeyIndex] = key
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = bytes.Clone(b) // the caller may reuse it
			}
		}
		w.pending = append(w.pending, copyPending{row: w.rows, vals: vals, keyText: keyText})
		if len(w.pending) < copyPendingRows {
			return nil
		}
		return w.resolvePending(ctx)
	}
	return w.add(ctx, w.rows, vals)
}

// settingKeyText returns v as text when it is a key text whose value the
// session's settings decide: a string, []byte, a named string type or a
// driver.Valuer giving one of those.
func settingKeyText(typ uint32, v any) (string, bool) {
	if !catalog.KeyTextDependsOnSettings(typ) {
		return "", false
	}
	if val, ok := v.(driver.Valuer); ok {
		r, err := val.Value()
		if err != nil {
			return "", false // Hash reports it
		}
		v = r
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	case time.Time, nil:
		return "", false
	default:
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.String {
			return "", false
		}
		s = rv.String()
	}
	return s, !catalog.KeyTextIndependentOfSettings(typ, s)
}

// resolvePending has the session compute the pending rows' columns left
// out (in one round trip) and read their key texts (in another), then adds
// the rows with their typed keys.
func (w *CopyWriter) resolvePending(ctx context.Context) error {
	if len(w.pending) == 0 {
		return nil
	}
	cp := w.c
	pending := w.pending
	w.pending = w.pending[:0]
	rowsErr := func(err error) error {
		return w.fail(fmt.Errorf("COPY %s, rows %d to %d: %w", w.c.Table.Name, pending[0].row, pending[len(pending)-1].row, err))
	}
	if cp.DefaultsSQL != "" {
		if w.defaults == nil {
			known := func(typ uint32) bool {
				_, ok := w.tm.TypeForOID(typ)
				return ok
			}
			d, err := newCopyDefaults(ctx, w.vc, known, cp.Types[cp.Given:])
			if err != nil {
				return rowsErr(err)
			}
			w.defaults = d
		}
		rows, err := w.vc.SessionRows(ctx, cp.DefaultsSQL, len(pending), w.defaults.formats)
		if err != nil {
			return rowsErr(err)
		}
		if len(rows) != len(pending) {
			return rowsErr(sqlerr.New(sqlerr.InternalError, "computing the columns left out gave %d rows for %d", len(rows), len(pending)))
		}
		for i := range pending {
			if err := w.defaults.canonicalize(rows[i]); err != nil {
				return rowsErr(err)
			}
			pending[i].vals = append(pending[i].vals, rows[i]...)
		}
	}
	var texts []string
	for _, pr := range pending {
		if pr.keyText {
			texts = append(texts, pr.vals[cp.KeyIndex].(string))
		}
	}
	var keys []any
	if len(texts) > 0 {
		var err error
		if keys, err = w.vc.SessionKeys(ctx, w.c.Table.KeyType, texts); err != nil {
			return rowsErr(err)
		}
	}
	for _, pr := range pending {
		if pr.keyText {
			pr.vals[cp.KeyIndex], keys = keys[0], keys[1:]
		}
		if err := w.add(ctx, pr.row, pr.vals); err != nil {
			return err
		}
	}
	return nil
}

// add routes row number row and appends it to its shard's buffer, sending
// the buffer when it is full.
func (w *CopyWriter) add(ctx context.Context, row int64, vals []any) error {
	cp, t := w.c, w.c.Table
	for i, v := range vals {
		if tm, ok := v.(time.Time); ok {
			// As pgx sends it in binary (and Hash reads it): whole
			// microseconds, never rounded by the server's text input.
			vals[i] = tm.Truncate(time.Microsecond)
		}
	}
	idx, err := plan.ShardIndex(t, vals[cp.KeyIndex])
	if err != nil {
		return w.fail(atRow(t.Name, row, cp.Columns[cp.KeyIndex], err))
	}
	s := &w.shards[idx]
	if w.binary {
		if len(s.buf) == 0 {
			s.buf = append(s.buf, copyBinaryHeader...)
		}
		var ok bool
		if s.buf, ok = w.appendBinaryRow(s.buf, cp.Types, vals); ok {
			s.rows = append(s.rows, row)
			if len(s.buf) >= s.limit {
				return w.send(ctx, idx)
			}
			return nil
		}
		if err := w.toText(ctx); err != nil {
			return err
		}
	}
	for i, v := range vals {
		if i > 0 {
			s.buf = append(s.buf, '\t')
		}
		var err error
		if s.buf, err = w.appendValue(s.buf, cp.Types[i], v); err != nil {
			return w.fail(sqlerr.New(sqlerr.DatatypeMismatch, "COPY %s, row %d, column %s: cannot encode a Go %s: %v", t.Name, row, cp.Columns[i], reflect.TypeOf(v), err))
		}
	}
	s.buf = append(s.buf, '\n')
	s.rows = append(s.rows, row)
	if len(s.buf) >= s.limit {
		return w.send(ctx, idx)
	}
	return nil
}

// toText turns the writer to COPY's text format for the rest of the COPY:
// the rows buffered in binary are sent first.
func (w *CopyWriter) toText(ctx context.Context) error {
	for i := range w.shards {
		if len(w.shards[i].rows) == 0 {
			w.shards[i].buf = w.shards[i].buf[:0] // a header alone
			continue
		}
		if err := w.send(ctx, i); err != nil {
			return err
		}
	}
	w.binary = false
	return nil
}

// appendValue appends v, a value of a column of type typ, in COPY's text
// format: the text pgx sends for it as a text parameter (the same value
// an INSERT of it stores), escaped, or \N for NULL. Strings, integers
// into integer and numeric columns, and bytes into text columns take a
// short way; everything else goes through pgx's text encoders.
func (w *CopyWriter) appendValue(buf []byte, typ uint32, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(buf, '\\', 'N'), nil
	case string:
		return appendCopyText(buf, x), nil
	case []byte:
		if x == nil {
			return append(buf, '\\', 'N'), nil
		}
		if typ == 25 || typ == 1043 || typ == 1042 || typ == 19 {
			return appendCopyText(buf, x), nil
		}
	case int64:
		if numericType(typ) {
			return strconv.AppendInt(buf, x, 10), nil
		}
	case int:
		if numericType(typ) {
			return strconv.AppendInt(buf, int64(x), 10), nil
		}
	case int32:
		if numericType(typ) {
			return strconv.AppendInt(buf, int64(x), 10), nil
		}
	}
	enc, err := w.tm.Encode(typ, pgtype.TextFormatCode, v, w.scratch[:0])
	if err != nil {
		return buf, err
	}
	if enc == nil {
		return append(buf, '\\', 'N'), nil
	}
	w.scratch = enc
	return appendCopyText(buf, enc), nil
}

// numericType reports whether t is int2, int4, int8, numeric, float4 or
// float8, whose text form of an integer is its decimal digits.
func numericType(t uint32) bool {
	switch t {
	case 20, 21, 23, 1700, 700, 701:
		return true
	}
	return false
}

// appendCopyText appends v escaped for COPY's text format.
func appendCopyText[T string | []byte](buf []byte, v T) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// send hands shard idx's buffer to its placements' nodes, waiting while
// their queues are full.
func (w *CopyWriter) send(ctx context.Context, idx int) error {
	s := &w.shards[idx]
	if len(s.rows) == 0 {
		return nil
	}
	var next *copyBatch
	select {
	case next = <-w.free:
	default:
		next = &copyBatch{data: make([]byte, 0, CopyBatchBytes+CopyBatchBytes/8)}
	}
	if w.binary {
		s.buf = append(s.buf, copyBinaryTrailer...)
	}
	b := s.batch
	b.shard, b.binary, b.data, b.rows = idx, w.binary, s.buf, s.rows
	b.refs.Store(int32(len(s.lanes)))
	s.batch, s.buf, s.rows, s.limit = next, next.data, next.rows, CopyBatchBytes
	for _, lane := range s.lanes {
		select {
		case lane.ch <- b:
		case <-ctx.Done():
			return w.fail(ctx.Err())
		}
	}
	return w.failed()
}

// Finish sends what is buffered, waits for every node's COPYs and returns
// the number of rows copied (each counted once, whatever the replicas).
func (w *CopyWriter) Finish(ctx context.Context) (int64, error) {
	if w.ended {
		return 0, w.failed()
	}
	err := w.failed()
	if err == nil {
		err = w.resolvePending(ctx)
	}
	for i := range w.shards {
		if err != nil {
			break
		}
		err = w.send(ctx, i)
	}
	if err != nil {
		w.Abort()
		return 0, err
	}
	w.end()
	if err := w.failed(); err != nil {
		return 0, err
	}
	return w.rows, nil
}

// Abort stops the COPY: queued batches are dropped, the running ones
// cancelled; it waits for the node goroutines. The transaction must then
// roll back.
func (w *CopyWriter) Abort() {
	if w.ended {
		return
	}
	w.fail(sqlerr.New("57014", "COPY into \"%s\" was aborted", w.c.Table.Name))
	w.cancel()
	w.end()
}

func (w *CopyWriter) end() {
	w.ended = true
	for _, lane := range w.lanes {
		close(lane.ch)
	}
	w.wg.Wait()
	w.cancel()
}

// copyLine finds the line number in the context of an error of COPY.
var copyLine = regexp.MustCompile(`, line (\d+)`)

// batchError is the error of a batch's COPY on node: a server's error on a
// line names the row it came from.
func (w *CopyWriter) batchError(b *copyBatch, node catalog.Node, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if m := copyLine.FindStringSubmatch(pe.Where); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(b.rows) {
				e := *pe
				e.Message = fmt.Sprintf("COPY %s, row %d: %s", w.c.Table.Name, b.rows[n-1], pe.Message)
				return &e
			}
		}
	}
	return fmt.Errorf("COPY %s, shard %d on %s: %w", w.c.Table.Name, w.c.Table.Shards[b.shard].ID, node, err)
}

// atRow puts the row number (and column) into err's message, keeping its
// SQLSTATE.
func atRow(table string, row int64, column string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		e := *pe
		e.Message = fmt.Sprintf("COPY %s, row %d, column %s: %s", table, row, column, pe.Message)
		return &e
	}
	return fmt.Errorf("COPY %s, row %d, column %s: %w", table, row, column, err)
}

// CopyTo is COPY t TO STDOUT or COPY (SELECT ...) TO STDOUT on distributed
// tables: each shard the COPY reads runs it on its rows, one shard after
// the other, and the output streams as rows of one text column "copy",
// one row per line of COPY's output (its newline included), so that
// writing them out in order gives the file COPY would write. It is
// immutable once built and shared by every connection running its plan.
type CopyTo struct {
	// Table is the table COPY t TO reads, or the one the SELECT of COPY
	// (SELECT ...) TO is routed by.
	Table *catalog.Table
	// Read is what a shard's COPY reads: the table, or the SELECT's own
	// plan, which knows every table it reads (a placement used must hold
	// each one's shard).
	Read *plan.Target
	// Header is set when only the first shard's COPY writes a header line.
	Header bool
	// Statements writes each shard's COPY and picks the shards (the
	// planner's).
	Statements CopyStatements
}

// CopyColumn is the name of CopyTo's one column.
const CopyColumn = "copy"

func (c *CopyTo) Inputs() []Primitive { return nil }

// Exec runs the COPY for nothing but its row count: the data rows (a header
// line is not one), as PostgreSQL's COPY reports.
func (c *CopyTo) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	res, err := execRows(c.Query(ctx, vc, nargs))
	if err != nil {
		return nil, err
	}
	n, _ := res.RowsAffected()
	if c.Header && n > 0 {
		n--
	}
	return Result{Rows: n}, nil
}

// Query streams the lines, read one shard after the other by a goroutine
// a little ahead of the caller; Close stops it.
func (c *CopyTo) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	cc, ok := vc.(CopyCursor)
	if !ok {
		return nil, sqlerr.New(sqlerr.InternalError, "this connection cannot run COPY")
	}
	if len(nargs) > 0 {
		return nil, sqlerr.New(sqlerr.ProtocolViolation, "COPY takes no parameters, %d given", len(nargs))
	}
	shards, err := c.Statements.CopyShards()
	if err != nil {
		return nil, err
	}
	sqls := make([]string, len(shards))
	for n, idx := range shards {
		if sqls[n], err = c.Statements.CopyShardSQL(idx, n == 0); err != nil {
			return nil, err
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &copyOutRows{ctx: rctx, cancel: cancel, vc: cc, read: c.Read, shards: shards, sqls: sqls}
	if err := r.start(); err != nil {
		cancel()
		return nil, err
	}
	return r, nil
}

// Describe lists the shards' COPYs.
func (c *CopyTo) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	shards, err := c.Statements.CopyShards()
	if err != nil {
		return err
	}
	d.Add("pgshard: COPY TO STDOUT over %d of %d shards of %s, one shard after the other, each line a row of column %q", len(shards), len(c.Table.Shards), c.Table.Name, CopyColumn)
	for n, idx := range shards {
		s := &c.Table.Shards[idx]
		sql, err := c.Statements.CopyShardSQL(idx, n == 0)
		if err != nil {
			return err
		}
		d.Add("  shard %d on %s", s.ID, d.Placements(c.Read, s))
		d.Add("    SQL: %s", sql)
	}
	return nil
}

// copyLineWriter passes each Write (one line of COPY's output) on.
type copyLineWriter struct {
	ctx   context.Context
	lines chan<- []byte
}

func (w copyLineWriter) Write(b []byte) (int, error) {
	select {
	case w.lines <- bytes.Clone(b):
		return len(b), nil
	case <-w.ctx.Done():
		return 0, w.ctx.Err()
	}
}

// copyOutRows are CopyTo's rows: the shards' COPYs one after the other,
// each run by a goroutine of its own (COPY pushes its lines) that passes
// its lines on through lines, a little ahead of Next; everything else
// (taking and giving back connections) happens in the caller's goroutine,
// in Next and Close. err is written by the shard's goroutine before it
// closes lines, and read after.
type copyOutRows struct {
	ctx    context.Context
	cancel context.CancelFunc
	vc     CopyCursor
	read   *plan.Target // CopyTo.Read
	shards []int
	sqls   []string
	next   int // position in shards of the next shard to start

	lines chan []byte
	done  func(error)
	err   error
}

var (
	_ driver.Rows                           = (*copyOutRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*copyOutRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*copyOutRows)(nil)
)

// start begins the COPY of the next shard.
func (r *copyOutRows) start() error {
	pos := r.next
	r.next++
	run, done, err := r.vc.CopyOut(r.ctx, r.read, r.shards[pos])
	if err != nil {
		return err
	}
	lines := make(chan []byte, ScatterBuffer)
	r.lines, r.done, r.err = lines, done, nil
	go func() {
		defer close(lines)
		r.err = run(r.ctx, r.sqls[pos], copyLineWriter{ctx: r.ctx, lines: lines})
	}()
	return nil
}

func (r *copyOutRows) Columns() []string { return []string{CopyColumn} }

func (r *copyOutRows) ColumnTypeDatabaseTypeName(int) string { return "TEXT" }

func (r *copyOutRows) ColumnTypeScanType(int) reflect.Type { return reflect.TypeFor[string]() }

func (r *copyOutRows) Next(dest []driver.Value) error {
	for r.lines != nil {
		if line, ok := <-r.lines; ok {
			dest[0] = string(line)
			return nil
		}
		err := r.err
		r.done(err)
		r.lines, r.done = nil, nil
		if err != nil {
			return err
		}
		if r.next < len(r.shards) {
			if err := r.start(); err != nil {
				return err
			}
		}
	}
	return io.EOF
}

// Close stops the running shard's COPY and waits for its goroutine.
func (r *copyOutRows) Close() error {
	r.cancel()
	if r.lines != nil {
		for range r.lines {
		}
		r.done(r.err)
		r.lines, r.done = nil, nil
	}
	return nil
}
