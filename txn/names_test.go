package txn

import (
	"regexp"
	"testing"
)

// Participant names carry the preparing backend's pid only when it is
// known, and every name reads back as its transaction's id, as the
// previous version's parseTxID (the id up to the last '_') reads it too.
func TestParticipantGID(t *testing.T) {
	const id = txIDPrefix + "0123456789abcdef01234567"
	// What preparerGoneSQL matches, and extracts, in SQL.
	withPID := regexp.MustCompile(`_[0-9]+p([0-9]+)$`)
	cases := []struct {
		i    int
		pid  uint32
		want string
	}{
		{0, 12345, id + "_0p12345"},
		{1, 4294967295, id + "_1p4294967295"},
		{12, 0, id + "_12"},
	}
	for _, c := range cases {
		gid := participantGID(id, c.i, c.pid)
		if gid != c.want {
			t.Errorf("participantGID(%d, %d) = %q, want %q", c.i, c.pid, gid, c.want)
		}
		if got, ok := parseTxID(gid); !ok || got != id {
			t.Errorf("parseTxID(%q) = %q, %v; want %q", gid, got, ok, id)
		}
		m := withPID.FindStringSubmatch(gid)
		if (c.pid != 0) != (m != nil) || (m != nil && m[1] != c.want[len(c.want)-len(m[1]):]) {
			t.Errorf("%q: the pid pattern matched %q", gid, m)
		}
		if _, _, ok := parseGID(gid); ok {
			t.Errorf("%q reads as a name of the older scheme", gid)
		}
		if got := gidHasPID(gid); got != (m != nil) {
			t.Errorf("gidHasPID(%q) = %v, the pid pattern matched %q", gid, got, m)
		}
	}
	// gidHasPID agrees with the pattern on names that are not
	// participantGID's too.
	for _, gid := range []string{id + "_1p", id + "_p12", id + "_1x12", id + "_1p12p3", id + "_1p12 ", "_0p1", "0p1", "", id} {
		if got, want := gidHasPID(gid), withPID.MatchString(gid); got != want {
			t.Errorf("gidHasPID(%q) = %v, the pid pattern says %v", gid, got, want)
		}
	}
}
