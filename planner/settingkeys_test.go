package planner

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgshard/pgshard/catalog"
)

// settingKeySnapshot has tables keyed by the types whose text the session's
// settings decide: ticks (timestamptz), days (date), stamps (timestamp), and
// one keyed by text.
func settingKeySnapshot(tb testing.TB) *catalog.Snapshot {
	tb.Helper()
	table := func(relid uint32, firstID int64, name string, keyType uint32, keyTypeName string) *catalog.Table {
		return &catalog.Table{
			RelationID: relid, Schema: "public", Name: name, Method: 'h',
			KeyColumn: "k", KeyType: keyType, KeyIndex: 0,
			Columns: []catalog.Column{
				{Name: "k", TypeOID: keyType, TypeName: keyTypeName},
				{Name: "v", TypeOID: oidText, TypeName: "text"},
			},
			Shards:       makeShards(relid, firstID, 4, 1),
			ColocationID: int64(relid),
		}
	}
	tables := []*catalog.Table{
		table(17000, 20000, "ticks", oidTimestamptz, "timestamp with time zone"),
		table(17010, 20010, "days", oidDate, "date"),
		table(17020, 20020, "stamps", 1114, "timestamp without time zone"),
		table(17030, 20030, "words", oidText, "text"),
	}
	names := map[string]string{"ticks": "public", "days": "public", "stamps": "public", "words": "public"}
	snap, err := catalog.NewSnapshot(7, testNodes, []string{"public"}, tables, names)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// TestSettingDependentKeyLiteralsAreEvaluated: a key literal only the
// session's settings can read becomes a parameter the Eval step computes as
// the key's type (so the value routed by is the value stored); literals
// that read the same everywhere, and keys of other types, stay literals
// hashed in Go with no Eval. Key parameters of those types are listed in
// SettingKeyParams.
func TestSettingDependentKeyLiteralsAreEvaluated(t *testing.T) {
	snap := settingKeySnapshot(t)
	env := testEnv()
	cases := []struct {
		sql string
		// eval is the Eval SQL, "" for none; shard a fragment of the shard SQL.
		eval, shard string
		keyParams   string
	}{
		{`SELECT v FROM ticks WHERE k = '2024-01-01 00:00'`,
			`SELECT '2024-01-01 00:00'::timestamp with time zone`, `WHERE k = $1`, `[]`},
		{`SELECT v FROM ticks WHERE k = '2024-01-01 00:00'::timestamptz AND v = $1`,
			`SELECT '2024-01-01 00:00'::timestamp with time zone`, `WHERE k = $2::timestamptz AND v = $1`, `[]`},
		{`SELECT v FROM ticks WHERE k = '2024-01-01 00:00+00'`, ``, `WHERE k = '2024-01-01 00:00+00'`, `[]`},
		{`SELECT v FROM ticks WHERE k = $1`, ``, `WHERE k = $1`, `[{1 1184}]`},
		{`SELECT v FROM ticks WHERE k IN ('2024-01-01 00:00', '2024-01-02 00:00Z')`,
			`SELECT '2024-01-01 00:00'::timestamp with time zone`, `IN ($1, '2024-01-02 00:00Z')`, `[]`},
		{`UPDATE ticks SET v = 'x' WHERE k = '2024-01-01 00:00'`,
			`SELECT '2024-01-01 00:00'::timestamp with time zone`, `WHERE k = $1`, `[]`},
		{`DELETE FROM ticks WHERE k = $1`, ``, `WHERE k = $1`, `[{1 1184}]`},
		{`INSERT INTO ticks (k, v) VALUES ('2024-01-01 00:00', 'a')`,
			`SELECT '2024-01-01 00:00'::timestamp with time zone`, `VALUES ($1, 'a')`, `[]`},
		{`INSERT INTO ticks (k, v) VALUES ('2024-01-01 00:00-05', 'a')`, ``, `VALUES ('2024-01-01 00:00-05', 'a')`, `[]`},
		{`INSERT INTO ticks (k, v) VALUES ($2, $1)`, ``, `VALUES ($2, $1)`, `[{2 1184}]`},
		{`INSERT INTO days (k, v) VALUES ('01/02/2024', 'a')`,
			`SELECT '01/02/2024'::pg_catalog.date`, `VALUES ($1, 'a')`, `[]`},
		{`INSERT INTO days (k, v) VALUES ('2024-02-01', 'a')`, ``, `VALUES ('2024-02-01', 'a')`, `[]`},
		{`SELECT v FROM days WHERE k = 'today'`, `SELECT 'today'::pg_catalog.date`, `WHERE k = $1`, `[]`},
		{`SELECT v FROM stamps WHERE k = 'Jan 8 1999 10:00'`, `SELECT 'Jan 8 1999 10:00'::timestamp`, `WHERE k = $1`, `[]`},
		{`SELECT v FROM stamps WHERE k = '1999-01-08 10:00'`, ``, `WHERE k = '1999-01-08 10:00'`, `[]`},
		{`SELECT v FROM words WHERE k = '01/02/2024'`, ``, `WHERE k = '01/02/2024'`, `[]`},
		{`SELECT v FROM words WHERE k = $1`, ``, `WHERE k = $1`, `[]`},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			p, err := New(c.sql, snap, env)
			if err != nil {
				t.Fatal(err)
			}
			eval := ""
			if p.Eval != nil {
				eval = p.Eval.SQL
				if c.eval != "" && (len(p.Eval.Typed) != p.Eval.Count || !p.Eval.Typed[p.Eval.Count-1] || p.Eval.KeyTypes[p.Eval.Count-1] != p.Table.KeyType) {
					t.Errorf("Eval value not marked as a typed key: KeyTypes %v, Typed %v", p.Eval.KeyTypes, p.Eval.Typed)
				}
			}
			if eval != c.eval {
				t.Errorf("Eval SQL = %q, want %q", eval, c.eval)
			}
			sql, err := p.ShardSQL(0)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sql, c.shard) {
				t.Errorf("shard SQL %q does not contain %q", sql, c.shard)
			}
			if got := fmt.Sprint(p.SettingKeyParams); got != c.keyParams && !(got == "[]" && c.keyParams == "[]") {
				t.Errorf("SettingKeyParams = %s, want %s", got, c.keyParams)
			}
		})
	}
}

// TestArrayOfSettingDependentKeysIsNotPruned: key = ANY($1) with an array
// of texts only the session can read runs on every shard (the shards read
// them); texts with a zone and typed values prune as before.
func TestArrayOfSettingDependentKeysIsNotPruned(t *testing.T) {
	snap := settingKeySnapshot(t)
	p, err := New(`SELECT v FROM ticks WHERE k = ANY($1)`, snap, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		arg    any
		shards int
	}{
		{[]string{"2024-01-01 00:00"}, 4},
		{[]string{"2024-01-01 00:00+00", "2024-01-01 00:00"}, 4},
		{[]string{"2024-01-01 00:00+00"}, 1},
		{[]time.Time{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, 1},
	}
	for _, c := range cases {
		shards, err := p.TargetShards([]any{c.arg})
		if err != nil {
			t.Fatal(err)
		}
		if len(shards) != c.shards {
			t.Errorf("TargetShards(%v) = %v, want %d shards", c.arg, shards, c.shards)
		}
	}
}
