package pgshard

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"
)

// DriverName is the name pgshard registers with database/sql.
const DriverName = "pgshard"

func init() {
	sql.Register(DriverName, &Driver{})
}

// Driver is pgshard's database/sql driver. sql.Open uses OpenConnector, so
// each *sql.DB gets one Connector with its own pools and metadata cache.
type Driver struct {
	mu sync.Mutex
	// connectors serves the legacy Open path: one Connector per DSN.
	connectors map[string]*Connector
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.DriverContext = (*Driver)(nil)
)

// Open opens a connection through a Connector shared by every Open with the
// same DSN. database/sql calls OpenConnector instead; Open is for callers
// that use the driver directly.
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	d.mu.Lock()
	c, ok := d.connectors[dsn]
	if !ok {
		var err error
		c, err = NewConnector(dsn)
		if err != nil {
			d.mu.Unlock()
			return nil, err
		}
		if d.connectors == nil {
			d.connectors = map[string]*Connector{}
		}
		d.connectors[dsn] = c
	}
	d.mu.Unlock()
	return c.Connect(context.Background())
}

// OpenConnector parses dsn and returns a new Connector.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	return NewConnector(dsn)
}
