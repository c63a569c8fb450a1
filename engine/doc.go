// Package engine runs the plans of statements on distributed tables: a plan
// is a tree of primitives (Route to one shard, Scatter over several,
// SortMerge, Aggregate, Combine, Materialize, InsertSelect, Admin, Explain,
// CopyFrom, CopyTo), each in a file of its own named after it, behind one
// small interface, Primitive. planner.Build makes the tree of a plan;
// engine does not import the planner: each primitive owns its inputs, the
// planner's per-shard rewriting behind small interfaces defined here.
//
// Primitives reach the nodes only through a Cursor, which each database/sql
// connection's session.Session implements: it owns the session, the
// transaction, and (through its session.Cluster) the worker pools, the
// fan-out reservations, fail-over and the marking of placements that
// missed a write. A primitive holds no
// connection of its own and no state between executions: the same tree
// serves every execution of a cached plan, on any connection, at once.
//
// A statement's way through the code goes down and does not come back:
// conn (package pgshard) → planner (a Plan, cached per SQL text) →
// planner.Build (the tree) → primitives → Cursor (package session) → nodes. EXPLAIN is the Explain primitive walking the
// tree it explains (Primitive.Describe), never a second code path.
//
// Layout, this round: the streaming pieces (merge sort, limit, project,
// parallel read-ahead) stay in package merge, which the primitives use.
// Combine and Materialize carry values between servers in binary
// (binaryarray.go, resulttypes.go), reaching pgx through Cursor.OnShard and
// Cursor.OnSession. Transactions and two-phase commit stay in package
// pgshard, reached through Cursor.Atomically, and so does the catalog work
// of the admin functions (Cursor.RunAdmin).
package engine
