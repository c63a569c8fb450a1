package session

import (
	"context"
	"database/sql/driver"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// The single-statement path: a statement of the application goes from
// Exec or Query down to its plan (the Cluster's plan cache, plancache.go,
// or the Session's own for a session that resolves names differently), its
// tree of primitives (planner.Build) run with the Session as the Cursor, or
// the Session's own handling (transaction control, session commands,
// strings of several statements, passthrough to the metadata database).
// Nothing on the way calls back up into the driver.

// Exec runs query, one statement or a string of several, and reports the
// rows it affected. A write outside a transaction that the fence of a
// repair or move refused is run again from its plan (rerunRefused).
func (s *Session) Exec(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Result, error) {
	start := time.Now()
	res, refused, err := s.exec(ctx, query, nargs)
	if refused {
		return rerunRefused(ctx, s, start, err, func() (driver.Result, bool, error) { return s.exec(ctx, query, nargs) })
	}
	return res, err
}

// exec is one run of Exec; refused reports that err is the fence's
// refusal of a statement that may run again (refusedStatement).
func (s *Session) exec(ctx context.Context, query string, nargs []driver.NamedValue) (res driver.Result, refused bool, err error) {
	p, done, err := s.plan(ctx, query)
	if err != nil {
		return nil, false, err
	}
	defer done()
	if err := checkOrdinals(nargs); err != nil {
		return nil, false, err
	}
	if p.Statements != nil {
		res, err := s.ExecStatements(ctx, p.Statements, nargs)
		return res, false, err
	}
	if p.Tx != nil {
		res, err := s.TxCommand(ctx, p, query, nargs)
		return res, false, err
	}
	prim := planner.Build(p)
	if prim != nil {
		autocommit := s.tx == nil
		res, err := prim.Exec(ctx, s, nargs)
		return res, err != nil && refusedStatement(p, autocommit, err), err
	}
	if p.Session != nil {
		defer s.NoteSessionEffect(p)
		if p.Session.SetTransaction {
			res, err := s.SetTransaction(ctx, p.Session, query, nargs)
			return res, false, err
		}
	}
	res, err = s.PassthroughExec(ctx, query, nargs)
	if s.StaleTemplateWrite(ctx, p, err) {
		return s.exec(ctx, query, nargs)
	}
	return res, false, err
}

// Query runs query, one statement or a string of several, and returns its
// rows. A write's rows (RETURNING) are read whole before it returns, so
// that a write outside a transaction the fence of a repair or move refused
// has returned no row yet and is run again from its plan (rerunRefused).
func (s *Session) Query(ctx context.Context, query string, nargs []driver.NamedValue) (driver.Rows, error) {
	start := time.Now()
	rows, refused, err := s.query(ctx, query, nargs)
	if refused {
		return rerunRefused(ctx, s, start, err, func() (driver.Rows, bool, error) { return s.query(ctx, query, nargs) })
	}
	return rows, err
}

// query is one run of Query; refused reports that err is the fence's
// refusal of a statement that may run again (refusedStatement).
func (s *Session) query(ctx context.Context, query string, nargs []driver.NamedValue) (rows driver.Rows, refused bool, err error) {
	p, done, err := s.plan(ctx, query)
	if err != nil {
		return nil, false, err
	}
	defer done()
	if err := checkOrdinals(nargs); err != nil {
		return nil, false, err
	}
	if p.Statements != nil {
		rows, err := s.QueryStatements(ctx, p.Statements, nargs)
		return rows, false, err
	}
	if p.Tx != nil {
		if _, err := s.TxCommand(ctx, p, query, nargs); err != nil {
			return nil, false, err
		}
		return &engine.Buffered{}, false, nil
	}
	prim := planner.Build(p)
	if prim != nil {
		autocommit := s.tx == nil
		rows, err := prim.Query(ctx, s, nargs)
		return rows, err != nil && refusedStatement(p, autocommit, err), err
	}
	if p.Session != nil {
		// Read whole: the session's state is read again before the next
		// statement, on the same connection.
		defer s.NoteSessionEffect(p)
		if p.Session.SetTransaction {
			_, err := s.SetTransaction(ctx, p.Session, query, nargs)
			return &engine.Buffered{}, false, err
		}
		rows, err := s.PassthroughQuery(ctx, query, nargs)
		if err != nil {
			return nil, false, err
		}
		b, err := engine.ReadAll(rows)
		if err != nil {
			return nil, false, err
		}
		return b, false, nil
	}
	rows, err = s.PassthroughQuery(ctx, query, nargs)
	if s.StaleTemplateWrite(ctx, p, err) {
		return s.query(ctx, query, nargs)
	}
	return rows, false, err
}

// Prepare plans query for a prepared statement, refusing what pgshard
// cannot run and strings of several statements; it contacts no server
// unless the catalog must be brought up to date (Sync). copyFrom reports a
// COPY ... FROM STDIN on a distributed table, whose Execs take its rows
// (StartCopyFrom).
func (s *Session) Prepare(ctx context.Context, query string) (copyFrom bool, err error) {
	if err := s.Sync(ctx); err != nil {
		return false, err
	}
	p, err := s.PlanFor(ctx, query)
	if err != nil {
		return false, err
	}
	if p.Statements != nil {
		return false, MultiPrepareError()
	}
	return p.Copy != nil && p.Copy.From, nil
}

// StartCopyFrom plans query, a COPY ... FROM STDIN on a distributed table,
// as a write and starts it in the open transaction for owner, the prepared
// statement whose Execs send its rows (StartCopy, CopyRow, FinishCopy).
func (s *Session) StartCopyFrom(ctx context.Context, owner any, query string) error {
	p, done, err := s.plan(ctx, query)
	if err != nil {
		return err
	}
	if p.Copy == nil || !p.Copy.From {
		done()
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "the table of %q is no longer distributed", query)
	}
	w, err := copyFrom(p).Start(ctx, s)
	if err != nil {
		done()
		return s.TxFailed(err)
	}
	s.StartCopy(owner, w, done)
	return nil
}

