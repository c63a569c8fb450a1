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
//   - A write is sent to a worker only while its lease holds (Sendable):
//     a write that stalled after it started (a pool exhausted, a function
//     evaluated on the metadata database, a pause) past its lease, while
//     the process could not heartbeat, is not sent; the caller runs it again
//     on a fresh snapshot.
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
	// since is the validatedAt that began the current run of leases without
	// a gap (each renewal recorded before the previous lease ran out), so
	// that the heartbeats kept the process seen throughout (Sendable).
	since    atomic.Int64
	mu       sync.Mutex
	inflight map[int64]int // snapshot version -> writes in flight
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
	// Refresh holds refreshMu: no other store races. since is stored
	// before validatedAt, so that a reader seeing the new validatedAt sees
	// its since. When this heartbeat was recorded (it ends now) before the
	// previous lease ran out, its seen is within LeaseDuration of the
	// previous one's: WaitForAcks never lost sight of the process.
	if time.Now().UnixNano()-c.lease.validatedAt.Load() >= int64(LeaseDuration) {
		c.lease.since.Store(sent)
	}
	c.lease.validatedAt.Store(sent)
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

// WriteLease is the lease a write started under (BeginWrite): its
// snapshot's version and the confirmation its lease counts from. It is a
// small value, copied freely; the zero WriteLease is no write's (Sendable
// admits it).
type WriteLease struct {
	version int64
	at      int64 // validatedAt when the write began, unix nanoseconds
}

// BeginWrite returns the snapshot a write must use, the lease it runs
// under (check it with Sendable before each send to a worker) and the func
// that ends the write. It fails with 55000 when the snapshot has not been
// confirmed within LeaseDuration; the caller refreshes and tries again.
func (c *Cache) BeginWrite() (*Snapshot, WriteLease, func(), error) {
	at := c.lease.validatedAt.Load()
	if time.Since(time.Unix(0, at)) >= LeaseDuration {
		return nil, WriteLease{}, nil, sqlerr.New(sqlerr.ObjectNotInPrereq, "the distribution metadata could not be confirmed for %v; writes wait until the metadata database answers", LeaseDuration)
	}
	c.lease.mu.Lock()
	snap := c.current.Load()
	c.lease.inflight[snap.Version]++
	c.lease.mu.Unlock()
	var once sync.Once
	return snap, WriteLease{version: snap.Version, at: at}, func() {
		once.Do(func() {
			c.lease.mu.Lock()
			if c.lease.inflight[snap.Version]--; c.lease.inflight[snap.Version] <= 0 {
				delete(c.lease.inflight, snap.Version)
			}
			c.lease.mu.Unlock()
		})
	}, nil
}

// Sendable reports whether a write begun under l (BeginWrite, not yet
// ended) may be sent to a worker now. It may while its lease has held
// without a gap since the write began: until LeaseDuration after the
// confirmation it began on, and after that while the process's lease is
// valid now and was renewed without a gap since then (every heartbeat in
// between recorded an acked no newer than the write's version and kept the
// process seen, so WaitForAcks for any newer version is still waiting for
// this process). After a gap it may only when the lease is valid now and
// the current snapshot is still the write's: the refresh that renewed the
// lease read the metadata's version, so a placement change made meanwhile
// would show. Otherwise a repair or move may have stopped waiting for this
// process, switched and dropped its fence, and the write, planned on the
// old placements, must not be sent; the caller runs it again on a fresh
// snapshot. The zero WriteLease (no leased write) is always sendable.
//
// One clock read and atomic loads: no allocation, no round trip, never
// blocks.
func (c *Cache) Sendable(l WriteLease) bool {
	if l.at == 0 {
		return true
	}
	now := time.Now().UnixNano()
	if now-l.at < int64(LeaseDuration) {
		return true
	}
	if now-c.lease.validatedAt.Load() >= int64(LeaseDuration) {
		return false
	}
	return c.lease.since.Load() <= l.at || c.current.Load().Version == l.version
}

// Version is the metadata version of the snapshot the write was planned on.
func (l WriteLease) Version() int64 { return l.version }

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
