// Package txn commits a statement or transaction that wrote on several
// servers atomically, and finishes what a crash leaves in doubt.
//
// Atomic commit across servers (two-phase commit with the decision recorded
// in the metadata database):
//
//  1. Every participant on a worker runs PREPARE TRANSACTION '<id>_<i>', all
//     at once.
//  2. The decision: one autocommit INSERT of the transaction's id into
//     pgs_distribution_metadata.commit_record (committed = true) on the
//     metadata database. When the metadata database is itself a participant
//     (the transaction wrote an ordinary table), its session inserts the row
//     inside its own transaction and commits instead of preparing: that
//     commit is the decision.
//  3. Every prepared participant runs COMMIT PREPARED, all at once. One that
//     fails is retried at once on a connection of its own; if it still fails,
//     the placements it wrote are marked inactive (metadata database) before
//     the write is acknowledged, so no finalized placement lacks an
//     acknowledged write.
//
// The decision lives where no single worker's loss can hide it, and the
// single-participant path (one shard, one placement) stays a plain COMMIT.
// A lost connection or a FATAL during the decision leaves its outcome
// unknown: the client resolves it from the record (presumed abort: it
// inserts committed = false ON CONFLICT DO NOTHING, which waits for a
// concurrent decision and loses to one that committed) and never guesses;
// when even that fails it returns SQLSTATE 08007 and leaves the rest to the
// resolver.
//
// The resolver (every resolverInterval in each process, and Recover on
// demand) lists the prepared transactions named pgshard_... on every worker
// and the metadata database and finishes them as their record says: decided
// ones after decidedGrace (leaving a live coordinator time to finish its
// own), undecided ones (their client died before the decision) after
// presumeAbortAge, or after decidedGrace when the backend that prepared
// them is gone, by writing the abort record first. Recover(ctx, minAge)
// lowers those ages to minAge, except for an undecided transaction whose
// preparing backend is still connected: its coordinator is alive and
// decides it, so it waits presumeAbortAge whatever minAge (a repair or move
// recovers its nodes with minAge 0 while writers commit). A statement waiting for
// one's locks has it finished at once (lockwait.go), by the same code
// (resolvePrepared). Prepared transactions
// named by the older scheme, pgshard_<hex coordinator>_<hex>_<i>, are decided
// from pgshard.transaction_log on their coordinator worker as before.
// docs/failure-model.md weighs this design.
package txn
