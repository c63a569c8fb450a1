package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Template guards: a distributed table's template on the metadata database
// never holds rows (its rows live in the shard tables on the workers), yet
// a write pgshard does not see — inside a DO block, a function or a
// trigger, from another client, by a process with a stale catalog — would
// silently go there. Each template carries a statement-level trigger that
// refuses every INSERT, UPDATE, DELETE and TRUNCATE (and so COPY FROM) with
// SQLSTATE 0A000. pgshard itself only reads templates (describing
// statements, copying their definition to shard tables, which do not get the
// trigger) and changes their definition, which the trigger does not concern.

// templateGuardTrigger is the name of the trigger on each template.
const templateGuardTrigger = "pgs_distributed_table_guard"

// templateWriteRefused ends the message of the guard's error.
const templateWriteRefused = "on the metadata database: its rows live on the worker nodes"

// IsTemplateWriteError reports whether err is a template guard's refusal:
// a write that reached the template of a distributed table and changed
// nothing (the guard fires before the statement's first row).
func IsTemplateWriteError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "0A000" && strings.HasSuffix(pgErr.Message, templateWriteRefused)
}

// templateGuardFunction refuses the write that fired it.
const templateGuardFunction = `CREATE OR REPLACE FUNCTION pgs_distribution_metadata.reject_template_write() RETURNS trigger
	LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'distributed table "%.%" cannot be written (%) ` + templateWriteRefused + `', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
			USING ERRCODE = 'feature_not_supported',
			      HINT = 'Write it with a plain statement through pgshard; pgshard cannot see into DO blocks, functions, triggers or views.';
	END $$`

// templateGuardCheck is true when the guard function exists and every
// distributed table has its trigger.
const templateGuardCheck = `SELECT to_regprocedure('pgs_distribution_metadata.reject_template_write()') IS NOT NULL
	AND NOT EXISTS (SELECT FROM pgs_distribution_metadata.partition p
		WHERE to_regclass(p.relation_id::regclass::text) IS NOT NULL
		AND NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = p.relation_id AND tgname = '` + templateGuardTrigger + `'))`

// templateGuardBackfill installs the trigger on the distributed tables
// without it (distributed by an older pgshard); a table whose owner this
// user is not stays as it was.
const templateGuardBackfill = `DO $$
	DECLARE r record;
	BEGIN
		FOR r IN SELECT p.relation_id::regclass AS rel FROM pgs_distribution_metadata.partition p
			JOIN pg_class c ON c.oid = p.relation_id
			WHERE NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = p.relation_id AND tgname = '` + templateGuardTrigger + `')
		LOOP
			BEGIN
				EXECUTE format('CREATE TRIGGER ` + templateGuardTrigger + ` BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION pgs_distribution_metadata.reject_template_write()', r.rel);
			EXCEPTION WHEN insufficient_privilege THEN
				RAISE WARNING 'pgshard cannot guard the template of distributed table % against writes: %', r.rel, SQLERRM;
			END;
		END LOOP;
	END $$`

// EnsureTemplateGuards installs the guard function and the trigger on every
// distributed table's template that lacks it, under the schema lock; it
// costs one query when they are all there.
func EnsureTemplateGuards(ctx context.Context, conn *pgx.Conn) error {
	var ok bool
	if err := conn.QueryRow(ctx, templateGuardCheck).Scan(&ok); err != nil {
		return fmt.Errorf("catalog: checking template guards: %w", err)
	}
	if ok {
		return nil
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLockKey)); err != nil {
			return fmt.Errorf("catalog: locking metadata schema: %w", err)
		}
		for _, stmt := range []string{templateGuardFunction, templateGuardBackfill} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("catalog: installing template guards: %w", err)
			}
		}
		return nil
	})
}

// guardTemplate installs the trigger on the template relid, in the
// transaction that distributes it.
func guardTemplate(ctx context.Context, q Querier, relid uint32) error {
	var name string
	if err := q.QueryRow(ctx, `SELECT $1::oid::regclass::text`, relid).Scan(&name); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if _, err := q.Exec(ctx, templateGuardFunction); err != nil {
		return fmt.Errorf("catalog: installing template guard: %w", err)
	}
	if _, err := q.Exec(ctx, `CREATE TRIGGER `+templateGuardTrigger+` BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON `+name+
		` FOR EACH STATEMENT EXECUTE FUNCTION pgs_distribution_metadata.reject_template_write()`); err != nil {
		return fmt.Errorf("catalog: guarding the template of \"%s\" against writes: %w", name, err)
	}
	return nil
}
