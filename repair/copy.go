package repair

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// NodeConnector opens a connection to a worker node; the caller closes it.
type NodeConnector = catalog.NodeConnector

// CopyShardPlacement repairs the inactive placement of shardID on target from
// the finalized one on source (pg_shard's master_copy_shard_placement).
//
// It fails, changing nothing, with SQLSTATE 22023 and pg_shard's words when
// either node has no placement of the shard (`could not find placement
// matching "host:port"`, the source checked first), when the source placement
// is not finalized or when the target placement is not inactive. Then, in one
// transaction on the target, it drops the shard table, recreates it from the
// template table's definition and fills it with a binary COPY streamed from
// the source, and commits; only then does it mark the target placement
// finalized in the metadata database. On any failure the target placement
// stays inactive.
//
// The placement's state change bumps the metadata version (the metadata
// tables' trigger), so every process sees the repaired placement.
func CopyShardPlacement(ctx context.Context, meta catalog.Querier, connect NodeConnector, shardID int64, source, target catalog.Node) error {
	var relid uint32
	err := meta.QueryRow(ctx, `SELECT relation_id FROM pgs_distribution_metadata.shard WHERE id = $1`, shardID).Scan(&relid)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlerr.New(sqlerr.UndefinedObject, "shard with ID %d does not exist", shardID)
	}
	if err != nil {
		return fmt.Errorf("repair: reading shard %d: %w", shardID, err)
	}
	src, tgt, err := checkPlacements(ctx, meta, shardID, source, target)
	if err != nil {
		return err
	}
	ddl, err := catalog.ReadTemplateDDL(ctx, meta, relid)
	if err != nil {
		return fmt.Errorf("repair: reading definition of shard %d's table: %w", shardID, err)
	}
	if err := catalog.CheckShardTableFree(ctx, meta, target, ddl, shardID); err != nil {
		return err
	}
	// The foreign keys between the shard and its co-located shards on
	// target (foreignkeys.go); refused when a shard it references is not
	// finalized there.
	fks, err := repairForeignKeys(ctx, meta, ddl, shardID, target)
	if err != nil {
		return err
	}
	// From here on the target receives every write (state filling), and
	// the copy starts only once every process writes with that.
	if err := catalog.EnsureFenceRecords(ctx, meta); err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	if err := ensureShardTable(ctx, connect, target, ddl, shardID); err != nil {
		return err
	}
	if err := setState(ctx, meta, tgt.ID, catalog.StateInactive, catalog.StateFilling); err != nil {
		return fmt.Errorf("repair: shard %d: %w", shardID, err)
	}
	revert := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = setState(rctx, meta, tgt.ID, catalog.StateFilling, catalog.StateInactive)
	}
	if err := waitForWriters(ctx, meta); err != nil {
		revert()
		return err
	}
	// Writes planned before the target was filling are refused on the
	// source from here on (fence.go), until the target is finalized.
	fences, err := fenceSources(ctx, meta, connect, source, []fenced{{ddl, shardID}})
	if err != nil {
		revert()
		return err
	}
	// Dropped once the target is finalized or back to inactive; when the
	// source cannot be reached then, by the resolver later.
	defer unfence(ctx, meta, connect, fences[0])
	if err := copyShard(ctx, connect, ddl, shardID, source, target, fks); err != nil {
		revert()
		return err
	}

	// The source must still be finalized: had a write failed on it meanwhile,
	// the copy could lack that write. The target must still be filling: had a
	// write failed on it, it would lack that write.
	tag, err := meta.Exec(ctx, `
		UPDATE pgs_distribution_metadata.shard_placement SET shard_state = $1
		WHERE id = $2 AND shard_state = $3
		  AND EXISTS (SELECT FROM pgs_distribution_metadata.shard_placement WHERE id = $4 AND shard_state = $1)`,
		int32(catalog.StateFinalized), tgt.ID, int32(catalog.StateFilling), src.ID)
	if err != nil {
		revert()
		return fmt.Errorf("repair: marking placement %d of shard %d finalized: %w", tgt.ID, shardID, err)
	}
	if tag.RowsAffected() != 1 {
		revert()
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "placements of shard %d changed during the repair (a write failed on the source or the target); run the repair again", shardID)
	}
	return nil
}

