// Package pgshard is a database/sql driver that shards PostgreSQL tables by a
// hash of one column across several PostgreSQL servers, with replicas,
// without changing the application's SQL.
//
//	import _ "github.com/pgshard/pgshard"
//
//	db, err := sql.Open("pgshard", "postgres://app@meta-host:5432/app")
//
// The DSN names the metadata database: it holds pg_shard's distribution
// metadata (schema pgs_distribution_metadata, created on first use) and every
// ordinary, undistributed table. Statements on distributed tables go straight
// from the application to the worker that holds the shard; the metadata
// database is not on their path.
//
// Each distinct SQL text is parsed once. The shard key is read at execute
// time from literals and bind parameters, so one prepared statement serves
// every key. Table names are rewritten through the parse tree.
//
// What pgshard cannot run correctly it refuses with SQLSTATE 0A000 and a
// message naming the construct; errors from PostgreSQL reach the caller as
// *pgconn.PgError.
package pgshard
