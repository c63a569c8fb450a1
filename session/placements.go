package session

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/plan"
	"github.com/pgshard/pgshard/txn"
)

// markTimeout bounds marking a placement inactive, which must finish even
// when the statement's own context has ended.
const markTimeout = 30 * time.Second

// bindArgs runs the plan's Eval step, if any, and returns the statement's
// arguments with the computed values appended. Eval runs in this
// connection's own metadata session (joined to the transaction when it is),
// so that it sees the session's settings (TimeZone, DateStyle, search_path),
// temporary objects and sequence state (currval after a default's nextval).
// Shard key values whose text the session's settings decide (key arguments
// given as text, key values Eval returned as text) are then read by the
// session as their key's type (evalKeyTexts) and passed on typed; plans
// without Eval or such keys cost nothing here.
func (s *Session) bindArgs(ctx context.Context, x plan.Targeted, nargs []driver.NamedValue) ([]any, []driver.NamedValue, error) {
	p := x.ShardTarget()
	args := plainArgs(nargs)
	if p.Eval == nil && p.SettingKeyParams == nil {
		return args, nargs, nil
	}
	var keys []keyText
	for _, kp := range p.SettingKeyParams {
		if kt, ok := settingKeyText(args, kp.Param-1, kp.Type); ok {
			keys = append(keys, kt)
		}
	}
	if p.Eval == nil && keys == nil {
		return args, nargs, nil
	}
	out := make([]driver.NamedValue, len(nargs), len(nargs)+evalCount(p))
	copy(out, nargs)
	if p.Eval != nil {
		if want := p.Eval.First - 1; len(args) != want {
			return nil, nil, sqlerr.New(sqlerr.ProtocolViolation, "bind message supplies %d parameters, but prepared statement requires %d", len(args), want)
		}
		values, err := s.evaluate(ctx, p.Eval, args)
		if err != nil {
			return nil, nil, err
		}
		for i, v := range values {
			args = append(args, v)
			out = append(out, driver.NamedValue{Ordinal: len(nargs) + i + 1, Value: v})
			if p.Eval.KeyTypes != nil && p.Eval.KeyTypes[i] != 0 {
				if kt, ok := settingKeyText(args, len(args)-1, p.Eval.KeyTypes[i]); ok {
					keys = append(keys, kt)
				}
			}
		}
	}
	if keys != nil {
		if err := s.evalKeyTexts(ctx, keys, args, out); err != nil {
			return nil, nil, err
		}
	}
	return args, out, nil
}

// atomically runs f as one atomic statement that writes on nodes: inside
// the caller's transaction, or an implicit one that f's writes join and
// that commits (with two-phase commit when they reached several servers)
// when f succeeds, and rolls back when it fails. The transaction joins
// every node of nodes before f runs (transaction.acquire), so that f never
// waits for a connection while holding another; a node f reaches that is
// not in nodes joins as in any transaction.
func (s *Session) atomically(ctx context.Context, nodes []catalog.Node, f func() error) error {
	if s.tx != nil {
		if !s.tx.readOnly {
			if err := s.tx.acquire(ctx, nodes); err != nil {
				return s.txFailed(noBadConn(err))
			}
		}
		return f()
	}
	s.tx = &transaction{s: s, begin: "BEGIN", statement: true}
	err := s.tx.acquire(ctx, nodes)
	if err != nil {
		err = noBadConn(err)
	} else {
		err = f()
	}
	if err != nil {
		if s.tx != nil {
			s.tx.rollback(context.WithoutCancel(ctx))
		}
		return err
	}
	return s.tx.Commit()
}

// workerConn returns a connection to node for one statement and the func
// that gives it back: from the Cluster's pool, or the transaction's own
// connection to that node (joined to the transaction on first use).
func (s *Session) workerConn(ctx context.Context, node catalog.Node, write bool) (*stdlib.Conn, func(), error) {
	if s.tx != nil {
		dc, err := s.tx.participant(ctx, node, write)
		return dc, func() {}, err
	}
	np, err := s.c.node(node)
	if err != nil {
		return nil, nil, err
	}
	dc, err := np.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	release, err := s.sessionConn(ctx, dc, func() { np.put(dc) })
	return dc, release, err
}

