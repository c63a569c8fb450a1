package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// StartInitdb is Start with extra initdb arguments, appended to the
// defaults (-E UTF8 --locale=C.UTF-8, or C where the machine lacks it), so
// that they override them: for example "--locale-provider=icu",
// "--icu-locale=en-US" for servers whose default collation is ICU's. Each
// distinct list of arguments is initdb'd once per machine and cached like
// the default template. The caller must Close the cluster.
func StartInitdb(ctx context.Context, n int, initdbArgs ...string) (*Cluster, error) {
	env, err := loadEnvironment(ctx)
	if err != nil {
		return nil, err
	}
	template := env.template
	if len(initdbArgs) > 0 {
		if template, err = env.ensureTemplate(ctx, initdbArgs); err != nil {
			return nil, err
		}
	}
	return env.start(ctx, n, template)
}

// StartInitdbTB is StartTB with extra initdb arguments (see StartInitdb):
// it stops the cluster in tb.Cleanup and fails tb (never skips) when a
// server cannot be started.
func StartInitdbTB(tb testing.TB, n int, initdbArgs ...string) *Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := StartInitdb(ctx, n, initdbArgs...)
	if err != nil {
		tb.Fatalf("pgtest: starting %d PostgreSQL servers (initdb %v): %v", n, initdbArgs, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// initdbArgsKey names the cached template of a list of extra initdb
// arguments: "" for none (the default template), else a short hash.
func initdbArgsKey(args []string) string {
	if len(args) == 0 {
		return ""
	}
	h := sha256.New()
	for _, a := range args {
		h.Write([]byte(a))
		h.Write([]byte{0})
	}
	return "-" + hex.EncodeToString(h.Sum(nil))[:12]
}
