package repair

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// MoveShardPlacement moves shard shardID's placement from source to target,
// a worker node without a placement of that shard, while the shard keeps
// taking reads and writes (master_move_shard_placement):
//
//  1. a new placement on target, filling: it receives every write from now;
//  2. wait until every process writes with it (catalog.WaitForAcks);
//  3. copy the shard from source, as a repair does;
//  4. in one metadata statement, finalize the new placement and remove the
//     old one (only if the new one is still filling and the old one still
//     finalized);
//  5. wait until no process writes the old placement, then drop its table.
//
// Writers are held back only by the copy's lock on the new placement's
// table, never for the whole copy on the source. On failure before step 4
// the new placement is removed and nothing else changes.
func MoveShardPlacement(ctx context.Context, meta catalog.Querier, connect NodeConnector, shardID int64, source, target catalog.Node) error {
	var relid uint32
	err := meta.QueryRow(ctx, `SELECT relation_id FROM pgs_distribution_metadata.shard WHERE id = $1`, shardID).Scan(&relid)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlerr.New(sqlerr.UndefinedObject, "shard with ID %d does not exist", shardID)
	}
	if err != nil {
		return fmt.Errorf("repair: reading shard %d: %w", shardID, err)
	}
	placements, err := readPlacements(ctx, meta, shardID)
	if err != nil {
		return err
	}
	src, err := findPlacement(placements, source)
	if err != nil {
		return err
	}
	if src.State != catalog.StateFinalized {
		return sqlerr.New(sqlerr.InvalidParameterValue, "source placement must be in finalized state")
	}
	if _, err := findPlacement(placements, target); err == nil {
		return sqlerr.New(sqlerr.InvalidParameterValue, "shard %d already has a placement on \"%s:%d\"", shardID, target.Name, target.Port)
	}
	var isNode bool
	if err := meta.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pgs_distribution_metadata.node WHERE node_name = $1 AND node_port = $2)`, target.Name, target.Port).Scan(&isNode); err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	if !isNode {
		return sqlerr.New(sqlerr.InvalidParameterValue, "\"%s:%d\" is not a worker node; add it with master_add_node", target.Name, target.Port)
	}
	ddl, err := catalog.ReadTemplateDDL(ctx, meta, relid)
	if err != nil {
		return fmt.Errorf("repair: reading definition of shard %d's table: %w", shardID, err)
	}

	if err := ensureShardTable(ctx, connect, target, ddl, shardID); err != nil {
		return err
	}
	var newID int64
	if err := meta.QueryRow(ctx, `INSERT INTO pgs_distribution_metadata.shard_placement (shard_id, shard_state, node_name, node_port)
		VALUES ($1, $2, $3, $4) RETURNING id`, shardID, int32(catalog.StateFilling), target.Name, target.Port).Scan(&newID); err != nil {
		return fmt.Errorf("repair: adding placement of shard %d on %s: %w", shardID, target, err)
	}
	undo := func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), catalogTimeout)
		defer cancel()
		_, _ = meta.Exec(uctx, `DELETE FROM pgs_distribution_metadata.shard_placement WHERE id = $1`, newID)
		dropShardTable(uctx, connect, target, ddl, shardID)
	}
	if err := waitForWriters(ctx, meta); err != nil {
		undo()
		return err
	}
	if err := copyShard(ctx, connect, ddl, shardID, source, target); err != nil {
		undo()
		return err
	}
	var finalized, removed int
	err = meta.QueryRow(ctx, `
		WITH fin AS (
			UPDATE pgs_distribution_metadata.shard_placement SET shard_state = $1
			WHERE id = $2 AND shard_state = $3
			  AND EXISTS (SELECT FROM pgs_distribution_metadata.shard_placement WHERE id = $4 AND shard_state = $1)
			RETURNING id),
		del AS (
			DELETE FROM pgs_distribution_metadata.shard_placement
			WHERE id = $4 AND EXISTS (SELECT FROM fin)
			RETURNING id)
		SELECT (SELECT count(*) FROM fin), (SELECT count(*) FROM del)`,
		int32(catalog.StateFinalized), newID, int32(catalog.StateFilling), src.ID).Scan(&finalized, &removed)
	if err != nil || finalized != 1 || removed != 1 {
		undo()
		if err != nil {
			return fmt.Errorf("repair: switching shard %d to %s: %w", shardID, target, err)
		}
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "placements of shard %d changed during the move (a write failed on the source or the target); run it again", shardID)
	}
	// The old placement is gone from the metadata; once nobody writes it,
	// its table can go too.
	if err := waitForWriters(ctx, meta); err != nil {
		return fmt.Errorf("repair: shard %d moved, but waiting to drop the old table on %s: %w", shardID, source, err)
	}
	dropShardTable(ctx, connect, source, ddl, shardID)
	return nil
}

const catalogTimeout = 30 * time.Second // for clean-up after a failure

func dropShardTable(ctx context.Context, connect NodeConnector, node catalog.Node, ddl *catalog.TemplateDDL, shardID int64) {
	conn, err := connect(ctx, node)
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, _ = conn.Exec(ctx, "DROP TABLE IF EXISTS "+ddl.ShardTableIdentifier(shardID))
}

// readPlacements reads every placement of a shard, in id order.
func readPlacements(ctx context.Context, meta catalog.Querier, shardID int64) ([]catalog.Placement, error) {
	rows, err := meta.Query(ctx, `
		SELECT id, shard_id, shard_state, node_name, node_port
		FROM pgs_distribution_metadata.shard_placement WHERE shard_id = $1 ORDER BY id`, shardID)
	if err != nil {
		return nil, fmt.Errorf("repair: reading placements of shard %d: %w", shardID, err)
	}
	placements, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Placement, error) {
		var p catalog.Placement
		var state int32
		err := row.Scan(&p.ID, &p.ShardID, &state, &p.Node.Name, &p.Node.Port)
		p.State = catalog.ShardState(state)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("repair: reading placements of shard %d: %w", shardID, err)
	}
	return placements, nil
}