// readConn returns a connection for a read of plan p on node and the func
// that gives it back. It is workerConn's, except for a pure read (no row
// locks, no effect: plan.Target.PureRead) in a READ COMMITTED transaction
// that has not joined node: that read runs outside the transaction, on a
// pooled connection with the session's settings, and reads the same
// committed rows a statement of the transaction would (each statement of
// READ COMMITTED reads what is committed when it starts, and the node
// holds none of the transaction's writes), without the BEGIN and COMMIT
// joining the node would cost. A transaction holding worker connections
// never waits in a pool (see transaction): when none is free at once, the
// node joins the transaction as before.
func (s *Session) readConn(ctx context.Context, x plan.Targeted, node catalog.Node) (*stdlib.Conn, func(), error) {
	p := x.ShardTarget()
	t := s.tx
	if t == nil || !p.PureRead || !t.readsOutside() || t.has(node) {
		return s.workerConn(ctx, node, false)
	}
	if err := t.usable(); err != nil {
		return nil, nil, err
	}
	np, err := s.c.node(node)
	if err != nil {
		return nil, nil, err
	}
	var dc *stdlib.Conn
	if len(t.participants) == 0 && t.unreserve == nil {
		dc, err = np.get(ctx)
	} else {
		dc, err = np.tryGet(ctx)
	}
	if err != nil {
		return nil, nil, err
	}
	if dc == nil {
		return s.workerConn(ctx, node, false)
	}
	release, err := s.sessionConn(ctx, dc, func() { np.put(dc) })
	return dc, release, err
}

// readPlacements lists the placements a read of shard index idx of plan p
// may run on: the finalized placements of p.Table's shard on nodes where
// every other table the statement references has a finalized placement of
// its co-located shard too (the statement reads them on that node). In a
// transaction, a placement the transaction already uses comes first, so the
// transaction reads its own writes.
func (s *Session) readPlacements(x plan.Targeted, idx int) []catalog.Placement {
	p := x.ShardTarget()
	var ps []catalog.Placement
	if tables := p.Tables; len(tables) > 1 {
		ps = catalog.ColocatedPlacements(tables, idx)
	} else {
		ps = p.Table.Shards[idx].Finalized()
	}
	if s.tx == nil {
		if p.Table.Reference() {
			return spreadReferenceReads(ps)
		}
		return ps
	}
	ps = append([]catalog.Placement(nil), ps...) // the snapshot's own slice is shared
	for i, pl := range ps {
		if s.tx.has(pl.Node) {
			ps[0], ps[i] = ps[i], ps[0]
			break
		}
	}
	return ps
}

// readShard runs a read of plan p on shard index idx: on the first of
// readPlacements that answers; it fails over to the next when one cannot be
// reached, and marks nothing.
func (s *Session) readShard(ctx context.Context, x plan.Targeted, idx int, sql string, nargs []driver.NamedValue) (driver.Rows, error) {
	p := x.ShardTarget()
	var lastErr error
	placements := s.readPlacements(p, idx)
	for _, pl := range placements {
		var rows driver.Rows
		err := s.retryStale(ctx, pl.Node, func() error {
			dc, release, err := s.readConn(ctx, p, pl.Node)
			if err != nil {
				return err
			}
			if rows, err = dc.QueryContext(ctx, sql, nargs); err != nil {
				release()
				return err
			}
			rows = &placementRows{rows: rows, release: release, node: pl.Node}
			return nil
		})
		if err == nil {
			return rows, nil
		}
		if !s.failoverAllowed(ctx, pl.Node, err) {
			return nil, s.txFailed(noBadConn(err))
		}
		lastErr = err
	}
	if len(placements) == 0 {
		return nil, noReadPlacement(p, idx)
	}
	return nil, unreachable(&p.Table.Shards[idx], lastErr)
}

