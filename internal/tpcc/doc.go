// Package tpcc is a TPC-C workload for database/sql: the nine tables, the
// initial population of clause 4.3, the five transactions of clause 2 with
// their SQL as the specification writes it, and the consistency conditions
// of clause 3.3.2. It runs unchanged on one PostgreSQL (driver "pgx") and
// through pgshard, where every table is distributed by its warehouse id,
// all in one co-location group, and item, which has none, is a reference
// table (a copy on every node), so that a transaction touching one
// warehouse runs on one node and a remote payment or remote stock line
// becomes a multi-node transaction.
//
// Sizes follow the specification (Spec) or a scaled-down population for
// tests (Small) in which every consistency condition still holds.
//
// What is not modelled: keying and think times (the driver runs
// transactions back to back, as benchmark kits do), the response-time
// constraints, and the durability tests.
package tpcc
