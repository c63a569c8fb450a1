// Package difftest is pgshard's differential oracle: it loads one
// deterministic dataset (Generate) into a plain PostgreSQL database, the
// oracle, and through pgshard into several shard layouts, runs a corpus of
// SELECT queries against both and classifies every answer (Run).
//
// For each query and layout the outcome is one of
//
//   - equal: pgshard answered and its answer equals the oracle's;
//   - refused: pgshard refused with SQLSTATE 0A000 (feature_not_supported),
//     which it promises to do rather than answer wrongly; a refusal never
//     counts as a pass;
//   - error: pgshard failed with any other error where the oracle answered,
//     including a 0A000 raised by a PostgreSQL server rather than by pgshard
//     (a server's error names its source file and routine, pgshard's own
//     do not);
//   - wrong: both answered and the answers differ (values, row count, order
//     of an ordered query, or column names).
//
// A query the oracle itself rejects is a bug of the corpus, reported apart.
//
// Answers are compared value by value in the text form database/sql gives
// when a column is scanned into sql.NullString (both sides go through pgx's
// database/sql driver, so Go-side conversions are the same), with one
// exception: float8 columns are compared with a relative tolerance of 1e-12
// (float4: 1e-6), because pgshard may add the shards' partial sums in
// another order than a single server does. Queries marked ordered are
// compared as ordered lists; the others as multisets (rows sorted by their
// text form).
//
// Layouts differ in shard count and replication factor, and may carry DSN
// options (pgx's simple protocol, a session time zone) that the oracle is
// then read with too. Every load and query runs in a session on which
// Config.Session (SET statements) ran first, on the oracle's side as on
// pgshard's; with Config.Schema the tables live in that schema, with
// ordinary tables of the same names in public. Every third query runs
// inside a transaction, where pgshard takes other code paths.
//
// The dataset's time tables (events, days, stamps: keyed by timestamptz,
// date and timestamp) also hold literal rows, inserted in each session's
// settings on both sides (a zone-less timestamptz key, a '03/04/2024'
// date). The oracle keeps one database per set of layout options for them.
// After the load, a storage check per distributed table reads the shard
// placements and the template table directly: the shards together must
// hold the oracle's rows, replicas must agree, and the template must be
// empty (a write that went there is lost to every distributed read).
//
// TestDifferentialMatrix runs the oracle under the settings matrix
// (MatrixCells): collations C, libc en_US.UTF-8 and ICU en-US; TimeZone
// UTC, America/New_York and Asia/Kolkata; DateStyle ISO and 'SQL, DMY'; a
// search_path whose first schema, "Sch ema", holds the distributed tables
// — each cell on a cluster initialized for it (pgtest.StartWith), with the
// settings on the server, in the DSN or SET per session.
//
// The corpus is testdata/differential/queries.sql (entries introduced by
// "-- name: <id>", optionally "-- ordered" and "-- args: ..."), plus
// single-table queries drawn by a seeded random generator (GenerateQueries).
//
// TestDifferentialSchemaChanges (RunSchemaSteps) covers schema changes:
// on one layout (4 shards × 2 replicas) it applies a sequence of steps
// (ADD COLUMN with constant and now() defaults, UPDATE of the new column,
// RENAME COLUMN, ALTER COLUMN TYPE with and without USING, SET/DROP NOT
// NULL and DEFAULT, CHECK, UNIQUE and foreign keys, indexes, DROP COLUMN,
// RENAME and DROP TABLE, TRUNCATE, ALTER of the reference table, DDL in a
// committed and in a rolled-back transaction, refused changes) to the
// oracle and through pgshard; a statement must succeed on both sides or
// fail on both with the same SQLSTATE, and pgshard's 0A000 refusals are
// not run on the oracle. After each step it reads the step's own queries
// and a rotating tenth of the corpus on both, compares every placement's
// and the template's columns, indexes and constraints with the oracle's
// (shape:<table>), and runs the storage check on the new columns. A corpus
// query the oracle rejects on the new shape (a column gone, a type
// changed) is counted as skipped, and pgshard must reject it too.
//
// TestDifferential first checks the harness itself: it tampers with a
// shard behind pgshard's back and requires every outcome to be detected.
package difftest
