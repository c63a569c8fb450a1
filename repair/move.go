package repair

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// MoveShardPlacement moves shard shardID's placement from source to target,
// a worker node without a placement of that shard, while the shard keeps
// taking reads and writes (master_move_shard_placement). As in Citus, the
// co-located shards of every other table in the table's co-location group
// (the shards with the same range) move with it, so the group stays
// co-located: each must have a finalized placement on source and none on
// target.
//
//  1. new placements on target, filling: they receive every write from now;
//  2. wait until every process writes with them (catalog.WaitForAcks),
//     then fence each source table against writes planned before (fence.go);
//  3. copy each shard from source, as a repair does;
//  4. in one metadata transaction, finalize the new placements and remove
//     the old ones (only if every new one is still filling and every old one
//     still finalized), so that no process sees the group half moved;
//  5. wait until no process writes the old placements, then drop their
//     tables.
//
// Writers are held back only by the copy's lock on a new placement's table,
// never for the whole copy on the source. Statements that read one of the
// group's tables while writing another (UPDATE ... FROM) are refused for
// the moved shards while the new placements are filling (they cannot read
// them). On failure before step 4 the new placements are removed and
// nothing else changes.
func MoveShardPlacement(ctx context.Context, meta catalog.Querier, connect NodeConnector, shardID int64, source, target catalog.Node) error {
	var relid uint32
	var minValue, maxValue string
	err := meta.QueryRow(ctx, `SELECT relation_id, min_value, max_value FROM pgs_distribution_metadata.shard WHERE id = $1`, shardID).Scan(&relid, &minValue, &maxValue)
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
	moves, err := groupMoves(ctx, meta, relid, shardID, minValue, maxValue, src, source, target)
	if err != nil {
		return err
	}
	if err := checkTargetNames(ctx, meta, moves, target); err != nil {
		return err
	}
	// Referenced shards first, each copied with its own foreign keys
	// (foreignkeys.go).
	moves, fks, err := moveForeignKeys(moves)
	if err != nil {
		return err
	}

	if err := catalog.EnsureFenceRecords(ctx, meta); err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	// 1. New placements, filling.
	var added []*shardMove
	undo := func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), catalogTimeout)
		defer cancel()
		for _, m := range added {
			_, _ = meta.Exec(uctx, `DELETE FROM pgs_distribution_metadata.shard_placement WHERE id = $1`, m.newID)
		}
		dropShardTables(uctx, connect, target, added)
	}
	for _, m := range moves {
		if err := ensureShardTable(ctx, connect, target, m.ddl, m.shardID); err != nil {
			undo()
			return err
		}
		if err := meta.QueryRow(ctx, `INSERT INTO pgs_distribution_metadata.shard_placement (shard_id, shard_state, node_name, node_port)
			VALUES ($1, $2, $3, $4) RETURNING id`, m.shardID, int32(catalog.StateFilling), target.Name, target.Port).Scan(&m.newID); err != nil {
			undo()
			return fmt.Errorf("repair: adding placement of shard %d on %s: %w", m.shardID, target, err)
		}
		added = append(added, m)
	}
	// 2, 3. Once every process writes them, fill them.
	if err := waitForWriters(ctx, meta); err != nil {
		undo()
		return err
	}
	// Writes planned before the new placements were filling are refused on
	// the source from here on (fence.go); the fences go with the old tables.
	tables := make([]fenced, len(moves))
	for i, m := range moves {
		tables[i] = fenced{m.ddl, m.shardID}
	}
	fences, err := fenceSources(ctx, meta, connect, source, tables)
	if err != nil {
		undo()
		return err
	}
	// On failure the fences go (by the resolver, when the source cannot
	// be reached now) before the new placements do: once none of them is
	// filling, the resolver takes the fences as finished.
	unfenceAll := func() {
		for _, f := range fences {
			unfence(ctx, meta, connect, f)
		}
	}
	for i, m := range moves {
		if err := copyShard(ctx, connect, m.ddl, m.shardID, source, target, fks[i]); err != nil {
			unfenceAll()
			undo()
			return err
		}
	}
	// 4. Switch the whole group at once.
	if err := switchPlacements(ctx, meta, moves, target); err != nil {
		unfenceAll()
		undo()
		return err
	}
	// The old placements are gone: their fences go with their tables, and
	// their records are no longer needed (the resolver deletes those of
	// a node without the shard's placement too).
	defer func() {
		for _, f := range fences {
			forget(ctx, meta, f)
		}
	}()
	// 5. The old placements are gone from the metadata; once nobody writes
	// them, their tables can go too.
	if err := waitForWriters(ctx, meta); err != nil {
		return fmt.Errorf("repair: shard %d moved, but waiting to drop the old tables on %s: %w", shardID, source, err)
	}
	dropShardTables(ctx, connect, source, moves)
	return nil
}

