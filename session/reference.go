package session

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/repair"
)

// createReferenceTable runs master_create_reference_table(table): the
// table's one shard on every worker (catalog.CreateReferenceTable). In a
// multi-statement string's transaction t, the shard tables are dropped
// again if t rolls back.
func (c *Cluster) createReferenceTable(ctx context.Context, db catalog.Beginner, t *transaction, args []any) error {
	table, err := textArg("master_create_reference_table", 1, args[0])
	if err != nil {
		return err
	}
	undo, err := catalog.CreateReferenceTable(ctx, db, c.connectNode, table)
	if err == nil && t != nil {
		t.undo = append(t.undo, undo)
	}
	return err
}

// copyReferenceTables gives node, just added by master_add_node, a
// placement of every reference table's shard, copied from a finalized one
// (repair.CopyShardPlacement): once master_add_node returns, shards placed
// on the node find the reference tables there. A copy that fails leaves
// the node added with an inactive placement, which
// master_copy_shard_placement repairs; the error says so.
func (c *Cluster) copyReferenceTables(ctx context.Context, db catalog.Beginner, t *transaction, node catalog.Node) error {
	if t != nil {
		var n int
		if err := c.meta.QueryRow(ctx, `SELECT count(*) FROM pgs_distribution_metadata.partition WHERE partition_method = $1::text::"char"`,
			string(catalog.MethodReference)).Scan(&n); err != nil {
			return fmt.Errorf("pgshard: %w", err)
		}
		if n > 0 {
			return sqlerr.Unsupported("master_add_node cannot run inside a transaction when reference tables exist: it copies them to the new node, which needs the node committed; call it in a statement of its own")
		}
		return nil
	}
	shards, sources, err := catalog.AddReferencePlacements(ctx, c.meta, node)
	if err != nil {
		return err
	}
	for i, id := range shards {
		src := sources[i]
		if src.Name == "" {
			return sqlerr.New(sqlerr.ObjectNotInPrereq, "node %s is added, but reference table shard %d has no finalized placement to copy to it; repair one, then run master_copy_shard_placement(%d, source, %q, %d)", node, id, id, node.Name, node.Port)
		}
		if _, _, err := c.coord.RecoverNode(ctx, src, 0); err != nil {
			return fmt.Errorf("pgshard: node %s is added; finishing in-doubt transactions on %s before copying reference table shard %d: %w", node, src, id, err)
		}
		if err := repair.CopyShardPlacement(ctx, c.meta, c.connectNode, id, src, node); err != nil {
			e := sqlerr.As(err)
			return sqlerr.WithDetail(e, "node %s is added, but copying reference table shard %d to it failed; its placement there stays inactive until master_copy_shard_placement(%d, %q, %d, %q, %d) repairs it",
				node, id, id, src.Name, src.Port, node.Name, node.Port)
		}
	}
	return nil
}

// refuseReferenceMove refuses to move a reference table's shard: every node
// holds a placement of it already.
func refuseReferenceMove(ctx context.Context, meta catalog.Querier, shardID int64) error {
	ref, err := catalog.IsReferenceShard(ctx, meta, shardID)
	if err != nil {
		return err
	}
	if ref {
		return sqlerr.Unsupported("shard %d belongs to a reference table, which has a placement on every node: it cannot be moved (repair an inactive placement with master_copy_shard_placement)", shardID)
	}
	return nil
}

// referenceReadTurn turns, read after read, the placement a read of
// reference tables outside a transaction tries first (spreadReferenceReads).
var referenceReadTurn atomic.Uint32

// spreadReferenceReads returns a reference table's placements for a read
// outside a transaction, starting at the next one in turn, so that reads
// of the one shard spread over every worker instead of all going to the
// first; the others follow as fail-over. Every copy holds every committed
// write (writes commit on all of them atomically), so any copy answers.
func spreadReferenceReads(ps []catalog.Placement) []catalog.Placement {
	if len(ps) < 2 {
		return ps
	}
	k := int(referenceReadTurn.Add(1) % uint32(len(ps)))
	if k == 0 {
		return ps
	}
	out := make([]catalog.Placement, 0, len(ps))
	return append(append(out, ps[k:]...), ps[:k]...)
}
