package merge

import (
	"database/sql/driver"
	"io"
)

// Concatenate yields every source's rows, in no particular order across
// sources: when every source is a shard of the same Parallel call, it takes
// rows from whichever shard has rows ready first (staying with one shard while
// it has rows), so a slow shard does not hold up the others; otherwise it
// reads the sources one after the other. Each source is closed as soon as it
// is exhausted; Close closes all. Columns and column types are the first
// source's: before the first row, every source's column count, names and
// types are checked against them (RowDescription.Mismatch), and a source that
// differs fails Next with 42804 rather than give rows under the wrong
// columns.
func Concatenate(sources []driver.Rows) driver.Rows {
	c := &concatenateRows{srcs: sources, exhausted: make([]bool, len(sources)), live: len(sources)}
	if len(sources) > 0 {
		c.forward = forward{sources[0]}
	}
	for i, src := range sources {
		s, ok := src.(*shardRows)
		if !ok || (i > 0 && s.group != c.group) {
			c.group = nil
			break
		}
		c.group = s.group
	}
	return c
}

type concatenateRows struct {
	forward
	srcs      []driver.Rows
	exhausted []bool // read to the end and closed
	live      int    // sources not exhausted
	cur       int    // the source read last
	group     *group // non-nil: every source is a shard of this Parallel call
	closeErr  error  // first error closing an exhausted source
	done      error  // what Next returns from now on
	checked   bool   // the sources' columns were checked
	closed    bool
}

func (c *concatenateRows) Columns() []string {
	if len(c.srcs) == 0 {
		return nil
	}
	return c.srcs[0].Columns()
}

func (c *concatenateRows) Next(dest []driver.Value) error {
	if c.closed {
		return errClosed
	}
	if c.done != nil {
		return c.done
	}
	if !c.checked {
		c.checked = true
		if err := checkSources(c.srcs); err != nil {
			c.done = err
			return err
		}
	}
	for c.live > 0 {
		i := c.pick()
		if i < 0 {
			select {
			case <-c.group.ready:
			case <-c.group.ctx.Done():
				c.done = c.group.ctx.Err()
				return c.done
			}
			continue
		}
		c.cur = i
		err := c.srcs[i].Next(dest)
		if err == nil {
			return nil
		}
		if err != io.EOF {
			c.done = err
			return err
		}
		c.exhausted[i] = true
		c.live--
		if err := c.srcs[i].Close(); err != nil && c.closeErr == nil {
			c.closeErr = err
		}
	}
	// Errors closing exhausted sources are reported in place of the end, since
	// database/sql drops the error of the Close that follows it.
	c.done = io.EOF
	if c.closeErr != nil {
		c.done = c.closeErr
	}
	return c.done
}

// pick returns the source to read next: with shards, the current one if it
// has rows ready, else the first ready one after it, or -1 when none is ready;
// without, the first unexhausted one.
func (c *concatenateRows) pick() int {
	n := len(c.srcs)
	for k := range n {
		i := (c.cur + k) % n
		if c.exhausted[i] {
			continue
		}
		if c.group == nil || c.srcs[i].(*shardRows).ready() {
			return i
		}
	}
	return -1
}

// Close closes every source not yet exhausted.
func (c *concatenateRows) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	return closeRemaining(c.srcs, c.exhausted)
}

// closeRemaining closes srcs[i] for every i not done, cancelling the shards
// of Parallel among them first so that they stop together.
func closeRemaining(srcs []driver.Rows, done []bool) error {
	for i, src := range srcs {
		if s, ok := src.(*shardRows); ok && !done[i] && !s.closed {
			s.cancel()
		}
	}
	var first error
	for i, src := range srcs {
		if done[i] || src == nil {
			continue
		}
		done[i] = true
		if err := src.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