// noReadPlacement is the error of a read of shard index idx that has no
// placement to run on.
func noReadPlacement(x plan.Targeted, idx int) error {
	p := x.ShardTarget()
	tables := p.Tables
	if len(tables) <= 1 {
		return unreachable(&p.Table.Shards[idx], nil)
	}
	return sqlerr.New(sqlerr.ObjectNotInPrereq, "no node holds a finalized placement of every co-located shard the statement reads (%s); repair the inactive ones with master_copy_shard_placement", colocatedShards(tables, idx))
}

// colocatedShards names shard index idx of each table: "a shard 10000, b
// shard 10002".
func colocatedShards(tables []*catalog.Table, idx int) string {
	var b strings.Builder
	for i, t := range tables {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s shard %d", t.Name, t.ShardAt(idx).ID)
	}
	return b.String()
}

// checkColocatedWrite refuses a write of plan p to the given placements of
// shard index idx (of p.Table) when the statement references other co-located
// tables (UPDATE ... FROM, DELETE ... USING, subqueries, CTEs) and would not
// run correctly on each of those nodes: every table it reads must have a
// finalized placement of its co-located shard on each node written, and the
// table it writes, when it is not p.Table, a writable placement on each node
// written and none elsewhere.
func checkColocatedWrite(x plan.Targeted, idx int, placements []catalog.Placement) error {
	p := x.ShardTarget()
	tables := p.Tables
	if len(tables) <= 1 {
		return nil
	}
	target := p.Written
	for _, u := range tables {
		us := u.ShardAt(idx)
		if u == target {
			if u == p.Table {
				continue // placements are its writable ones
			}
			for _, pl := range placements {
				if !slices.ContainsFunc(us.Writable(), func(w catalog.Placement) bool { return w.Node == pl.Node }) {
					return colocatedWriteError(p, idx, u, pl.Node)
				}
			}
			for _, w := range us.Writable() {
				if !slices.ContainsFunc(placements, func(pl catalog.Placement) bool { return pl.Node == w.Node }) {
					return sqlerr.New(sqlerr.ObjectNotInPrereq, "cannot run the write on co-located shards %s: it writes \"%s\", which has a placement on %s where the statement cannot run; repair the inactive placements with master_copy_shard_placement (or wait for a move to finish)", colocatedShards(tables, idx), u.Name, w.Node)
				}
			}
			continue
		}
		for _, pl := range placements {
			if !us.FinalizedOn(pl.Node) {
				return colocatedWriteError(p, idx, u, pl.Node)
			}
		}
	}
	return nil
}

func colocatedWriteError(x plan.Targeted, idx int, u *catalog.Table, node catalog.Node) error {
	p := x.ShardTarget()
	what := "reads \"%s\", whose placement of co-located shard %d there is not finalized"
	if u == p.Written {
		what = "writes \"%s\", which has no writable placement of co-located shard %d there"
	}
	return sqlerr.New(sqlerr.ObjectNotInPrereq, "cannot run the write on %s: the statement "+what+"; repair it with master_copy_shard_placement (or wait for a move to finish)", node, u.Name, u.ShardAt(idx).ID)
}

// failoverAllowed reports whether a read that failed on node may go on to
// another placement: the node could not be reached or has no connection
// to spare (placementBusy), and (in a transaction) the node holds none of
// the transaction's work.
func (s *Session) failoverAllowed(ctx context.Context, node catalog.Node, err error) bool {
	if !placementFailed(ctx, err) && !placementBusy(ctx, err) {
		return false
	}
	if s.tx != nil && s.tx.has(node) {
		return false
	}
	return true
}

func (s *Session) txFailed(err error) error {
	if s.tx != nil && err != nil {
		s.tx.failed = true
		if !s.tx.statement {
			rerunTransaction(err)
		}
	}
	return err
}

