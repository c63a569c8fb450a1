package pgshard

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/txn"
)

// KillAtEnv names the environment variable that makes a test binary kill
// itself (SIGKILL) at a commit step: "<step>" or "<step>:<n>" for the n-th
// time the step is reached (1-based).
const KillAtEnv = "PGSHARD_TEST_KILL_AT"

// CommitSteps lists the steps a test can kill the process at.
var CommitSteps = txn.Steps

func init() {
	spec := os.Getenv(KillAtEnv)
	if spec == "" {
		return
	}
	step, nth := spec, int64(1)
	if i := strings.LastIndexByte(spec, ':'); i >= 0 {
		step = spec[:i]
		n, err := strconv.ParseInt(spec[i+1:], 10, 64)
		if err != nil || n < 1 {
			panic("bad " + KillAtEnv + ": " + spec)
		}
		nth = n
	}
	var seen atomic.Int64
	txn.Step = func(s string) {
		if s == step && seen.Add(1) == nth {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}

// SetCommitStep replaces the commit fault-injection hook (txn.Step) for a
// test; restore puts the previous one back. Set it before the statements it
// watches start and restore it after they end.
func SetCommitStep(f func(step string)) (restore func()) {
	old := txn.Step
	txn.Step = f
	return func() { txn.Step = old }
}

// StepAfterDecision is the commit step after the coordinator committed and
// before the other participants' COMMIT PREPARED.
const StepAfterDecision = txn.StepAfterDecision

// SetMaxMaterializedBytes changes the bound on a statement's materialized
// subqueries for a test; restore puts the previous one back.
func SetMaxMaterializedBytes(n int) (restore func()) {
	old := engine.MaxMaterializedBytes
	engine.MaxMaterializedBytes = n
	return func() { engine.MaxMaterializedBytes = old }
}

// SortMergeStreams reports how pgshard answers query (cached plan, after a
// first execution has learnt its sort keys' collations): streams is true
// when the shards' sorted rows are merged in Go, false when PostgreSQL
// combines them; known is false when the plan has no streaming merge or has
// not learnt yet.
func SortMergeStreams(ctx context.Context, db *sql.DB, query string) (streams, known bool, err error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return false, false, err
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		p, err := dc.(*conn).s.PlanFor(ctx, query)
		if err != nil || p.SortMerge == nil {
			return err
		}
		st := p.SortMerge.State()
		known = st.Known
		streams = st.Known && !st.Refused
		return nil
	})
	return streams, known, err
}

// SetMaxCombineBytes changes the bound on the partial rows of a multi-shard
// query combined by PostgreSQL for a test; restore puts the previous one
// back.
func SetMaxCombineBytes(n int) (restore func()) {
	old := engine.MaxCombineBytes
	engine.MaxCombineBytes = n
	return func() { engine.MaxCombineBytes = old }
}

// StepAfterPrepare and StepBeforeDecision are the commit steps once every
// participant that prepares has prepared, and right before the commit is
// decided.
const (
	StepAfterPrepare   = txn.StepAfterPrepare
	StepBeforeDecision = txn.StepBeforeDecision
)

// SetCommitTimeout changes the bound on a commit's decision and COMMIT
// PREPARED phases for a test; restore puts the previous one back.
func SetCommitTimeout(d time.Duration) (restore func()) {
	old := txn.CommitTimeout
	txn.CommitTimeout = d
	return func() { txn.CommitTimeout = old }
}

// NewLockWaitTracer returns the tracer every worker pool's connections
// carry (txn/lockwait.go), with a coordinator of its own, for a benchmark
// of what it costs a statement.
func NewLockWaitTracer() pgx.QueryTracer { return txn.New(nil).Tracer(catalog.Node{}) }
