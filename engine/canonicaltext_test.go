package engine

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/planner"
)

// canonicalSettings are session settings under which the text PostgreSQL
// prints of a timestamptz or float array does not read back as the same
// value (a zone abbreviation, too few digits), and the defaults.
var canonicalSettings = []struct{ name, params string }{
	{"defaults", ""},
	{"sql dmy kolkata, extra_float_digits -15", "&DateStyle=SQL,DMY&TimeZone=Asia/Kolkata&extra_float_digits=-15"},
	{"postgres dmy new york, extra_float_digits 0", "&DateStyle=Postgres,DMY&TimeZone=America/New_York&extra_float_digits=0"},
}

// TestCanonicalArrayText: the text canonicalArrayText writes of an array
// read in binary reads back, under each of canonicalSettings, as the very
// same array (array_send's bytes equal): dimensions, lower bounds, NULLs,
// infinities, BC instants, NaN, -0 and the extremes of each type.
func TestCanonicalArrayText(t *testing.T) {
	values := []string{
		`ARRAY['2024-12-01 10:00:00.123456+05:30', NULL, 'infinity', '-infinity']::timestamptz[]`,
		`ARRAY['0044-03-15 12:00:00.000001+00 BC', '4713-01-01 00:00+00 BC', '294276-12-31 23:59:59.999999+00', '1999-12-31 23:59:59.999999-05']::timestamptz[]`,
		`'{}'::timestamptz[]`,
		`'[0:1][-3:-2]={{"2025-03-30 01:30+00",NULL},{"1970-01-01 00:00+00","2000-01-01 00:00+00"}}'::timestamptz[]`,
		`ARRAY[0.1, 0.30000000000000004, 1e-300, 'NaN', 'Infinity', '-Infinity', '-0', 1.7976931348623157e308, 5e-324, NULL]::float8[]`,
		`ARRAY[[0.1, 3.4e38], [1.0000001, '-0'], [1.4e-45, 'NaN']]::float4[]`,
		`array_fill(1/3.0::float4, ARRAY[2, 2], ARRAY[0, 5])`,
	}
	ctx := context.Background()
	for _, s := range canonicalSettings {
		t.Run(s.name, func(t *testing.T) {
			withSessionParams(t, s.params)
			conn, err := connectNode(ctx, nodeOf(0))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			for _, v := range values {
				var oid uint32
				var raw []byte
				if err := conn.QueryRow(ctx, `SELECT pg_typeof(`+v+`)::oid, array_send(`+v+`)`).Scan(&oid, &raw); err != nil {
					t.Fatalf("%s: %v", v, err)
				}
				text, err := canonicalArrayText(nil, builtinArrayElems[oid], raw)
				if err != nil {
					t.Fatalf("%s: %v", v, err)
				}
				var same bool
				if err := conn.QueryRow(ctx, `SELECT array_send($1::text::`+typeNameOf(oid)+`) = array_send(`+v+`)`, string(text)).Scan(&same); err != nil {
					t.Fatalf("%s as %s: %v", v, text, err)
				}
				if !same {
					t.Errorf("%s: wrote %s, which reads back as another array", v, text)
				}
			}
		})
	}
}

func typeNameOf(oid uint32) string {
	return map[uint32]string{1185: "timestamptz[]", 1021: "float4[]", 1022: "float8[]"}[oid]
}

// nodeOf is the catalog node of the cluster's i-th server.
func nodeOf(i int) catalog.Node {
	return catalog.Node{Name: cluster.Nodes[i].Host, Port: cluster.Nodes[i].Port}
}

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
	for _, s := range canonicalSettings {
		t.Run(s.name, func(t *testing.T) {
			withSessionParams(t, s.params)
			for _, q := range arrayQueries {
				prim := Build(st.plan(t, strings.ReplaceAll(q, "%s", "comb_arr")))
				if _, ok := prim.(Combine); !ok {
					t.Fatalf("%s: built %s, want Combine", q, Tree(prim))
				}
				want := queryOn(t, nodeOf(0), strings.ReplaceAll(q, "%s", plain))
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
	execOn(t, nodeOf(0), `CREATE TABLE IF NOT EXISTS mat_arr (k bigint PRIMARY KEY, v text)`)
	ctx := context.Background()
	plain := `(SELECT g::bigint AS k, 'v' || g AS v FROM generate_series(1, 25) g) p`
	queries := []string{
		`SELECT k, a, array_send(a) FROM (SELECT k, ARRAY[to_timestamp(k * 3600.123456), NULL] AS a FROM %s ORDER BY k LIMIT 6) s ORDER BY k`,
		`SELECT k, a, array_send(a) FROM (SELECT k, array_fill(k / 7.0::float8, ARRAY[2], ARRAY[-1]) AS a FROM %s ORDER BY k DESC LIMIT 4) s ORDER BY k`,
		`SELECT count(*), count(a), string_agg(a::text, ';' ORDER BY k) FROM (SELECT k, CASE WHEN k % 3 = 0 THEN NULL ELSE ARRAY[(k / 3.0)::float4] END AS a FROM %s ORDER BY k LIMIT 10) s`,
	}
	for _, s := range canonicalSettings {
		t.Run(s.name, func(t *testing.T) {
			withSessionParams(t, s.params)
			for _, q := range queries {
				p, err := planner.New(strings.ReplaceAll(q, "%s", "mat_arr"), st.snap, metaEnv{})
				if err != nil {
					t.Fatal(err)
				}
				prim := Build(p)
				if _, ok := prim.(Materialize); !ok {
					t.Fatalf("%s: built %s, want Materialize", q, Tree(prim))
				}
				want := queryOn(t, nodeOf(0), strings.ReplaceAll(q, "%s", plain))
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
	execOn(t, nodeOf(0), `CREATE TABLE IF NOT EXISTS user_arr (k bigint PRIMARY KEY, v text)`)
	for i := range cluster.Nodes {
		if i == 1 {
			execOn(t, nodeOf(i), `CREATE TYPE eng_shift AS ENUM ('x')`)
		}
		execOn(t, nodeOf(i), `CREATE TYPE eng_stamp AS (at timestamptz, f float8, s text, n int, d date, x numeric)`)
		execOn(t, nodeOf(i), `CREATE DOMAIN eng_instant AS timestamptz CHECK (VALUE > '1900-01-01')`)
	}
	serverTypeCache.Lock()
	serverTypeCache.m = nil // the types are new
	serverTypeCache.Unlock()
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
	for _, s := range canonicalSettings {
		t.Run(s.name, func(t *testing.T) {
			withSessionParams(t, s.params)
			for _, q := range combined {
				prim := Build(st.plan(t, strings.ReplaceAll(q, "%s", "user_arr")))
				if _, ok := prim.(Combine); !ok {
					t.Fatalf("%s: built %s, want Combine", q, Tree(prim))
				}
				want := queryOn(t, nodeOf(0), strings.ReplaceAll(q, "%s", plain))
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
				prim := Build(p)
				if _, ok := prim.(Materialize); !ok {
					t.Fatalf("%s: built %s, want Materialize", q, Tree(prim))
				}
				want := queryOn(t, nodeOf(0), strings.ReplaceAll(q, "%s", plain))
				got := rowsOf(t)(prim.Query(ctx, &testCursor{snap: st.snap, env: metaEnv{}}, nil))
				if !slices.Equal(got, want) {
					t.Errorf("%s:\ngot  %q\nwant %q", q, got, want)
				}
			}
		})
	}
}
