package catalog

import (
	"testing"
	"time"
)

// TestSendable: a write begun under a lease may be sent while its lease
// has held without a gap since it began, or after a gap only when the
// lease is valid now and the snapshot is still the write's; never while
// the process's lease has run out (see Cache.Sendable).
func TestSendable(t *testing.T) {
	const v = 7
	sec := int64(time.Second)
	cases := []struct {
		name string
		// offsets from now, in seconds: when the write's lease was
		// confirmed, the process's last confirmation, the start of its run
		// of leases without a gap
		began, validated, since float64
		current                 int64 // the cache's snapshot version
		want                    bool
	}{
		{"within the write's own lease", -4.9, -4.9, -100, v, true},
		{"within its lease, the process's renewed after a gap", -1, -0.5, -0.5, v + 1, true},
		{"past its lease, renewed without a gap", -30, -1, -100, v, true},
		{"past its lease, renewed without a gap, the version moved on", -30, -1, -100, v + 1, true},
		{"past its lease, the process's lease run out", -6, -5.5, -100, v, false},
		{"past its lease, the process's lease run out, same version", -30, -5, -30, v, false},
		{"past its lease, renewed after a gap, same version", -6, -0.2, -0.2, v, true},
		{"past its lease, renewed after a gap, the version moved on", -6, -0.2, -0.2, v + 1, false},
		{"past its lease, renewed after a gap that began with it", -6, -0.2, -6, v + 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now().UnixNano()
			at := func(s float64) int64 { return now + int64(s*float64(sec)) }
			c := &Cache{lease: newLeaseState()}
			c.current.Store(&Snapshot{Version: tc.current})
			c.lease.validatedAt.Store(at(tc.validated))
			c.lease.since.Store(at(tc.since))
			if got := c.Sendable(WriteLease{version: v, at: at(tc.began)}); got != tc.want {
				t.Errorf("Sendable = %v, want %v", got, tc.want)
			}
		})
	}
	c := &Cache{lease: newLeaseState()}
	if !c.Sendable(WriteLease{}) {
		t.Errorf("the zero WriteLease (no leased write) is not sendable")
	}
}

// TestSendableAllocatesNothing: the check on every write's send path
// allocates nothing.
func TestSendableAllocatesNothing(t *testing.T) {
	c := &Cache{lease: newLeaseState()}
	c.current.Store(&Snapshot{Version: 3})
	now := time.Now().UnixNano()
	c.lease.validatedAt.Store(now)
	l := WriteLease{version: 3, at: now - int64(10*time.Second)}
	if n := testing.AllocsPerRun(100, func() { c.Sendable(l) }); n != 0 {
		t.Errorf("Sendable allocates %v times per call, want 0", n)
	}
}
