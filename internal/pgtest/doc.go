// Package pgtest starts and stops real PostgreSQL servers on loopback ports for
// pgshard's tests, benchmarks and examples.
//
// A Cluster is a set of independent PostgreSQL servers (Nodes) built from the
// machine's PostgreSQL binaries (pg_config --bindir, or PGSHARD_PG_BINDIR). Each
// node gets its own data directory under a temporary directory and its own free
// port on 127.0.0.1. initdb runs once per machine into a cached template that is
// copied for every node, so starting a node costs one pg_ctl start.
//
// When the process runs as root, initdb and the servers run as the "postgres" OS
// user, since PostgreSQL refuses to run as root.
//
// Nothing here skips: when a server cannot be started, the error says why.
package pgtest
