package repair

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// This file keeps the foreign keys between co-located shards
// (catalog.TemplateDDL.ColocatedForeignKeys) through a repair and a move.
// A shard table built from its template's DDL has none of them: they
// reference another table's shard, which must hold its rows before the
// constraint can be added.
//
// Each shard is copied in one transaction on the target (copyShard) that
// also gives it its own foreign keys, once its rows and indexes are in:
// from the commit on, the referenced shard's ON DELETE actions reach the
// new table. Adding them in a later transaction would leave a window in
// which a cascade on the referenced shard skips the copied rows, and the
// replicas would disagree. They are added validated: the new table is
// locked by that transaction anyway, so NOT VALID + VALIDATE would hold the
// same locks for as long.
//
// The transaction takes its locks in the order writers do (referenced
// table, then referencing): first the shards its own foreign keys
// reference (SHARE ROW EXCLUSIVE, what ADD CONSTRAINT takes on them), then
// its own table, then the co-located shards on the node that reference it
// (a repair drops their constraints so that its table can be dropped, and
// puts them back). A writer of a referenced then a referencing shard thus
// waits for the copy instead of deadlocking with it; writes to the
// referenced shards on the target wait while the copy runs.
//
// A repair refuses (55000) a shard whose referenced shard is not finalized
// on the target: its rows could not be checked against stale ones. A
// referencing placement that is not finalized gets its constraint back
// NOT VALID (its own repair rebuilds it).
//
// A move copies the group's shards referenced ones first, so each shard's
// referenced shards hold their rows on the target when it is copied, and
// no target table is referenced yet when it is dropped and rebuilt.
// Foreign keys among the group that form a cycle (a → b → a) have no such
// order: such a move is refused (0A000) before anything changes.

// shardForeignKeys are the statements the copy of one shard runs on the
// target in its transaction.
type shardForeignKeys struct {
	// lock runs first: it locks the shards the shard's own foreign keys
	// reference. Then the copy locks the shard's table (when lock or drop
	// has statements).
	lock []string
	// drop runs before the shard table is dropped: it removes the foreign
	// keys of the node's co-located shards that reference it.
	drop []string
	// add runs once the table holds its rows and indexes: the shard's own
	// foreign keys, then those drop removed.
	add []string
}

// ownForeignKeys adds to out the statements that give shard shardID (of
// the table ddl defines) its own co-located foreign keys: lock and add.
func ownForeignKeys(out *shardForeignKeys, ddl *catalog.TemplateDDL, shardID int64) error {
	locked := map[string]bool{}
	for i := range ddl.ColocatedForeignKeys {
		fk := &ddl.ColocatedForeignKeys[i]
		ref, table, ok := fk.RefShardIdentifier(shardID)
		if !ok {
			return sqlerr.New(sqlerr.ObjectNotInPrereq, "shard %d of \"%s.%s\" has no co-located shard of \"%s.%s\", which its foreign key \"%s\" references", shardID, ddl.Schema, ddl.Name, fk.RefSchema, fk.RefName, fk.Name)
		}
		if ref.ID != shardID && !locked[table] {
			locked[table] = true
			out.lock = append(out.lock, "LOCK TABLE "+table+" IN SHARE ROW EXCLUSIVE MODE")
		}
		s, err := ddl.ColocatedForeignKeyStatement(fk, shardID, false)
		if err != nil {
			return err
		}
		out.add = append(out.add, s)
	}
	return nil
}