func unreachable(shard *catalog.Shard, lastErr error) error {
	if lastErr == nil {
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "shard %d has no finalized placement; repair one with master_copy_shard_placement", shard.ID)
	}
	return sqlerr.New(sqlerr.ConnectionFailure, "could not reach any finalized placement of shard %d: %v", shard.ID, lastErr)
}

// writeShard runs a modification on every finalized placement of shard.
// Outside a transaction, a placement that cannot be reached, or fails after
// another took the write, is marked inactive; the statement succeeds when any
// placement took it and fails, marking nothing, when none did. Inside a
// transaction any failure fails the statement (the transaction rolls back,
// so nothing diverges). With wantRows the first placement's RETURNING rows
// are returned, read in full before the other placements are written.
func (s *Session) writeShard(ctx context.Context, x plan.Targeted, shard *catalog.Shard, sql string, nargs []driver.NamedValue, wantRows bool) (driver.Result, driver.Rows, error) {
	p := x.ShardTarget()
	placements := shard.Writable()
	if len(placements) == 0 {
		return nil, nil, unreachable(shard, nil)
	}
	var locks []string
	if len(p.Tables) > 1 || p.ReadsOtherRows {
		idx := p.Table.ShardForHash(shard.Min)
		if idx < 0 || p.Table.Shards[idx].ID != shard.ID {
			return nil, nil, sqlerr.New(sqlerr.InternalError, "shard %d is not a shard of \"%s\"", shard.ID, p.Table.Name)
		}
		if err := checkColocatedWrite(p, idx, placements); err != nil {
			return nil, nil, err
		}
		if len(placements) > 1 {
			locks = replicaReadLocks(p, idx)
		}
	}
	if s.tx != nil {
		if s.tx.readOnly {
			return nil, nil, sqlerr.New("25006", "cannot execute %s in a read-only transaction", "a modification")
		}
		var res driver.Result
		var rows driver.Rows
		for i, pl := range placements {
			for _, lock := range locks {
				if _, _, err := s.writePlacement(ctx, pl, lock, nil, false, true); err != nil {
					return nil, nil, s.txFailed(noBadConn(err))
				}
			}
			r, b, err := s.writePlacement(ctx, pl, sql, nargs, wantRows && i == 0, true)
			if err != nil {
				return nil, nil, s.txFailed(noBadConn(err))
			}
			s.tx.wrotePlacement(pl)
			if i == 0 {
				res, rows = r, b
			}
		}
		return res, rows, nil
	}

	if len(placements) == 1 {
		res, rows, err := s.writePlacement(ctx, placements[0], sql, nargs, wantRows, true)
		if err != nil && staleShape(err) {
			// Nothing was written: PostgreSQL refused the statement.
			err = s.againWhileStale(err, func() (err error) {
				res, rows, err = s.writePlacement(ctx, placements[0], sql, nargs, wantRows, true)
				return err
			})
		}
		if err != nil {
			if placementFailed(ctx, err) {
				return nil, nil, unreachable(shard, err)
			}
			return nil, nil, noBadConn(err)
		}
		return res, rows, nil
	}
	res, rows, err := s.writeReplicated(ctx, shard, placements, locks, sql, nargs, wantRows)
	if err != nil && staleShape(err) {
		// writeReplicated committed nothing and marked nothing: it returns
		// a statement PostgreSQL refused before either.
		err = s.againWhileStale(err, func() (err error) {
			res, rows, err = s.writeReplicated(ctx, shard, placements, locks, sql, nargs, wantRows)
			return err
		})
	}
	return res, rows, err
}

