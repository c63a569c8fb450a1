package catalog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Partition methods of pgs_distribution_metadata.partition: pg_shard's hash
// method, and the reference method ('n', no key, as Citus records
// reference tables) of a table copied whole to every worker.
const (
	MethodHash      byte = 'h'
	MethodReference byte = 'n'
)

// Reference reports whether t is a reference table: one shard, covering
// the whole hash range, with a placement on every worker node, and no
// partition column (KeyColumn "", KeyIndex -1). A reference table is
// co-located with every distributed table: a statement joining it with
// shard i of another table reads its one shard on the node where shard i
// runs.
func (t *Table) Reference() bool { return t.Method == MethodReference }

// ShardAt returns the shard of t that a statement running on shard index i
// of a co-located table reads: Shards[i], or a reference table's one shard
// whatever i is.
func (t *Table) ShardAt(i int) *Shard {
	if t.Reference() {
		return &t.Shards[0]
	}
	return &t.Shards[i]
}

// CreateReferenceTable makes table a reference table
// (master_create_reference_table): it records the partition method 'n'
// with no key, one shard covering the whole hash range, and a finalized
// placement of it on every worker node, and creates the shard table on
// every node. The table must exist on the metadata database, be an
// ordinary table, not be distributed yet and hold no rows (its rows would
// be left behind on the metadata database). Either every shard table is
// created and the metadata committed, or nothing is. When db is an open
// transaction, undo drops the shard tables again, for the caller to call
// when that transaction rolls back (see CreateWorkerShards).
func CreateReferenceTable(ctx context.Context, db Beginner, connect NodeConnector, table string) (undo func(context.Context), err error) {
	created := map[Node][]int64{}
	var ddl *TemplateDDL
	undo = func(ctx context.Context) {
		for node, ids := range created {
			dropShardTables(ctx, connect, node, ddl, ids)
		}
	}
	err = createReferenceTable(ctx, db, connect, table, created, &ddl)
	return undo, err
}

func createReferenceTable(ctx context.Context, db Beginner, connect NodeConnector, table string, created map[Node][]int64, ddlOut **TemplateDDL) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLockKey)); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	relid, err := resolveTable(ctx, tx, table)
	if err != nil {
		return err
	}
	var relkind string
	if err := tx.QueryRow(ctx, `SELECT relkind::text FROM pg_class WHERE oid = $1`, relid).Scan(&relkind); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if relkind != "r" {
		return sqlerr.New(sqlerr.WrongObjectType, "cannot make relation \"%s\" a reference table: it is not an ordinary table", table)
	}
	var method string
	err = tx.QueryRow(ctx, `SELECT partition_method::text FROM pgs_distribution_metadata.partition WHERE relation_id = $1`, relid).Scan(&method)
	if err == nil {
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "table \"%s\" is already distributed", table)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("catalog: %w", err)
	}
	var hasRows bool
	var qualified string
	if err := tx.QueryRow(ctx, `SELECT $1::oid::regclass::text`, relid).Scan(&qualified); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+qualified+`)`).Scan(&hasRows); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if hasRows {
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "table \"%s\" has rows on the metadata database; a reference table's rows live on the workers: create it empty, make it a reference table, then insert its rows through pgshard", table)
	}
	nodes, err := loadNodes(ctx, tx)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "no worker nodes: add them with master_add_node(host, port)")
	}
	ddl, err := ReadTemplateDDL(ctx, tx, relid)
	if err != nil {
		return err
	}
	if err := ddl.UnenforceableForeignKey("reference table"); err != nil {
		return err
	}
	*ddlOut = ddl
	if _, err := tx.Exec(ctx, `INSERT INTO pgs_distribution_metadata.partition (relation_id, partition_method, key)
		VALUES ($1, $2::text::"char", '')`, relid, string(MethodReference)); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	var shardID int64
	if err := tx.QueryRow(ctx, `INSERT INTO pgs_distribution_metadata.shard (relation_id, storage, min_value, max_value)
		VALUES ($1, 't', $2, $3) RETURNING id`, relid, strconv.Itoa(math.MinInt32), strconv.Itoa(math.MaxInt32)).Scan(&shardID); err != nil {
		return fmt.Errorf("catalog: recording shard: %w", err)
	}
	for _, node := range nodes {
		if _, err := tx.Exec(ctx, `INSERT INTO pgs_distribution_metadata.shard_placement (shard_id, shard_state, node_name, node_port)
			VALUES ($1, $2, $3, $4)`, shardID, int32(StateFinalized), node.Name, node.Port); err != nil {
			return fmt.Errorf("catalog: recording placement: %w", err)
		}
	}
	if err := guardTemplate(ctx, tx, relid); err != nil {
		return err
	}
	for _, node := range nodes {
		if err := checkNamesFree(ctx, connect, node, ddl, []int64{shardID}); err != nil {
			return err
		}
	}
	var createErr error
	for _, node := range nodes {
		if err := createShardTables(ctx, connect, node, ddl, []int64{shardID}); err != nil {
			createErr = err
			break
		}
		created[node] = []int64{shardID}
	}
	if createErr == nil {
		if err := tx.Commit(ctx); err != nil {
			createErr = fmt.Errorf("catalog: committing reference table: %w", err)
		} else {
			return nil
		}
	}
	for node, ids := range created {
		dropShardTables(context.WithoutCancel(ctx), connect, node, ddl, ids)
	}
	clear(created)
	return createErr
}

