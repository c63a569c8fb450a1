package catalog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Cache holds the current Snapshot of one metadata database for one process.
// Snapshot is lock-free; Refresh swaps in a new Snapshot atomically and never
// changes one already handed out. A Cache is safe for concurrent use.
//
// Watch keeps it fresh: it LISTENs on MetadataChannel and also compares the
// metadata version at a fixed interval, so a change made by another process
// is seen within that interval even if a notification is lost.
type Cache struct {
	pool    *pgxpool.Pool
	current atomic.Pointer[Snapshot]
	// refreshMu serializes loads, so concurrent callers share one.
	refreshMu sync.Mutex
	lease     leaseState
}

// NewCache returns an empty Cache reading from pool. Call Refresh before
// Snapshot.
func NewCache(pool *pgxpool.Pool) *Cache {
	return &Cache{pool: pool, lease: newLeaseState()}
}

// Snapshot returns the current snapshot (nil before the first Refresh).
func (c *Cache) Snapshot() *Snapshot { return c.current.Load() }

// Refresh loads the metadata when its version differs from the current
// snapshot's (or always, when force is true) and returns the snapshot now
// current.
func (c *Cache) Refresh(ctx context.Context, force bool) (*Snapshot, error) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	cur := c.current.Load()
	if cur != nil && !force {
		v, err := CurrentVersion(ctx, c.pool)
		if err != nil {
			return cur, err
		}
		if v == cur.Version {
			c.validated(ctx)
			return cur, nil
		}
	}
	var snap *Snapshot
	err := pgx.BeginTxFunc(ctx, c.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		snap, err = Load(ctx, tx)
		return err
	})
	if err != nil {
		return cur, err
	}
	c.current.Store(snap)
	c.validated(ctx)
	return snap, nil
}

// Watch keeps the cache fresh until ctx ends: it refreshes on every
// notification on MetadataChannel and at least every interval. It blocks; run
// it in its own goroutine. Errors (the metadata database restarting, say) are
// retried after interval.
func (c *Cache) Watch(ctx context.Context, interval time.Duration) {
	notified := make(chan struct{}, 1)
	go c.listen(ctx, notified, interval)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-notified:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _ = c.Refresh(rctx, false)
		cancel()
	}
}

// listen holds one connection LISTENing on MetadataChannel and signals
// notified on each notification; it reconnects after interval on errors.
func (c *Cache) listen(ctx context.Context, notified chan<- struct{}, interval time.Duration) {
	for ctx.Err() == nil {
		err := c.listenOnce(ctx, notified)
		if ctx.Err() != nil {
			return
		}
		_ = err
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func (c *Cache) listenOnce(ctx context.Context, notified chan<- struct{}) error {
	// A connection of its own, not the pool's: it stays in LISTEN state.
	pc, err := pgx.ConnectConfig(ctx, c.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "LISTEN "+MetadataChannel); err != nil {
		return fmt.Errorf("catalog: LISTEN: %w", err)
	}
	for {
		if _, err := pc.WaitForNotification(ctx); err != nil {
			return err
		}
		select {
		case notified <- struct{}{}:
		default:
		}
	}
}
