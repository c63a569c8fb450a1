// Package session is pgshard's node layer, between the engine's primitives
// and the servers, as Vitess's vtgate keeps its ScatterConn and SafeSession
// apart from its engine.
//
// A Cluster is what one *sql.DB shares: the metadata database pool, the
// catalog cache, one connection pool per worker node (nodepool.go), the
// fan-out reservations that keep statements holding several connections
// from waiting on each other (fanout.go), the cache of result types, and
// the two-phase commit coordinator of package txn (coordinator.go).
//
// A Session is the node side of one database/sql connection and the
// engine's Cursor (cursor.go, copycursor.go): reads of a shard on the first
// placement that answers, writes on every placement with the marking of
// those that missed one (placements.go), the connection's transaction and
// its participants (transaction.go), the session's own settings, search_path
// and temporary objects carried to the workers (settings.go), the Eval step
// (eval.go), the statements the metadata database answers alone
// (session.go), the administrative functions' catalog work (admin.go,
// reference.go, ddl.go), and query strings of several statements with their
// implicit transaction block (multistatement.go).
//
// The driver (package pgshard) plans each statement, builds its tree of
// primitives and runs it with the Session as the Cursor; it reaches the
// nodes only through this package.
package session
