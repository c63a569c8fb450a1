package plan

// MaterializeInput is what the rest of a materialized statement needs of
// each subquery's columns: their names, types (format_type's names), and
// which travel as binary arrays of their type (Binary[i][j]) rather than
// as text arrays cast to it.
type MaterializeInput struct {
	Names  [][]string
	Types  [][]string
	Binary [][]bool
}

// Base64Suffix, after a send function's name given to a subquery's
// SQLSending, has the subquery return that function's bytes in base64.
const Base64Suffix = "|base64"