// shardMove is one shard of a group move: its placement on the source node
// (oldID), the one added on the target (newID), and its table's definition.
type shardMove struct {
	shardID      int64
	oldID, newID int64
	ddl          *catalog.TemplateDDL
}

// groupMoves lists the shards a move of shardID (of relation relid, range
// [minValue, maxValue]) moves: it and the shard with the same range of every
// other table in relid's co-location group, each checked to have a
// finalized placement on source and none on target.
func groupMoves(ctx context.Context, meta catalog.Querier, relid uint32, shardID int64, minValue, maxValue string, src catalog.Placement, source, target catalog.Node) ([]*shardMove, error) {
	group, err := catalog.ColocationGroup(ctx, meta, relid)
	if err != nil {
		return nil, err
	}
	var moves []*shardMove
	for _, rel := range group {
		m := &shardMove{shardID: shardID, oldID: src.ID}
		if rel != relid {
			err := meta.QueryRow(ctx, `SELECT id FROM pgs_distribution_metadata.shard WHERE relation_id = $1 AND min_value = $2 AND max_value = $3`,
				rel, minValue, maxValue).Scan(&m.shardID)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, sqlerr.New(sqlerr.ObjectNotInPrereq, "table %s is co-located with shard %d's table but has no shard with its range [%s, %s]", relName(ctx, meta, rel), shardID, minValue, maxValue)
			}
			if err != nil {
				return nil, fmt.Errorf("repair: reading co-located shards of shard %d: %w", shardID, err)
			}
			ps, err := readPlacements(ctx, meta, m.shardID)
			if err != nil {
				return nil, err
			}
			p, err := findPlacement(ps, source)
			if err != nil || p.State != catalog.StateFinalized {
				return nil, sqlerr.New(sqlerr.ObjectNotInPrereq, "co-located shard %d of table %s, which moves with shard %d, has no finalized placement on \"%s:%d\"; repair it with master_copy_shard_placement first", m.shardID, relName(ctx, meta, rel), shardID, source.Name, source.Port)
			}
			if _, err := findPlacement(ps, target); err == nil {
				return nil, sqlerr.New(sqlerr.ObjectNotInPrereq, "co-located shard %d of table %s, which moves with shard %d, already has a placement on \"%s:%d\"", m.shardID, relName(ctx, meta, rel), shardID, target.Name, target.Port)
			}
			m.oldID = p.ID
		}
		if m.ddl, err = catalog.ReadTemplateDDL(ctx, meta, rel); err != nil {
			return nil, fmt.Errorf("repair: reading definition of shard %d's table: %w", m.shardID, err)
		}
		moves = append(moves, m)
	}
	return moves, nil
}

// checkTargetNames makes sure that each moved shard's table on target is
// its own: not the table of a shard already there, nor of another shard
// of the move (catalog.CheckShardTableFree). Only shard tables an older
// pgshard created, whose names PostgreSQL truncated, can collide.
func checkTargetNames(ctx context.Context, meta catalog.Querier, moves []*shardMove, target catalog.Node) error {
	names := map[string]int64{}
	for _, m := range moves {
		if err := catalog.CheckShardTableFree(ctx, meta, target, m.ddl, m.shardID); err != nil {
			return err
		}
		name := m.ddl.ShardTableIdentifier(m.shardID)
		if other, ok := names[name]; ok {
			return sqlerr.New("42P07", "shards %d and %d cannot both be placed on %s: both tables would be %s (names an older pgshard gave, truncated by PostgreSQL to 63 bytes)", other, m.shardID, target, name)
		}
		names[name] = m.shardID
	}
	return nil
}

