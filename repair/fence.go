package repair

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// The write fence on the source placement.
//
// A repair or move copies the source placement once every process writes
// the new placement too (catalog.WaitForAcks). That wait trusts
// heartbeats and clocks: a process that stopped heartbeating is not waited
// for, and any process can pause between its lease check and its write.
// Such a stale write, planned on the placement list without the new
// placement, lands on the source only, after the copy's snapshot, and the
// new placement is finalized without it.
//
// So, before the copy, the source's shard table gets a statement trigger
// (fenceTrigger) that refuses every write whose transaction does not carry
// a metadata version at least fenceVersion, the version at which the new
// placement became writable (catalog.FenceSetting, see catalog/fence.go).
// Creating the trigger takes a SHARE ROW EXCLUSIVE lock: it waits for every
// write already on the source table, so that each write is either before
// it (committed before the copy's snapshot, so in the copy) or after it
// (refused unless it writes the new placement too). The workers decide, not
// clocks. The trigger stays until the placement change is committed in the
// metadata (repair) or the source table is dropped (move).
//
// The fence costs nothing to shards that are not repaired or moved: they
// have no trigger.

// fenceTrigger is the trigger's name on a fenced shard table.
const fenceTrigger = catalog.FenceTrigger

// RefusalConstraint marks the fence's refusal: the fence raises its 40001
// with this as the error's constraint name (RAISE ... USING CONSTRAINT,
// pgconn.PgError.ConstraintName), so that the driver tells it from every
// other serialization failure (IsRefusal) without reading the message. A
// refusal is raised by a BEFORE ... FOR EACH STATEMENT trigger, before the
// statement changes any row: the statement, and its transaction on that
// server, are aborted with nothing written.
const RefusalConstraint = fenceTrigger

// RefusalHint is the fence's hint: what a statement outside a transaction
// does about the refusal (the driver does it itself, session/retry.go).
const RefusalHint = "Run the statement again: it is planned on the current placements."

// IsRefusal reports whether err is the fence's refusal of a write planned
// on placements older than the fence (40001 with RefusalConstraint), as
// opposed to any other error, a genuine serialization failure included.
func IsRefusal(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40001" && pgErr.ConstraintName == RefusalConstraint
}

// fenceApplicationName is the application_name of the session installing
// the fence, so that an operator (and a test) sees what it waits for.
const fenceApplicationName = "pgshard: repair fencing the source"

// fenceAttempt bounds each attempt to lock the source table: a writer
// queued behind the fence's lock request is held at most that long.
const fenceAttempt = 200 * time.Millisecond

// fenceTimeout bounds the whole wait for the writes on the source.
const fenceTimeout = 30 * time.Second

// fenceFunction refuses a write whose transaction carries no metadata
// version or an older one than the trigger's argument.
const fenceFunction = `CREATE OR REPLACE FUNCTION pgshard.write_fence() RETURNS trigger LANGUAGE plpgsql AS $fence$
BEGIN
	IF coalesce(nullif(current_setting('` + catalog.FenceSetting + `', true), ''), '0')::bigint < TG_ARGV[0]::bigint THEN
		RAISE EXCEPTION 'shard table %.% is being repaired or moved, and this write was planned on placements older than metadata version %', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[0]
			USING ERRCODE = '40001', CONSTRAINT = '` + RefusalConstraint + `', HINT = '` + RefusalHint + `';
	END IF;
	RETURN NULL;
END
$fence$`

