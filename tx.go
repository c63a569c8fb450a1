package pgshard

import "database/sql/driver"

// tx is a database/sql transaction: the Session's (session.Session.Begin),
// which spans every server a statement of it reaches and commits with
// two-phase commit when several of them wrote.
type tx struct{ t driver.Tx }

var _ driver.Tx = (*tx)(nil)

// Commit commits on every server of the transaction.
func (x *tx) Commit() error { return x.t.Commit() }

// Rollback rolls back on every server of the transaction.
func (x *tx) Rollback() error { return x.t.Rollback() }