func shardIDs(moves []*shardMove) []int64 {
	out := make([]int64, len(moves))
	for i, m := range moves {
		out[i] = m.shardID
	}
	return out
}

// relName is relation relid's name for a message.
func relName(ctx context.Context, meta catalog.Querier, relid uint32) string {
	var name string
	if err := meta.QueryRow(ctx, `SELECT $1::oid::regclass::text`, relid).Scan(&name); err != nil {
		return fmt.Sprintf("with oid %d", relid)
	}
	return `"` + name + `"`
}

// beginner starts a transaction: *pgxpool.Pool, *pgx.Conn and pgx.Tx are.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// switchPlacements finalizes every new placement of moves and removes every
// old one, in one metadata transaction, provided every new one is still
// filling and every old one still finalized (a write that failed on one of
// them meanwhile makes the copy incomplete).
func switchPlacements(ctx context.Context, meta catalog.Querier, moves []*shardMove, target catalog.Node) error {
	b, ok := meta.(beginner)
	if !ok {
		return sqlerr.New(sqlerr.InternalError, "repair: the metadata connection (%T) cannot begin a transaction", meta)
	}
	newIDs, oldIDs := make([]int64, len(moves)), make([]int64, len(moves))
	for i, m := range moves {
		newIDs[i], oldIDs[i] = m.newID, m.oldID
	}
	return pgx.BeginFunc(ctx, b, func(tx pgx.Tx) error {
		var ready int
		err := tx.QueryRow(ctx, `
			WITH locked AS (
				SELECT id, shard_state FROM pgs_distribution_metadata.shard_placement
				WHERE id = ANY($1) OR id = ANY($2) ORDER BY id FOR UPDATE)
			SELECT count(*) FILTER (WHERE (id = ANY($1) AND shard_state = $3) OR (id = ANY($2) AND shard_state = $4)) FROM locked`,
			newIDs, oldIDs, int32(catalog.StateFilling), int32(catalog.StateFinalized)).Scan(&ready)
		if err != nil {
			return fmt.Errorf("repair: switching shards to %s: %w", target, err)
		}
		if ready != 2*len(moves) {
			return sqlerr.New(sqlerr.ObjectNotInPrereq, "placements of shards %v changed during the move (a write failed on the source or the target); run it again", shardIDs(moves))
		}
		if _, err := tx.Exec(ctx, `UPDATE pgs_distribution_metadata.shard_placement SET shard_state = $1 WHERE id = ANY($2)`, int32(catalog.StateFinalized), newIDs); err != nil {
			return fmt.Errorf("repair: switching shards to %s: %w", target, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pgs_distribution_metadata.shard_placement WHERE id = ANY($1)`, oldIDs); err != nil {
			return fmt.Errorf("repair: switching shards to %s: %w", target, err)
		}
		return nil
	})
}

const catalogTimeout = 30 * time.Second // for clean-up after a failure

// dropShardTables drops the tables of moves' shards on node, in one
// statement: the foreign keys among them do not stop it, and it drops no
// other object (no CASCADE). Errors are ignored (clean-up).
func dropShardTables(ctx context.Context, connect NodeConnector, node catalog.Node, moves []*shardMove) {
	if len(moves) == 0 {
		return
	}
	conn, err := connect(ctx, node)
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tables := make([]string, len(moves))
	for i, m := range moves {
		tables[i] = m.ddl.ShardTableIdentifier(m.shardID)
	}
	_, _ = conn.Exec(ctx, "DROP TABLE IF EXISTS "+strings.Join(tables, ", "))
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
