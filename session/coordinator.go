package session

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/txn"
)

// txnCluster is the Cluster as package txn's coordinator sees it: the
// metadata pool, the catalog's workers, their pools and configuration, and
// the marking of placements.
type txnCluster struct{ c *Cluster }

func (tc txnCluster) Meta() *pgxpool.Pool { return tc.c.meta }

func (tc txnCluster) Nodes() []catalog.Node { return tc.c.snapshot().Nodes }

func (tc txnCluster) NodePool(n catalog.Node) (*pgxpool.Pool, error) {
	np, err := tc.c.node(n)
	if err != nil {
		return nil, err
	}
	return np.pool, nil
}

func (tc txnCluster) NodeConfig(n catalog.Node) (*pgxpool.Config, error) { return tc.c.nodeConfig(n) }

func (tc txnCluster) MarkInactive(ctx context.Context, placements []catalog.Placement) error {
	return tc.c.markInactive(ctx, placements)
}

// Recover finishes or rolls back every prepared transaction pgshard left on
// the metadata database and the workers (a client that died, or lost a
// server, during a commit): committed when its commit record (or, for the
// older naming scheme, its coordinator's log) says so, rolled back
// otherwise. Prepared transactions younger than minAge are left alone, as
// their commit may still be under way (deciding them early is safe, but may
// roll back a commit that was about to succeed); those decided, and
// undecided ones whose preparing backend is gone, wait at most a second.
// An undecided one whose preparing backend is still connected (a live
// coordinator, about to record its decision) is left alone until it is 10 s
// old, whatever minAge is.
// Each process also runs it in the background every few seconds. It
// returns how many it committed and rolled back. The Cluster must be
// initialized (Init).
func (c *Cluster) Recover(ctx context.Context, minAge time.Duration) (committed, rolledBack int, err error) {
	return c.coord.Recover(ctx, minAge)
}

// commitAtomic commits the participants that wrote (at least two) with
// two-phase commit (txn.Coordinator.Commit); the metadata session, when one
// of them, is the coordinator whose COMMIT is the decision.
func (c *Cluster) commitAtomic(ctx context.Context, ps []*participant) error {
	var coord txn.Participant // nil unless the metadata session wrote
	prep := make([]txn.Participant, 0, len(ps))
	for _, p := range ps {
		if p.node == (catalog.Node{}) {
			coord = p
		} else {
			prep = append(prep, p)
		}
	}
	return c.coord.Commit(ctx, coord, prep)
}
