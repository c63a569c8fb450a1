package catalog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Beginner starts a transaction: a pool (each call its own transaction on
// the metadata database), or an open transaction, whose Begin makes a
// savepoint, so that the administrative functions run inside a session's
// transaction (a query string of several statements) commit or roll back
// with it.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// NodeConnector opens a connection to a worker node's database; the caller
// closes it.
type NodeConnector func(ctx context.Context, node Node) (*pgx.Conn, error)

// addNodeTimeout bounds master_add_node's connection to the new node.
const addNodeTimeout = 15 * time.Second

// AddNode records a worker node (master_add_node) after checking that
// connect reaches a PostgreSQL server there and logs into the database:
// a node already added fails with 42710; a node that cannot be reached, or
// does not speak PostgreSQL, with 08001; a login or database the server
// refuses with the server's SQLSTATE (28P01, 3D000, ...). Nothing is
// recorded on failure.
func AddNode(ctx context.Context, pool Beginner, connect NodeConnector, name string, port int) error {
	if name == "" {
		return sqlerr.New(sqlerr.InvalidParameterValue, "node name must not be empty")
	}
	if port < 1 || port > 65535 {
		return sqlerr.New(sqlerr.InvalidParameterValue, "node port %d is out of range 1..65535", port)
	}
	node := Node{Name: name, Port: port}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO pgs_distribution_metadata.node (node_name, node_port) VALUES ($1, $2) ON CONFLICT DO NOTHING`, name, port)
		if err != nil {
			return fmt.Errorf("catalog: adding node: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return sqlerr.New(sqlerr.DuplicateObject, "node %s is already added", node)
		}
		return checkNode(ctx, connect, node)
	})
}

// checkNode connects to node and asks it its version, failing with a
// SQLSTATE that says why it could not.
func checkNode(ctx context.Context, connect NodeConnector, node Node) error {
	cctx, cancel := context.WithTimeout(ctx, addNodeTimeout)
	defer cancel()
	conn, err := connect(cctx, node)
	if err == nil {
		defer conn.Close(context.WithoutCancel(ctx))
		var version int
		err = conn.QueryRow(cctx, `SELECT current_setting('server_version_num')::int`).Scan(&version)
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// pgconn's messages name the user and database, never the password.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return sqlerr.New(pgErr.Code, "could not add node %s: %s", node, pgErr.Message)
	}
	return sqlerr.New(sqlClientUnableToConnect, "could not connect to node %s: %v", node, connectCause(err))
}

// sqlClientUnableToConnect is SQLSTATE 08001,
// sqlclient_unable_to_establish_sqlconnection.
const sqlClientUnableToConnect = "08001"

// connectCause is the innermost error of a failed connection attempt
// (the dial error, say), without pgconn's "failed to connect to `user=...
// database=...`" prefix.
func connectCause(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		return ce.Unwrap()
	}
	return err
}

// CreateDistributedTable records that table is hash-partitioned on column
// (master_create_distributed_table). The table must exist on the metadata
// database, the column in it, and its type must have a hash function pgshard
// computes.
func CreateDistributedTable(ctx context.Context, pool Beginner, table, column string) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
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
			return sqlerr.New(sqlerr.WrongObjectType, "cannot distribute relation \"%s\": it is not an ordinary table", table)
		}
		var typeOID uint32
		var typeName string
		err = tx.QueryRow(ctx, `SELECT atttypid, format_type(atttypid, atttypmod) FROM pg_attribute
			WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped`, relid, column).Scan(&typeOID, &typeName)
		if errors.Is(err, pgx.ErrNoRows) {
			return sqlerr.New(sqlerr.UndefinedColumn, "column \"%s\" of relation \"%s\" does not exist", column, table)
		}
		if err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		if !HashSupported(typeOID) {
			return sqlerr.New(sqlerr.UndefinedFunction, "could not identify a hash function for type %s", typeName)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO pgs_distribution_metadata.partition (relation_id, partition_method, key)
			VALUES ($1, 'h', $2) ON CONFLICT DO NOTHING`, relid, column)
		if err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return sqlerr.New(sqlerr.ObjectNotInPrereq, "table \"%s\" is already distributed", table)
		}
		return guardTemplate(ctx, tx, relid)
	})
}

// resolveTable turns a table name as the user wrote it (possibly qualified or
// quoted) into its oid, with PostgreSQL's own regclass resolution.
func resolveTable(ctx context.Context, q Querier, table string) (uint32, error) {
	var relid *uint32
	if err := q.QueryRow(ctx, `SELECT to_regclass($1)::oid`, table).Scan(&relid); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return 0, err
		}
		return 0, fmt.Errorf("catalog: resolving %q: %w", table, err)
	}
	if relid == nil {
		return 0, sqlerr.New(sqlerr.UndefinedTable, "relation \"%s\" does not exist", table)
	}
	return *relid, nil
}

// HashRange is the [Min, Max] hash range of shard i of count, split exactly as
// pg_shard 1.2.2 splits the int32 hash space: increment = (2^32-1)/count in
// unsigned 32-bit division, min = -2^31 + i*increment, max = min+increment-1,
// and the last shard ends at 2^31-1.
func HashRange(i, count int) (lo, hi int32) {
	increment := int64(uint32(math.MaxUint32) / uint32(count))
	min := int64(math.MinInt32) + int64(i)*increment
	max := min + increment - 1
	if i == count-1 {
		max = math.MaxInt32
	}
	return int32(min), int32(max)
}

// CreateWorkerShards creates shardCount shards of table, each with
// replicationFactor placements, and the shard tables on the workers
// (master_create_worker_shards). Replica j of shard i goes to node (i+j) mod N
// of the nodes ordered by (name, port). The table joins the co-location group
// of an existing table with the same key type, shard ranges and placement
// nodes per shard, or a new group (pgs_distribution_metadata.colocation).
// Either every shard table is created and the metadata committed, or the
// created tables are dropped again and nothing is recorded. When db is an
// open transaction, the metadata commits with it while the shard tables
// exist at once: undo drops them again (best effort), for the caller to
// call when that transaction rolls back.
func CreateWorkerShards(ctx context.Context, db Beginner, connect NodeConnector, table string, shardCount, replicationFactor int) (undo func(context.Context), err error) {
	created := map[Node][]int64{}
	var ddl *TemplateDDL
	undo = func(ctx context.Context) {
		for node, ids := range created {
			dropShardTables(ctx, connect, node, ddl, ids)
		}
	}
	err = createWorkerShards(ctx, db, connect, table, shardCount, replicationFactor, created, &ddl)
	return undo, err
}

func createWorkerShards(ctx context.Context, pool Beginner, connect NodeConnector, table string, shardCount, replicationFactor int, created map[Node][]int64, ddlOut **TemplateDDL) error {
	if shardCount <= 0 {
		return sqlerr.New(sqlerr.InvalidParameterValue, "shard_count must be positive")
	}
	if replicationFactor <= 0 {
		return sqlerr.New(sqlerr.InvalidParameterValue, "replication_factor must be positive")
	}
	if shardCount > 1<<16 {
		return sqlerr.New(sqlerr.InvalidParameterValue, "shard_count must be at most 65536")
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	defer tx.Rollback(context.Background())
	// One table's shards at a time, so that tables with the same layout
	// created together find each other's co-location group.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLockKey)); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	relid, err := resolveTable(ctx, tx, table)
	if err != nil {
		return err
	}
	var method string
	err = tx.QueryRow(ctx, `SELECT partition_method::text FROM pgs_distribution_metadata.partition WHERE relation_id = $1 FOR UPDATE`, relid).Scan(&method)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "table \"%s\" is not distributed", table)
	}
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	var existing int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM pgs_distribution_metadata.shard WHERE relation_id = $1`, relid).Scan(&existing); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if existing > 0 {
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "table \"%s\" has already had shards created for it", table)
	}
	nodes, err := loadNodes(ctx, tx)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		return sqlerr.New(sqlerr.ObjectNotInPrereq, "no worker nodes: add them with master_add_node(host, port)")
	}
	if replicationFactor > len(nodes) {
		return sqlerr.New(sqlerr.InvalidParameterValue, "replication_factor (%d) exceeds number of worker nodes (%d)", replicationFactor, len(nodes))
	}
	ddl, err := ReadTemplateDDL(ctx, tx, relid)
	if err != nil {
		return err
	}
	if err := ddl.UnenforceableForeignKey("distributed table"); err != nil {
		return err
	}
	*ddlOut = ddl

	var keyType uint32
	if err := tx.QueryRow(ctx, `SELECT a.atttypid FROM pgs_distribution_metadata.partition p
		JOIN pg_attribute a ON a.attrelid = p.relation_id AND a.attname = p.key AND a.attnum > 0 AND NOT a.attisdropped
		WHERE p.relation_id = $1`, relid).Scan(&keyType); err != nil {
		return fmt.Errorf("catalog: reading the partition column's type: %w", err)
	}
	newLayout := &layout{relid: relid, keyType: keyType}

	perNode := map[Node][]int64{}
	for i := 0; i < shardCount; i++ {
		lo, hi := HashRange(i, shardCount)
		sl := shardLayout{min: lo, max: hi}
		var shardID int64
		if err := tx.QueryRow(ctx, `INSERT INTO pgs_distribution_metadata.shard (relation_id, storage, min_value, max_value)
			VALUES ($1, 't', $2, $3) RETURNING id`, relid, strconv.Itoa(int(lo)), strconv.Itoa(int(hi))).Scan(&shardID); err != nil {
			return fmt.Errorf("catalog: recording shard: %w", err)
		}
		for j := 0; j < replicationFactor; j++ {
			node := nodes[(i+j)%len(nodes)]
			if _, err := tx.Exec(ctx, `INSERT INTO pgs_distribution_metadata.shard_placement (shard_id, shard_state, node_name, node_port)
				VALUES ($1, $2, $3, $4)`, shardID, int32(StateFinalized), node.Name, node.Port); err != nil {
				return fmt.Errorf("catalog: recording placement: %w", err)
			}
			perNode[node] = append(perNode[node], shardID)
			sl.nodes = append(sl.nodes, node.String())
		}
		slices.Sort(sl.nodes)
		newLayout.shards = append(newLayout.shards, sl)
	}
	others, err := readLayouts(ctx, tx)
	if err != nil {
		return err
	}
	if _, err := assignColocation(ctx, tx, newLayout, others); err != nil {
		return err
	}

	// Refuse names that cannot be this table's own before creating
	// anything: two relations of one shard with the same name, or a
	// relation of that name already on a node.
	for _, node := range nodes {
		if err := checkNamesFree(ctx, connect, node, ddl, perNode[node]); err != nil {
			return err
		}
	}

	var createErr error
	for _, node := range nodes {
		ids := perNode[node]
		if len(ids) == 0 {
			continue
		}
		if err := createShardTables(ctx, connect, node, ddl, ids); err != nil {
			createErr = err
			break
		}
		created[node] = ids
	}
	if createErr == nil {
		if err := tx.Commit(ctx); err != nil {
			createErr = fmt.Errorf("catalog: committing shards: %w", err)
		} else {
			return nil
		}
	}
	// Undo: drop the shard tables already made, best effort.
	for node, ids := range created {
		dropShardTables(context.Background(), connect, node, ddl, ids)
	}
	clear(created)
	return createErr
}

