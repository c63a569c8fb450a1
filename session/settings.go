package session

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// sessionState is what a Session has changed from a fresh
// connection's defaults: its settings, its search_path and temporary
// relations (how names resolve), as its metadata session reports them.
//
// The metadata session is authoritative: SET, RESET, set_config and the rest
// run there first, so PostgreSQL validates them, canonicalizes their values
// and scopes them (SET LOCAL ends with the transaction, a rolled-back
// transaction or savepoint undoes its SETs). After such a statement, and
// after a transaction that ran one ends, the state is marked stale and read
// again (refreshSession) before the Session's next statement. Every worker
// connection a statement of the session takes from a pool gets the settings
// first (one round trip) and is reset (RESET ALL) before it goes back, so
// pooled connections never carry one session's settings into another's
// statements. A session that never changed anything pays nothing: applySQL
// is empty and names resolve with the shared snapshot and plan cache.
//
// Like its Session, a sessionState is used by one goroutine at a time.
type sessionState struct {
	// stale is set when the metadata session's state may have changed
	// since it was last read.
	stale bool
	// txTouched is set when a statement of the open transaction changed the
	// session's state: the transaction's end (which may undo it) makes it
	// stale.
	txTouched bool
	// gen counts the reads of the state; a transaction's worker connection
	// whose settings were applied at an older gen is brought up to date
	// before its next statement.
	gen uint64
	// settings are the session's own settings (pg_settings.source =
	// 'session', and the custom settings it named), by name.
	settings []setting
	// applySQL and applyArgs set settings on a worker connection; "" when
	// there are none.
	applySQL  string
	applyArgs []any
	// custom lists the custom (placeholder) settings the session named.
	custom []string
	// path is the session's current_schemas(true) when it resolves names
	// differently from the pool (its own search_path, or temporary
	// relations); nil otherwise.
	path []string
	temp map[string]bool
	// view is the catalog snapshot viewBase seen through path, and plans
	// the plans made against it (the shared plan cache holds plans for the
	// pool's search_path only).
	view, viewBase *catalog.Snapshot
	plans          map[string]*planner.Plan
}

// setting is one session setting as current_setting shows it.
type setting struct {
	name, value string
}

// sessionPlanCacheSize bounds a session's own plan cache.
const sessionPlanCacheSize = 256

// sessionResetTimeout bounds resetting a worker connection's settings before
// it goes back to its pool.
const sessionResetTimeout = 10 * time.Second

// NoteSessionEffect records that a statement with plan p ran in the
// session (successfully or not): the session's state is read again before
// the next statement when the statement may have changed it.
func (s *Session) NoteSessionEffect(p *planner.Plan) {
	sc := p.Session
	if sc == nil {
		return
	}
	if sc.Effect == planner.SessionDDL && len(s.sess.temp) == 0 {
		return
	}
	for _, name := range sc.Custom {
		if !slices.Contains(s.sess.custom, name) {
			s.sess.custom = append(s.sess.custom, name)
		}
	}
	s.sess.stale = true
	if s.tx != nil {
		s.sess.txTouched = true
	}
}

// endTxSession is called when the Session's transaction ends (or rolls back to
// a savepoint): the settings it changed may be undone.
func (s *Session) endTxSession(ended bool) {
	if s.sess.txTouched {
		s.sess.stale = true
		if ended {
			s.sess.txTouched = false
		}
	}
}

// Sync reads the session's state again when it is stale. In a
// transaction the metadata session has aborted, the state cannot be read;
// it stays stale until the transaction (or a savepoint) is rolled back.
func (s *Session) Sync(ctx context.Context) error {
	if !s.sess.stale {
		return nil
	}
	if s.session == nil {
		s.sess = sessionState{custom: s.sess.custom, gen: s.sess.gen + 1}
		return nil
	}
	if s.tx != nil && (s.tx.failed || s.session.Conn().PgConn().TxStatus() == 'E') {
		return nil
	}
	return s.refreshSession(ctx)
}

// sessionQuery reads a session's state on its metadata session.
const sessionQuery = `
	SELECT coalesce(array_agg(s.name::text ORDER BY s.name), '{}'),
	       coalesce(array_agg(current_setting(s.name) ORDER BY s.name), '{}'),
	       ARRAY(SELECT current_setting(c.name, true) FROM unnest($1::text[]) WITH ORDINALITY c(name, i) ORDER BY c.i),
	       (SELECT coalesce(current_setting('search_path') <> reset_val, false) FROM pg_settings WHERE name = 'search_path'),
	       current_schemas(true)::text[],
	       ARRAY(SELECT relname::text FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
	       current_setting('transaction_isolation'), current_setting('transaction_read_only'),
	       current_setting('transaction_deferrable')
	FROM pg_settings s WHERE s.source = 'session'`

