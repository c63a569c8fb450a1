package merge

import "database/sql/driver"

// Project exposes only the first n columns of src: the hidden sort columns
// pushed to the shards are dropped. With n at least src's width, it returns
// src itself. Column types are src's.
func Project(src driver.Rows, n int) driver.Rows {
	names := src.Columns()
	if n >= len(names) {
		return src
	}
	n = max(n, 0)
	return &projectRows{forward: forward{src}, src: src, names: names[:n:n], row: make([]driver.Value, len(names))}
}

type projectRows struct {
	forward
	src   driver.Rows
	names []string
	row   []driver.Value // a whole row of src
}

func (p *projectRows) Columns() []string { return p.names }

func (p *projectRows) Next(dest []driver.Value) error {
	if err := p.src.Next(p.row); err != nil {
		return err
	}
	copy(dest, p.row[:len(p.names)])
	return nil
}

func (p *projectRows) Close() error { return p.src.Close() }
