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
// then read with too. Every third query runs inside a transaction, where
// pgshard takes other code paths.
//
// The corpus is testdata/differential/queries.sql (entries introduced by
// "-- name: <id>", optionally "-- ordered" and "-- args: ..."), plus
// single-table queries drawn by a seeded random generator (GenerateQueries).
//
// TestDifferential first checks the harness itself: it tampers with a
// shard behind pgshard's back and requires every outcome to be detected.
package difftest
