package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Fences left behind.
//
// A repair or move drops the write fence it put on a source shard table
// (repair/fence.go) once its placements are switched. When the source's
// worker cannot be reached at that moment, the fence would stay, and keep
// refusing every write to the shard that carries no version (every write
// once no placement of the shard is filling: catalog/fence.go), until the
// next repair of that shard.
//
// So each fence is recorded in the metadata database (FenceRecordTable),
// before it is created on the worker, and the record is deleted once the
// fence is dropped. A record whose shard has no filling placement left
// belongs to a repair or move that has switched or given up (a repair or
// move makes its target filling before it records its fence, and keeps it
// filling until its switch or revert): every process's resolver
// (txn.RunResolver, every 2 s, over the worker connections it already
// holds) drops such a fence from the worker once it can reach it
// (DropFinishedFences) and deletes its record. Nothing of this is on the
// path of a statement: a statement refused meanwhile is refused as before
// (session/retry.go), and succeeds once the fence is gone.
//
// A record names the fence's version (the trigger's argument): the
// resolver drops the trigger only when it still carries that version,
// deciding under the table's lock, so that it never drops the fence of a
// later repair of the same shard. A record whose node no longer holds a
// placement of the shard (a move's source, whose old table the move drops)
// is deleted without touching the worker: no write is routed to that table
// any more, and a write planned before the move that reaches it still
// meets the fence.

// FenceTrigger is the name of the write fence's trigger on a fenced shard
// table.
const FenceTrigger = "pgshard_write_fence"

// FenceRecordTable is the metadata table of write fences in place or left
// behind: one row per fence, written before the fence is created.
const FenceRecordTable = MetadataSchema + ".write_fence"

// fenceRecordDDL creates FenceRecordTable. It is not one of the tables
// whose changes bump the metadata version: no process plans with it.
const fenceRecordDDL = `CREATE TABLE IF NOT EXISTS ` + FenceRecordTable + ` (
	shard_id bigint NOT NULL,
	node_name text NOT NULL,
	node_port integer NOT NULL,
	shard_table text NOT NULL,
	version bigint NOT NULL,
	created timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (shard_id, node_name, node_port, version)
)`

// EnsureFenceRecords creates FenceRecordTable when it is missing. Each
// process runs it when it initializes (txn.EnsureCommitRecord), and a
// repair or move again before it makes a placement filling (a schema made
// by an older pgshard): creating a table on the metadata database bumps
// the metadata version (its DDL event trigger), which is better done
// before the repair waits for every process to have seen its placement
// change.
func EnsureFenceRecords(ctx context.Context, meta Querier) error {
	var exists bool
	if err := meta.QueryRow(ctx, `SELECT to_regclass('`+FenceRecordTable+`') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("catalog: checking %s: %w", FenceRecordTable, err)
	}
	if exists {
		return nil
	}
	if _, err := meta.Exec(ctx, fenceRecordDDL); err != nil {
		var pgErr *pgconn.PgError
		// Two repairs creating it at once: one loses on the catalog's
		// unique index; the table is there all the same.
		if !errors.As(err, &pgErr) || (pgErr.Code != "23505" && pgErr.Code != "42P07") {
			return fmt.Errorf("catalog: creating %s: %w", FenceRecordTable, err)
		}
	}
	return nil
}

// FenceRecord is one fence: shard ShardID's table Table (its quoted,
// schema-qualified identifier on Node) fenced at metadata version Version.
type FenceRecord struct {
	ShardID int64
	Node    Node
	Table   string
	Version int64
}

// RecordFence records f in the metadata database; the fence is created
// only after it returns nil.
func RecordFence(ctx context.Context, meta Querier, f FenceRecord) error {
	if _, err := meta.Exec(ctx, `INSERT INTO `+FenceRecordTable+` (shard_id, node_name, node_port, shard_table, version)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, f.ShardID, f.Node.Name, f.Node.Port, f.Table, f.Version); err != nil {
		return fmt.Errorf("catalog: recording the write fence of shard %d on %s: %w", f.ShardID, f.Node, err)
	}
	return nil
}