// repairForeignKeys returns the foreign key statements of a repair of
// shard shardID (of the table ddl defines) on target. It fails with 55000
// when a shard the repaired one references has no finalized placement on
// target: its rows could be stale, so that shard must be repaired first.
func repairForeignKeys(ctx context.Context, meta catalog.Querier, ddl *catalog.TemplateDDL, shardID int64, target catalog.Node) (shardForeignKeys, error) {
	var out shardForeignKeys
	for i := range ddl.ColocatedForeignKeys {
		fk := &ddl.ColocatedForeignKeys[i]
		ref, ok := fk.RefShards[shardID]
		if !ok || ref.ID == shardID {
			continue // ownForeignKeys refuses the first, the second is the shard itself
		}
		state, found, err := placementState(ctx, meta, ref.ID, target)
		if err != nil {
			return out, err
		}
		if !found || state != catalog.StateFinalized {
			e := sqlerr.New(sqlerr.ObjectNotInPrereq, "cannot repair shard %d of \"%s.%s\" on \"%s:%d\" before shard %d of \"%s.%s\", which its foreign key \"%s\" references: that shard has no finalized placement there",
				shardID, ddl.Schema, ddl.Name, target.Name, target.Port, ref.ID, fk.RefSchema, fk.RefName, fk.Name)
			e.Hint = fmt.Sprintf("Repair shard %d on that node first.", ref.ID)
			return out, e
		}
	}
	if err := ownForeignKeys(&out, ddl, shardID); err != nil {
		return out, err
	}

	group, err := catalog.ColocationGroup(ctx, meta, ddl.RelationID)
	if err != nil {
		return out, err
	}
	for _, rel := range group {
		if rel == ddl.RelationID {
			continue // the table's own foreign keys to itself are above
		}
		other, err := catalog.ReadTemplateDDL(ctx, meta, rel)
		if err != nil {
			return out, fmt.Errorf("repair: reading definition of %s: %w", relName(ctx, meta, rel), err)
		}
		for i := range other.ColocatedForeignKeys {
			fk := &other.ColocatedForeignKeys[i]
			if fk.RefRelationID != ddl.RelationID {
				continue
			}
			for referencing, ref := range fk.RefShards {
				if ref.ID != shardID {
					continue
				}
				state, found, err := placementState(ctx, meta, referencing, target)
				if err != nil {
					return out, err
				}
				if !found {
					continue
				}
				s, err := other.ColocatedForeignKeyStatement(fk, referencing, state != catalog.StateFinalized)
				if err != nil {
					return out, err
				}
				out.drop = append(out.drop, other.DropColocatedForeignKeyStatement(fk, referencing))
				out.add = append(out.add, s)
			}
		}
	}
	return out, nil
}

// placementState reads the state of shard shardID's placement on node;
// found is false when it has none there.
func placementState(ctx context.Context, meta catalog.Querier, shardID int64, node catalog.Node) (state catalog.ShardState, found bool, err error) {
	var s int32
	err = meta.QueryRow(ctx, `SELECT shard_state FROM pgs_distribution_metadata.shard_placement WHERE shard_id = $1 AND node_name = $2 AND node_port = $3`,
		shardID, node.Name, node.Port).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("repair: reading placement of shard %d on %s: %w", shardID, node, err)
	}
	return catalog.ShardState(s), true, nil
}

// moveForeignKeys orders moves so that every shard comes after the
// shards its foreign keys reference, and returns, in that order, each
// shard's own foreign key statements for its copy (ownForeignKeys). It
// fails with 0A000 when the foreign keys among the group's tables form a
// cycle.
func moveForeignKeys(moves []*shardMove) ([]*shardMove, []shardForeignKeys, error) {
	byShard := map[int64]*shardMove{}
	for _, m := range moves {
		byShard[m.shardID] = m
	}
	// deps[m]: the other moves m's foreign keys reference.
	deps := map[*shardMove][]*shardMove{}
	for _, m := range moves {
		for i := range m.ddl.ColocatedForeignKeys {
			fk := &m.ddl.ColocatedForeignKeys[i]
			ref, ok := fk.RefShards[m.shardID]
			if !ok || ref.ID == m.shardID {
				continue // ownForeignKeys refuses the first; the second is m itself
			}
			r := byShard[ref.ID]
			if r == nil {
				return nil, nil, sqlerr.New(sqlerr.ObjectNotInPrereq, "shard %d of \"%s.%s\" references shard %d of \"%s.%s\" (foreign key \"%s\"), which does not move with it", m.shardID, m.ddl.Schema, m.ddl.Name, ref.ID, fk.RefSchema, fk.RefName, fk.Name)
			}
			deps[m] = append(deps[m], r)
		}
	}
	var ordered []*shardMove
	done := map[*shardMove]bool{}
	for len(ordered) < len(moves) {
		progress := false
		for _, m := range moves {
			if done[m] {
				continue
			}
			ready := true
			for _, r := range deps[m] {
				ready = ready && done[r]
			}
			if ready {
				done[m] = true
				ordered = append(ordered, m)
				progress = true
			}
		}
		if !progress {
			var names []string
			for _, m := range moves {
				if !done[m] {
					names = append(names, fmt.Sprintf("\"%s.%s\"", m.ddl.Schema, m.ddl.Name))
				}
			}
			return nil, nil, sqlerr.Unsupported("cannot move shard %d: the foreign keys among %s form a cycle, so no table's shard can be copied before the shards it references; drop one of them, move, and add it back", moves[0].shardID, strings.Join(names, ", "))
		}
	}
	fks := make([]shardForeignKeys, len(ordered))
	for i, m := range ordered {
		if err := ownForeignKeys(&fks[i], m.ddl, m.shardID); err != nil {
			return nil, nil, err
		}
	}
	return ordered, fks, nil
}
