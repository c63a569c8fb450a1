package plan

// CombineInput is what the combine query needs to know of the partial
// columns, learnt from the shards: their types (as format_type prints them,
// with modifiers), collations ("" for the default or none), and which
// travel as binary arrays of their type (Binary[i]) rather than as text
// arrays cast to it.
type CombineInput struct {
	Types      []string
	Collations []string
	Binary     []bool
}