// replicaReadLocks returns the LOCK TABLE statements each placement of a
// replicated write must run before the statement when the statement reads
// rows besides those it writes (plan.Target.ReadsOtherRows): the shard
// tables it references on that node, in SHARE mode (SHARE ROW EXCLUSIVE for
// the one it writes, which also conflicts with itself), in name order.
//
// Without them the replicas could read different states: a writer of those
// rows commits its placements one after another (two-phase commit commits
// the prepared ones after the coordinator), so a replica may read its
// committed rows while another still reads the old ones. The locks wait for
// such writers to end on that node — a prepared transaction keeps its locks
// until COMMIT PREPARED — and keep new ones out until the write commits.
func replicaReadLocks(x plan.Targeted, idx int) []string {
	p := x.ShardTarget()
	if !p.ReadsOtherRows {
		return nil
	}
	var locks []string
	for _, t := range p.Tables {
		mode := "SHARE"
		if t == p.Written {
			mode = "SHARE ROW EXCLUSIVE"
		}
		name := pgx.Identifier{t.Schema, t.ShardTableName(t.ShardAt(idx).ID)}.Sanitize()
		locks = append(locks, "LOCK TABLE "+name+" IN "+mode+" MODE")
	}
	slices.Sort(locks)
	return locks
}

// writeReplicated writes to every finalized placement of a shard so that no
// instant of failure can leave two finalized placements different: each
// placement runs the statement in a transaction (one after the other, in
// placement order, so that writers of one row queue on the first placement
// instead of deadlocking across servers); placements that cannot be reached
// are marked inactive before anything commits; the rest commit atomically
// (commitAtomic). When PostgreSQL rejects the statement on a placement,
// nothing commits and the error is returned. locks run first on each
// placement (replicaReadLocks).
//
// Every placement's connection is taken before the statement runs on any,
// under one fanoutGate reservation of them all: a write holding one node's
// connection never waits for another's that a writer doing the reverse
// holds.
func (s *Session) writeReplicated(ctx context.Context, shard *catalog.Shard, placements []catalog.Placement, locks []string, sql string, nargs []driver.NamedValue, wantRows bool) (driver.Result, driver.Rows, error) {
	need := make(map[catalog.Node]int, len(placements))
	for _, pl := range placements {
		need[pl.Node]++
	}
	unreserve, err := s.c.fanout.reserve(ctx, need)
	if err != nil {
		return nil, nil, err
	}
	defer unreserve()
	// held are the connections taken, each in an open transaction until it
	// commits; on return they are rolled back when still open and released
	// (before the reservation).
	var held []*participant
	defer func() {
		abortAll(context.WithoutCancel(ctx), held)
		for _, p := range held {
			p.release()
		}
	}()
	var failed []catalog.Placement
	var lastErr error
	parts := make([]*participant, len(placements)) // nil: not reached
	for i, pl := range placements {
		np, err := s.c.node(pl.Node)
		if err != nil {
			return nil, nil, err
		}
		err = s.retryStale(ctx, pl.Node, func() error {
			dc, err := np.get(ctx)
			if err != nil {
				return err
			}
			release, err := s.sessionConn(ctx, dc, func() { np.put(dc) })
			if err != nil {
				return err
			}
			if _, err := dc.Conn().Exec(ctx, catalog.ReplicaBegin(placements, s.writeVersion)); err != nil {
				release()
				return err
			}
			parts[i] = &participant{node: pl.Node, conn: dc, release: release, wrote: true}
			held = append(held, parts[i])
			return nil
		})
		if err != nil {
			if !placementFailed(ctx, err) {
				return nil, nil, noBadConn(err)
			}
			failed, lastErr = append(failed, pl), err
		}
	}
	var ok []*participant
	var res driver.Result
	var rows driver.Rows
	for i, pl := range placements {
		part := parts[i]
		if part == nil {
			continue
		}
		var r driver.Result
		var b driver.Rows
		// The connections are taken: the write is sent now, if its lease
		// still holds (sendable); else nothing commits (abortAll above).
		if err := s.sendable(); err != nil {
			return nil, nil, err
		}
		var err error
		for _, lock := range locks {
			if _, _, err = runStatement(ctx, part, lock, nil, false); err != nil {
				break
			}
		}
		if err == nil {
			r, b, err = runStatement(ctx, part, sql, nargs, wantRows && res == nil)
		}
		if err != nil {
			abortAll(context.WithoutCancel(ctx), []*participant{part})
			// A placement being filled must not fail the write: it is marked
			// inactive instead, and its repair or move will not finish.
			if !placementFailed(ctx, err) && pl.State != catalog.StateFilling {
				return nil, nil, noBadConn(err)
			}
			failed, lastErr = append(failed, pl), err
			continue
		}
		if res == nil {
			res, rows = r, b
		}
		part.placements = []catalog.Placement{pl}
		ok = append(ok, part)
		txn.Step(txn.StepAfterPlacementWrite)
	}
	finalized := 0
	for _, p := range ok {
		for _, pl := range placements {
			if pl.Node == p.node && pl.State == catalog.StateFinalized {
				finalized++
			}
		}
	}
	if finalized == 0 {
		// Only placements still being filled took the write: they lack
		// older rows, so the write must not be acknowledged on them alone.
		return nil, nil, unreachable(shard, lastErr)
	}
	if len(failed) > 0 {
		if err := s.c.markInactive(ctx, failed); err != nil {
			return nil, nil, err
		}
		txn.Step(txn.StepAfterMarking)
	}
	if len(ok) == 1 {
		if _, err := ok[0].conn.Conn().Exec(ctx, "COMMIT"); err != nil {
			return nil, nil, noBadConn(err)
		}
		return res, rows, nil
	}
	if err := s.c.commitAtomic(ctx, ok); err != nil {
		return nil, nil, err
	}
	return res, rows, nil
}

