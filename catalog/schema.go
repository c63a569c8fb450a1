package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// MetadataSchema is the schema that holds the distribution metadata, named as
// in pg_shard.
const MetadataSchema = "pgs_distribution_metadata"

// MetadataChannel is the LISTEN/NOTIFY channel on which every metadata change
// is announced, with the new version as payload.
const MetadataChannel = "pgs_distribution_metadata_changed"

// schemaLockKey is the advisory lock taken while creating the schema, so that
// processes starting together do not race each other.
const schemaLockKey = 0x70677368617264 // "pgshard"

// schemaDDL creates the metadata schema. pg_shard's three tables keep its
// columns exactly; node, metadata_version, colocation and the id sequences
// are pgshard's. Every statement is idempotent: EnsureSchema runs them all
// again to upgrade a schema an older pgshard created. The last statement
// creates the trigger EnsureSchema checks for, so it must stay the newest
// object.
var schemaDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS pgs_distribution_metadata`,
	`CREATE TABLE IF NOT EXISTS pgs_distribution_metadata.partition (
		relation_id oid PRIMARY KEY,
		partition_method "char" NOT NULL,
		key text NOT NULL
	)`,
	`CREATE SEQUENCE IF NOT EXISTS pgs_distribution_metadata.shard_id_sequence MINVALUE 10000 START 10000`,
	`CREATE TABLE IF NOT EXISTS pgs_distribution_metadata.shard (
		id bigint PRIMARY KEY DEFAULT nextval('pgs_distribution_metadata.shard_id_sequence'),
		relation_id oid NOT NULL,
		storage "char" NOT NULL,
		min_value text NOT NULL,
		max_value text NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS shard_relation_index ON pgs_distribution_metadata.shard (relation_id)`,
	`CREATE SEQUENCE IF NOT EXISTS pgs_distribution_metadata.shard_placement_id_sequence MINVALUE 1 START 1`,
	`CREATE TABLE IF NOT EXISTS pgs_distribution_metadata.shard_placement (
		id bigint PRIMARY KEY DEFAULT nextval('pgs_distribution_metadata.shard_placement_id_sequence'),
		shard_id bigint NOT NULL REFERENCES pgs_distribution_metadata.shard (id) ON DELETE CASCADE,
		shard_state integer NOT NULL,
		node_name text NOT NULL,
		node_port integer NOT NULL,
		UNIQUE (shard_id, node_name, node_port)
	)`,
	`CREATE TABLE IF NOT EXISTS pgs_distribution_metadata.node (
		node_name text NOT NULL,
		node_port integer NOT NULL CHECK (node_port BETWEEN 1 AND 65535),
		PRIMARY KEY (node_name, node_port)
	)`,
	`CREATE TABLE IF NOT EXISTS pgs_distribution_metadata.metadata_version (
		version bigint NOT NULL
	)`,
	`INSERT INTO pgs_distribution_metadata.metadata_version (version)
		SELECT 1 WHERE NOT EXISTS (SELECT FROM pgs_distribution_metadata.metadata_version)`,
	`CREATE TABLE IF NOT EXISTS pgs_distribution_metadata.process (
		id text PRIMARY KEY,
		acked bigint NOT NULL,
		seen timestamptz NOT NULL
	)`,
	// Every change to the metadata tables, by pgshard or by hand, bumps the
	// version and notifies the processes caching it.
	`CREATE OR REPLACE FUNCTION pgs_distribution_metadata.bump_version() RETURNS trigger
		LANGUAGE plpgsql AS $$
		DECLARE v bigint;
		BEGIN
			UPDATE pgs_distribution_metadata.metadata_version SET version = version + 1 RETURNING version INTO v;
			PERFORM pg_notify('pgs_distribution_metadata_changed', v::text);
			RETURN NULL;
		END $$`,
	// DDL on the metadata database (a new ordinary table, say) changes what
	// the planner must know too. Event triggers need a superuser; without
	// one, new ordinary tables are seen at the next metadata change.
	`CREATE OR REPLACE FUNCTION pgs_distribution_metadata.ddl_changed() RETURNS event_trigger
		LANGUAGE plpgsql AS $$
		DECLARE v bigint;
		BEGIN
			UPDATE pgs_distribution_metadata.metadata_version SET version = version + 1 RETURNING version INTO v;
			PERFORM pg_notify('pgs_distribution_metadata_changed', v::text);
		END $$`,
	`DO $$
		BEGIN
			IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'pgs_distribution_metadata_ddl') THEN
				CREATE EVENT TRIGGER pgs_distribution_metadata_ddl ON ddl_command_end
					WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'DROP TABLE', 'ALTER TABLE',
					             'CREATE VIEW', 'DROP VIEW', 'CREATE MATERIALIZED VIEW', 'DROP MATERIALIZED VIEW',
					             'CREATE FOREIGN TABLE', 'DROP FOREIGN TABLE', 'CREATE SEQUENCE', 'DROP SEQUENCE')
					EXECUTE FUNCTION pgs_distribution_metadata.ddl_changed();
			END IF;
		EXCEPTION WHEN insufficient_privilege THEN
			NULL;
		END $$`,
	`CREATE OR REPLACE TRIGGER partition_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgs_distribution_metadata.partition
		FOR EACH STATEMENT EXECUTE FUNCTION pgs_distribution_metadata.bump_version()`,
	`CREATE OR REPLACE TRIGGER shard_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgs_distribution_metadata.shard
		FOR EACH STATEMENT EXECUTE FUNCTION pgs_distribution_metadata.bump_version()`,
	`CREATE OR REPLACE TRIGGER shard_placement_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgs_distribution_metadata.shard_placement
		FOR EACH STATEMENT EXECUTE FUNCTION pgs_distribution_metadata.bump_version()`,
	`CREATE OR REPLACE TRIGGER node_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgs_distribution_metadata.node
		FOR EACH STATEMENT EXECUTE FUNCTION pgs_distribution_metadata.bump_version()`,
	// Co-location groups, as Citus's colocationid: tables of one group have
	// the same key type, shard ranges and placement nodes.
	`CREATE SEQUENCE IF NOT EXISTS pgs_distribution_metadata.colocation_id_sequence MINVALUE 1 START 1`,
	`CREATE TABLE IF NOT EXISTS pgs_distribution_metadata.colocation (
		relation_id oid PRIMARY KEY,
		colocation_id bigint NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS colocation_id_index ON pgs_distribution_metadata.colocation (colocation_id)`,
	`CREATE OR REPLACE TRIGGER colocation_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgs_distribution_metadata.colocation
		FOR EACH STATEMENT EXECUTE FUNCTION pgs_distribution_metadata.bump_version()`,
	// Shard tables an older pgshard named "<table>_<shardid>" although that
	// was longer than 63 bytes: PostgreSQL truncated the name, and the
	// table keeps the truncated one (see ShardName). Recorded once, when
	// the table is created: every shard existing then was named so.
	`DO $$
		BEGIN
			IF to_regclass('pgs_distribution_metadata.shard_table_name') IS NULL THEN
				CREATE TABLE pgs_distribution_metadata.shard_table_name (
					shard_id bigint PRIMARY KEY REFERENCES pgs_distribution_metadata.shard (id) ON DELETE CASCADE,
					table_name text NOT NULL
				);
				INSERT INTO pgs_distribution_metadata.shard_table_name (shard_id, table_name)
					SELECT s.id, (c.relname || '_' || s.id)::name::text
					FROM pgs_distribution_metadata.shard s JOIN pg_class c ON c.oid = s.relation_id
					WHERE octet_length(c.relname || '_' || s.id) > 63;
			END IF;
		END $$`,
	`CREATE OR REPLACE TRIGGER shard_table_name_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgs_distribution_metadata.shard_table_name
		FOR EACH STATEMENT EXECUTE FUNCTION pgs_distribution_metadata.bump_version()`,
}

// schemaCheck tells whether the newest schema objects exist (see
// schemaDDL): the last trigger of each table added since pg_shard's.
const schemaCheck = `SELECT EXISTS (SELECT FROM pg_trigger WHERE tgname = 'colocation_changed' AND tgrelid = to_regclass('pgs_distribution_metadata.colocation'))
	AND EXISTS (SELECT FROM pg_trigger WHERE tgname = 'shard_table_name_changed' AND tgrelid = to_regclass('pgs_distribution_metadata.shard_table_name'))`

// EnsureSchema creates the metadata schema when it is missing, or completes
// one an older pgshard created: then it also records the co-location groups
// of the tables that have shards but no group (BackfillColocation). Either
// way it installs the template guards that are missing
// (EnsureTemplateGuards). It is safe to call from many processes at once.
func EnsureSchema(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, schemaCheck).Scan(&exists); err != nil {
		return fmt.Errorf("catalog: checking metadata schema: %w", err)
	}
	if exists {
		return EnsureTemplateGuards(ctx, conn)
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLockKey)); err != nil {
			return fmt.Errorf("catalog: locking metadata schema: %w", err)
		}
		for _, stmt := range schemaDDL {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("catalog: creating metadata schema: %w", err)
			}
		}
		return BackfillColocation(ctx, tx)
	})
	if err != nil {
		return err
	}
	return EnsureTemplateGuards(ctx, conn)
}

// BumpVersion increments the metadata version and announces it on
// MetadataChannel. Call it in the transaction that changed the metadata, so
// the change and the new version become visible together.
func BumpVersion(ctx context.Context, q Querier) (int64, error) {
	var v int64
	if err := q.QueryRow(ctx, `UPDATE pgs_distribution_metadata.metadata_version SET version = version + 1 RETURNING version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("catalog: bumping metadata version: %w", err)
	}
	if _, err := q.Exec(ctx, `SELECT pg_notify($1, $2)`, MetadataChannel, fmt.Sprint(v)); err != nil {
		return 0, fmt.Errorf("catalog: announcing metadata version: %w", err)
	}
	return v, nil
}

// CurrentVersion reads the metadata version.
func CurrentVersion(ctx context.Context, q Querier) (int64, error) {
	var v int64
	if err := q.QueryRow(ctx, `SELECT version FROM pgs_distribution_metadata.metadata_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("catalog: reading metadata version: %w", err)
	}
	return v, nil
}
