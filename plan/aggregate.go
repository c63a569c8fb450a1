package plan

// AggregateKind is how one output column of a multi-shard aggregate is
// combined from the shards' partial results.
type AggregateKind int

const (
	// AggCount adds the shards' counts.
	AggCount AggregateKind = iota + 1
	// AggSum adds the shards' sums (NULL when every shard's is NULL).
	AggSum
	// AggMin takes the least of the shards' minimums.
	AggMin
	// AggMax takes the greatest of the shards' maximums.
	AggMax
)

func (k AggregateKind) String() string {
	return [...]string{"?", "count", "sum", "min", "max"}[k]
}

// Aggregate is the merge step of one output column.
type Aggregate struct {
	Kind AggregateKind
}