// retryStale runs attempt, and once more when it failed to reach the node
// outside a transaction: the first failure may only mean that the pooled
// connections died with a restart the pool has not noticed, so they are
// flushed first. When it failed on a prepared statement that predates a
// schema change outside a transaction's connections, it runs again
// (againWhileStale). attempt must be safe to repeat (nothing done when it
// fails on the connection).
func (s *Session) retryStale(ctx context.Context, node catalog.Node, attempt func() error) error {
	err := attempt()
	if err != nil && (s.tx == nil || !s.tx.has(node)) && staleShape(err) {
		// The worker connection's prepared statement predates a schema
		// change (pgx has dropped it from its cache): prepared again. In
		// a transaction that has not joined node the attempt ran outside
		// it (readConn), and failed without touching it.
		return s.againWhileStale(err, attempt)
	}
	var connectErr *pgconn.ConnectError
	if err == nil || s.tx != nil || !placementFailed(ctx, err) || errors.As(err, &connectErr) {
		// A failed connect is the node's answer, not a stale connection's.
		return err
	}
	np, nerr := s.c.node(node)
	if nerr != nil {
		return err
	}
	np.flush()
	return attempt()
}

// againWhileStale runs attempt again, after it failed with err, for as
// long as it fails on a prepared statement that predates a schema change
// (staleShape), at most once per connection of a node's pool: each such
// failure makes pgx drop the statement from that connection's cache, but
// the next attempt may take another connection that holds it too.
// attempt must be safe to repeat after such a failure (nothing done).
func (s *Session) againWhileStale(err error, attempt func() error) error {
	for range s.c.fanout.capacity + 1 {
		if err = attempt(); err == nil || !staleShape(err) {
			break
		}
	}
	return err
}

// runStatement runs the statement in a participant's open transaction;
// with wantRows it reads the rows whole.
func runStatement(ctx context.Context, p *participant, sql string, nargs []driver.NamedValue, wantRows bool) (driver.Result, driver.Rows, error) {
	if wantRows {
		r, err := p.conn.QueryContext(ctx, sql, nargs)
		if err != nil {
			return nil, nil, err
		}
		b, err := engine.ReadAll(r)
		if err != nil {
			return nil, nil, err
		}
		return engine.Result{Rows: int64(len(b.Data))}, b, nil
	}
	r, err := p.conn.ExecContext(ctx, sql, nargs)
	return r, nil, err
}

