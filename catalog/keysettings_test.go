package catalog

import "testing"

// TestKeyTextIndependentOfSettings: which key texts mean the same value in
// every session.
func TestKeyTextIndependentOfSettings(t *testing.T) {
	cases := []struct {
		typ  uint32
		in   string
		want bool
	}{
		{hashOIDTimestamptz, "2024-01-01 00:00", false},
		{hashOIDTimestamptz, "2024-01-01", false},
		{hashOIDTimestamptz, "2024-01-01 00:00+00", true},
		{hashOIDTimestamptz, "2024-01-01T00:00:00Z", true},
		{hashOIDTimestamptz, "2024-01-01 00:00 UTC", true},
		{hashOIDTimestamptz, "2024-01-01 00:00:00-05:30", true},
		{hashOIDTimestamptz, "2024-01-01 00:00 America/New_York", false},
		{hashOIDTimestamptz, "01/02/2024 00:00+00", false},
		{hashOIDTimestamptz, "infinity", true},
		{hashOIDTimestamptz, "epoch", true},
		{hashOIDTimestamptz, "now", false},
		{hashOIDTimestamp, "2024-01-01 00:00", true},
		{hashOIDTimestamp, "01/02/2024 10:00", false},
		{hashOIDTimestamp, "Jan 8 1999", false},
		{hashOIDDate, "2024-01-02", true},
		{hashOIDDate, "01/02/2024", false},
		{hashOIDDate, "today", false},
		{hashOIDDate, "-infinity", true},
		{hashOIDText, "01/02/2024", true},
		{hashOIDInt8, "12", true},
	}
	for _, c := range cases {
		if got := KeyTextIndependentOfSettings(c.typ, c.in); got != c.want {
			t.Errorf("KeyTextIndependentOfSettings(%d, %q) = %v, want %v", c.typ, c.in, got, c.want)
		}
	}
}
