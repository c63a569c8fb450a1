package session

import (
	"sync"
	"sync/atomic"

	"github.com/pgshard/pgshard/planner"
)

// Defaults of planCache's bounds.
const (
	// planCacheBudget bounds the bytes the plans of one Cluster keep.
	planCacheBudget = 64 << 20
	// planCacheMaxEntry is the largest plan kept.
	planCacheMaxEntry = 1 << 20
	// planCacheMaxText is the longest statement whose plan is kept: a
	// statement that long (a bulk load's hundreds of KB of literals, say)
	// is seldom sent twice, and planning it again costs less than the
	// memory it would hold and the plans it would push out.
	planCacheMaxText = 64 << 10
)

// planCache maps SQL text to its latest plan, within a budget of bytes (an
// estimate of what each plan keeps: planner.Plan.RetainedBytes). When a new
// plan does not fit, plans not used since the clock hand last passed them
// are dropped (the CLOCK approximation of least recently used); a plan
// larger than maxEntry, or of a statement longer than planCacheMaxText, is
// not kept at all.
//
// The zero value is ready to use, with the default bounds. It is safe for
// concurrent use; get only takes a read lock.
type planCache struct {
	// budget and maxEntry are the bounds in bytes; zero means the default.
	budget, maxEntry int
	// size estimates an entry's bytes; nil means planBytes.
	size func(sql string, p *planner.Plan) int

	mu    sync.RWMutex
	used  int // bytes of the entries
	index map[string]*planEntry
	// ring holds the entries in no particular order; hand is where the
	// next eviction looks first.
	ring []*planEntry
	hand int
}

// planEntry is one cached plan.
type planEntry struct {
	sql  string
	plan *planner.Plan
	size int
	pos  int // in ring
	// ref is set by every get, cleared when the clock hand passes.
	ref atomic.Bool
}

// planBytes is the default size of a cache entry: the plan's estimate,
// which counts its SQL text (the entry's key is the same string).
func planBytes(sql string, p *planner.Plan) int {
	return p.RetainedBytes()
}

func (pc *planCache) bounds() (budget, maxEntry int) {
	budget, maxEntry = pc.budget, pc.maxEntry
	if budget == 0 {
		budget = planCacheBudget
	}
	if maxEntry == 0 {
		maxEntry = planCacheMaxEntry
	}
	return budget, min(budget, maxEntry)
}

// get returns the cached plan of sql, or nil.
func (pc *planCache) get(sql string) *planner.Plan {
	pc.mu.RLock()
	defer pc.mu.RUnlock()
	e := pc.index[sql]
	if e == nil {
		return nil
	}
	e.ref.Store(true)
	return e.plan
}

// put caches p as the plan of sql, replacing the one cached before, and
// reports whether it kept it: a plan larger than the largest entry is not
// kept (and the one before is dropped: it is stale).
func (pc *planCache) put(sql string, p *planner.Plan) bool {
	budget, maxEntry := pc.bounds()
	size := -1
	if len(sql) > planCacheMaxText {
		size = maxEntry + 1 // not kept, whatever its plan's size
	} else if pc.size != nil {
		size = pc.size(sql, p)
	} else {
		size = planBytes(sql, p)
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.index == nil {
		pc.index = map[string]*planEntry{}
	}
	if old := pc.index[sql]; old != nil {
		pc.remove(old)
	}
	if size > maxEntry {
		return false
	}
	for pc.used+size > budget && len(pc.ring) > 0 {
		pc.evict()
	}
	e := &planEntry{sql: sql, plan: p, size: size, pos: len(pc.ring)}
	pc.index[sql] = e
	pc.ring = append(pc.ring, e)
	pc.used += size
	return true
}

// evict drops the first entry from the hand on that was not used since the
// hand last passed it. pc.mu is held.
func (pc *planCache) evict() {
	for {
		if pc.hand >= len(pc.ring) {
			pc.hand = 0
		}
		e := pc.ring[pc.hand]
		if e.ref.Swap(false) {
			pc.hand++
			continue
		}
		pc.remove(e)
		return
	}
}

// remove drops entry e. pc.mu is held.
func (pc *planCache) remove(e *planEntry) {
	last := len(pc.ring) - 1
	moved := pc.ring[last]
	pc.ring[e.pos] = moved
	moved.pos = e.pos
	pc.ring[last] = nil
	pc.ring = pc.ring[:last]
	delete(pc.index, e.sql)
	pc.used -= e.size
}

// stats returns the number of cached plans and their bytes.
func (pc *planCache) stats() (entries, bytes int) {
	pc.mu.RLock()
	defer pc.mu.RUnlock()
	return len(pc.index), pc.used
}
