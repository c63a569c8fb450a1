package session

import (
	"testing"
	"time"
)

func TestParseSettingDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"200ms", 200 * time.Millisecond},
		{"2s", 2 * time.Second},
		{"1min", time.Minute},
		{"3h", 3 * time.Hour},
		{"1d", 24 * time.Hour},
		{"150", 150 * time.Millisecond},
		{"10us", 10 * time.Microsecond},
		{"", 0},
		{"5 s", 0},
		{"abc", 0},
	} {
		if got := parseSettingDuration(tc.in); got != tc.want {
			t.Errorf("parseSettingDuration(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
