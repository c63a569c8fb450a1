package planner

import (
	"testing"
)

const copyGoldenFile = "testdata/copy_cases.txt"

// TestCopyGolden checks how COPY statements are planned (golden file
// testdata/copy_cases.txt, rewritten with -update): the columns and key
// position of COPY FROM, each shard's COPY, and the refusals.
func TestCopyGolden(t *testing.T) {
	snap := testSnapshot(t)
	env := testEnv()
	cases := readGolden(t, copyGoldenFile)
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	changed := false
	for i := range cases {
		c := &cases[i]
		got := render(c.sql, snap, env)
		if got != c.want {
			if *update {
				c.want, changed = got, true
				continue
			}
			t.Errorf("%s:%d:\n%s\n---- got:\n%s\n---- want:\n%s", copyGoldenFile, c.line, c.sql, got, c.want)
		}
	}
	if *update && changed {
		writeGolden(t, copyGoldenFile, cases)
	}
}
