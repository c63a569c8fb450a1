package engine_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	. "github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/planner"
)

// arrayQueries group, de-duplicate and materialize arrays of timestamptz,
// float8 and float4 built from the tables' k (1..25), with NULL and empty
// arrays, several dimensions and lower bounds other than 1; %s is the table.
var arrayQueries = []string{
	`SELECT ARRAY[to_timestamp(k * 3600.123456), NULL] AS a, count(*) FROM %s GROUP BY 1 ORDER BY 1`,
	`SELECT ARRAY[k / 7.0::float8, 1e-300 * k] AS a, count(*), sum(k) FROM %s GROUP BY 1 ORDER BY 1`,
	`SELECT array_fill((k % 4 / 3.0)::float4, ARRAY[2, 2], ARRAY[0, 5]) AS a, count(*) FROM %s GROUP BY 1 ORDER BY 1`,
	`SELECT CASE WHEN k % 3 = 0 THEN NULL WHEN k % 3 = 1 THEN '{}'::timestamptz[] ELSE ARRAY['infinity'::timestamptz, '0044-03-15 12:00+00 BC'] END AS a, count(*) FROM %s GROUP BY 1 ORDER BY 1 NULLS FIRST`,
	`SELECT DISTINCT ARRAY[to_timestamp(k % 5 * 86400.5)] AS a FROM %s ORDER BY 1`,
	`SELECT encode(array_send(ARRAY[k % 4 / 7.0::float8]), 'hex'), count(*) FROM %s GROUP BY ARRAY[k % 4 / 7.0::float8] ORDER BY 1`,
}

// TestCombineArraysUnderSettings: partial rows holding arrays of
// timestamptz and floats combine to what one server answers over the same
// rows, under settings where their text would not read back exactly
// (before, such queries were refused with 0A000).
func TestCombineArraysUnderSettings(t *testing.T) {
	st := newShardedTable(t, "comb_arr", 4, 1)
	st.fill(t, 25)
	ctx := context.Background()
	plain := `(SELECT g::bigint AS k, 'v' || g AS v FROM generate_series(1, 25) g) p`
	for _, s := range CanonicalSettings {
		t.Run(s.Name, func(t *testing.T) {
			WithSessionParams(t, s.Params)
			for _, q := range arrayQueries {
				prim := planner.Build(st.plan(t, strings.ReplaceAll(q, "%s", "comb_arr")))
				if _, ok := prim.(Combine); !ok {
					t.Fatalf("%s: built %s, want Combine", q, Tree(prim))
				}
				want := queryOn(t, NodeOf(0), strings.ReplaceAll(q, "%s", plain))
				got := rowsOf(t)(prim.Query(ctx, &testCursor{}, nil))
				if !slices.Equal(got, want) {
					t.Errorf("%s:\ngot  %q\nwant %q", q, got, want)
				}
			}
		})
	}
}

// TestMaterializeArraysUnderSettings: a materialized subquery's arrays of
// timestamptz and floats reach the rest of the statement as themselves
// under settings where their text would not read back exactly.
func TestMaterializeArraysUnderSettings(t *testing.T) {
	st := newShardedTable(t, "mat_arr", 4, 1)
	st.fill(t, 25)
	ExecOn(t, NodeOf(0), `CREATE TABLE IF NOT EXISTS mat_arr (k bigint PRIMARY KEY, v text)`)
	ctx := context.Background()
	plain := `(SELECT g::bigint AS k, 'v' || g AS v FROM generate_series(1, 25) g) p`
	queries := []string{
		`SELECT k, a, array_send(a) FROM (SELECT k, ARRAY[to_timestamp(k * 3600.123456), NULL] AS a FROM %s ORDER BY k LIMIT 6) s ORDER BY k`,
		`SELECT k, a, array_send(a) FROM (SELECT k, array_fill(k / 7.0::float8, ARRAY[2], ARRAY[-1]) AS a FROM %s ORDER BY k DESC LIMIT 4) s ORDER BY k`,
		`SELECT count(*), count(a), string_agg(a::text, ';' ORDER BY k) FROM (SELECT k, CASE WHEN k % 3 = 0 THEN NULL ELSE ARRAY[(k / 3.0)::float4] END AS a FROM %s ORDER BY k LIMIT 10) s`,
	}
	for _, s := range CanonicalSettings {
		t.Run(s.Name, func(t *testing.T) {
			WithSessionParams(t, s.Params)
			for _, q := range queries {
				p, err := planner.New(strings.ReplaceAll(q, "%s", "mat_arr"), st.snap, metaEnv{})
				if err != nil {
					t.Fatal(err)
				}
				prim := planner.Build(p)
				if _, ok := prim.(Materialize); !ok {
					t.Fatalf("%s: built %s, want Materialize", q, Tree(prim))
				}
				want := queryOn(t, NodeOf(0), strings.ReplaceAll(q, "%s", plain))
				got := rowsOf(t)(prim.Query(ctx, &testCursor{snap: st.snap, env: metaEnv{}}, nil))
				if !slices.Equal(got, want) {
					t.Errorf("%s:\ngot  %q\nwant %q", q, got, want)
				}
			}
		})
	}
}

