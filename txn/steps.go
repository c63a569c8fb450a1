package txn

import "time"

// The steps of a write at which a test may stop the process (Step).
const (
	StepAfterPlacementWrite = "after-placement-write" // a replicated write ran on one more placement
	StepAfterMarking        = "after-marking"         // unreachable placements were marked inactive
	StepAfterPrepare        = "after-prepare"         // every other participant prepared
	StepBeforeDecision      = "before-decision"
	StepAfterDecision       = "after-decision"
	StepAfterCommitPrepared = "after-commit-prepared"
)

// Steps lists every step, in the order a write reaches them.
var Steps = []string{StepAfterPlacementWrite, StepAfterMarking, StepAfterPrepare, StepBeforeDecision, StepAfterDecision, StepAfterCommitPrepared}

// Step is a fault-injection point, called at each step: tests replace it
// to kill the process (or wait) at a given step. It does nothing in a real
// program. Replace it only while no write runs.
var Step = func(step string) {}

// CommitTimeout bounds the decision and COMMIT PREPARED phases of a
// commit, which run even when the statement's context has ended. Tests
// lower it; change it only while no commit runs.
var CommitTimeout = 30 * time.Second
