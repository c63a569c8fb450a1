package planner

import "google.golang.org/protobuf/proto"

// Estimates of the memory a plan keeps, measured on plans of this planner
// (runtime.MemStats.HeapAlloc before and after planning): a parse tree
// takes about 12 times its protobuf encoding in Go structs, and a small
// plan one or two KB besides its trees (scopes, references, closures of the
// combine step).
const (
	planOverheadBytes = 1536
	treeBytesPerByte  = 12
	shardTextOverhead = 64
	// primitivesBytes is the tree of primitives (Build) and the
	// plan.Target its primitives share: a few small structs.
	primitivesBytes = 256
)

// RetainedBytes estimates the memory the plan keeps while it is cached: its
// SQL text (also the cache's key), its parse trees, its tree of primitives
// (counted whether or not it is made yet), and the statement rewritten for
// each of its shards, which ShardSQL computes on first use and keeps
// (counted for every shard, as if all were used; a plan of literal rows
// holds those of its rows' shards only). It is an estimate, within a small
// factor of the truth, for bounding a cache.
func (p *Plan) RetainedBytes() int {
	n := planOverheadBytes + 2*len(p.SQL)
	if p.Kind != Passthrough {
		n += primitivesBytes
	}
	trees := 1
	if p.Combine != nil || p.SortMerge != nil || p.InsertSelect != nil || p.Materialize != nil || p.Explain != nil {
		trees = 2 // the merge step's own statements
	}
	if p.tree != nil {
		n += trees * treeBytesPerByte * proto.Size(p.tree)
	}
	if p.Concatenate != nil {
		for _, a := range p.Concatenate.Arms {
			n += shardTextOverhead + len(a.SQL)
		}
	}
	if p.Statements != nil {
		// The statements' texts, and their own plans in the cache.
		n += len(p.SQL) + len(p.Statements)*shardTextOverhead
	}
	if p.rowsDropped {
		// The statements for its rows' shards only, which hold each row
		// once.
		return n + len(p.SQL) + len(p.SQL)/4 + (len(p.parts)+1)*shardTextOverhead
	}
	n += p.ShardCount() * (len(p.SQL) + len(p.SQL)/4 + shardTextOverhead)
	return n
}