// checkNamesFree fails with 42P07 when a relation that the shards ids
// would create on node (ShardRelationNames) exists there already, or when
// two of a shard's relations would have one name.
func checkNamesFree(ctx context.Context, connect NodeConnector, node Node, ddl *TemplateDDL, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var names []string
	for _, id := range ids {
		n, err := ddl.ShardRelationNames(id)
		if err != nil {
			return err
		}
		names = append(names, n...)
	}
	conn, err := connect(ctx, node)
	if err != nil {
		return fmt.Errorf("catalog: connecting to worker %s: %w", node, err)
	}
	defer conn.Close(context.Background())
	var taken []string
	rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) ORDER BY 1`, ddl.Schema, names)
	if err == nil {
		taken, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return fmt.Errorf("catalog: checking shard table names on %s: %w", node, err)
	}
	if len(taken) > 0 {
		return sqlerr.New(duplicateTable, "cannot create the shards of \"%s.%s\": relation \"%s\" already exists on %s", ddl.Schema, ddl.Name, taken[0], node)
	}
	return nil
}

func createShardTables(ctx context.Context, connect NodeConnector, node Node, ddl *TemplateDDL, ids []int64) error {
	conn, err := connect(ctx, node)
	if err != nil {
		return fmt.Errorf("catalog: connecting to worker %s: %w", node, err)
	}
	defer conn.Close(context.Background())
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, id := range ids {
			for _, stmt := range ddl.ShardStatements(id) {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("catalog: creating shard %d on %s: %w", id, node, err)
				}
			}
		}
		return nil
	})
}

func dropShardTables(ctx context.Context, connect NodeConnector, node Node, ddl *TemplateDDL, ids []int64) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, node)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	for _, id := range ids {
		_, _ = conn.Exec(ctx, "DROP TABLE IF EXISTS "+ddl.ShardTableIdentifier(id))
	}
}

// MarkInactive sets a placement that missed a write to inactive, whether it
// was finalized or being filled; the metadata tables' trigger bumps the
// version.
func MarkInactive(ctx context.Context, pool *pgxpool.Pool, placementID int64) error {
	_, err := pool.Exec(ctx, `UPDATE pgs_distribution_metadata.shard_placement SET shard_state = $1 WHERE id = $2 AND shard_state IN ($3, $4)`,
		int32(StateInactive), placementID, int32(StateFinalized), int32(StateFilling))
	if err != nil {
		return fmt.Errorf("catalog: marking placement %d inactive: %w", placementID, err)
	}
	return nil
}
