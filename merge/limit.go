package merge

import (
	"database/sql/driver"
	"io"
)

// Limit skips offset rows of src and then yields at most count rows (count < 0:
// no limit). It closes src as soon as it has yielded count rows, so the shard
// queries under it stop early rather than when the caller closes the rows; an
// error from that Close is returned by the Next that would have returned
// io.EOF. Columns and column types are src's.
func Limit(src driver.Rows, offset, count int64) driver.Rows {
	return &limitRows{forward: forward{src}, src: src, offset: max(offset, 0), count: count}
}

type limitRows struct {
	forward
	src       driver.Rows
	offset    int64 // rows still to skip
	count     int64 // rows still to yield; < 0: no limit
	srcClosed bool
	done      error // what Next returns from now on
	closed    bool
}

func (l *limitRows) Columns() []string { return l.src.Columns() }

func (l *limitRows) Next(dest []driver.Value) error {
	if l.closed {
		return errClosed
	}
	if l.done != nil {
		return l.done
	}
	if l.count == 0 {
		return l.end()
	}
	for ; l.offset > 0; l.offset-- {
		if err := l.src.Next(dest); err != nil {
			l.done = err
			return err
		}
	}
	if err := l.src.Next(dest); err != nil {
		l.done = err
		return err
	}
	if l.count > 0 {
		l.count--
		if l.count == 0 {
			l.closeSource()
		}
	}
	return nil
}

// end closes src, if not yet, and stops.
func (l *limitRows) end() error {
	l.done = io.EOF
	if err := l.closeSource(); err != nil {
		l.done = err
	}
	return l.done
}

func (l *limitRows) closeSource() error {
	if l.srcClosed {
		return nil
	}
	l.srcClosed = true
	err := l.src.Close()
	if err != nil {
		l.done = err
	}
	return err
}

func (l *limitRows) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	if l.srcClosed {
		return nil
	}
	l.srcClosed = true
	return l.src.Close()
}
