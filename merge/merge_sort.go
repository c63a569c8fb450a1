package merge

import (
	"container/heap"
	"database/sql/driver"
	"fmt"
	"io"
)

// SortKey is one ORDER BY key of the merged rows.
type SortKey struct {
	// Column is the key's index in the rows.
	Column int
	// Desc sorts descending.
	Desc bool
	// NullsFirst puts NULL before every other value (in the output order,
	// whatever Desc). PostgreSQL's default is NULLS LAST for ASC and NULLS
	// FIRST for DESC; the caller sets it.
	NullsFirst bool
	// Compare orders two non-NULL values ascending (negative, 0, positive);
	// see CompareFunc. When nil, values are compared by their Go type.
	Compare func(a, b driver.Value) int
}

// compare orders the key's values of two rows in the output order.
func (k *SortKey) compare(a, b driver.Value) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		if k.NullsFirst {
			return -1
		}
		return 1
	case b == nil:
		if k.NullsFirst {
			return 1
		}
		return -1
	}
	c := k.Compare(a, b)
	if k.Desc {
		return -c
	}
	return c
}

// MergeSort merges sources that are each sorted by keys into rows sorted by
// keys: a k-way merge holding one current row per source in a heap
// (container/heap). Rows that tie on every key come out by source index, then
// in each source's order, as a stable sort of the concatenation would. A
// source is read only when its previous row has been consumed (so []byte
// values a driver reuses stay valid until the caller's next Next) and closed
// as soon as it is exhausted; Close closes all. Columns and column types are
// the first source's; a source whose columns differ from them (count, names,
// types: see Concatenate) fails Next with 42804. With no source, the rows
// are empty.
func MergeSort(sources []driver.Rows, keys []SortKey) driver.Rows {
	m := &mergeSortRows{
		srcs:      sources,
		exhausted: make([]bool, len(sources)),
		refill:    -1,
	}
	m.h.keys = make([]SortKey, len(keys))
	copy(m.h.keys, keys)
	for i := range m.h.keys {
		if m.h.keys[i].Compare == nil {
			m.h.keys[i].Compare = compareAny
		}
	}
	if len(sources) > 0 {
		m.forward = forward{sources[0]}
	}
	return m
}

type mergeSortRows struct {
	forward
	srcs      []driver.Rows
	exhausted []bool // read to the end and closed
	h         mergeHeap
	started   bool
	refill    int   // the source whose row was returned last: read it on the next Next
	closeErr  error // first error closing an exhausted source
	done      error // what Next returns from now on
	closed    bool
}

// mergeHeap holds the indexes of the sources that have a current row, the
// least (in output order, then by index) first.
type mergeHeap struct {
	items []int
	rows  [][]driver.Value // the current row of each source
	keys  []SortKey
}

func (h *mergeHeap) Len() int { return len(h.items) }

func (h *mergeHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	ra, rb := h.rows[a], h.rows[b]
	for k := range h.keys {
		key := &h.keys[k]
		if c := key.compare(ra[key.Column], rb[key.Column]); c != 0 {
			return c < 0
		}
	}
	return a < b
}

func (h *mergeHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *mergeHeap) Push(x any)    { h.items = append(h.items, x.(int)) }
func (h *mergeHeap) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items = h.items[:n]
	return x
}

func (m *mergeSortRows) Columns() []string {
	if len(m.srcs) == 0 {
		return nil
	}
	return m.srcs[0].Columns()
}

func (m *mergeSortRows) Next(dest []driver.Value) error {
	if m.closed {
		return errClosed
	}
	if m.done != nil {
		return m.done
	}
	if !m.started {
		if err := m.start(); err != nil {
			m.done = err
			return err
		}
	} else if i := m.refill; i >= 0 {
		m.refill = -1
		switch err := m.srcs[i].Next(m.h.rows[i]); err {
		case nil:
			heap.Fix(&m.h, 0)
		case io.EOF:
			heap.Pop(&m.h)
			m.exhaust(i)
		default:
			m.done = err
			return err
		}
	}
	if len(m.h.items) == 0 {
		m.done = io.EOF
		if m.closeErr != nil {
			m.done = m.closeErr
		}
		return m.done
	}
	i := m.h.items[0]
	copy(dest, m.h.rows[i])
	m.refill = i
	return nil
}

// start reads the first row of every source and builds the heap.
func (m *mergeSortRows) start() error {
	m.started = true
	if len(m.srcs) == 0 {
		return nil
	}
	width := len(m.srcs[0].Columns())
	for _, k := range m.h.keys {
		if k.Column < 0 || k.Column >= width {
			return fmt.Errorf("merge: sort key column %d out of range [0,%d)", k.Column, width)
		}
	}
	if err := checkSources(m.srcs); err != nil {
		return err
	}
	m.h.rows = make([][]driver.Value, len(m.srcs))
	m.h.items = make([]int, 0, len(m.srcs))
	for i, src := range m.srcs {
		row := make([]driver.Value, width)
		switch err := src.Next(row); err {
		case nil:
			m.h.rows[i] = row
			m.h.items = append(m.h.items, i)
		case io.EOF:
			m.exhaust(i)
		default:
			return err
		}
	}
	heap.Init(&m.h)
	return nil
}

// exhaust closes source i, read to its end.
func (m *mergeSortRows) exhaust(i int) {
	m.exhausted[i] = true
	m.h.rows[i] = nil
	if err := m.srcs[i].Close(); err != nil && m.closeErr == nil {
		m.closeErr = err
	}
}

// Close closes every source not yet exhausted.
func (m *mergeSortRows) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	return closeRemaining(m.srcs, m.exhausted)
}
