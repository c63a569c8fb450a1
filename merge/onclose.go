package merge

import "database/sql/driver"

// OnClose returns rows that are src and call fn once, after closing src,
// the first time they are closed: to give back what a merged read holds
// (reserved connections, say). Column types are src's.
func OnClose(src driver.Rows, fn func()) driver.Rows {
	return &onCloseRows{forward: forward{src}, src: src, fn: fn}
}

type onCloseRows struct {
	forward
	src    driver.Rows
	fn     func()
	closed bool
}

var _ columnTyper = (*onCloseRows)(nil)

func (r *onCloseRows) Columns() []string { return r.src.Columns() }

func (r *onCloseRows) Next(dest []driver.Value) error { return r.src.Next(dest) }

func (r *onCloseRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.src.Close()
	r.fn()
	return err
}
