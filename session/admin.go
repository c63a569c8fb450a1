package session

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/repair"
)

// AdminArgs evaluates the FROM clause of an administrative call on the
// metadata database: one argument list per row (engine.Admin).
func (s *Session) AdminArgs(ctx context.Context, fn, sql string, args []any) ([][]any, error) {
	if err := s.adminAllowed(fn); err != nil {
		return nil, err
	}
	rows, err := s.c.meta.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var calls [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return nil, err
		}
		calls = append(calls, vals)
	}
	return calls, rows.Err()
}

// adminAllowed refuses administrative functions inside a transaction: they
// commit their metadata changes by themselves. A multi-statement string's
// implicit transaction is the exception: there they join it (RunAdmin).
func (s *Session) adminAllowed(fn string) error {
	if s.tx != nil && !s.tx.implicit {
		return sqlerr.Unsupported("%s cannot run inside a transaction", fn)
	}
	return nil
}

// RunAdmin runs one call of an administrative function (engine.Admin): the
// table it names is the one this session's search_path finds
// (qualifyTableArg); the catalog is reloaded after it.
func (s *Session) RunAdmin(ctx context.Context, fn string, call []any) error {
	if err := s.adminAllowed(fn); err != nil {
		return err
	}
	if err := s.qualifyTableArg(ctx, fn, call); err != nil {
		return err
	}
	// In a multi-statement string's implicit transaction (see
	// multistatement.go) the function's metadata changes join the
	// transaction; otherwise each call commits by itself.
	var db catalog.Beginner = s.c.meta
	if s.tx != nil {
		var err error
		if db, err = s.tx.metaBeginner(ctx); err != nil {
			return err
		}
	}
	return s.c.runAdmin(ctx, db, s.tx, fn, call)
}

// runAdmin runs one call of an administrative function and reloads the
// catalog. The metadata changes are made through db: the metadata pool, or
// the transaction t's metadata session, which then drops the shard tables
// a call created if it rolls back.
func (c *Cluster) runAdmin(ctx context.Context, db catalog.Beginner, t *transaction, fn string, args []any) error {
	var err error
	switch fn {
	case "master_add_node":
		var host string
		var port int
		if host, err = textArg(fn, 1, args[0]); err == nil {
			port, err = intArg(fn, 2, args[1])
		}
		if err == nil {
			err = catalog.AddNode(ctx, db, c.connectNode, host, port)
		}
		if err == nil {
			err = c.copyReferenceTables(ctx, db, t, catalog.Node{Name: host, Port: port})
		}
	case "master_create_distributed_table":
		var table, column string
		if table, err = textArg(fn, 1, args[0]); err == nil {
			column, err = textArg(fn, 2, args[1])
		}
		if err == nil {
			err = catalog.CreateDistributedTable(ctx, db, table, column)
		}
	case "master_create_worker_shards":
		var table string
		var count, rf int
		if table, err = textArg(fn, 1, args[0]); err == nil {
			if count, err = intArg(fn, 2, args[1]); err == nil {
				rf, err = intArg(fn, 3, args[2])
			}
		}
		if err == nil {
			var undo func(context.Context)
			undo, err = catalog.CreateWorkerShards(ctx, db, c.connectNode, table, count, rf)
			if err == nil && t != nil {
				t.undo = append(t.undo, undo)
			}
		}
	case "master_create_reference_table":
		err = c.createReferenceTable(ctx, db, t, args)
	case "master_copy_shard_placement", "master_move_shard_placement":
		err = c.copyShardPlacement(ctx, fn, args)
	default:
		err = sqlerr.New(sqlerr.UndefinedFunction, "function %s does not exist", fn)
	}
	if err != nil {
		return err
	}
	if t != nil {
		return nil // the catalog changes when t commits
	}
	return c.refresh(ctx)
}

