// Package plan holds the types the planner produces and the engine's
// primitives are built of, so that engine need not import planner (issue
// 11, docs/design/executor.md): what a statement sent to shards runs on
// (Target), its Eval step (Eval), the parts of a split INSERT
// (InsertPart). Types only, with the accessors their fields need; no
// planning and no execution. Values are immutable once a plan is made and
// shared by every connection that runs it.
package plan
