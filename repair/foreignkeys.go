package repair

import (
	"context"
	"errors"
	"fmt"

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
// A repair copies one shard in one transaction on the target: it locks
// the shard's table, then removes the constraints of the node's co-located
// shards that reference the shard (its table could not be dropped under
// them; locking it first keeps the order a writer of the referenced then
// the referencing shard takes, so neither deadlocks), rebuilds and fills the
// table, then adds the shard's own foreign keys and puts back those it
// removed, before it commits. Each is added validated, in that transaction:
// the table is new and locked by it anyway, so NOT VALID + VALIDATE would
// hold the same locks for the same time. The one exception is a
// referencing placement that is not finalized: its rows may be stale, so
// its constraint is put back NOT VALID (its own repair rebuilds it).
//
// A move copies a whole co-location group's shards, each in its own
// transaction, then adds every foreign key among them at once, NOT VALID,
// and validates each afterwards: the new placements take writes all along
// (they are filling), and VALIDATE CONSTRAINT, unlike ADD CONSTRAINT,
// lets writes go on while it reads the rows.

// shardForeignKeys are the statements a repair of one shard runs on the
// target in its copy's transaction.
type shardForeignKeys struct {
	// drop runs before the shard table is dropped: it removes the foreign
	// keys of the node's co-located shards that reference it.
	drop []string
	// add runs once the table holds its rows and indexes: the shard's own
	// foreign keys, then those drop removed.
	add []string
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
		if !ok {
			return out, sqlerr.New(sqlerr.ObjectNotInPrereq, "shard %d of \"%s.%s\" has no co-located shard of \"%s.%s\", which its foreign key \"%s\" references", shardID, ddl.Schema, ddl.Name, fk.RefSchema, fk.RefName, fk.Name)
		}
		if ref.ID != shardID {
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
		s, err := ddl.ColocatedForeignKeyStatement(fk, shardID, false)
		if err != nil {
			return out, err
		}
		out.add = append(out.add, s)
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

// addMovedForeignKeys gives the shards of a move, copied to target, every
// foreign key among them: all added NOT VALID in one transaction, then
// each validated (unless the template's is NOT VALID) in a transaction of
// its own, writes going on meanwhile.
func addMovedForeignKeys(ctx context.Context, connect NodeConnector, target catalog.Node, moves []*shardMove) error {
	var add, validate []string
	for _, m := range moves {
		for i := range m.ddl.ColocatedForeignKeys {
			fk := &m.ddl.ColocatedForeignKeys[i]
			s, err := m.ddl.ColocatedForeignKeyStatement(fk, m.shardID, true)
			if err != nil {
				return err
			}
			add = append(add, s)
			if !fk.NotValid {
				validate = append(validate, m.ddl.ValidateColocatedForeignKeyStatement(fk, m.shardID))
			}
		}
	}
	if len(add) == 0 {
		return nil
	}
	conn, err := connect(ctx, target)
	if err != nil {
		return fmt.Errorf("repair: connecting to target node %s: %w", target, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	run := func(stmts []string) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, s := range append([]string{"SET LOCAL lock_timeout = '10s'"}, stmts...) {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("repair: adding foreign keys of the moved shards on %s: %w", target, err)
				}
			}
			return nil
		})
	}
	if err := run(add); err != nil {
		return err
	}
	for _, s := range validate {
		if err := run([]string{s}); err != nil {
			return err
		}
	}
	return nil
}
