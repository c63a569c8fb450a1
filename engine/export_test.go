package engine

import "github.com/pgshard/pgshard/internal/pgtest"

// What the external tests (package engine_test: those that plan SQL with
// the planner, which imports engine) use of this package's internals and
// of the servers TestMain starts (servers_test.go).
var (
	ExecOn            = execOn
	OpenNode          = openNode
	ConnectNode       = connectNode
	DSNOf             = dsnOf
	NodeOf            = nodeOf
	WithSessionParams = withSessionParams
	TargetShards      = targetShards
)

// Servers are the servers TestMain started.
func Servers() *pgtest.Cluster { return cluster }

// ForgetServerTypes empties the cache of the servers' types, after a test
// created types.
func ForgetServerTypes() {
	serverTypeCache.Lock()
	serverTypeCache.m = nil
	serverTypeCache.Unlock()
}

// SessionSettings are session settings as DSN parameters (Params), named.
type SessionSettings struct{ Name, Params string }

// CanonicalSettings are canonicalSettings.
var CanonicalSettings = func() []SessionSettings {
	out := make([]SessionSettings, len(canonicalSettings))
	for i, s := range canonicalSettings {
		out[i] = SessionSettings{Name: s.name, Params: s.params}
	}
	return out
}()