// transactionSettings are the settings of the transaction itself; they
// reach the workers through the BEGIN each one joins with.
var transactionSettings = []string{"transaction_isolation", "transaction_read_only", "transaction_deferrable"}

// refreshSession reads the session's state from its metadata session.
func (s *Session) refreshSession(ctx context.Context) error {
	ss := &s.sess
	var names, values, path, temp []string
	var custom []*string
	var ownPath bool
	var isolation, readOnly, deferrable string
	err := s.session.Conn().QueryRow(ctx, sessionQuery, ss.custom).Scan(&names, &values, &custom, &ownPath, &path, &temp, &isolation, &readOnly, &deferrable)
	if err != nil {
		return fmt.Errorf("pgshard: reading the session's settings: %w", err)
	}
	settings := make([]setting, 0, len(names)+len(custom))
	for i, name := range names {
		if slices.Contains(transactionSettings, name) {
			continue
		}
		if why := planner.RefusedSetting(name); why != "" {
			// Set where pgshard could not see it (a function, a DO block):
			// the session cannot go on with it.
			s.bad = true
			return sqlerr.Unsupported("setting \"%s\" was changed in the session (by a function or DO block), which pgshard does not support: %s; the connection is closed", name, why)
		}
		settings = append(settings, setting{name, values[i]})
	}
	for i, name := range ss.custom {
		if i < len(custom) && custom[i] != nil { // nil: no such placeholder
			settings = append(settings, setting{name, *custom[i]})
		}
	}
	slices.SortFunc(settings, func(a, b setting) int { return strings.Compare(a.name, b.name) })
	ss.settings = settings
	ss.applySQL, ss.applyArgs = "", nil
	if len(settings) > 0 {
		var b strings.Builder
		b.WriteString("SELECT ")
		for i, st := range settings {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "set_config($%d, $%d, false)", 2*i+1, 2*i+2)
			ss.applyArgs = append(ss.applyArgs, st.name, st.value)
		}
		ss.applySQL = b.String()
	}
	tempSet := map[string]bool{}
	for _, t := range temp {
		tempSet[t] = true
	}
	if ownPath || len(tempSet) > 0 {
		if !slices.Equal(path, ss.path) || !mapsEqual(tempSet, ss.temp) {
			ss.view, ss.viewBase, ss.plans = nil, nil, nil
		}
		ss.path, ss.temp = path, tempSet
	} else {
		ss.path, ss.temp, ss.view, ss.viewBase, ss.plans = nil, nil, nil, nil, nil
	}
	if t := s.tx; t != nil && t.meta != nil {
		// The metadata session is in the transaction: servers joining from
		// now on begin with its modes, whatever SET TRANSACTION or
		// default_transaction_* changed.
		begin, err := beginWithModes(isolation, readOnly == "on", deferrable == "on")
		if err != nil {
			return err
		}
		t.begin, t.readOnly = begin, readOnly == "on"
	}
	ss.gen++
	ss.stale = false
	return nil
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// beginWithModes is the BEGIN of a transaction with these modes, as
// current_setting shows them.
func beginWithModes(isolation string, readOnly, deferrable bool) (string, error) {
	var b strings.Builder
	b.WriteString("BEGIN ISOLATION LEVEL ")
	switch isolation {
	case "serializable", "repeatable read", "read committed", "read uncommitted":
		b.WriteString(strings.ToUpper(isolation))
	default:
		return "", sqlerr.New(sqlerr.InternalError, "unknown transaction isolation %q", isolation)
	}
	if readOnly {
		b.WriteString(" READ ONLY")
	} else {
		b.WriteString(" READ WRITE")
	}
	if deferrable {
		b.WriteString(" DEFERRABLE")
	}
	return b.String(), nil
}

// sessionConn makes dc, a worker connection just taken from its pool for a
// statement of this session, carry the session's settings, and returns the
// func that gives it back: put, after resetting the settings. Without
// settings it returns put itself and sends nothing.
func (s *Session) sessionConn(ctx context.Context, dc *stdlib.Conn, put func()) (func(), error) {
	if s.sess.applySQL == "" {
		return put, nil
	}
	return s.applySession(ctx, dc, put)
}

func (s *Session) applySession(ctx context.Context, dc *stdlib.Conn, put func()) (func(), error) {
	if _, err := dc.Conn().Exec(ctx, s.sess.applySQL, s.sess.applyArgs...); err != nil {
		put()
		return nil, fmt.Errorf("pgshard: applying the session's settings on a worker: %w", err)
	}
	return resettingPut(dc, put), nil
}