// ForgetFence deletes f's record, once its fence is dropped (or its table
// is). An error leaves the record to the resolver, which finds the fence
// gone and deletes it.
func ForgetFence(ctx context.Context, meta Querier, f FenceRecord) error {
	if _, err := meta.Exec(ctx, `DELETE FROM `+FenceRecordTable+`
		WHERE shard_id = $1 AND node_name = $2 AND node_port = $3 AND version = $4`, f.ShardID, f.Node.Name, f.Node.Port, f.Version); err != nil {
		return fmt.Errorf("catalog: forgetting the write fence of shard %d on %s: %w", f.ShardID, f.Node, err)
	}
	return nil
}

// finishedFences lists the fences whose repair or move is over (no
// placement of their shard is filling), and whether their node still
// holds a placement of the shard.
const finishedFences = `SELECT f.shard_id, f.node_name, f.node_port, f.shard_table, f.version,
		EXISTS (SELECT FROM ` + MetadataSchema + `.shard_placement p
			WHERE p.shard_id = f.shard_id AND p.node_name = f.node_name AND p.node_port = f.node_port)
	FROM ` + FenceRecordTable + ` f
	WHERE NOT EXISTS (SELECT FROM ` + MetadataSchema + `.shard_placement p
		WHERE p.shard_id = f.shard_id AND p.shard_state = $1)
	ORDER BY f.node_name, f.node_port, f.shard_id, f.version`

// fenceDropTimeout is lock_timeout of the resolver's DROP TRIGGER: its
// ACCESS EXCLUSIVE lock request holds readers of the table back while it
// waits, so it waits little and tries again at the next pass.
const fenceDropTimeout = "200ms"

// DropFinishedFences drops the write fences whose repair or move is over
// and that are still recorded in meta (see the comment at the top), on the
// workers conn returns a connection to (nil: not reachable now; the fence
// is left for the next call), and deletes their records. It returns how
// many fences it dropped; a table without its table on the worker, or
// whose trigger carries another version, only loses its record. It blocks
// on meta and the workers; ctx bounds it. Errors of one fence do not stop
// the others; they are joined.
func DropFinishedFences(ctx context.Context, meta Querier, conn func(Node) *pgx.Conn) (dropped int, err error) {
	rows, err := meta.Query(ctx, finishedFences, int32(StateFilling))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return 0, nil // no repair has run yet
		}
		return 0, fmt.Errorf("catalog: reading write fences: %w", err)
	}
	type finished struct {
		FenceRecord
		placed bool
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (finished, error) {
		var f finished
		err := row.Scan(&f.ShardID, &f.Node.Name, &f.Node.Port, &f.Table, &f.Version, &f.placed)
		return f, err
	})
	if err != nil {
		return 0, fmt.Errorf("catalog: reading write fences: %w", err)
	}
	var errs []error
	for _, f := range list {
		if f.placed {
			c := conn(f.Node)
			if c == nil {
				continue
			}
			did, err := dropFence(ctx, c, f.FenceRecord)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if did {
				dropped++
			}
		}
		if err := ForgetFence(ctx, meta, f.FenceRecord); err != nil {
			errs = append(errs, err)
		}
	}
	return dropped, errors.Join(errs...)
}

// dropFence drops f's trigger from its table on conn when the trigger
// still carries f's version, deciding under the table's lock (which a
// repair installing a new fence takes too); it reports whether it dropped
// one.
func dropFence(ctx context.Context, conn *pgx.Conn, f FenceRecord) (bool, error) {
	dropped := false
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+fenceDropTimeout+"'"); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, f.Table).Scan(&exists); err != nil || !exists {
			return err
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE "+f.Table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return err
		}
		var args []byte
		err := tx.QueryRow(ctx, `SELECT tgargs FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = $2`, f.Table, FenceTrigger).Scan(&args)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		// tgargs holds each argument followed by a NUL byte.
		if !bytes.Equal(args, []byte(strconv.FormatInt(f.Version, 10)+"\x00")) {
			return nil // a later repair's fence
		}
		if _, err := tx.Exec(ctx, "DROP TRIGGER "+FenceTrigger+" ON "+f.Table); err != nil {
			return err
		}
		dropped = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("catalog: dropping the write fence of shard %d on %s: %w", f.ShardID, f.Node, err)
	}
	return dropped, nil
}
