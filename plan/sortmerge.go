package plan

import "strconv"

// SortMergeKey is one ORDER BY key of a streaming sort merge.
type SortMergeKey struct {
	// Column is the key's position in the shard rows: in the select list
	// when Extra is false, else among the extra columns after it (whose
	// position depends on how many columns a * expands to).
	Column int
	Extra  bool
	// Desc sorts descending; NullsFirst puts NULLs first (PostgreSQL's
	// default is NULLS LAST for ASC, NULLS FIRST for DESC: already applied).
	Desc, NullsFirst bool
}

// KeysString renders sort merge keys for plan descriptions and EXPLAIN, as
// "[column 2 desc nulls first, extra 1]".
func KeysString(keys []SortMergeKey) string {
	out := "["
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		if k.Extra {
			out += "extra " + strconv.Itoa(k.Column+1)
		} else {
			out += "column " + strconv.Itoa(k.Column+1)
		}
		if k.Desc {
			out += " desc"
		}
		if k.NullsFirst {
			out += " nulls first"
		}
	}
	return out + "]"
}

// Bound is a LIMIT or OFFSET: absent (Set false), a constant, or a
// statement parameter (Param > 0, numbered after Eval's values like the
// driver's arguments).
type Bound struct {
	Set   bool
	Const int64
	Param int
}

// String renders a bound for plan descriptions: "none", a number or "$n".
func (b Bound) String() string {
	switch {
	case !b.Set:
		return "none"
	case b.Param > 0:
		return "$" + strconv.Itoa(b.Param)
	}
	return strconv.FormatInt(b.Const, 10)
}

// MergeState is what the driver learnt, on a first execution, about merging
// a sort merge's rows in Go.
type MergeState struct {
	// Known is false until the driver has asked.
	Known bool
	// Bytewise tells, per key, whether PostgreSQL orders the key's values by
	// their bytes when they are text (a C, POSIX or C.UTF-8 collation); true
	// for keys of types without collation.
	Bytewise []bool
	// Refused records a key type Go cannot compare exactly: the driver uses
	// the combine plan from then on.
	Refused bool
}

// PickArgs picks, for each parameter $i of a statement that numbers its
// own (params[i-1] is the statement parameter it takes, after Eval's
// values), its argument; nil for one beyond args.
func PickArgs(params []int, args []any) []any {
	out := make([]any, len(params))
	for i, n := range params {
		if n <= len(args) {
			out[i] = args[n-1]
		}
	}
	return out
}
