package merge

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"sync/atomic"
)

// Opener starts shard i's query. It is called on its own goroutine, with a
// context that is cancelled when the shard's rows are closed, when another
// shard fails to start, or when Parallel's context is cancelled: the query
// must honour it (pgx does), since closing waits for the reading goroutine.
type Opener func(ctx context.Context, i int) (driver.Rows, error)

// errClosed is returned by Next on rows that were closed.
var errClosed = errors.New("merge: Next on closed rows")

// Parallel starts n shard queries at once and returns one driver.Rows per
// shard, each read ahead by its own goroutine into a buffer of at most buffer
// rows (at least 1), so memory is bounded by n*buffer rows, not the result.
//
// It waits until every shard has either produced its first row, reached its
// end, or failed, so column metadata is known and errors raised at the start
// of a query are reported here. The first error cancels every other shard and
// is returned after everything opened has been closed; when ctx is cancelled
// meanwhile, ctx.Err() is returned.
//
// Closing a returned Rows cancels its goroutine and closes the underlying
// rows (CloseAll, Concatenate and MergeSort close them all, cancelling every
// shard before waiting for any). When ctx is cancelled every goroutine stops
// and Next returns ctx.Err(). No goroutine outlives the closing of the rows.
//
// []byte values are copied as they are read, since a driver may reuse their
// memory on its next Next.
func Parallel(ctx context.Context, n, buffer int, open Opener) ([]driver.Rows, error) {
	if n <= 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return []driver.Rows{}, nil
	}
	if buffer < 1 {
		buffer = 1
	}
	g := &group{ctx: ctx, ready: make(chan struct{}, 1)}
	started := make(chan error, n)
	shards := make([]*shardRows, n)
	for i := range shards {
		sctx, cancel := context.WithCancel(ctx)
		s := &shardRows{
			group:    g,
			ctx:      ctx,
			ctxDone:  ctx.Done(),
			cancel:   cancel,
			slots:    make([][]driver.Value, buffer),
			notEmpty: make(chan struct{}, 1),
			notFull:  make(chan struct{}, 1),
			finished: make(chan struct{}),
		}
		shards[i] = s
		go s.produce(sctx, i, open, started)
	}
	var first error
	for range n {
		if err := <-started; err != nil && first == nil {
			first = err
			for _, s := range shards {
				s.cancel()
			}
		}
	}
	if err := ctx.Err(); err != nil {
		first = err
	}
	if first != nil {
		for _, s := range shards {
			s.cancel()
		}
		for _, s := range shards {
			<-s.finished
		}
		return nil, first
	}
	rows := make([]driver.Rows, n)
	for i, s := range shards {
		rows[i] = s
	}
	return rows, nil
}

// CloseAll closes every rows, cancelling every shard of Parallel first so they
// stop together, and returns the first error.
func CloseAll(rows []driver.Rows) error {
	return closeRemaining(rows, make([]bool, len(rows)))
}

// group is what the shards of one Parallel call share: ready receives a token
// whenever one of them has a row or has finished (Concatenate waits on it).
type group struct {
	ctx   context.Context
	ready chan struct{}
}

// shardRows are one shard's rows, read ahead into a ring of len(slots) rows.
// The producer goroutine owns the source, the slots from tail on and every
// field it writes before closing finished; the consumer (the caller of Next
// and Close) owns the slots before tail from head on. head and tail only grow.
type shardRows struct {
	*columnMeta
	group   *group
	ctx     context.Context // Parallel's: its cancellation is reported by Next
	ctxDone <-chan struct{} // ctx.Done()
	cancel  context.CancelFunc

	slots      [][]driver.Value
	head, tail atomic.Uint64
	notEmpty   chan struct{} // token: tail moved
	notFull    chan struct{} // token: head moved
	finished   chan struct{} // closed when the producer has closed the source

	// set by the producer before finished is closed
	err      error // why reading stopped: io.EOF or an error
	closeErr error // the source's Close

	// consumer's
	h      uint64 // == head
	done   error  // what Next returns from now on
	closed bool
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *shardRows) produce(ctx context.Context, i int, open Opener, started chan<- error) {
	reported := false
	report := func(err error) {
		if !reported {
			reported = true
			started <- err
		}
	}
	defer func() {
		close(s.finished)
		signal(s.group.ready)
	}()
	src, err := open(ctx, i)
	if err == nil && src == nil {
		err = errors.New("merge: Opener returned no rows and no error")
	}
	if err != nil {
		s.err = err
		report(err)
		return
	}
	defer func() { s.closeErr = src.Close() }()
	s.columnMeta = snapshotColumns(src)
	width := len(s.names)
	size := uint64(len(s.slots))
	var tail uint64
	for {
		for tail-s.head.Load() >= size {
			select {
			case <-s.notFull:
			case <-ctx.Done():
				s.err = ctx.Err()
				return
			}
		}
		row := s.slots[tail%size]
		if row == nil {
			row = make([]driver.Value, width)
			s.slots[tail%size] = row
		}
		if err := src.Next(row); err != nil {
			s.err = err
			if err == io.EOF {
				err = nil
			}
			report(err)
			return
		}
		for j, v := range row {
			if b, ok := v.([]byte); ok {
				row[j] = bytes.Clone(b)
			}
		}
		tail++
		s.tail.Store(tail)
		signal(s.notEmpty)
		signal(s.group.ready)
		report(nil)
	}
}

func (s *shardRows) Columns() []string { return s.names }

// Next returns the next buffered row, waiting for the producer if there is
// none yet.
func (s *shardRows) Next(dest []driver.Value) error {
	if s.closed {
		return errClosed
	}
	if s.done != nil {
		return s.done
	}
	select {
	case <-s.ctxDone:
		return s.stop(s.ctx.Err())
	default:
	}
	size := uint64(len(s.slots))
	for {
		if s.h < s.tail.Load() {
			copy(dest, s.slots[s.h%size])
			s.h++
			s.head.Store(s.h)
			signal(s.notFull)
			return nil
		}
		select {
		case <-s.notEmpty:
		case <-s.finished:
			if s.h < s.tail.Load() {
				continue
			}
			return s.stop(s.result())
		case <-s.ctxDone:
			return s.stop(s.ctx.Err())
		}
	}
}

// ready reports whether Next would return without waiting.
func (s *shardRows) ready() bool {
	if s.done != nil || s.closed || s.h < s.tail.Load() {
		return true
	}
	select {
	case <-s.finished:
		return true
	case <-s.ctxDone:
		return true
	default:
		return false
	}
}

// result is what Next reports once every row was read; the producer has
// finished.
func (s *shardRows) result() error {
	if s.err == io.EOF {
		if s.closeErr != nil {
			return s.closeErr
		}
		return io.EOF
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	return s.err
}

func (s *shardRows) stop(err error) error {
	s.done = err
	return err
}

// Close cancels the producer, waits for it to close the source and returns
// the source's Close error if the source had been read to its end (errors
// caused by the cancellation of an unfinished query are not errors of the
// caller's).
func (s *shardRows) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	<-s.finished
	if s.err == io.EOF && s.done == nil {
		return s.closeErr
	}
	return nil
}