// writePlacement runs sql on one placement; with wantRows it reads the
// rows whole. With leased, sql belongs to the statement's write and is sent
// only while its lease holds (sendable), checked once the connection is
// taken.
func (s *Session) writePlacement(ctx context.Context, pl catalog.Placement, sql string, nargs []driver.NamedValue, wantRows, leased bool) (driver.Result, driver.Rows, error) {
	res, rows, err := s.writePlacementOnce(ctx, pl, sql, nargs, wantRows, leased)
	if err != nil && s.tx == nil && errors.Is(err, driver.ErrBadConn) {
		// pgx sent nothing (a dead pooled connection): flush the node's
		// connections and try once more.
		if np, nerr := s.c.node(pl.Node); nerr == nil {
			np.flush()
			return s.writePlacementOnce(ctx, pl, sql, nargs, wantRows, leased)
		}
	}
	return res, rows, err
}

func (s *Session) writePlacementOnce(ctx context.Context, pl catalog.Placement, sql string, nargs []driver.NamedValue, wantRows, leased bool) (driver.Result, driver.Rows, error) {
	dc, release, err := s.workerConn(ctx, pl.Node, true)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	if leased {
		if err := s.sendable(); err != nil {
			return nil, nil, err
		}
	}
	if wantRows {
		rows, err := dc.QueryContext(ctx, sql, nargs)
		if err != nil {
			return nil, nil, err
		}
		b, err := engine.ReadAll(rows)
		if err != nil {
			return nil, nil, err
		}
		return engine.Result{Rows: int64(len(b.Data))}, b, nil
	}
	res, err := dc.ExecContext(ctx, sql, nargs)
	if err != nil {
		return nil, nil, err
	}
	return res, nil, nil
}

// markInactive sets placements that missed a write to inactive and reloads
// the catalog, before the write is acknowledged. When that fails the write
// is reported as failed: a placement that missed it must not stay finalized
// unnoticed.
func (c *Cluster) markInactive(ctx context.Context, placements []catalog.Placement) error {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	for _, pl := range placements {
		if err := catalog.MarkInactive(mctx, c.meta, pl.ID); err != nil {
			return fmt.Errorf("pgshard: placement %d of shard %d on %s missed a write, and marking it inactive failed: %w", pl.ID, pl.ShardID, pl.Node, err)
		}
	}
	return c.refresh(mctx)
}

// abortAll rolls back the open transactions of participants.
func abortAll(ctx context.Context, ps []*participant) {
	for _, p := range ps {
		if !p.conn.Conn().IsClosed() && p.conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = p.conn.Conn().Exec(ctx, "ROLLBACK")
		}
	}
}

// statementsVersion is the key, in a worker connection's
// pgconn.PgConn.CustomData, of the catalog version its prepared
// statements are known to be no older than (an int64).
const statementsVersion = "pgshard.statementsVersion"

// markStatements records that pc's prepared statements (none, when it has
// just connected) are no older than catalog version v.
func markStatements(pc *pgconn.PgConn, v int64) { pc.CustomData()[statementsVersion] = v }

// freshStatements forgets pc's prepared statements (pgx's statement and
// description caches, and the server's) when the catalog's version moved
// on since they were known current: a schema change, from this process or
// another, may have changed their result columns. It runs before a
// connection joins a transaction, where PostgreSQL's "cached plan must not
// change result type" would abort the transaction and retryStale cannot run
// the statement again. Outside a transaction that error is cheaper to meet
// and retry (retryStale) than to prevent, so only joins pay for the check:
// a map lookup next to the BEGIN round trip, and one DEALLOCATE ALL round
// trip per connection after a version change. A schema change through
// pgshard is acknowledged by every live process before it returns
// (catalog.WaitForAcks), so the catalog here knows of it by then.
func (c *Cluster) freshStatements(ctx context.Context, pc *pgx.Conn) error {
	v := c.cache.Snapshot().Version
	data := pc.PgConn().CustomData()
	if known, ok := data[statementsVersion].(int64); ok && known >= v {
		return nil
	}
	if err := pc.DeallocateAll(ctx); err != nil {
		return err
	}
	data[statementsVersion] = v
	return nil
}
