package catalog

import (
	"strconv"
	"sync/atomic"
)

// Write fences: what a write tells the worker about its placement list.
//
// Leases (lease.go) make stale writers rare, not impossible: a process can
// pause between its lease check and its write for any time, and a process
// whose heartbeat stopped is no longer waited for. So a repair or move also
// fences the source placement on the worker itself (repair/fence.go): while
// it runs, a statement trigger on the source's shard table refuses every
// write whose transaction does not carry, in the setting FenceSetting, a
// metadata version at least the one that made the new placement writable.
//
// A write that writes several placements runs in a transaction on each
// (BEGIN), and that BEGIN carries its version at no extra round trip (one
// simple-protocol message: ReplicaBegin when one of the placements is
// filling, FencedBegin for every server joining a transaction while some
// placement is filling: Snapshot.FenceVersion). A write to
// a single placement outside a transaction carries nothing: it cannot know
// of a new placement (the new placement would make it write two), so on a
// fenced table it is stale by construction and refused. Neither does a
// replicated write to placements that are all finalized: after a repair's
// metadata switch and until its fence is dropped (a round trip later), such
// a write is refused (40001) though it was right; never the reverse.

// FenceSetting is the transaction setting in which a write's BEGIN tells
// the worker the metadata version its placement list comes from.
const FenceSetting = "pgshard.write_version"

// fencedBegin caches WriteBegin's statement for one version.
type fencedBegin struct {
	version int64
	sql     string
}

var lastBegin atomic.Pointer[fencedBegin]

// WriteBegin returns the BEGIN of a write planned on metadata version v:
// BEGIN, then FenceSetting set to v for the transaction, in one statement
// string. It allocates only when v changes (safe for concurrent use).
func WriteBegin(v int64) string {
	if b := lastBegin.Load(); b != nil && b.version == v {
		return b.sql
	}
	b := &fencedBegin{version: v, sql: FencedBegin("BEGIN", v)}
	lastBegin.Store(b)
	return b.sql
}

// ReplicaBegin returns the BEGIN a write planned on metadata version v
// sends to each of placements: WriteBegin(v) when one of them is filling
// (a repair or move of the shard may have fenced its source), plain BEGIN
// otherwise, so that shards not being repaired or moved pay nothing.
func ReplicaBegin(placements []Placement, v int64) string {
	for _, p := range placements {
		if p.State == StateFilling {
			return WriteBegin(v)
		}
	}
	return "BEGIN"
}

// FenceVersion is the version the BEGINs of a write planned on s carry:
// s.Version while some placement is filling (a repair or move runs, and may
// have fenced a source), 0 otherwise (plain BEGIN: nothing is fenced but
// for the short window after a repair's switch, see above).
func (s *Snapshot) FenceVersion() int64 {
	if s.filling {
		return s.Version
	}
	return 0
}

// FencedBegin returns begin (a BEGIN statement) followed by the setting of
// FenceSetting to v for the transaction; with v 0 (no write planned yet),
// begin alone.
func FencedBegin(begin string, v int64) string {
	if v == 0 {
		return begin
	}
	return begin + "; SET LOCAL " + FenceSetting + " = '" + strconv.FormatInt(v, 10) + "'"
}
