package session

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
)

// Session is the node side of one database/sql connection: it owns, lazily,
// a session on the metadata database (for ordinary tables, SET, temporary
// tables: everything that is not distributed) and, during a transaction,
// one connection per worker node it touched (the transaction's
// participants), and it knows what the session changed (its settings,
// names). Statements on distributed tables outside a transaction borrow
// worker connections from the Cluster's pools for the duration of the
// statement. It is the engine's Cursor (cursor.go).
//
// Like its database/sql connection, a Session is used by one goroutine at a
// time, except where a method says otherwise.
type Session struct {
	c       *Cluster
	session *stdlib.Conn
	tx      *transaction
	bad     bool
	// sess is what the session changed (settings, names); see settings.go.
	sess sessionState
	// copying is the COPY FROM STDIN open in the transaction, if any
	// (copycursor.go).
	copying *copyIn
	// writeVersion is the version the BEGINs on workers carry for the last
	// write planned here (catalog.Snapshot.FenceVersion, FencedBegin).
	writeVersion int64
	// lease is the lease of the write the current statement runs (zero
	// when it runs none): checked before each of its sends to a worker
	// (sendable, lease.go).
	lease catalog.WriteLease
}

// Writing records that the statement about to run writes with snap: the
// BEGINs it sends to workers carry snap's fence version (catalog/fence.go).
func (s *Session) Writing(snap *catalog.Snapshot) { s.writeVersion = snap.FenceVersion() }

// New returns a Session of c, for one database/sql connection. It does
// not connect.
func New(c *Cluster) *Session {
	return &Session{c: c}
}

// metaSession returns this connection's session on the metadata database,
// opening it on first use.
func (s *Session) metaSession(ctx context.Context) (*stdlib.Conn, error) {
	if s.session != nil {
		return s.session, nil
	}
	dc, err := stdlib.GetConnector(s.c.metaSessionConfig()).Connect(ctx)
	if err != nil {
		return nil, err
	}
	session := dc.(*stdlib.Conn)
	engine.AcceptBinaryArrays(session.Conn().TypeMap())
	if !s.c.live.add(session.Conn().PgConn()) {
		session.Close()
		return nil, errors.New("pgshard: connector is closed")
	}
	s.session = session
	return s.session, nil
}

// Close rolls back the open transaction, if any, and closes the metadata
// session.
func (s *Session) Close() error {
	var err error
	if s.tx != nil {
		err = s.tx.rollback(context.Background())
	}
	if s.session != nil {
		s.c.live.remove(s.session.Conn().PgConn())
		if cerr := s.session.Close(); err == nil {
			err = cerr
		}
		s.session = nil
	}
	return err
}

// Bad reports whether the session cannot go on (its settings or temporary
// objects were lost, or a transaction lost its metadata session): the
// database/sql connection must be discarded.
func (s *Session) Bad() bool { return s.bad }

// ResetSession resets the metadata session before database/sql reuses the
// connection.
func (s *Session) ResetSession(ctx context.Context) error {
	if s.session != nil {
		return s.session.ResetSession(ctx)
	}
	return nil
}

// PassthroughExec runs a statement that touches no distributed table on
// the metadata database, in this connection's session.
func (s *Session) PassthroughExec(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Result, error) {
	ms, err := s.passthroughSession(ctx)
	if err != nil {
		return nil, err
	}
	res, err := ms.ExecContext(ctx, query, nargs)
	if errors.Is(err, driver.ErrBadConn) && s.tx == nil {
		s.dropSession()
	}
	return res, s.sessionErr(err)
}

// PassthroughQuery is PassthroughExec returning the statement's rows.
func (s *Session) PassthroughQuery(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Rows, error) {
	ms, err := s.passthroughSession(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := ms.QueryContext(ctx, query, nargs)
	if errors.Is(err, driver.ErrBadConn) && s.tx == nil {
		s.dropSession()
	}
	return rows, s.sessionErr(err)
}

// passthroughSession is the metadata session, joined to the transaction
// when one is open.
func (s *Session) passthroughSession(ctx context.Context) (*stdlib.Conn, error) {
	if s.tx != nil {
		return s.tx.metaParticipant(ctx)
	}
	return s.metaSession(ctx)
}

func (s *Session) dropSession() {
	if s.session != nil {
		s.c.live.remove(s.session.Conn().PgConn())
		s.session.Close()
		s.session = nil
		if s.sess.stale || s.sess.applySQL != "" || s.sess.path != nil {
			// The session's settings and temporary tables are gone with
			// it: the session must not go on without them.
			s.bad = true
		}
	}
}

// sessionErr passes errors of the metadata session through. ErrBadConn
// (the statement was not sent) stays ErrBadConn outside a transaction, so
// database/sql retries on a fresh connection exactly as with pgx; inside a
// transaction the connection is marked bad instead.
func (s *Session) sessionErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, driver.ErrBadConn) && s.tx != nil {
		s.bad = true
		return noBadConn(err)
	}
	if s.tx != nil {
		// As in PostgreSQL, an error ends the transaction's use: the
		// metadata session's part of it is aborted.
		s.tx.failed = true
	}
	return err
}

// namedArgs turns driver arguments into the ordinal values pgx takes.
func plainArgs(nargs []driver.NamedValue) []any {
	args := make([]any, len(nargs))
	for i, a := range nargs {
		args[i] = a.Value
	}
	return args
}

// StaleTemplateWrite reports whether a statement that ran on the metadata
// database failed on a distributed table's template guard because this
// process's catalog did not know the table was distributed yet (another
// process distributed it a moment ago), and the catalog now does: the
// statement changed nothing and can be planned again. p is the plan it
// ran by, made against an older catalog version when that is so. Inside a transaction
// the error has aborted it, so it is returned as it is.
func (s *Session) StaleTemplateWrite(ctx context.Context, p *planner.Plan, err error) bool {
	if s.tx != nil || !catalog.IsTemplateWriteError(err) {
		return false
	}
	fresh, rerr := s.c.cache.Refresh(ctx, false)
	return rerr == nil && fresh.Version != p.Version
}
