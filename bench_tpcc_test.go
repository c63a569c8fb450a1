package pgshard_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/pgshard/pgshard/internal/tpcc"
)

// benchTPCCConfig is the population BenchmarkTPCC loads: four warehouses,
// a tenth of the specification's items and customers, so that loading takes
// seconds on two cores.
var benchTPCCConfig = tpcc.Config{Warehouses: 4, Items: 10000, Customers: 300}

// benchTPCCTerminals is how many terminals drive the load at once.
const benchTPCCTerminals = 8

// BenchmarkTPCC runs the TPC-C mix (internal/tpcc) against one PostgreSQL
// server directly and through pgshard over the four workers with
// replication factor 1 and 2, 8 shards, on the same servers in the same
// run. The tables are analyzed after the load. An op is one transaction of the mix; the tpmC metric is committed
// New-Orders per minute. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench BenchmarkTPCC -benchtime 2000x -count 5
func BenchmarkTPCC(b *testing.B) {
	for _, bc := range []struct {
		name     string
		replicas int // 0: one server directly
	}{
		{"one-server", 0},
		{"pgshard-rf1", 1},
		{"pgshard-rf2", 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b)
			ctx := context.Background()
			db := e.DB
			sharding := tpcc.Sharding{Shards: 8, Replicas: bc.replicas}
			if bc.replicas == 0 {
				direct, err := sql.Open("pgx", e.workers[0].DSN(e.dbname))
				if err != nil {
					b.Fatal(err)
				}
				defer direct.Close()
				db, sharding = direct, tpcc.Sharding{}
			}
			if err := tpcc.Create(ctx, db, sharding); err != nil {
				b.Fatal(err)
			}
			if err := tpcc.Load(ctx, db, benchTPCCConfig, 1); err != nil {
				b.Fatal(err)
			}
			// Statistics, as autovacuum would gather them soon after a
			// load: a bare ANALYZE through pgshard runs on the metadata
			// database only, so the workers' databases are analyzed
			// directly.
			servers := e.workers
			if bc.replicas == 0 {
				servers = e.workers[:1]
			}
			for _, w := range servers {
				if _, err := e.worker(w).Exec(ctx, "ANALYZE"); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			st := tpcc.Run(ctx, db, benchTPCCConfig, tpcc.RunConfig{
				Terminals: benchTPCCTerminals, Duration: time.Hour, Seed: 7, Retries: 5,
				Transactions: max(1, b.N/benchTPCCTerminals),
			})
			b.StopTimer()
			for _, err := range st.Errors {
				b.Error(err)
			}
			b.ReportMetric(st.TpmC(), "tpmC")
			if err := tpcc.Check(ctx, db, benchTPCCConfig, false); err != nil {
				b.Fatalf("consistency after the run: %v", err)
			}
		})
	}
}
