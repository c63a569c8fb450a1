package engine

import (
	"context"
	"testing"

	"github.com/pgshard/pgshard/catalog"
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
