package pgshard_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/tpcc"
)

// TestTPCC runs the TPC-C workload (internal/tpcc) through pgshard on 8
// shards with 2 replicas, warehouse id as every table's key: remote
// payments and remote stock lines are multi-node transactions. The initial
// population and the data after the run must satisfy every consistency
// condition of clause 3.3.2, the run must have no errors, and the two
// placements of every shard must hold the same rows.
func TestTPCC(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := tpcc.Small(3)
	if err := tpcc.Create(ctx, e.DB, tpcc.Sharding{Shards: 8, Replicas: 2}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := tpcc.Load(ctx, e.DB, cfg, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %+v in %s", cfg, time.Since(start).Round(time.Millisecond))
	if err := tpcc.Check(ctx, e.DB, cfg, true); err != nil {
		t.Fatalf("initial population: %v", err)
	}
	st := tpcc.Run(ctx, e.DB, cfg, tpcc.RunConfig{Terminals: 6, Duration: 5 * time.Minute, Transactions: 100, Seed: 7, Retries: 5})
	t.Log(st)
	for _, err := range st.Errors {
		t.Error(err)
	}
	if st.Done[tpcc.NewOrderKind] == 0 || st.Done[tpcc.PaymentKind] == 0 || st.Done[tpcc.DeliveryKind] == 0 {
		t.Fatalf("the run did too little to check: %v", st)
	}
	if err := tpcc.Check(ctx, e.DB, cfg, false); err != nil {
		t.Fatalf("after the run: %v", err)
	}
	for _, table := range tpcc.Tables {
		e.checkReplicasIdentical(ctx, table.Name)
	}
}

// checkReplicasIdentical compares, shard by shard, a digest of every
// finalized placement's rows read straight from the workers.
func (e *env) checkReplicasIdentical(ctx context.Context, table string) {
	e.t.Helper()
	digests := map[int64]string{}
	for _, p := range e.placements(table) {
		if p.State != 1 {
			continue
		}
		name := pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize()
		var digest string
		q := `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM ` + name + ` t`
		if err := e.workerAt(p.Host, p.Port).QueryRow(ctx, q).Scan(&digest); err != nil {
			e.t.Fatalf("%s on %s:%d: %v", q, p.Host, p.Port, err)
		}
		if prev, ok := digests[p.ShardID]; ok && prev != digest {
			e.t.Errorf("placements of %s shard %d differ: %s vs %s", table, p.ShardID, prev, digest)
		}
		digests[p.ShardID] = digest
	}
}
