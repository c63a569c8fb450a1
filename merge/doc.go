// Package merge holds the executor's merge primitives: the pieces that turn the
// driver.Rows of several shard queries into the one driver.Rows a multi-shard
// statement returns, in the spirit of Vitess's engine primitives.
//
//   - Parallel starts every shard's query at once and reads each ahead, on its
//     own goroutine, into a bounded buffer.
//   - Concatenate yields the rows of every source, whichever is ready first.
//   - MergeSort merges sources that are each sorted by the same keys.
//   - Limit applies OFFSET and LIMIT and stops the sources early.
//   - Project drops hidden trailing columns (sort keys pushed to the shards).
//   - CompareFunc gives PostgreSQL's default btree order for a column type.
//
// Rows are []driver.Value in the representation of pgx's database/sql driver:
// int64 for int2/int4/int8, float64 for float4/float8, bool, time.Time for
// date/timestamp/timestamptz (or the strings "infinity" and "-infinity"),
// []byte for bytea and json/jsonb, string for everything else, nil for NULL.
//
// Every Rows built here reports the column metadata (database type name, scan
// type, length, precision and scale, nullability) of its first source, so
// database/sql's ColumnTypes work on merged results as on a single shard's.
//
// Like any driver.Rows, the Rows returned here are used by one goroutine at a
// time and must be closed; closing a merged Rows closes its sources.
package merge
