package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Placement changes and writers in other processes.
//
// A process writes a shard's rows to the placements its cached snapshot
// lists as writable. When an operator adds a placement that must receive
// writes (a repair, a move), a process whose snapshot predates the change
// would write without it, and the new placement would miss the write. Leases
// close that gap:
//
//   - Every Cache confirms its snapshot against the metadata database at
//     least every refresh interval, and heartbeats into
//     pgs_distribution_metadata.process the oldest metadata version any of its
//     writes in flight uses ("acked").
//   - A write starts only on a snapshot confirmed within LeaseDuration (else
//     the driver refreshes first, and refuses to write when it cannot), and
//     is counted in flight, under that snapshot's version, until it ends.
//   - A process changing placements commits the change (version V), then
//     waits (WaitForAcks) until every process that heartbeated within the
//     lease has acked V or more. A process that cannot heartbeat stops
//     writing when its lease runs out, so the wait is bounded by the lease.
//
// After the wait, every write in flight anywhere uses a snapshot that lists
// the new placement.

// LeaseDuration is how long a confirmed snapshot may be used for writes.
const LeaseDuration = 5 * time.Second

type leaseState struct {
	id          string
	validatedAt atomic.Int64 // unix nanoseconds of the last confirmation
	mu          sync.Mutex
	inflight    map[int64]int // snapshot version -> writes in flight
}

func newLeaseState() leaseState {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return leaseState{id: hex.EncodeToString(b[:]), inflight: map[int64]int{}}
}

// validated heartbeats the acked version of the snapshot just confirmed
// and, once the heartbeat is recorded, renews the lease from the moment the
// heartbeat was sent. A lease is never newer than the process's last
// recorded heartbeat (its seen), so WaitForAcks, which waits for every
// process seen within LeaseDuration and a second, never stops waiting for a
// process that may still start writes: not when a heartbeat fails (the
// caller's context ends, the pool is exhausted) after the version check
// succeeded, nor when it is slow.
func (c *Cache) validated(ctx context.Context) {
	sent := time.Now().UnixNano()
	if c.heartbeat(ctx) != nil {
		return
	}
	c.lease.validatedAt.Store(sent) // Refresh holds refreshMu: no newer one races
}

// acked is the oldest snapshot version this process may still write with.
func (c *Cache) acked() int64 {
	c.lease.mu.Lock()
	defer c.lease.mu.Unlock()
	v := int64(math.MaxInt64)
	if cur := c.current.Load(); cur != nil {
		v = cur.Version
	}
	for version := range c.lease.inflight {
		if version < v {
			v = version
		}
	}
	return v
}

func (c *Cache) heartbeat(ctx context.Context) error {
	_, err := c.pool.Exec(ctx, `INSERT INTO pgs_distribution_metadata.process (id, acked, seen) VALUES ($1, $2, now())
		ON CONFLICT (id) DO UPDATE SET acked = excluded.acked, seen = excluded.seen`, c.lease.id, c.acked())
	return err
}

// BeginWrite returns the snapshot a write must use and the func that ends
// the write. It fails with 55000 when the snapshot has not been confirmed
// within LeaseDuration; the caller refreshes and tries again.
func (c *Cache) BeginWrite() (*Snapshot, func(), error) {
	at := c.lease.validatedAt.Load()
	if time.Since(time.Unix(0, at)) >= LeaseDuration {
		return nil, nil, sqlerr.New(sqlerr.ObjectNotInPrereq, "the distribution metadata could not be confirmed for %v; writes wait until the metadata database answers", LeaseDuration)
	}
	c.lease.mu.Lock()
	snap := c.current.Load()
	c.lease.inflight[snap.Version]++
	c.lease.mu.Unlock()
	var once sync.Once
	return snap, func() {
		once.Do(func() {
			c.lease.mu.Lock()
			if c.lease.inflight[snap.Version]--; c.lease.inflight[snap.Version] <= 0 {
				delete(c.lease.inflight, snap.Version)
			}
			c.lease.mu.Unlock()
		})
	}, nil
}

// Close removes this process's heartbeat, so placement changes do not wait
// for it.
func (c *Cache) Close(ctx context.Context) {
	_, _ = c.pool.Exec(ctx, `DELETE FROM pgs_distribution_metadata.process WHERE id = $1`, c.lease.id)
}

// WaitForAcks waits until every process that heartbeated within the lease
// has acked metadata version v or newer (see the package comment on
// leases). It returns early with ctx's error.
func WaitForAcks(ctx context.Context, q Querier, v int64) error {
	for {
		var behind int
		err := q.QueryRow(ctx, `SELECT count(*) FROM pgs_distribution_metadata.process
			WHERE seen > now() - make_interval(secs => $1) AND acked < $2`, (LeaseDuration + time.Second).Seconds(), v).Scan(&behind)
		if err != nil {
			return fmt.Errorf("catalog: waiting for processes to see metadata version %d: %w", v, err)
		}
		if behind == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