// ensureShardTable creates the shard table on node when it is missing, so
// that writes sent to a filling placement find it (the copy replaces it).
func ensureShardTable(ctx context.Context, connect NodeConnector, node catalog.Node, ddl *catalog.TemplateDDL, shardID int64) error {
	conn, err := connect(ctx, node)
	if err != nil {
		return fmt.Errorf("repair: connecting to target node %s: %w", node, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, ddl.ShardTableIdentifier(shardID)).Scan(&exists); err != nil {
		return fmt.Errorf("repair: on target node %s: %w", node, err)
	}
	if exists {
		return nil
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, s := range ddl.ShardStatements(shardID) {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("repair: creating shard table on target node %s: %w", node, err)
			}
		}
		return nil
	})
}

// setState changes a placement's state from one value to another; it fails
// when the placement is not in the from state.
func setState(ctx context.Context, meta catalog.Querier, placementID int64, from, to catalog.ShardState) error {
	tag, err := meta.Exec(ctx, `UPDATE pgs_distribution_metadata.shard_placement SET shard_state = $1 WHERE id = $2 AND shard_state = $3`,
		int32(to), placementID, int32(from))
	if err != nil {
		return fmt.Errorf("setting placement %d to state %d: %w", placementID, to, err)
	}
	if tag.RowsAffected() != 1 {
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "placement %d is no longer in state %d", placementID, from)
	}
	return nil
}

// waitForWriters waits until every process writes with the current
// metadata (catalog.WaitForAcks), at most a lease and a little more.
func waitForWriters(ctx context.Context, meta catalog.Querier) error {
	v, err := catalog.CurrentVersion(ctx, meta)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 3*catalog.LeaseDuration)
	defer cancel()
	return catalog.WaitForAcks(wctx, meta, v)
}

// checkPlacements finds the source and target placements of shardID and checks
// their states, in pg_shard's order and with its errors.
func checkPlacements(ctx context.Context, meta catalog.Querier, shardID int64, source, target catalog.Node) (src, tgt catalog.Placement, err error) {
	placements, err := readPlacements(ctx, meta, shardID)
	if err != nil {
		return src, tgt, err
	}
	src, err = findPlacement(placements, source)
	if err != nil {
		return src, tgt, err
	}
	if src.State != catalog.StateFinalized {
		return src, tgt, sqlerr.New(sqlerr.InvalidParameterValue, "source placement must be in finalized state")
	}
	tgt, err = findPlacement(placements, target)
	if err != nil {
		return src, tgt, err
	}
	if tgt.State != catalog.StateInactive {
		return src, tgt, sqlerr.New(sqlerr.InvalidParameterValue, "target placement must be in inactive state")
	}
	return src, tgt, nil
}

func findPlacement(placements []catalog.Placement, node catalog.Node) (catalog.Placement, error) {
	for _, p := range placements {
		if p.Node == node {
			return p, nil
		}
	}
	e := sqlerr.New(sqlerr.InvalidParameterValue, "could not find placement matching \"%s:%d\"", node.Name, node.Port)
	e.Hint = "Confirm the placement still exists and try again."
	return catalog.Placement{}, e
}