// resettingPut returns put preceded by resetting dc's settings to the
// connection's defaults; a connection that cannot be reset is closed.
func resettingPut(dc *stdlib.Conn, put func()) func() {
	return func() {
		pc := dc.Conn()
		if !pc.IsClosed() && !pc.PgConn().IsBusy() && pc.PgConn().TxStatus() == 'I' {
			ctx, cancel := context.WithTimeout(context.Background(), sessionResetTimeout)
			if _, err := pc.Exec(ctx, "RESET ALL"); err != nil {
				pc.Close(ctx)
			}
			cancel()
		}
		// A connection in any other state is closed by put: it never goes
		// back to the pool with the session's settings.
		put()
	}
}

// syncParticipant brings the settings of a transaction's worker connection
// up to date with the session when they changed since it joined (a SET in
// the transaction, or a rollback to a savepoint that undid one): RESET ALL
// and the session's settings, in one round trip, inside the transaction.
func (s *Session) syncParticipant(ctx context.Context, p *participant) error {
	if p.gen == s.sess.gen || p.node == (catalog.Node{}) {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue("RESET ALL")
	if s.sess.applySQL != "" {
		b.Queue(s.sess.applySQL, s.sess.applyArgs...)
	}
	if err := p.conn.Conn().SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("pgshard: applying the session's settings on a worker: %w", err)
	}
	if !p.resets {
		p.release = resettingPut(p.conn, p.release)
		p.resets = true
	}
	p.gen = s.sess.gen
	return nil
}

// SetTransaction runs SET TRANSACTION on every server of the transaction:
// the metadata session (which decides the modes of servers joining later,
// see refreshSession) and each worker already in it.
//
// SET CONSTRAINTS is also kept for the servers that join later (see
// transaction.join).
func (s *Session) SetTransaction(ctx context.Context, sc *planner.SessionCommand, query string, nargs []driver.NamedValue) (driver.Result, error) {
	res, err := s.PassthroughExec(ctx, query, nargs)
	if err != nil || s.tx == nil {
		return res, err
	}
	if len(nargs) > 0 {
		s.tx.failed = true
		return nil, sqlerr.New(sqlerr.ProtocolViolation, "%s takes no parameters", query)
	}
	for _, p := range s.tx.participants {
		if _, err := p.conn.Conn().Exec(ctx, query); err != nil {
			s.tx.failed = true
			return nil, err
		}
	}
	if sc.Constraints {
		s.tx.replay = append(s.tx.replay, query)
	}
	return res, nil
}

// OwnNames reports whether the session resolves names differently from
// the pool (its own search_path, or temporary relations): its statements
// are then planned against the catalog seen through its search_path, by
// Plan, instead of through the driver's shared plan cache.
func (s *Session) OwnNames() bool { return s.sess.path != nil }

// Plan returns the plan of query against snap seen through the session's
// search_path (OwnNames), from the session's own plan cache.
func (s *Session) Plan(ctx context.Context, query string, snap *catalog.Snapshot) (*planner.Plan, error) {
	ss := &s.sess
	if ss.viewBase != snap {
		ss.view, ss.viewBase, ss.plans = snap.WithSearchPath(ss.path, ss.temp), snap, nil
	}
	if p := ss.plans[query]; p != nil && p.Version == snap.Version {
		return p, nil
	}
	meta, err := s.metaSession(ctx)
	if err != nil {
		return nil, err
	}
	p, err := planner.New(query, ss.view, funcEnv{ctx: ctx, cache: &s.c.funcs, session: meta.Conn()})
	if err != nil {
		return nil, err
	}
	if ss.plans == nil || len(ss.plans) >= sessionPlanCacheSize {
		ss.plans = map[string]*planner.Plan{}
	}
	ss.plans[query] = p
	return p, nil
}

// metaQuery runs a query on the metadata database for a statement of this
// session: on the shared pool when the session changed nothing, else in
// the session itself, whose settings and names the query must see.
func (s *Session) metaQuery(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if s.sess.applySQL == "" && s.sess.path == nil {
		return s.c.meta.Query(ctx, sql, args...)
	}
	ms, err := s.metaSession(ctx)
	if err != nil {
		return nil, err
	}
	return ms.Conn().Query(ctx, sql, args...)
}

// metaConn is metaQuery's connection: one of the pool's, or the session's
// own; done gives it back.
func (s *Session) metaConn(ctx context.Context) (*pgx.Conn, func(), error) {
	if s.sess.applySQL == "" && s.sess.path == nil {
		c, err := s.c.meta.Acquire(ctx)
		if err != nil {
			return nil, nil, err
		}
		return c.Conn(), c.Release, nil
	}
	ms, err := s.metaSession(ctx)
	if err != nil {
		return nil, nil, err
	}
	return ms.Conn(), func() {}, nil
}
