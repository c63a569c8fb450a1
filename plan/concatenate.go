package plan

// Arm is one statement of a UNION ALL run arm by arm: its SQL, whose
// parameter $i is the statement's parameter Params[i-1].
type Arm struct {
	SQL    string
	Params []int
}
