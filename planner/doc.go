// Package planner turns a SQL text into a Plan: which distributed tables it
// touches, where each one's shard key comes from (a literal or a bind
// parameter), how to rewrite the statement for one shard, and how to merge
// the answers of many.
//
// Planning happens once per distinct SQL text and catalog version; the Plan is
// immutable afterwards and shared by every execution and goroutine. Routing a
// Plan for a given set of arguments (Plan.Route) costs a hash and a binary
// search per distributed table reference; rewriting for a shard (Plan.ShardSQL)
// deparses once per shard and caches the text.
//
// The planner never guesses: a statement whose target shard it cannot prove is
// refused with SQLSTATE 0A000 and a message naming the construct.
package planner
