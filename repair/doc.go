// Package repair brings an inactive shard placement back in line with a
// finalized one: pg_shard's master_copy_shard_placement(shard_id,
// source_node_name, source_node_port, target_node_name, target_node_port).
//
// CopyShardPlacement checks the placements in the metadata database as
// pg_shard did (same errors, SQLSTATE 22023), then, on the target node and in
// one transaction, drops the shard table, recreates it from the template
// table's definition (catalog.ReadTemplateDDL), and fills it with a binary
// COPY streamed from the source node's table, read in one REPEATABLE READ
// snapshot. The rows flow through an io.Pipe, so a shard of any size is copied
// without being held in memory. Only when the target has committed is its
// placement marked finalized (shard_state 1) again.
//
// If anything fails, the target's transaction rolls back and its placement
// stays inactive (shard_state 3); the repair can simply be run again.
//
// Marking the placement finalized bumps the metadata version (a trigger on
// the metadata tables does), so every process reloads its catalog snapshot
// and sends reads and writes to the repaired placement again.
//
// Writes: pg_shard took an exclusive lock on the shard for the whole repair,
// so no write could slip between the copy's snapshot and the placement's
// return to the finalized state. CopyShardPlacement keeps the shard
// writable: the target is written by every write planned once it is
// filling, and a write planned before (a process that stopped heartbeating,
// or paused after its lease check) is refused on the source by a write fence
// (fence.go) from before the copy until the target is finalized; the writes
// already on the source end before the copy (lockers.go). See
// docs/failure-model.md.
//
// MoveShardPlacement (master_move_shard_placement) moves a placement to a
// node without one, with the placements of the co-located shards (same
// range) of every table in the shard's co-location group, switched in one
// metadata transaction, so that the group stays co-located.
package repair
