package engine

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// canonicalValueSettings are canonicalSettings and every IntervalStyle.
var canonicalValueSettings = append(canonicalSettings[:len(canonicalSettings):len(canonicalSettings)],
	struct{ name, params string }{"interval postgres_verbose, german", "&IntervalStyle=postgres_verbose&DateStyle=German&TimeZone=Asia/Kolkata"},
	struct{ name, params string }{"interval sql_standard, sql dmy", "&IntervalStyle=sql_standard&DateStyle=SQL,DMY&TimeZone=America/New_York&extra_float_digits=0"},
	struct{ name, params string }{"interval iso_8601, bytea escape", "&IntervalStyle=iso_8601&bytea_output=escape"},
)

// TestCanonicalValueText: the text canonicalWriter writes of a value read
// in binary reads back, under each of canonicalValueSettings, as the very
// same value (its binary form equal): every scalar it writes (intervals
// with mixed signs and extremes, time, timetz with odd offsets, bytea,
// uuid, json, jsonb), composites with interval attributes, composites
// nesting composites, arrays and ranges, arrays of composites, of
// domains and of enums whose labels need quotes, tstzrange and
// tstzmultirange; a composite with an attribute it cannot write is
// refused (0A000).
func TestCanonicalValueText(t *testing.T) {
	for _, ddl := range []string{
		`DROP TYPE IF EXISTS cv_nest, cv_span, cv_far, cv_mood CASCADE`,
		`DROP DOMAIN IF EXISTS cv_tsd CASCADE`,
		`CREATE TYPE cv_mood AS ENUM ('a"b\c', 'x,y', 'NULL', '')`,
		`CREATE DOMAIN cv_tsd AS timestamptz`,
		`CREATE TYPE cv_span AS (at timestamptz, iv interval, f float8, t text, m cv_mood)`,
		`CREATE TYPE cv_nest AS (s cv_span, a cv_span[], tags text[], ivs interval[], r tstzrange, d cv_tsd[], mr tstzmultirange, j jsonb)`,
		`CREATE TYPE cv_far AS (at timestamptz, m money)`,
		`DROP TYPE IF EXISTS cv_geo, cv_net, cv_floatrange, cv_tsdrange, cv_tzrange, cv_inrange, cv_dropped CASCADE`,
		`DROP DOMAIN IF EXISTS cv_boxd CASCADE`,
		`CREATE TYPE cv_geo AS (at timestamptz, p point, l lseg, b box, pa path, po polygon, li line, c circle, bs box[])`,
		`CREATE TYPE cv_net AS (at timestamptz, i inet, c cidr, m macaddr, m8 macaddr8, b bit(3), vb varbit, tv tsvector,
			x xml, n name, o oid, ch "char", bp char(4), u uuid, j json, jb jsonb, tm time, tz timetz, iv interval)`,
		`CREATE TYPE cv_floatrange AS RANGE (subtype = float8)`,
		`CREATE TYPE cv_tsdrange AS RANGE (subtype = cv_tsd)`,
		`CREATE TYPE cv_tzrange AS RANGE (subtype = timestamptz)`,
		`CREATE TYPE cv_inrange AS (r cv_floatrange, rs cv_tzrange[], ir int4range, nr numrange, dm datemultirange, fm cv_floatmultirange)`,
		`CREATE DOMAIN cv_boxd AS box`,
		`CREATE TYPE cv_dropped AS (a int, gone point, at timestamptz, f float8)`,
		`ALTER TYPE cv_dropped DROP ATTRIBUTE gone`,
	} {
		execOn(t, nodeOf(0), ddl)
	}
	values := []string{
		`'1 year -2 days +03:04:05.678'::interval`,
		`'-1 mon +1 day -00:00:00.5'::interval`,
		`'P-1Y-2M3DT-4H-5M-6.5S'::interval`,
		`'-178000000 years'::interval`,
		`'178000000 years 11 mons 2147483647 days 2562047787 hours 59 min 59.999999 sec'::interval`,
		`'-178000000 years -2147483648 days -2562047787 hours -59 min -59.999999 sec'::interval`,
		`'-00:00:00.000001'::interval`,
		`'0'::interval`,
		`'24:00'::time`, `'23:59:59.999999'::time`, `'00:00'::time`,
		`'12:34:56.789+05:30'::timetz`, `'00:00-15:59'::timetz`, `'24:00:00+15:59'::timetz`, `'01:02:03.000004-00:00:30'::timetz`,
		`'0044-03-15 12:00:00.000001 BC'::timestamp`, `'infinity'::timestamp`, `'294276-12-31 23:59:59.999999'::timestamp`,
		`'\x00ff5c22'::bytea`, `''::bytea`,
		`'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid`,
		`'{"a": [1, "x\"y\\z"], "b": null}'::json`, `'{"a": [1, "x\"y\\z"], "b": null}'::jsonb`,
		`ROW('2024-12-01 10:00:00.123456+05:30', '1 year -2 days +03:04:05.678', 0.1, 'he said "hi", \back\', 'a"b\c')::cv_span`,
		`ROW(NULL, NULL, NULL, '', '')::cv_span`,
		`ROW(ROW('0044-03-15 12:00+00 BC', '-1 mon', 'NaN', '(x)', 'x,y')::cv_span,
			ARRAY[ROW('infinity', 'P1Y2M3DT4H5M6.5S', -0.0, '{z}', 'NULL')::cv_span, NULL, ROW(NULL, NULL, NULL, NULL, NULL)::cv_span],
			ARRAY[['a b', 'q"uo\te'], [NULL, 'NULL']], ARRAY['-00:00:01', NULL]::interval[],
			'[2024-12-01 10:00+05:30,infinity)', ARRAY['2024-12-01 10:00+05:30'::cv_tsd, NULL],
			'{[2024-12-01 10:00+05:30,2024-12-02 10:00+05:30), [2025-01-01 00:00+00,)}', '{"k": "\\\" ,()"}')::cv_nest`,
		`ROW(NULL, '{}', '{}', '{}', 'empty', '{}', '{}', 'null')::cv_nest`,
		`ARRAY[ROW('2024-12-01 10:00+05:30', '1 day', 0.1, 'x', 'x,y')::cv_span, NULL]`,
		`'[0:1]={"(\"2024-12-01 10:00+05:30\",\"1 day\",0.1,\"a\"\"b\",)",NULL}'::cv_span[]`,
		`'[2:3][0:1]={{"2024-12-01 10:00+05:30",NULL},{infinity,"0044-03-15 12:00+00 BC"}}'::cv_tsd[]`,
		`ARRAY['a"b\c', 'x,y', 'NULL', '', NULL]::cv_mood[]`,
		`'{[2024-12-01 10:00:00.5+05:30,2024-12-02 10:00+05:30), [2025-01-01 00:00+00,), (,1999-12-31 23:59:59.999999-05]}'::tstzmultirange`,
		`'{}'::tstzmultirange`,
		`ARRAY['[2024-12-01 10:00+05:30,infinity)'::tstzrange, 'empty', NULL, '(,)']`,
		`ARRAY['{[2024-12-01 10:00+05:30,2024-12-02 10:00+05:30)}'::tstzmultirange, '{}']`,
		`'2024-12-01 10:00+05:30'::cv_tsd`,
		// Geometric types: float8s, whose text extra_float_digits cuts.
		`'(0.1,-0.30000000000000004)'::point`, `'(1e-300,NaN)'::point`, `'(Infinity,-0)'::point`,
		`'[(0.1,0.2),(1e300,-Infinity)]'::lseg`, `'(0.1,0.2),(0.30000000000000004,5e-324)'::box`,
		`'[(0.1,0.2),(0.3,0.4),(1,2)]'::path`, `'((0.1,0.2))'::path`, `'((0.1,0.2),(0.7,0.9),(1.5,0.1))'::polygon`,
		`'{0.1,-1,0.30000000000000004}'::line`, `'<(0.1,0.2),0.30000000000000004>'::circle`,
		`ARRAY['(0.1,0.2),(0,0)'::box, NULL, '(1,1),(-1,-1)']`, `ARRAY['(0.1,0.2)'::point, NULL]`,
		`ARRAY['<(1,2),0.1>'::circle]`, `ARRAY['((0.1,0.2),(1,1))'::polygon, NULL]`,
		`ARRAY['(0.1,0.2),(0,0)'::cv_boxd, '(1,1),(-1,-1)']`,
		`ROW('2024-12-01 10:00+05:30', '(0.1,0.2)', '[(0.1,0.2),(0.3,0.4)]', '(0.1,0.2),(0,0)', '[(0.1,0.2),(0.3,0.4)]',
			'((0,0),(0.1,0.30000000000000004),(1,0))', '{1,-1,0.1}', '<(0.1,0.2),0.5>', ARRAY['(0.1,0.2),(0,0)'::box, '(3,3),(2,2)'])::cv_geo`,
		`ARRAY[ROW('2024-12-01 10:00+05:30', '(0.1,0.2)', NULL, NULL, NULL, NULL, NULL, NULL, '{}')::cv_geo, NULL]`,
		// Types whose text depends on no setting, beside a timestamptz.
		`'192.168.0.1/24'::inet`, `'::ffff:1.2.3.4'::inet`, `'2001:db8::1/64'::inet`, `'10.0.0.0/8'::cidr`, `'2001:db8::/32'::cidr`,
		`'08:00:2b:01:02:03'::macaddr`, `'08:00:2b:01:02:03:04:05'::macaddr8`,
		`B'10110'::varbit`, `''::varbit`, `ARRAY[B'1', NULL, B'0']::bit(1)[]`, `ARRAY[B'101', B'']::varbit[]`,
		`$$'a' 'b''c':1A,2B,3C,4 'back\slash':16383 'sp ace' 'x'$$::tsvector`, `''::tsvector`,
		`'<a x="1">t &amp; "q"</a>'::xml`, `'abc'::name`, `4294967295::oid`, `'x'::"char"`, `'\351'::"char"`, `''::"char"`,
		`ROW('2024-12-01 10:00+05:30', '10.1.2.3/16', '10.1.0.0/16', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', B'101', B'',
			$$'a' 'q''uo\te':1A,7$$, '<x>"(,)"</x>', 'na"me', 123, 'q', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
			'{"a": "\" ,()"}', '{"b": [1, null]}', '10:00:00.5', '10:00:00.5-05:30', '1 year -2 days +03:04:05.678')::cv_net`,
		`ARRAY[ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::cv_net, NULL]`,
		// User ranges and multiranges, over float8, a domain over
		// timestamptz, timestamptz; built-in ranges in a composite.
		`'[0.1,0.30000000000000004)'::cv_floatrange`, `'(,1e-300]'::cv_floatrange`, `'empty'::cv_floatrange`, `'[-Infinity,Infinity]'::cv_floatrange`,
		`'[2024-12-01 10:00+05:30,2025-01-01 00:00+00)'::cv_tsdrange`, `'(2024-12-01 10:00:00.5+05:30,)'::cv_tzrange`,
		`'{[0.1,0.2), [0.30000000000000004,1]}'::cv_floatmultirange`, `'{}'::cv_tzmultirange`,
		`ARRAY['[0.1,0.2)'::cv_floatrange, NULL, 'empty']`,
		`ROW('[0.1,0.2)', ARRAY['[2024-12-01 10:00+05:30,)'::cv_tzrange, NULL], '[1,5)', '(0.1,2.5]', '{[2024-01-01,2024-02-01)}', '{[0.1,0.2)}')::cv_inrange`,
		`ARRAY[ROW('[0.1,0.2)', '{}', 'empty', NULL, '{}', '{}')::cv_inrange, NULL]`,
		// A composite with a dropped attribute: its live ones only.
		`ROW(1, '2024-12-01 10:00+05:30', 0.1)::cv_dropped`, `ARRAY[ROW(NULL, NULL, 0.30000000000000004)::cv_dropped]`,
	}
	ctx := context.Background()
	for _, s := range canonicalValueSettings {
		t.Run(s.name, func(t *testing.T) {
			withSessionParams(t, s.params)
			conn, err := connectNode(ctx, nodeOf(0))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			st, err := loadServerTypes(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			binaryOf := func(sql string, args ...any) (uint32, string, []byte) {
				t.Helper()
				var name string
				if err := conn.QueryRow(ctx, `SELECT pg_typeof(`+sql+`)::text`, args...).Scan(&name); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				rows, err := conn.Query(ctx, `SELECT `+sql, append([]any{pgx.QueryResultFormats{pgx.BinaryFormatCode}}, args...)...)
				if err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				defer rows.Close()
				if !rows.Next() {
					t.Fatalf("%s: no row: %v", sql, rows.Err())
				}
				oid := rows.FieldDescriptions()[0].DataTypeOID
				raw := bytes.Clone(rows.RawValues()[0])
				rows.Close()
				if err := rows.Err(); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				return oid, name, raw
			}
			for _, v := range values {
				oid, name, raw := binaryOf(v)
				w := canonicalWriter{st: st}
				_, arr := builtinArrayElems[oid]
				_, rng := builtinRanges[oid]
				if !st.canonical(oid) && !carriableScalars[oid] && !arr && !rng {
					t.Errorf("%s: type %s is not one pgshard writes", v, name)
					continue
				}
				text, err := w.value(nil, oid, raw, 0)
				if err != nil {
					t.Errorf("%s: %v", v, err)
					continue
				}
				_, _, back := binaryOf(`$1::text::`+name, string(text))
				if !bytes.Equal(back, raw) {
					t.Errorf("%s: wrote %s, which reads back as another value", v, text)
				}
			}
			oid, _, raw := binaryOf(`ROW('2024-12-01 10:00+05:30', 12.5)::cv_far`)
			if st.canonical(oid) {
				t.Errorf("cv_far (a money attribute) is listed as a type pgshard writes")
			}
			w := canonicalWriter{st: st}
			var pe *pgconn.PgError
			if _, err := w.value(nil, oid, raw, 0); !errors.As(err, &pe) || pe.Code != "0A000" {
				t.Errorf("cv_far: want a 0A000 refusal, got %v", err)
			}
		})
	}
}