// TestUserTypesUnderSettings: a composite of a timestamptz, a float8 and
// a text with quotes and backslashes, and a domain over timestamptz, whose
// OIDs differ between the two servers, combine and materialize to what
// one server answers, under settings where their text would not read back
// exactly (before, refused with 0A000).
func TestUserTypesUnderSettings(t *testing.T) {
	st := newShardedTable(t, "user_arr", 4, 1)
	st.fill(t, 25)
	ExecOn(t, NodeOf(0), `CREATE TABLE IF NOT EXISTS user_arr (k bigint PRIMARY KEY, v text)`)
	for i := range Servers().Nodes {
		if i == 1 {
			ExecOn(t, NodeOf(i), `CREATE TYPE eng_shift AS ENUM ('x')`)
		}
		ExecOn(t, NodeOf(i), `CREATE TYPE eng_stamp AS (at timestamptz, f float8, s text, n int, d date, x numeric)`)
		ExecOn(t, NodeOf(i), `CREATE DOMAIN eng_instant AS timestamptz CHECK (VALUE > '1900-01-01')`)
	}
	ForgetServerTypes() // the types are new
	ctx := context.Background()
	plain := `(SELECT g::bigint AS k, 'v' || g AS v FROM generate_series(1, 25) g) p`
	stamp := `CASE WHEN k % 5 = 0 THEN NULL ELSE ROW(to_timestamp(k % 4 * 3600.123456), k % 3 / 7.0::float8, 'a"b\c,' || (k % 2), NULLIF(k % 2, 1), CASE k % 4 WHEN 0 THEN '0044-03-15 BC' WHEN 1 THEN 'infinity' ELSE '2024-01-12' END::date, CASE k % 4 WHEN 0 THEN 'NaN' WHEN 1 THEN -0.000012345 ELSE 123456789.1234500 * k END::numeric)::eng_stamp END`
	combined := []string{
		`SELECT ` + stamp + ` AS c, count(*) FROM %s GROUP BY 1 ORDER BY 1 NULLS FIRST`,
		`SELECT DISTINCT to_timestamp(k % 3 * 86400.5)::eng_instant AS i FROM %s ORDER BY 1`,
	}
	materialized := []string{
		`SELECT k, c, record_send(c) FROM (SELECT k, ` + stamp + ` AS c FROM %s ORDER BY k LIMIT 6) s ORDER BY k`,
		`SELECT k, i, timestamptz_send(i) FROM (SELECT k, to_timestamp(k * 86400.5)::eng_instant AS i FROM %s ORDER BY k DESC LIMIT 4) s ORDER BY k`,
	}
	for _, s := range CanonicalSettings {
		t.Run(s.Name, func(t *testing.T) {
			WithSessionParams(t, s.Params)
			for _, q := range combined {
				prim := planner.Build(st.plan(t, strings.ReplaceAll(q, "%s", "user_arr")))
				if _, ok := prim.(Combine); !ok {
					t.Fatalf("%s: built %s, want Combine", q, Tree(prim))
				}
				want := queryOn(t, NodeOf(0), strings.ReplaceAll(q, "%s", plain))
				got := rowsOf(t)(prim.Query(ctx, &testCursor{}, nil))
				if !slices.Equal(got, want) {
					t.Errorf("%s:\ngot  %q\nwant %q", q, got, want)
				}
			}
			for _, q := range materialized {
				p, err := planner.New(strings.ReplaceAll(q, "%s", "user_arr"), st.snap, metaEnv{})
				if err != nil {
					t.Fatal(err)
				}
				prim := planner.Build(p)
				if _, ok := prim.(Materialize); !ok {
					t.Fatalf("%s: built %s, want Materialize", q, Tree(prim))
				}
				want := queryOn(t, NodeOf(0), strings.ReplaceAll(q, "%s", plain))
				got := rowsOf(t)(prim.Query(ctx, &testCursor{snap: st.snap, env: metaEnv{}}, nil))
				if !slices.Equal(got, want) {
					t.Errorf("%s:\ngot  %q\nwant %q", q, got, want)
				}
			}
		})
	}
}
