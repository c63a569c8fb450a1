package planner

import (
	"strings"
	"testing"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// TestSessionCommands: statements that change the session are recognized,
// settings pgshard cannot carry to the workers are refused naming them.
func TestSessionCommands(t *testing.T) {
	snap := testSnapshot(t)
	env := testEnv()
	cases := []struct {
		sql     string
		effect  SessionEffect // when accepted
		custom  string
		setTx   bool
		refused string // the setting named in the 0A000 error
	}{
		{sql: `SELECT 1`, effect: SessionUnchanged},
		{sql: `SET statement_timeout = '100ms'`, effect: SessionSettings},
		{sql: `SET LOCAL TimeZone = 'UTC'`, effect: SessionSettings},
		{sql: `SET TIME ZONE 'UTC'`, effect: SessionSettings},
		{sql: `SET search_path TO "Sch ema", public`, effect: SessionSettings},
		{sql: `SET SCHEMA 'public'`, effect: SessionSettings},
		{sql: `RESET ALL`, effect: SessionSettings},
		{sql: `RESET ROLE`, effect: SessionSettings},
		{sql: `SET SESSION AUTHORIZATION DEFAULT`, effect: SessionSettings},
		{sql: `DISCARD ALL`, effect: SessionSettings},
		{sql: `DO $$ BEGIN END $$`, effect: SessionSettings},
		{sql: `SET app.Tenant = '7'`, effect: SessionSettings, custom: "app.tenant"},
		{sql: `SELECT set_config('app.user', 'x', false)`, effect: SessionSettings, custom: "app.user"},
		{sql: `SELECT pg_catalog.set_config('TimeZone', 'UTC', true)`, effect: SessionSettings},
		{sql: `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`, effect: SessionSettings, setTx: true},
		{sql: `SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`, effect: SessionSettings},
		{sql: `CREATE TEMP TABLE reviews (a int)`, effect: SessionTemp},
		{sql: `CREATE TEMPORARY VIEW v AS SELECT 1`, effect: SessionTemp},
		{sql: `SELECT 1 AS a INTO TEMP x`, effect: SessionTemp},
		{sql: `DROP TABLE x`, effect: SessionDDL},
		{sql: `SET ROLE bob`, refused: "role"},
		{sql: `SET SESSION AUTHORIZATION bob`, refused: "session_authorization"},
		{sql: `SET LOCAL session_replication_role = replica`, refused: "session_replication_role"},
		{sql: `SET default_tablespace = x`, refused: "default_tablespace"},
		{sql: `SET NAMES 'LATIN1'`, refused: "client_encoding"},
		{sql: `SET transaction_isolation = 'serializable'`, refused: "transaction_isolation"},
		{sql: `SELECT set_config('Role', 'bob', false)`, refused: "role"},
		{sql: `SELECT set_config($1, 'x', false)`, refused: "set_config"},
		{sql: `SET TRANSACTION SNAPSHOT '00000003-0000001B-1'`, refused: "SNAPSHOT"},
		{sql: `SELECT set_config('TimeZone', 'UTC', false) FROM customer_reviews WHERE customer_id = 'a'`, refused: "set_config"},
	}
	for _, c := range cases {
		p, err := New(c.sql, snap, env)
		if c.refused != "" {
			if err == nil || sqlerr.Code(err) != sqlerr.FeatureNotSupported || !strings.Contains(err.Error(), c.refused) {
				t.Errorf("%s: err = %v, want 0A000 naming %q", c.sql, err, c.refused)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.sql, err)
			continue
		}
		var effect SessionEffect
		var custom string
		var setTx bool
		if p.Session != nil {
			effect, setTx = p.Session.Effect, p.Session.SetTransaction
			custom = strings.Join(p.Session.Custom, ",")
		}
		if effect != c.effect || custom != c.custom || setTx != c.setTx {
			t.Errorf("%s: effect %d, custom %q, set transaction %v; want %d, %q, %v", c.sql, effect, custom, setTx, c.effect, c.custom, c.setTx)
		}
	}
}

// TestWithSearchPath: a snapshot seen through another search_path resolves
// unqualified names by that path; temporary relations hide the rest.
func TestWithSearchPath(t *testing.T) {
	snap := testSnapshot(t)
	if snap.Lookup("", "customer_reviews") == nil {
		t.Fatal("customer_reviews is not distributed in the test snapshot")
	}
	temp := snap.WithSearchPath([]string{"pg_temp_3", "pg_catalog", "public"}, map[string]bool{"customer_reviews": true})
	if temp.Lookup("", "customer_reviews") != nil || !temp.IsOrdinary("", "customer_reviews") {
		t.Fatal("a temporary customer_reviews does not hide the distributed one")
	}
	if temp.Lookup("public", "customer_reviews") == nil {
		t.Fatal("a qualified name no longer resolves")
	}
	p, err := New(`SELECT count(*) FROM customer_reviews`, temp, testEnv())
	if err != nil || p.Kind != Passthrough {
		t.Fatalf("under a temporary table: %v, %v", p, err)
	}
}
