package plan

import "github.com/pgshard/pgshard/catalog"

// Target is what the node layer needs of one statement a primitive sends
// to shards: the tables it runs on, how its arguments are bound (the Eval
// step, the key parameters the session's settings read) and which of them
// the shard statement takes. The planner makes it once per plan; it is
// immutable after and shared by every connection.
type Target struct {
	// Table is the distributed table the statement is routed by; its
	// shards are the ones a shard index counts.
	Table *catalog.Table
	// Tables are the distributed tables the shard statement references,
	// each once, Table first (co-located with it); nil when none.
	Tables []*catalog.Table
	// Written is the distributed table an INSERT, UPDATE or DELETE
	// writes, or nil (planner.Plan.Target).
	Written *catalog.Table
	// Modifies is set for a statement that writes: it runs on every
	// writable placement of its shard.
	Modifies bool
	// PureRead is set for a SELECT that locks no rows and calls only
	// immutable functions (planner.Plan.PureRead).
	PureRead bool
	// ReadsOtherRows is set for a modification that reads rows besides
	// those it writes (planner.Plan.ReadsOtherRows).
	ReadsOtherRows bool
	// Eval is the step run on the metadata database before routing; nil
	// when none.
	Eval *Eval
	// SettingKeyParams are the parameters that are shard key values of a
	// type whose text the session's settings decide; nil when none.
	SettingKeyParams []KeyParam
	// ShardParams, when not nil, lists the statement's parameters (after
	// Eval's values) the shard statement takes: its $i is ShardParams[i-1].
	// Nil means all of them, in order.
	ShardParams []int
}

// ShardTarget returns t: a Target stands for itself where a Targeted is
// asked for.
func (t *Target) ShardTarget() *Target { return t }

// Targeted is a statement that runs on shards: a Target, or a plan that
// has one.
type Targeted interface {
	ShardTarget() *Target
}

// ShardArgs picks, from the statement's arguments (after Eval's values),
// those the shard statement takes (params, as Target.ShardParams; nil
// means all).
func ShardArgs[T any](params []int, args []T) []T {
	if params == nil {
		return args
	}
	out := make([]T, 0, len(params))
	for _, n := range params {
		if n <= len(args) {
			out = append(out, args[n-1])
		}
	}
	return out
}

// KeyParam is a statement parameter used as a shard key value of type Type.
type KeyParam struct {
	Param int
	Type  uint32
}

// Eval is a SELECT run on the metadata database whose results become the
// parameters First, First+1, ... of the statement sent to the shards.
type Eval struct {
	// SQL is the SELECT; its parameter $i is the statement's parameter
	// Params[i-1].
	SQL    string
	Params []int
	// First is the number of the first parameter the results fill.
	First int
	// Count is how many values the SELECT returns.
	Count int
	// KeyTypes, when not nil, has for each value the type of the shard key
	// it is (0 for a value that is no key). A key value that comes back as
	// text the session's settings decide (catalog.KeyTextIndependentOfSettings)
	// is read again by the session as that type, like a text parameter.
	KeyTypes []uint32
	// Typed, when not nil, marks the values computed as their key's own
	// type (a key literal the session's settings read, cast to it): a
	// driver reads them in binary, as typed Go values (time.Time, ...) that
	// hash exactly as PostgreSQL stores them, and passes them on typed,
	// whatever the session's DateStyle. The others are text.
	Typed []bool
}

// InsertPart is the statement for one shard of a multi-row INSERT whose
// rows fall in different shards.
type InsertPart struct {
	// Shard is the shard's index in the table's shards.
	Shard int
	// SQL inserts the part's rows; Args are its arguments.
	SQL  string
	Args []any
	// Rows are the indexes, in VALUES order, of the rows it inserts.
	Rows []int
}
