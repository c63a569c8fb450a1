// Package catalog holds pgshard's distribution metadata: which tables are
// distributed, on which column, into which shards, and where each shard's
// placements live.
//
// The metadata lives in the metadata database, in schema
// pgs_distribution_metadata, with pg_shard's tables and columns (partition,
// shard, shard_placement) plus pgshard's own (node, metadata_version, and
// colocation: each table's co-location group, colocation.go). A
// Snapshot is an immutable, in-memory copy of it: built once by Load, never
// changed afterwards, and so safe to share between goroutines without locks.
// A Cache holds the current Snapshot and swaps in a new one atomically when
// the metadata changes.
//
// The package also computes PostgreSQL's own hash of a key value (hash.go) and
// runs pg_shard's administrative functions (admin.go).
package catalog
