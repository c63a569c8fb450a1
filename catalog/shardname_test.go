package catalog

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShardName(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   int64
		want string
	}{
		{"t", 10000, "t_10000"},
		{strings.Repeat("a", 57), 10000, strings.Repeat("a", 57) + "_10000"}, // 63 bytes: unchanged
		{strings.Repeat("a", 58), 10000, fmt.Sprintf("%s_%08x_10000", strings.Repeat("a", 48), hashBytes(strings.Repeat("a", 58)))},
		{strings.Repeat("a", 63), 1, fmt.Sprintf("%s_%08x_1", strings.Repeat("a", 52), hashBytes(strings.Repeat("a", 63)))},
		// 29 two-byte characters are 58 bytes: cut before the character
		// that would cross the 48th byte.
		{strings.Repeat("ä", 29), 10000, fmt.Sprintf("%s_%08x_10000", strings.Repeat("ä", 24), hashBytes(strings.Repeat("ä", 29)))},
		{"x" + strings.Repeat("ä", 29), 10000, fmt.Sprintf("x%s_%08x_10000", strings.Repeat("ä", 23), hashBytes("x"+strings.Repeat("ä", 29)))},
		{strings.Repeat("b", 60), 9223372036854775807, fmt.Sprintf("%s_%08x_9223372036854775807", strings.Repeat("b", 34), hashBytes(strings.Repeat("b", 60)))},
	} {
		if got := ShardName(tc.name, tc.id); got != tc.want {
			t.Errorf("ShardName(%q, %d) = %q, want %q", tc.name, tc.id, got, tc.want)
		}
	}
}

// TestShardNamesNeverCollide: for names of every length around the limit,
// ASCII and multibyte, every shard id gives a distinct name of at most 63
// bytes, valid UTF-8, ending in "_<shardid>".
func TestShardNamesNeverCollide(t *testing.T) {
	seen := map[string]string{}
	for n := 1; n <= 70; n++ {
		for _, unit := range []string{"x", "é", "€", "𝄞"} {
			name := strings.Repeat(unit, n)
			if len(name) > 63 {
				continue // PostgreSQL does not have longer names
			}
			for _, id := range []int64{10000, 10001, 10010, 10100, 99999, 100000, 1234567890123} {
				got := ShardName(name, id)
				if len(got) > maxNameBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, fmt.Sprintf("_%d", id)) {
					t.Fatalf("ShardName(%q, %d) = %q (%d bytes)", name, id, got, len(got))
				}
				key := fmt.Sprintf("%q/%d", name, id)
				if prev, ok := seen[got]; ok {
					t.Fatalf("ShardName gives %q for %s and %s", got, prev, key)
				}
				seen[got] = key
			}
		}
	}
}

func TestShardRelationNames(t *testing.T) {
	long := strings.Repeat("i", 60)
	d := &TemplateDDL{Schema: "public", Name: "t",
		Constraints: []ConstraintDDL{{Name: "t_pkey", Def: "PRIMARY KEY (id)"}, {Name: "positive", Def: "CHECK ((id > 0))"}},
		Indexes:     []IndexDDL{{Name: long, Body: "USING btree (a)"}},
		LegacyNames: map[int64]string{7: "t_legacy"},
	}
	got, err := d.ShardRelationNames(10000)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"t_10000", "t_pkey_10000", ShardName(long, 10000)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ShardRelationNames = %q, want %q", got, want)
	}
	if got := d.ShardTableIdentifier(7); got != `"public"."t_legacy"` {
		t.Fatalf("legacy shard: %s", got)
	}
	// An index named as the table's shard would be: refused.
	d.Indexes = append(d.Indexes, IndexDDL{Name: "t", Body: "USING btree (b)"})
	if _, err := d.ShardRelationNames(10000); err == nil || !strings.Contains(err.Error(), `"t_10000"`) {
		t.Fatalf("duplicate relation names: %v", err)
	}
}