// AddReferencePlacements records an inactive placement on node of every
// reference table's shard that has none there, and returns those shards
// with a node holding a finalized placement of each to copy it from
// (master_add_node then repairs them: repair.CopyShardPlacement). A shard
// with no finalized placement anywhere is returned with a zero source.
func AddReferencePlacements(ctx context.Context, q Querier, node Node) (shards []int64, sources []Node, err error) {
	rows, err := q.Query(ctx, `
		INSERT INTO pgs_distribution_metadata.shard_placement (shard_id, shard_state, node_name, node_port)
		SELECT s.id, $1, $2, $3
		FROM pgs_distribution_metadata.shard s
		JOIN pgs_distribution_metadata.partition p ON p.relation_id = s.relation_id
		WHERE p.partition_method = $4::text::"char"
		  AND NOT EXISTS (SELECT FROM pgs_distribution_metadata.shard_placement pl
		                  WHERE pl.shard_id = s.id AND pl.node_name = $2 AND pl.node_port = $3)
		RETURNING shard_id`, int32(StateInactive), node.Name, node.Port, string(MethodReference))
	if err == nil {
		shards, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		return nil, nil, fmt.Errorf("catalog: recording reference table placements on %s: %w", node, err)
	}
	for _, id := range shards {
		var src Node
		err := q.QueryRow(ctx, `SELECT node_name, node_port FROM pgs_distribution_metadata.shard_placement
			WHERE shard_id = $1 AND shard_state = $2 ORDER BY id LIMIT 1`, id, int32(StateFinalized)).Scan(&src.Name, &src.Port)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, nil, fmt.Errorf("catalog: reading placements of shard %d: %w", id, err)
		}
		sources = append(sources, src)
	}
	return shards, sources, nil
}

// IsReferenceShard reports whether shardID is the shard of a reference
// table.
func IsReferenceShard(ctx context.Context, q Querier, shardID int64) (bool, error) {
	var ref bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pgs_distribution_metadata.shard s
		JOIN pgs_distribution_metadata.partition p ON p.relation_id = s.relation_id
		WHERE s.id = $1 AND p.partition_method = $2::text::"char")`, shardID, string(MethodReference)).Scan(&ref)
	if err != nil {
		return false, fmt.Errorf("catalog: reading shard %d: %w", shardID, err)
	}
	return ref, nil
}

// nodeLess orders nodes by name, then port, as Snapshot.Nodes are.
func nodeLess(a, b Node) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.Port < b.Port
}