// CopyFromSource runs query, a COPY ... FROM STDIN on a distributed table,
// with the rows of src in a transaction of its own, and commits it
// (pgshard.CopyFrom); it returns the rows copied. On error the transaction
// is rolled back. The write ends after the commit.
func (s *Session) CopyFromSource(ctx context.Context, query string, src pgx.CopyFromSource) (n int64, err error) {
	tx, err := s.Begin(driver.TxOptions{})
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			// The COPY's error is the one to report; a failed rollback
			// leaves the connection to be discarded as usual.
			_ = tx.Rollback()
		}
	}()
	p, done, err := s.plan(ctx, query)
	if err != nil {
		return 0, err
	}
	defer done()
	if p.Copy == nil || !p.Copy.From {
		return 0, sqlerr.New(sqlerr.UndefinedTable, "pgshard.CopyFrom: %s is not a distributed table", query)
	}
	w, err := copyFrom(p).Start(ctx, s)
	if err != nil {
		return 0, s.TxFailed(err)
	}
	for src.Next() {
		vals, err := src.Values()
		if err == nil {
			err = w.Values(ctx, vals)
		}
		if err != nil {
			w.Abort()
			return 0, s.TxFailed(err)
		}
	}
	if err := src.Err(); err != nil {
		w.Abort()
		return 0, s.TxFailed(err)
	}
	if n, err = w.Finish(ctx); err != nil {
		return 0, s.TxFailed(err)
	}
	return n, tx.Commit()
}

// plan returns the statement's plan; for a write to distributed tables it
// also starts the write (see Cluster.BeginWrite) and returns the func that
// ends it, which the caller defers. A write planned against an older
// catalog than the one it starts with is planned again.
func (s *Session) plan(ctx context.Context, query string) (*planner.Plan, func(), error) {
	if err := s.CopyBusy(); err != nil {
		return nil, nil, err
	}
	s.lease = catalog.WriteLease{} // until this statement begins a write
	if err := s.Sync(ctx); err != nil {
		return nil, nil, err
	}
	p, err := s.PlanFor(ctx, query)
	if err != nil || !p.Modifies || (p.Kind != planner.Router && p.Kind != planner.Scatter) {
		return p, noop, err
	}
	snap, lease, done, err := s.c.BeginWrite(ctx)
	if err != nil {
		return nil, nil, err
	}
	s.Writing(snap)
	s.lease = lease
	if p.Version != snap.Version {
		if p, err = s.planWith(ctx, query, snap); err != nil {
			done()
			return nil, nil, err
		}
	}
	return p, done, nil
}

// noop is the end of a statement that started no write.
func noop() {}

// PlanFor returns the plan of query for this Session against the current
// catalog: from the Cluster's plan cache when the session resolves names
// as the pool does, else from the session's own (Plan).
func (s *Session) PlanFor(ctx context.Context, query string) (*planner.Plan, error) {
	if !s.OwnNames() {
		return s.c.planFor(ctx, query)
	}
	return s.Plan(ctx, query, s.c.Snapshot())
}

// planWith is PlanFor against snap.
func (s *Session) planWith(ctx context.Context, query string, snap *catalog.Snapshot) (*planner.Plan, error) {
	if !s.OwnNames() {
		return s.c.planWith(ctx, query, snap)
	}
	return s.Plan(ctx, query, snap)
}

// planFor returns the plan of sql against the current catalog, from the plan
// cache when it is still current.
//
// A plan the cached catalog cannot make (SQLSTATE 55000: a distributed
// table without shards, say, which another process may have created a
// moment ago) is not refused on the cache's word alone: the catalog's
// version is confirmed first (one metadata round trip, on this error path
// only), and the statement planned again when it changed.
func (c *Cluster) planFor(ctx context.Context, sql string) (*planner.Plan, error) {
	snap := c.Snapshot()
	p, err := c.planWith(ctx, sql, snap)
	if err == nil && p.SchemaCheck {
		// A schema change the catalog says concerns no distributed table
		// with shards: confirmed before it runs on the metadata database
		// alone.
		if fresh, rerr := c.Refresh(ctx); rerr == nil && fresh.Version != snap.Version {
			return c.planWith(ctx, sql, fresh)
		}
		return p, nil
	}
	if err == nil || sqlerr.Code(err) != sqlerr.ObjectNotInPrereq {
		return p, err
	}
	if fresh, rerr := c.Refresh(ctx); rerr == nil && fresh.Version != snap.Version {
		return c.planWith(ctx, sql, fresh)
	}
	return p, err
}

// planWith returns the plan of sql against snap, through the plan cache.
func (c *Cluster) planWith(ctx context.Context, sql string, snap *catalog.Snapshot) (*planner.Plan, error) {
	if p := c.plans.get(sql); p != nil && p.Version == snap.Version {
		return p, nil
	}
	p, err := planner.New(sql, snap, c.PlannerEnv(ctx))
	if err != nil {
		return nil, err
	}
	c.plans.put(sql, p)
	return p, nil
}

// checkOrdinals refuses named arguments: PostgreSQL has only $n.
func checkOrdinals(nargs []driver.NamedValue) error {
	for _, a := range nargs {
		if a.Name != "" {
			return sqlerr.Unsupported("named arguments are not supported (sql.Named(%q, ...)); use $n parameters", a.Name)
		}
	}
	return nil
}