// copyShard rebuilds shard shardID's table on target and fills it from source,
// in one transaction on target, which also runs fks: fks.lock, then (after
// locking the table) fks.drop before the table is dropped, fks.add once it
// holds its rows and indexes.
func copyShard(ctx context.Context, connect NodeConnector, ddl *catalog.TemplateDDL, shardID int64, source, target catalog.Node, fks shardForeignKeys) error {
	srcConn, err := connect(ctx, source)
	if err != nil {
		return fmt.Errorf("repair: connecting to source node %s: %w", source, err)
	}
	defer srcConn.Close(ctx)
	tgtConn, err := connect(ctx, target)
	if err != nil {
		return fmt.Errorf("repair: connecting to target node %s: %w", target, err)
	}
	defer tgtConn.Close(ctx)

	table := ddl.ShardTableIdentifier(shardID)
	// Every write already on the source ends before the copy (lockers.go).
	if err := waitForLockers(ctx, srcConn, table, false); err != nil {
		return onSource(source, err)
	}
	tgtTx, err := tgtConn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("repair: beginning transaction on target node %s: %w", target, err)
	}
	defer tgtTx.Rollback(ctx)
	// A lock held for long on the target (a prepared transaction nobody
	// finishes) fails the repair instead of hanging it, and the writes
	// queued behind it.
	stmts := append([]string{"SET LOCAL lock_timeout = '10s'"}, fks.lock...)
	if len(fks.lock) > 0 || len(fks.drop) > 0 {
		// The shards it references (fks.lock), the table, then the
		// co-located tables referencing it (fks.drop locks them): the
		// order of a writer that writes a referenced table and then a
		// referencing one, which waits for the copy instead of
		// deadlocking with it (foreignkeys.go).
		stmts = append(stmts, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE")
	}
	stmts = append(stmts, fks.drop...)
	stmts = append(append(stmts, "DROP TABLE IF EXISTS "+table), ddl.ShardTableStatements(shardID)...)
	for _, s := range stmts {
		if _, err := tgtTx.Exec(ctx, s); err != nil {
			return fmt.Errorf("repair: recreating shard table %s on target node %s: %w", table, target, err)
		}
	}

	// Every two-phase write the DROP waited for on the target is committed
	// on the source before its snapshot (lockers.go).
	if err := waitForLockers(ctx, srcConn, table, true); err != nil {
		return onSource(source, err)
	}
	// One snapshot of the source for the whole copy.
	srcTx, err := srcConn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("repair: beginning transaction on source node %s: %w", source, err)
	}
	defer srcTx.Rollback(ctx)

	columns := ""
	if cols := ddl.CopyColumns(); len(cols) > 0 {
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = pgx.Identifier{c}.Sanitize()
		}
		columns = " (" + strings.Join(quoted, ", ") + ")"
	}
	copyOut := "COPY " + table + columns + " TO STDOUT (FORMAT binary)"
	copyIn := "COPY " + table + columns + " FROM STDIN (FORMAT binary)"
	if err := stream(ctx, srcConn.PgConn(), tgtConn.PgConn(), copyOut, copyIn); err != nil {
		return fmt.Errorf("repair: copying shard %d from %s to %s: %w", shardID, source, target, err)
	}
	// The snapshot is no longer needed; don't hold it while indexes build.
	if err := srcTx.Rollback(ctx); err != nil {
		return fmt.Errorf("repair: ending transaction on source node %s: %w", source, err)
	}

	for _, s := range ddl.ShardIndexStatements(shardID) {
		if _, err := tgtTx.Exec(ctx, s); err != nil {
			return fmt.Errorf("repair: creating index of %s on target node %s: %w", table, target, err)
		}
	}
	for _, s := range fks.add {
		if _, err := tgtTx.Exec(ctx, s); err != nil {
			return fmt.Errorf("repair: adding foreign key of shard %d on target node %s: %w", shardID, target, err)
		}
	}
	if err := tgtTx.Commit(ctx); err != nil {
		return fmt.Errorf("repair: committing shard %d on target node %s: %w", shardID, target, err)
	}
	return nil
}

// onSource names the source node in err, an error of waitForLockers on
// it, unless err is the 55P03 that already says what to do.
func onSource(source catalog.Node, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" {
		return err
	}
	return fmt.Errorf("%w (source node %s)", err, source)
}

// errTargetStopped is what the source's COPY gets from the pipe once the
// target's COPY has returned, so that it does not write into the void.
var errTargetStopped = errors.New("target stopped reading")

// stream runs copyOut on src and copyIn on dst at once, the rows flowing
// through a pipe: never more than one chunk of the shard is in memory.
func stream(ctx context.Context, src, dst *pgconn.PgConn, copyOut, copyIn string) error {
	pr, pw := io.Pipe()
	srcDone := make(chan error, 1)
	go func() {
		_, err := src.CopyTo(ctx, pw, copyOut)
		// nil closes the pipe with io.EOF: the target's COPY ends normally.
		// An error makes the target's COPY fail (CopyFail) and roll back.
		pw.CloseWithError(err)
		srcDone <- err
	}()
	_, dstErr := dst.CopyFrom(ctx, pr, copyIn)
	pr.CloseWithError(errTargetStopped)
	srcErr := <-srcDone
	switch {
	case srcErr != nil && !errors.Is(srcErr, errTargetStopped):
		return fmt.Errorf("reading from source: %w", srcErr)
	case dstErr != nil:
		return fmt.Errorf("writing to target: %w", dstErr)
	case srcErr != nil:
		return fmt.Errorf("reading from source: %w", srcErr)
	}
	return nil
}
