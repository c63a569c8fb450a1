package session

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgshard/pgshard/engine"
)

// liveConns is the set of open server connections of a Cluster: Close
// ends those still in use, which a transaction left open would otherwise
// hold forever. Safe for concurrent use.
type liveConns struct {
	mu     sync.Mutex
	closed bool
	conns  map[*pgconn.PgConn]struct{}
}

// add records an open connection; it returns false, recording nothing,
// once closeAll has run (the caller closes the connection).
func (l *liveConns) add(pc *pgconn.PgConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if l.conns == nil {
		l.conns = map[*pgconn.PgConn]struct{}{}
	}
	l.conns[pc] = struct{}{}
	return true
}

// remove forgets a connection being closed.
func (l *liveConns) remove(pc *pgconn.PgConn) {
	l.mu.Lock()
	delete(l.conns, pc)
	l.mu.Unlock()
}

// closeAll closes the network connection of every recorded server
// connection, and refuses new ones. Whatever a connection's session had
// open is rolled back by its server when the socket closes; its holder
// gets an error at its next use. Closing a net.Conn is safe while another
// goroutine uses it.
func (l *liveConns) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for pc := range l.conns {
		_ = pc.Conn().Close()
	}
	l.conns = nil
}

// track makes cfg's pool record its connections in l (keeping the hooks
// cfg already has).
func (l *liveConns) track(cfg *pgxpool.Config) {
	afterConnect, beforeClose := cfg.AfterConnect, cfg.BeforeClose
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if afterConnect != nil {
			if err := afterConnect(ctx, conn); err != nil {
				return err
			}
		}
		if !l.add(conn.PgConn()) {
			return errors.New("pgshard: connector is closed")
		}
		engine.AcceptBinaryArrays(conn.TypeMap())
		return nil
	}
	cfg.BeforeClose = func(conn *pgx.Conn) {
		l.remove(conn.PgConn())
		if beforeClose != nil {
			beforeClose(conn)
		}
	}
}