func (c *Cluster) copyShardPlacement(ctx context.Context, fn string, args []any) error {
	shardID, err := intArg(fn, 1, args[0])
	if err != nil {
		return err
	}
	var src, dst catalog.Node
	if src.Name, err = textArg(fn, 2, args[1]); err != nil {
		return err
	}
	if src.Port, err = intArg(fn, 3, args[2]); err != nil {
		return err
	}
	if dst.Name, err = textArg(fn, 4, args[3]); err != nil {
		return err
	}
	if dst.Port, err = intArg(fn, 5, args[4]); err != nil {
		return err
	}
	// Finish first what crashed clients left in doubt on both nodes: a
	// prepared transaction would be invisible to the copy on the source,
	// and hold the shard table's lock on the target.
	// Only nodes holding a placement of the shard: wrong arguments get
	// pg_shard's errors from the repair itself.
	for _, n := range []catalog.Node{src, dst} {
		var holds bool
		if err := c.meta.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pgs_distribution_metadata.shard_placement
			WHERE shard_id = $1 AND node_name = $2 AND node_port = $3)`, int64(shardID), n.Name, n.Port).Scan(&holds); err != nil {
			return fmt.Errorf("pgshard: %w", err)
		}
		if !holds {
			continue
		}
		if _, _, err := c.coord.RecoverNode(ctx, n, 0); err != nil {
			return fmt.Errorf("pgshard: finishing in-doubt transactions on %s before copying: %w", n, err)
		}
	}
	// The placements' state changes bump the metadata version (trigger).
	if fn == "master_move_shard_placement" {
		if err := refuseReferenceMove(ctx, c.meta, int64(shardID)); err != nil {
			return err
		}
		return repair.MoveShardPlacement(ctx, c.meta, c.connectNode, int64(shardID), src, dst)
	}
	return repair.CopyShardPlacement(ctx, c.meta, c.connectNode, int64(shardID), src, dst)
}

// connectNode opens a dedicated connection to a worker, for DDL and repair.
func (c *Cluster) connectNode(ctx context.Context, n catalog.Node) (*pgx.Conn, error) {
	cfg, err := c.nodeConfig(n)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg.ConnConfig)
}

func textArg(fn string, i int, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case nil:
		return "", sqlerr.New(sqlerr.InvalidParameterValue, "argument %d of %s must not be NULL", i, fn)
	}
	return fmt.Sprint(v), nil
}

func intArg(fn string, i int, v any) (int, error) {
	switch x := v.(type) {
	case int64:
		return int(x), nil
	case int32:
		return int(x), nil
	case int:
		return x, nil
	case int16:
		return int(x), nil
	case string:
		n, err := strconv.Atoi(x)
		if err != nil {
			return 0, sqlerr.New(sqlerr.InvalidTextRepr, "argument %d of %s: invalid input syntax for type integer: %q", i, fn, x)
		}
		return n, nil
	case nil:
		return 0, sqlerr.New(sqlerr.InvalidParameterValue, "argument %d of %s must not be NULL", i, fn)
	}
	return 0, sqlerr.New(sqlerr.DatatypeMismatch, "argument %d of %s must be an integer, not %T", i, fn, v)
}

// qualifyTableArg replaces the table name argument of the admin functions
// that take one by the name of the table it means in this session, schema
// qualified: the functions run on the metadata pool, whose search_path is
// not the session's (after SET search_path, "t" may be "Sch ema".t, while
// the pool would distribute public.t).
func (s *Session) qualifyTableArg(ctx context.Context, fn string, call []any) error {
	switch fn {
	case "master_create_distributed_table", "master_create_worker_shards", "master_create_reference_table":
	default:
		return nil
	}
	name, err := textArg(fn, 1, call[0])
	if err != nil {
		return err
	}
	const q = `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass`
	var rows pgx.Rows
	if s.tx != nil {
		// A multi-statement string's implicit transaction: the table may
		// have been created in it.
		ms, serr := s.tx.metaParticipant(ctx)
		if serr != nil {
			return serr
		}
		rows, err = ms.Conn().Query(ctx, q, name)
	} else {
		rows, err = s.metaQuery(ctx, q, name)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		var qualified string
		if err := rows.Scan(&qualified); err != nil {
			return err
		}
		call[0] = qualified
	}
	rows.Close()
	return rows.Err()
}
