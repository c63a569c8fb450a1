package pgshard

import (
	"context"
	"database/sql/driver"
	"sync"

	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/planner"

	"github.com/pgshard/pgshard/catalog"
)

// fanoutGate reserves worker connections for streaming multi-shard reads.
//
// A streaming read holds one connection per shard stream until its caller has
// read the rows, and it cannot return its first row before every stream has
// started (merge.Parallel waits for each shard's first row): it holds some
// connections while waiting for others. Two such reads waiting for each
// other's connections, or one read with more shards on a node than that
// node's pool has connections, would wait forever. So a streaming read first
// reserves, all at once, the connections it needs on every node (at most the
// pool's size), and waits without holding any while they are not free;
// readers that never wait while holding (single-shard reads, statements read
// to the end, transactions) take connections from the pools directly. A read
// given fewer connections on a node than it has shards there runs those
// shards in lanes, one after another on each connection.
//
// A fanoutGate is safe for concurrent use.
type fanoutGate struct {
	capacity int // connections per node: the node pools' size

	mu       sync.Mutex
	reserved map[catalog.Node]int
	changed  chan struct{} // closed and replaced at every release
}

func newFanoutGate(capacity int) *fanoutGate {
	return &fanoutGate{capacity: max(capacity, 1), reserved: map[catalog.Node]int{}, changed: make(chan struct{})}
}

// grant returns how many connections a read needing want on a node gets:
// want, but at most the gate's capacity.
func (g *fanoutGate) grant(want int) int { return min(want, g.capacity) }

// reserve waits until the granted connections are free on every node of
// need (node -> wanted count) and reserves them; release gives them back and
// must be called exactly once. It returns ctx's error when ctx ends first.
func (g *fanoutGate) reserve(ctx context.Context, need map[catalog.Node]int) (release func(), err error) {
	for {
		g.mu.Lock()
		fits := true
		for n, want := range need {
			if g.reserved[n]+g.grant(want) > g.capacity {
				fits = false
				break
			}
		}
		if fits {
			for n, want := range need {
				g.reserved[n] += g.grant(want)
			}
			g.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { g.release(need) }) }, nil
		}
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

func (g *fanoutGate) release(need map[catalog.Node]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for n, want := range need {
		g.reserved[n] -= g.grant(want)
		if g.reserved[n] <= 0 {
			delete(g.reserved, n)
		}
	}
	close(g.changed)
	g.changed = make(chan struct{})
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
func (cn *conn) planFanout(p *planner.Plan, shards []int) fanoutPlan {
	fp := fanoutPlan{need: map[catalog.Node]int{}}
	byNode := map[catalog.Node][]int{}
	var order []catalog.Node
	for pos, idx := range shards {
		ps := cn.readPlacements(p, idx)
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
	gate := cn.c.fanout
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
func (cn *conn) streamShards(ctx context.Context, fp fanoutPlan, open func(ctx context.Context, pos int) (driver.Rows, error)) (sources []driver.Rows, release func(), err error) {
	release, err = cn.c.fanout.reserve(ctx, fp.need)
	if err != nil {
		return nil, nil, err
	}
	sources, err = merge.Parallel(ctx, len(fp.lanes), scatterBuffer, func(ctx context.Context, l int) (driver.Rows, error) {
		lane := fp.lanes[l]
		first, err := open(ctx, lane[0])
		if err != nil || len(lane) == 1 {
			return first, err
		}
		return &concatRows{cur: first, next: 1, shards: len(lane), open: func(i int) (driver.Rows, error) { return open(ctx, lane[i]) }}, nil
	})
	if err != nil {
		release()
		return nil, nil, err
	}
	return sources, release, nil
}
