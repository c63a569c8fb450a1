package session

import (
	"context"
	"database/sql/driver"
	"sync"

	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/plan"

	"github.com/pgshard/pgshard/catalog"
)

// fanoutGate reserves worker connections for statements that hold several
// at once: streaming multi-shard reads, replicated writes and implicit
// multi-shard transactions (multi-shard UPDATE and DELETE, multi-row
// INSERTs across shards, INSERT ... SELECT).
//
// Such a statement holds some connections while waiting for others: a
// streaming read cannot return its first row before every stream has started
// (merge.Parallel waits for each shard's first row), and a write runs on
// every placement it writes before it commits. Two such statements waiting
// for each other's connections (one holding node A's and waiting for B's,
// the other the reverse), or one read with more shards on a node than that
// node's pool has connections, would wait forever. So such a statement
// first reserves, all at once, the connections it needs on every node (at
// most the pool's size), and waits without holding any while they are not
// free; only then does it take them from the pools. Statements that never
// wait while holding (single-shard statements, reads read to the end) take
// connections from the pools directly, and so do transactions, which take a
// connection without waiting once they hold one (transaction.participant);
// the pools' own waits therefore always end. A read given fewer connections
// on a node than it has shards there runs those shards in lanes, one after
// another on each connection.
//
// Waiters are served in arrival order, except that one may go before an
// earlier waiter that shares none of its nodes: a statement needing a busy
// node is never overtaken by later ones needing that node.
//
// A fanoutGate is safe for concurrent use.
type fanoutGate struct {
	capacity int // connections per node: the node pools' size

	mu       sync.Mutex
	reserved map[catalog.Node]int
	waiting  []*gateWaiter // in arrival order
}

// gateWaiter is a reservation waiting in a fanoutGate.
type gateWaiter struct {
	need    map[catalog.Node]int
	granted bool          // under the gate's mu
	ready   chan struct{} // closed when granted
}

func newFanoutGate(capacity int) *fanoutGate {
	return &fanoutGate{capacity: max(capacity, 1), reserved: map[catalog.Node]int{}}
}

// grant returns how many connections a read needing want on a node gets:
// want, but at most the gate's capacity.
func (g *fanoutGate) grant(want int) int { return min(want, g.capacity) }

// reserve waits until the granted connections are free on every node of
// need (node -> wanted count) and reserves them; release gives them back and
// must be called exactly once. It returns ctx's error when ctx ends first.
// Its caller must hold no pooled connection while it waits.
func (g *fanoutGate) reserve(ctx context.Context, need map[catalog.Node]int) (release func(), err error) {
	w := &gateWaiter{need: need, ready: make(chan struct{})}
	g.mu.Lock()
	g.waiting = append(g.waiting, w)
	g.admit()
	g.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { g.release(need) }) }
	select {
	case <-w.ready:
		return release, nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.granted {
		// Granted meanwhile: give it back.
		g.unreserve(need)
		g.admit()
		return nil, ctx.Err()
	}
	for i, o := range g.waiting {
		if o == w {
			g.waiting = append(g.waiting[:i], g.waiting[i+1:]...)
			break
		}
	}
	// Later waiters blocked behind w may fit now.
	g.admit()
	return nil, ctx.Err()
}

// admit grants, under g.mu, every waiter that fits and shares no node with
// an earlier waiter still waiting.
func (g *fanoutGate) admit() {
	var blocked map[catalog.Node]bool
	kept := g.waiting[:0]
	for _, w := range g.waiting {
		fits := true
		for n, want := range w.need {
			if blocked[n] || g.reserved[n]+g.grant(want) > g.capacity {
				fits = false
				break
			}
		}
		if !fits {
			if blocked == nil {
				blocked = map[catalog.Node]bool{}
			}
			for n := range w.need {
				blocked[n] = true
			}
			kept = append(kept, w)
			continue
		}
		for n, want := range w.need {
			g.reserved[n] += g.grant(want)
		}
		w.granted = true
		close(w.ready)
	}
	clear(g.waiting[len(kept):])
	g.waiting = kept
}

// unreserve takes need off the reserved connections, under g.mu.
func (g *fanoutGate) unreserve(need map[catalog.Node]int) {
	for n, want := range need {
		g.reserved[n] -= g.grant(want)
		if g.reserved[n] <= 0 {
			delete(g.reserved, n)
		}
	}
}

func (g *fanoutGate) release(need map[catalog.Node]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unreserve(need)
	g.admit()
}

// fanoutPlan is how a streaming read runs its shards: the node each shard is
// expected to be read from (its first finalized placement) and the lanes, each
// a list of shard positions run one after another on one connection.
type fanoutPlan struct {
	need  map[catalog.Node]int
	lanes [][]int
	// split is true when some node has more shards than connections, so
	// that some lane runs several shards.
	split bool
}

// planFanout assigns shards (positions into shards, a list of shard indexes
// of plan p's table) to lanes: one per shard, except on a node with more shards
// than the gate grants, where the node's shards share its granted lanes.
func (s *Session) planFanout(x plan.Targeted, shards []int) fanoutPlan {
	p := x.ShardTarget()
	fp := fanoutPlan{need: map[catalog.Node]int{}}
	byNode := map[catalog.Node][]int{}
	var order []catalog.Node
	for pos, idx := range shards {
		ps := s.readPlacements(p, idx)
		var node catalog.Node
		if len(ps) > 0 {
			node = ps[0].Node
		}
		if _, seen := byNode[node]; !seen {
			order = append(order, node)
		}
		byNode[node] = append(byNode[node], pos)
		fp.need[node]++
	}
	gate := s.c.fanout
	for _, node := range order {
		positions := byNode[node]
		lanes := gate.grant(len(positions))
		fp.split = fp.split || lanes < len(positions)
		first := len(fp.lanes)
		for i := 0; i < lanes; i++ {
			fp.lanes = append(fp.lanes, nil)
		}
		for i, pos := range positions {
			fp.lanes[first+i%lanes] = append(fp.lanes[first+i%lanes], pos)
		}
	}
	return fp
}

// streamShards starts a streaming read of shards (indexes into table's
// shards) with open, under the fan-out gate: one merge.Parallel source per
// lane. Each source is a shard's rows, or a lane's shards' rows one after
// the other. release gives the reserved connections back; it must be called
// once the sources are closed (merge.OnClose), and is already called when an
// error is returned.
func (s *Session) streamShards(ctx context.Context, fp fanoutPlan, open func(ctx context.Context, pos int) (driver.Rows, error)) (sources []driver.Rows, release func(), err error) {
	release, err = s.c.fanout.reserve(ctx, fp.need)
	if err != nil {
		return nil, nil, err
	}
	sources, err = merge.Parallel(ctx, len(fp.lanes), engine.ScatterBuffer, func(ctx context.Context, l int) (driver.Rows, error) {
		lane := fp.lanes[l]
		first, err := open(ctx, lane[0])
		if err != nil || len(lane) == 1 {
			return first, err
		}
		return engine.NewConcat(first, len(lane), func(i int) (driver.Rows, error) { return open(ctx, lane[i]) }), nil
	})
	if err != nil {
		release()
		return nil, nil, err
	}
	return sources, release, nil
}