// installFence fences shard shardID's table on node against writes planned
// on metadata versions older than version (see the comment above). It
// fails with 55P03 when the writes on the table do not end within
// fenceTimeout.
func installFence(ctx context.Context, connect NodeConnector, node catalog.Node, ddl *catalog.TemplateDDL, shardID, version int64) error {
	conn, err := connect(ctx, node)
	if err != nil {
		return fmt.Errorf("repair: connecting to source node %s: %w", node, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	table := ddl.ShardTableIdentifier(shardID)
	if _, err := conn.Exec(ctx, "SET application_name = '"+fenceApplicationName+"'"); err != nil {
		return fmt.Errorf("repair: fencing %s on %s: %w", table, node, err)
	}
	stmts := []string{
		"SET LOCAL lock_timeout = " + fmt.Sprint(fenceAttempt.Milliseconds()),
		"CREATE SCHEMA IF NOT EXISTS pgshard",
		fenceFunction,
		"DROP TRIGGER IF EXISTS " + fenceTrigger + " ON " + table,
		fmt.Sprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION pgshard.write_fence('%d')", fenceTrigger, table, version),
	}
	deadline := time.Now().Add(fenceTimeout)
	for {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, s := range stmts {
				if _, err := tx.Exec(ctx, s); err != nil {
					return err
				}
			}
			return nil
		})
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("repair: fencing %s on %s: %w", table, node, ctx.Err())
		case !errors.As(err, &pgErr) || (pgErr.Code != "55P03" && pgErr.Code != "40P01" && pgErr.Code != "23505" && pgErr.Code != "XX000"):
			// 23505, XX000: another repair created the schema or the
			// function at the same moment; the next attempt finds them.
			return fmt.Errorf("repair: fencing %s on %s: %w", table, node, err)
		case time.Now().After(deadline):
			return sqlerr.New("55P03", "a write on %s on %s has been running for more than %v; the repair waits for the writes begun before it: end them and run it again", table, node, fenceTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("repair: fencing %s on %s: %w", table, node, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// removeFence drops the fence of shard shardID's table on node; a fence it
// cannot drop only refuses writes that carry no version (see
// docs/failure-model.md). It reports whether the fence is gone.
func removeFence(ctx context.Context, connect NodeConnector, node catalog.Node, ddl *catalog.TemplateDDL, shardID int64) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), catalogTimeout)
	defer cancel()
	conn, err := connect(ctx, node)
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP TRIGGER IF EXISTS "+fenceTrigger+" ON "+ddl.ShardTableIdentifier(shardID))
	return err == nil
}

// fenced is a shard table to fence: its definition and shard.
type fenced struct {
	ddl     *catalog.TemplateDDL
	shardID int64
}

// fence is a fence fenceSources made: its table, and its record in the
// metadata database (catalog.RecordFence).
type fence struct {
	fenced
	record catalog.FenceRecord
}

// unfence drops f and, once it is gone, deletes its record. A fence it
// cannot drop (its worker unreachable) keeps its record: the resolver of
// every process drops it once its repair or move is over and its worker
// answers (catalog.DropFinishedFences). Errors are ignored (clean-up).
func unfence(ctx context.Context, meta catalog.Querier, connect NodeConnector, f fence) {
	if !removeFence(ctx, connect, f.record.Node, f.ddl, f.shardID) {
		return
	}
	forget(ctx, meta, f)
}

// forget deletes f's record without touching its fence (its table is
// gone, or going); an error leaves it to the resolver.
func forget(ctx context.Context, meta catalog.Querier, f fence) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), catalogTimeout)
	defer cancel()
	_ = catalog.ForgetFence(ctx, meta, f.record)
}

// fenceSources fences each of tables on source against writes planned on
// metadata versions older than the current one (read after the new
// placements became writable), recording each fence in the metadata
// database before making it (catalog/fencerecord.go); on failure it
// removes the fences it made (their records stay when that fails too, and
// so does the record of the fence it failed to make: the resolver drops
// what is left once the repair has given up).
func fenceSources(ctx context.Context, meta catalog.Querier, connect NodeConnector, source catalog.Node, tables []fenced) ([]fence, error) {
	v, err := catalog.CurrentVersion(ctx, meta)
	if err != nil {
		return nil, err
	}
	fences := make([]fence, 0, len(tables))
	undo := func() {
		for _, f := range fences {
			unfence(ctx, meta, connect, f)
		}
	}
	for _, t := range tables {
		f := fence{t, catalog.FenceRecord{ShardID: t.shardID, Node: source, Table: t.ddl.ShardTableIdentifier(t.shardID), Version: v}}
		if err := catalog.RecordFence(ctx, meta, f.record); err != nil {
			undo()
			return nil, fmt.Errorf("repair: %w", err)
		}
		// Recorded: from here on, a fence this repair leaves behind is
		// dropped by the resolver. One whose installation failed is
		// left to it too (the failure may have come after its commit,
		// and dropping it here would wait behind the very lock that
		// made the installation give up).
		if err := installFence(ctx, connect, source, t.ddl, t.shardID, v); err != nil {
			undo()
			return nil, err
		}
		fences = append(fences, f)
	}
	return fences, nil
}
