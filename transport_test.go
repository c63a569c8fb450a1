package pgshard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestValuesTravelExactlyUnderEverySetting: multi-shard aggregates (whose
// shards' partial rows a combining query reads) and materialized subqueries
// (whose rows the rest of the statement reads) answer exactly what one
// plain PostgreSQL server answers, under every session setting that changes
// how values print: DateStyle SQL/German/Postgres with day-first order and
// TimeZones whose abbreviation is ambiguous (Asia/Kolkata prints IST, which
// PostgreSQL reads as Israel time), every IntervalStyle, extra_float_digits
// 0, -15 and 3, bytea_output escape, lc_monetary. The table holds every
// date/time type, interval, money, float4/float8 (values equal to 15
// digits), bytea, numeric NaN and infinities, infinite and BC timestamps,
// a timestamptz array and a float8 array (NULL elements, -0, NaN,
// Infinity), a user enum, domain and composite (whose OIDs differ between
// the servers), and (table deepvals) a composite with an interval
// attribute, a composite nesting composites and arrays, arrays of
// composites and of a domain, tstzmultirange and tstzrange, and NULLs, in
// aggregates, GROUP BY, DISTINCT, array_agg,
// materialized subqueries and set operations. A query may be refused (0A000) — values
// pgshard cannot carry exactly under the settings — but never answered
// differently from the oracle (the same query over a plain table on the
// metadata server, in a session with the same settings). It runs under
// pgx's default, simple-protocol and exec query modes (the oracle in the
// same mode; a result pgx cannot read in a mode is counted apart when it
// cannot read the oracle's either).
func TestValuesTravelExactlyUnderEverySetting(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// The user types, on every server; the workers' OIDs differ from the
	// metadata server's (a type created first shifts them).
	for i, n := range append(e.c.Nodes[:1:1], e.workers...) {
		w := e.worker(n)
		for j := 0; j < i; j++ {
			if _, err := w.Exec(ctx, fmt.Sprintf(`CREATE TYPE shift%d AS ENUM ('x')`, j)); err != nil {
				t.Fatal(err)
			}
		}
		for _, ddl := range []string{
			`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
			`CREATE DOMAIN posnum AS numeric CHECK (VALUE >= 0)`,
			`CREATE TYPE stamp AS (at timestamptz, f float8)`,
			`CREATE TYPE span AS (at timestamptz, iv interval, f float8)`,
			`CREATE TYPE nest AS (s stamp, sp span, tags text[], fs float8[], q text, ivs interval[])`,
			`CREATE DOMAIN tsd AS timestamptz`,
			`CREATE TYPE geo AS (at timestamptz, p point, b box, c circle, l lseg, pa path, po polygon, li line, bs box[])`,
			`CREATE TYPE net AS (at timestamptz, i inet, c cidr, m macaddr, m8 macaddr8, b bit(3), vb varbit, tv tsvector,
				n name, o oid, ch "char", bp char(4), u uuid, jb jsonb, tm time, tz timetz, iv interval)`,
			`CREATE TYPE doc AS (at timestamptz, x xml, j json, f float8)`,
			`CREATE TYPE floatrange AS RANGE (subtype = float8)`,
			`CREATE TYPE tsdrange AS RANGE (subtype = tsd)`,
			`CREATE TYPE tzrange AS RANGE (subtype = timestamptz)`,
			`CREATE TYPE rngcomp AS (r floatrange, rs tzrange[], gone int, ir int4range)`,
			`ALTER TYPE rngcomp DROP ATTRIBUTE gone`,
			`CREATE TYPE shape AS (c circle, pa path, po polygon, i inet)`,
		} {
			if _, err := w.Exec(ctx, ddl); err != nil {
				t.Fatalf("%s on %s: %v", ddl, n.Addr(), err)
			}
		}
	}
	const columns = `k int, ts timestamptz, d date, tm time, ttz timetz, tsn timestamp, iv interval, m money,
		f4 real, f8 float8, b bytea, n numeric, nt numeric(12,2), tsa timestamptz[], mo mood, pn posnum, st stamp, g int, fa float8[]`
	e.exec(`CREATE TABLE vals (` + columns + `)`)
	e.exec(`SELECT master_create_distributed_table('vals', 'k')`)
	e.exec(`SELECT master_create_worker_shards('vals', 8, 1)`)
	e.exec(`CREATE TABLE vals_plain (` + columns + `)`)
	rows := []string{
		`1, '2024-12-01 10:00:00.123456+05:30', '2024-12-01', '10:00:00.5', '10:00:00+05:30', '2024-12-01 10:00', '1 year -2 days +03:04:05.678', 12.34, 0.1, 0.30000000000000004, '\x00ff5c27', 'NaN', 1.10, '{"2024-12-01 10:00+05:30",NULL}', 'happy', 1.5, '("2024-12-01 10:00+05:30",0.1)', 1, '{0.1,0.30000000000000004,NULL}'`,
		`2, '2024-12-01 04:30:00.123456+00', '2024-01-12', '23:59:59.999999', '10:00:00-04', '2024-01-12 23:59', '-1 mon +1 day', -5.00, 3.4e38, 0.3, '\x5c', 'Infinity', -2.50, '{"2024-01-12 00:00+00"}', 'sad', 0, '("2024-01-12 00:00+00",0.3)', 1, '{1e-300}'`,
		`3, '0044-03-15 12:00:00+00 BC', '0044-03-15 BC', '00:00', '00:00+00', '0044-03-15 12:00 BC', 'P1Y2M3DT4H5M6.5S', 0, 1.0000001, 1e-300, '', '-Infinity', 0, '{}', 'ok', 2, '("0044-03-15 12:00+00 BC",1e-300)', 2, '{}'`,
		`4, 'infinity', 'infinity', '12:00', '12:00+05:30', '-infinity', '-178000000 years', 1000000.01, -0.0, 0.30000000000000004, '\x01', 123456789.123456789, 99.99, NULL, 'happy', 3.25, NULL, 2, NULL`,
		`5, '2025-03-30 01:30:00+00', '2025-03-30', '01:30', '01:30+01', '2025-03-30 01:30', '00:00:00.000001', 0.01, 0.1, 0.1, '\x00', 0.1, 0.1, '{"2025-03-30 01:30+00"}', 'sad', 0.5, '("2025-03-30 01:30+00",0.1)', 3, '{0.1,0.1}'`,
		`6, '2025-03-30 01:30:00+00', '2025-03-30', '01:30', '01:30+01', '2025-03-30 01:30', '00:00:00.000001', 0.01, 0.1, 0.1, '\x00', 0.1, 0.1, NULL, 'sad', 0.5, NULL, 3, '{0.1,0.1}'`,
		`7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 3, NULL`,
		`8, '1999-12-31 23:59:59.999999-05', '1999-12-31', '23:59:59.999999', '23:59:59.999999-05', '1999-12-31 23:59:59.999999', '1 day 02:00:00', 7.77, 1.5, 2.5, '\xdeadbeef', 1e-20, 0.01, '{"1999-12-31 23:59:59.999999-05"}', 'ok', 10, '("1999-12-31 23:59:59.999999-05",2.5)', 1, '{2.5,-0.0,Infinity,NaN}'`,
	}
	for i := 9; i <= 40; i++ {
		rows = append(rows, fmt.Sprintf(`%d, '2024-06-%02d %02d:%02d:00.%06d+05:30', '2024-06-%02d', '%02d:00', '%02d:00+05:30', '2024-06-%02d 12:00', '%d days %d hours', %d.%02d, %g, %v, '\x%02x', %d.5, %d.25, NULL, 'ok', %d, NULL, %d, '{%v,%v}'`,
			i, i%28+1, i%24, i%60, i*7919%1000000, i%28+1, i%24, i%24, i%28+1, i, -i, i, i, float32(i)/3, float64(i)/7, i, i, i, i, i%4, float64(i%5)/7, float64(i%3)/3))
	}
	for _, r := range rows {
		e.exec(`INSERT INTO vals VALUES (` + r + `)`)
		e.exec(`INSERT INTO vals_plain VALUES (` + r + `)`)
	}
	// deepvals holds the values that travel as the text pgshard writes of
	// them recursively: a composite with an interval attribute, a
	// composite nesting composites and arrays (elements that need quotes,
	// backslashes, the string NULL), arrays of composites and of a domain,
	// tstzmultirange and tstzrange.
	const deepColumns = `k int, g int, sp span, ns nest, sta stamp[], da tsd[], spa span[], mr tstzmultirange, r tstzrange`
	e.exec(`CREATE TABLE deepvals (` + deepColumns + `)`)
	e.exec(`SELECT master_create_distributed_table('deepvals', 'k')`)
	e.exec(`SELECT master_create_worker_shards('deepvals', 8, 1)`)
	e.exec(`CREATE TABLE deepvals_plain (` + deepColumns + `)`)
	deepRows := []string{
		`1, 1, ROW('2024-12-01 10:00:00.123456+05:30', '1 year -2 days +03:04:05.678', 0.1),
			ROW(ROW('2024-12-01 10:00+05:30', 0.1)::stamp, ROW('2024-01-12 00:00+00', '-1 mon +1 day -00:00:00.5', 1e-300)::span,
				ARRAY['a b', 'q"uo\te', NULL, 'NULL', '', '(x,y)', '{z}', ' pad '], ARRAY[0.1, '-0', 'NaN', 'Infinity']::float8[], 'he said "hi", \back\', ARRAY['-178000000 years', 'P1Y2M3DT4H5M6.5S']::interval[]),
			ARRAY[ROW('2024-12-01 10:00+05:30', 0.1)::stamp, NULL, ROW('0044-03-15 12:00+00 BC', 1e-300)::stamp, ROW(NULL, NULL)::stamp],
			ARRAY['2024-12-01 10:00+05:30'::tsd, NULL, 'infinity'],
			ARRAY[ROW('2024-12-01 10:00+05:30', '-00:00:00.000001', 0.30000000000000004)::span, ROW(NULL, '1 day', NULL)::span],
			'{[2024-12-01 10:00+05:30,2024-12-02 10:00+05:30), [2025-01-01 00:00+00,)}', '[2024-12-01 10:00+05:30,infinity)'`,
		`2, 1, ROW('0044-03-15 12:00:00+00 BC', '-1 mon +1 day', -0.0),
			ROW(NULL, ROW(NULL, '00:00:00.000001', NULL)::span, '{}'::text[], NULL, '', NULL),
			'{}', '[0:1]={"1999-12-31 23:59:59.999999-05","2025-03-30 01:30+00"}',
			NULL, '{}', 'empty'`,
		`3, 2, ROW('1999-12-31 23:59:59.999999-05', '178000000 years 1 mon -5 days -01:02:03.000004', 1e-300),
			ROW(ROW('infinity', 'Infinity')::stamp, ROW('-infinity', '-1 year -1 mon', 'NaN')::span, ARRAY[['a', 'b'], ['"', '\']], ARRAY[[1.5], [NULL]]::float8[], NULL, '{}'),
			ARRAY[[ROW('2025-03-30 01:30+00', 2.5)::stamp], [ROW('1970-01-01 00:00+00', 3.4e38)::stamp]], NULL,
			ARRAY[ROW('2024-06-01 12:00+05:30', 'P-1Y-2M3DT-4H-5M-6.5S', 1)::span],
			'{(,2024-06-01 00:00+05:30], [2024-07-01 00:00+00,2024-08-01 00:00+00]}', '(,2024-06-01 12:00+05:30]'`,
		`4, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
		`5, 1, ROW('2024-12-01 10:00:00.123456+05:30', '1 year -2 days +03:04:05.678', 0.1),
			ROW(ROW('2024-12-01 10:00+05:30', 0.1)::stamp, NULL, ARRAY['x'], ARRAY[0.1], 'y', NULL),
			ARRAY[ROW('2024-12-01 10:00+05:30', 0.1)::stamp, NULL, ROW('0044-03-15 12:00+00 BC', 1e-300)::stamp, ROW(NULL, NULL)::stamp],
			ARRAY['2024-12-01 10:00+05:30'::tsd, NULL, 'infinity'],
			ARRAY[ROW('2024-12-01 10:00+05:30', '-00:00:00.000001', 0.30000000000000004)::span, ROW(NULL, '1 day', NULL)::span],
			'{[2024-12-01 10:00+05:30,2024-12-02 10:00+05:30), [2025-01-01 00:00+00,)}', '[2024-12-01 10:00+05:30,infinity)'`,
		`6, 3, ROW(NULL, '00:00:00', NULL), ROW(NULL, NULL, NULL, NULL, NULL, NULL), '{NULL}', '{NULL}', '{NULL}', '{}', '(,)'`,
	}
	for _, r := range deepRows {
		e.exec(`INSERT INTO deepvals VALUES (` + r + `)`)
		e.exec(`INSERT INTO deepvals_plain VALUES (` + r + `)`)
	}

	// typevals holds the types whose text pgshard writes besides those:
	// geometric types (float8s, cut by extra_float_digits) and box
	// arrays, network types, bit strings, tsvector, xml, json, name, oid,
	// "char", char(n), uuid, time, timetz and interval beside a
	// timestamptz in composites, user ranges over float8, a domain over
	// timestamptz and timestamptz, a multirange, a composite of ranges
	// (with a dropped attribute) and an array of it, and a composite of
	// circle, path, polygon and inet only (sh).
	const typeColumns = `k int, g int, geo geo, net net, dc doc, fr floatrange, dr tsdrange, tr tzrange, fmr floatmultirange,
		rc rngcomp, rca rngcomp[], pa point[], ba box[], sh shape`
	e.exec(`CREATE TABLE typevals (` + typeColumns + `)`)
	e.exec(`SELECT master_create_distributed_table('typevals', 'k')`)
	e.exec(`SELECT master_create_worker_shards('typevals', 8, 1)`)
	e.exec(`CREATE TABLE typevals_plain (` + typeColumns + `)`)
	typeRows := []string{
		`1, 1, ROW('2024-12-01 10:00:00.123456+05:30', '(0.1,0.30000000000000004)', '(0.1,0.2),(1e-300,-0)', '<(0.1,0.2),0.30000000000000004>',
				'[(0.1,0.2),(0.3,0.4)]', '[(0.1,0.2),(0.7,1e300),(1,2)]', '((0,0),(0.1,0.30000000000000004),(1,0))', '{0.1,-1,0.30000000000000004}',
				ARRAY['(0.1,0.2),(0,0)'::box, NULL, '(3,3),(2,2)']),
			ROW('2024-12-01 10:00+05:30', '192.168.0.1/24', '2001:db8::/32', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', B'101', B'0110',
				$$'a' 'q''uo\te':1A,7 'sp ace':3C$$, 'na"me', 4294967295, 'é', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
				'{"a": "\" ,()", "b": [1, null]}', '10:00:00.5', '10:00:00.5-05:30', '1 year -2 days +03:04:05.678'),
			ROW('2024-12-01 10:00+05:30', '<a x="1">t &amp; "q"</a>', '{"k": [1, "x"]}', 0.30000000000000004),
			'[0.1,0.30000000000000004)', '[2024-12-01 10:00+05:30,2025-01-01 00:00+00)', '(2024-12-01 10:00:00.5+05:30,)',
			'{[0.1,0.2), [0.30000000000000004,1]}', ROW('(,1e-300]', ARRAY['[2024-12-01 10:00+05:30,)'::tzrange, NULL], '[1,5)'),
			ARRAY[ROW('[0.1,0.2)', '{}', 'empty')::rngcomp, NULL], ARRAY['(0.1,0.2)'::point, NULL, '(NaN,Infinity)'],
			ARRAY['(0.1,0.2),(0,0)'::box, '(1,1),(-1,-1)']`,
		`2, 1, ROW('0044-03-15 12:00:00+00 BC', '(1e-300,-0)', '(1,1),(0.1,0.1)', '<(0,0),1e-300>', '[(0,0),(1,1)]', '((0.1,0.2))',
				'((0.1,0.2))', '{1,0,0.1}', '{}'),
			ROW('1999-12-31 23:59:59.999999-05', '::ffff:1.2.3.4', '10.0.0.0/8', '00:00:00:00:00:00', '00:00:00:00:00:00:00:00', B'000', B'',
				'', '', 0, '', '', '00000000-0000-0000-0000-000000000000', 'null', '24:00', '00:00+15:59', '-178000000 years'),
			ROW(NULL, '<x/>', 'null', 'NaN'),
			'empty', '(,)', 'empty', '{}', ROW('empty', '{}', 'empty'), '{}', '{}', '{}'`,
		`3, 2, ROW('infinity', '(Infinity,-Infinity)', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			ROW('2025-03-30 01:30+00', '2001:db8::1/64', NULL, NULL, NULL, NULL, NULL, $$'x'$$, 'x', 1, 'x', 'x', NULL, '[]', NULL, NULL, 'P1Y2M3DT4H5M6.5S'),
			ROW('2025-03-30 01:30+00', NULL, NULL, 1e-300),
			'[-Infinity,Infinity]', '[2025-03-30 01:30+00,2025-03-30 01:30:00.000001+00]', '[,2024-06-01 12:00+05:30]',
			'{[1e-300,1e300]}', ROW(NULL, NULL, NULL), ARRAY[[ROW('[1,2]', NULL, '[0,1)')::rngcomp], [NULL::rngcomp]], '[0:0]={"(1,2)"}', NULL`,
		`4, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
		`5, 1, ROW('2024-12-01 10:00:00.123456+05:30', '(0.1,0.30000000000000004)', '(0.1,0.2),(1e-300,-0)', '<(0.1,0.2),0.30000000000000004>',
				'[(0.1,0.2),(0.3,0.4)]', '[(0.1,0.2),(0.7,1e300),(1,2)]', '((0,0),(0.1,0.30000000000000004),(1,0))', '{0.1,-1,0.30000000000000004}',
				ARRAY['(0.1,0.2),(0,0)'::box, NULL, '(3,3),(2,2)']),
			ROW('2024-12-01 10:00+05:30', '192.168.0.1/24', '2001:db8::/32', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', B'101', B'0110',
				$$'a' 'q''uo\te':1A,7 'sp ace':3C$$, 'na"me', 4294967295, 'é', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
				'{"a": "\" ,()", "b": [1, null]}', '10:00:00.5', '10:00:00.5-05:30', '1 year -2 days +03:04:05.678'),
			ROW('2024-12-01 10:00+05:30', '<a/>', '[]', 0.1),
			'[0.1,0.30000000000000004)', '[2024-12-01 10:00+05:30,2025-01-01 00:00+00)', '(2024-12-01 10:00:00.5+05:30,)',
			'{[0.1,0.2), [0.30000000000000004,1]}', ROW('(,1e-300]', ARRAY['[2024-12-01 10:00+05:30,)'::tzrange, NULL], '[1,5)'),
			ARRAY[ROW('[0.1,0.2)', '{}', 'empty')::rngcomp, NULL], ARRAY['(0.1,0.2)'::point, NULL, '(NaN,Infinity)'],
			ARRAY['(0.1,0.2),(0,0)'::box, '(1,1),(-1,-1)']`,
	}
	for i := 6; i <= 20; i++ {
		typeRows = append(typeRows, fmt.Sprintf(`%d, %d, ROW('2024-06-%02d 10:00:00.%06d+05:30', '(%v,%v)', '(%v,%v),(0,0)', '<(%v,0),%v>', NULL, NULL, NULL, NULL, NULL),
			ROW('2024-06-%02d 10:00+05:30', '10.0.%d.1/24', NULL, NULL, NULL, B'%03b', NULL, NULL, 'n%d', %d, NULL, NULL, NULL, NULL, '%02d:00', NULL, '%d hours'),
			ROW('2024-06-%02d 10:00+05:30', '<i>%d</i>', '%d', %v), '[%v,%v)', NULL, '[2024-06-%02d 10:00+05:30,)', '{[%v,%v]}', NULL, NULL,
			ARRAY['(%v,%v)'::point], NULL`,
			i, i%3, i%28+1, i*7919%1000000, float64(i)/7, float64(i)/3, float64(i)/11, float64(i)/13, float64(i)/17, float64(i)/19,
			i%28+1, i, i%8, i, i, i%24, i,
			i%28+1, i, i, float64(i)/7, float64(i)/7, float64(i)/3, i%28+1, float64(i)/9, float64(i)/3, float64(i)/7, float64(i)/3))
	}
	// sh, a composite of circle, path, polygon and inet (no float, no
	// timestamptz, no type whose element is a float: point, lseg, box and
	// line are float8 arrays to PostgreSQL), differs from row to row, NULL
	// in the fourth.
	for i := range typeRows {
		if i == 3 {
			typeRows[i] += `, NULL`
			continue
		}
		typeRows[i] += fmt.Sprintf(`, ROW('<(0.30000000000000004,1e-300),%v>', '[(0.1,%v),(1,1)]', '((0,0),(%v,1),(1,0))', '10.0.0.%d')`, float64(i+1)/7, float64(i+1)/3, float64(i+1)/11, i)
	}
	for _, r := range typeRows {
		e.exec(`INSERT INTO typevals VALUES (` + r + `)`)
		e.exec(`INSERT INTO typevals_plain VALUES (` + r + `)`)
	}
	// typevals_dst is in another co-location group than typevals, so an
	// INSERT ... SELECT from one to the other runs through the driver.
	e.exec(`CREATE TABLE typevals_dst (` + typeColumns + `)`)
	e.exec(`SELECT master_create_distributed_table('typevals_dst', 'k')`)
	e.exec(`SELECT master_create_worker_shards('typevals_dst', 3, 2)`)
	e.exec(`CREATE TABLE typevals_dst_plain (` + typeColumns + `)`)
	const typeList = `k, g, geo, net, dc, fr, dr, tr, fmr, rc, rca, pa, ba, sh`
	inserts := []struct{ name, sql string }{
		{"insert select ordered limit", `INSERT INTO typevals_dst (` + typeList + `) SELECT ` + typeList + ` FROM typevals ORDER BY k LIMIT 15`},
		{"insert select other co-location group", `INSERT INTO typevals_dst (` + typeList + `) SELECT ` + typeList + ` FROM typevals WHERE k > 1`},
	}
	const exactRead = `SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC'; SET extra_float_digits = 3; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'`
	storedTypes := `SELECT k::text || ' ' || concat_ws(' | ', g::text, geo::text, net::text, dc::text, fr::text, dr::text, tr::text, fmr::text, rc::text, rca::text, pa::text, ba::text, sh::text) FROM %s`

	queries := []struct{ name, sql string }{
		{"aggregates", `SELECT count(*), count(ts), min(ts), max(ts), min(d), max(d), min(tm), max(ttz), min(tsn), max(iv), sum(iv), sum(f8), sum(f4), min(f4), max(f8), sum(m), max(m), sum(n), max(nt), min(pn), max(mo) FROM vals`},
		{"averages", `SELECT avg(f8), avg(f4), avg(iv), avg(n), avg(nt) FROM vals`},
		{"group by timestamptz", `SELECT ts, count(*), sum(f8) FROM vals GROUP BY ts`},
		{"group by float8", `SELECT f8, count(*) FROM vals GROUP BY f8`},
		{"group by float4", `SELECT f4, count(*), min(k) FROM vals GROUP BY f4`},
		{"group by date time timetz timestamp", `SELECT d, tm, ttz, tsn, count(*) FROM vals GROUP BY 1, 2, 3, 4`},
		{"group by interval money bytea", `SELECT iv, m, b, count(*) FROM vals GROUP BY iv, m, b`},
		{"group by numeric enum domain", `SELECT n, nt, mo, pn, count(*) FROM vals GROUP BY n, nt, mo, pn`},
		{"group by g with everything", `SELECT g, min(ts), max(d), sum(iv), sum(f8), max(f4), sum(m), count(b), sum(n) FROM vals GROUP BY g`},
		{"group by timestamptz array", `SELECT tsa, count(*) FROM vals GROUP BY tsa`},
		{"group by composite", `SELECT st, count(*) FROM vals GROUP BY st`},
		{"distinct", `SELECT DISTINCT ts, f8, iv FROM vals`},
		{"distinct float4 text", `SELECT DISTINCT f4, f4::text FROM vals`},
		{"count distinct", `SELECT count(DISTINCT ts), count(DISTINCT f8), count(DISTINCT iv), count(DISTINCT f4) FROM vals`},
		{"array_agg string_agg", `SELECT array_agg(ts ORDER BY k), string_agg(f8::text, ',' ORDER BY k), array_agg(b ORDER BY k), string_agg(iv::text, ';' ORDER BY k) FROM vals`},
		{"window", `SELECT k, ts, rank() OVER (ORDER BY ts, k), sum(f8) OVER (PARTITION BY g ORDER BY k), lag(iv) OVER (ORDER BY k) FROM vals`},
		{"order by timestamptz", `SELECT k, ts, d, f8 FROM vals ORDER BY ts NULLS FIRST, k LIMIT 12`},
		{"order by float desc", `SELECT k, f8, f4, m FROM vals ORDER BY f8 DESC NULLS LAST, f4, k`},
		{"order by interval", `SELECT k, iv FROM vals ORDER BY iv, k LIMIT 15`},
		{"order by date timestamp time", `SELECT k, d, tsn, tm FROM vals ORDER BY d DESC, tsn, tm, k`},
		{"having", `SELECT g, count(*) FROM vals GROUP BY g HAVING max(ts) > '2024-12-01 04:00+00' AND sum(f8) > 0.3`},
		{"materialized", `SELECT * FROM (SELECT k, ts, d, tm, ttz, tsn, iv, m, f4, f8, b, n, nt, mo, pn FROM vals ORDER BY k LIMIT 10) s ORDER BY k`},
		{"materialized cte", `WITH top AS (SELECT ts, f8, iv FROM vals ORDER BY ts DESC NULLS LAST, k LIMIT 6) SELECT count(*), min(ts), max(ts), sum(f8), sum(iv) FROM top`},
		{"materialized in", `SELECT k FROM vals WHERE ts IN (SELECT ts FROM vals WHERE f8 = 0.30000000000000004 ORDER BY k LIMIT 3)`},
		{"materialized float", `SELECT f8, count(*) FROM (SELECT f8 FROM vals ORDER BY k LIMIT 10) s GROUP BY f8`},
		{"materialized ordered by an output name", `SELECT * FROM (SELECT k, f8 AS f8, ts AS ts FROM vals ORDER BY f8, ts, k LIMIT 5) s ORDER BY k`},
		{"materialized array composite", `SELECT * FROM (SELECT k, tsa, st FROM vals ORDER BY k LIMIT 5) s ORDER BY k`},
		{"group by float8 array", `SELECT fa, count(*) FROM vals GROUP BY fa`},
		{"distinct arrays enum domain", `SELECT DISTINCT fa, tsa, mo, pn FROM vals`},
		{"array_agg by group", `SELECT g, array_agg(f8 ORDER BY k), array_agg(ts ORDER BY k) FROM vals GROUP BY g`},
		{"distinct composite enum", `SELECT DISTINCT st, mo FROM vals`},
		{"materialized float array", `SELECT * FROM (SELECT k, fa, tsa, mo, pn FROM vals ORDER BY k LIMIT 6) s ORDER BY k`},
		{"materialized array in", `SELECT k FROM vals WHERE fa IN (SELECT fa FROM vals WHERE g = 3 ORDER BY k LIMIT 3) ORDER BY k`},
		{"union arrays", `SELECT fa, tsa, mo FROM vals WHERE g = 1 UNION SELECT fa, tsa, mo FROM vals WHERE g = 3`},
		{"union", `SELECT ts, f8, iv, f4 FROM vals WHERE g = 1 UNION SELECT ts, f8, iv, f4 FROM vals WHERE g = 3`},
		{"intersect all", `SELECT ts, d, f4, m, nt FROM vals INTERSECT ALL SELECT ts, d, f4, m, nt FROM vals WHERE k > 5`},
		{"except ordered", `SELECT ts, tsn, n, b FROM vals EXCEPT ALL SELECT ts, tsn, n, b FROM vals WHERE g = 2 ORDER BY 1 NULLS FIRST, 2, 3, 4 LIMIT 20`},
		{"union pushed down", `SELECT k, ts, iv, f8 FROM vals UNION SELECT k, ts, iv, f8 FROM vals WHERE g = 1`},
		{"union in an IN subquery", `SELECT k FROM vals WHERE ts IN (SELECT ts FROM vals WHERE g = 1 UNION ALL SELECT ts FROM vals WHERE g = 3)`},
		{"group by composite with interval", `SELECT sp, count(*) FROM deepvals GROUP BY sp`},
		{"distinct nested composite", `SELECT DISTINCT ns FROM deepvals`},
		{"group by arrays of composites and domains", `SELECT sta, da, spa, count(*) FROM deepvals GROUP BY sta, da, spa`},
		{"group by tstzmultirange tstzrange", `SELECT mr, r, count(*) FROM deepvals GROUP BY mr, r`},
		{"array_agg composite with interval", `SELECT g, array_agg(sp ORDER BY k), array_agg(mr ORDER BY k) FROM deepvals GROUP BY g`},
		{"materialized deep", `SELECT * FROM (SELECT k, sp, ns, sta, da, spa, mr, r FROM deepvals ORDER BY k LIMIT 5) s ORDER BY k`},
		{"materialized deep in", `SELECT k FROM deepvals WHERE sp IN (SELECT sp FROM deepvals WHERE g = 1 ORDER BY k LIMIT 2) ORDER BY k`},
		{"array_agg geometric network xml composites", `SELECT g, array_agg(geo ORDER BY k), array_agg(net ORDER BY k), array_agg(dc ORDER BY k) FROM typevals GROUP BY g`},
		{"distinct network composite", `SELECT DISTINCT net FROM typevals`},
		{"array_agg geometric composite", `SELECT g, array_agg(sh ORDER BY k) FROM typevals GROUP BY g`},
		{"window over a geometric composite, exact bits", `SELECT k, circle_send((lag(sh) OVER (ORDER BY k)).c), path_send((lag(sh) OVER (ORDER BY k)).pa), poly_send((lag(sh) OVER (ORDER BY k)).po) FROM typevals`},
		{"materialized geometric composite, exact bits", `SELECT k, circle_send((sh).c), path_send((sh).pa), poly_send((sh).po) FROM (SELECT k, sh FROM typevals ORDER BY k LIMIT 6) s ORDER BY k`},
		{"group by user ranges", `SELECT fr, dr, tr, count(*) FROM typevals GROUP BY fr, dr, tr`},
		{"distinct multirange composite of ranges", `SELECT DISTINCT fmr, rc, rca FROM typevals`},
		{"array_agg point and box arrays", `SELECT g, array_agg(k ORDER BY k), array_agg(pa[1] ORDER BY k), array_agg(ba[1] ORDER BY k) FROM typevals GROUP BY g`},
		{"materialized types", `SELECT * FROM (SELECT ` + typeList + ` FROM typevals ORDER BY k LIMIT 8) s ORDER BY k`},
		{"materialized network in", `SELECT k FROM typevals WHERE net IN (SELECT net FROM typevals WHERE g = 1 ORDER BY k LIMIT 2) ORDER BY k`},
		{"materialized range in", `SELECT k FROM typevals WHERE fr IN (SELECT fr FROM typevals ORDER BY k LIMIT 3) ORDER BY k`},
	}
	settings := []struct{ name, set string }{
		{"iso utc", ``},
		{"sql dmy kolkata", `SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'`},
		{"german new york", `SET DateStyle = 'German'; SET TimeZone = 'America/New_York'`},
		{"postgres dmy kolkata", `SET DateStyle = 'Postgres, DMY'; SET TimeZone = 'Asia/Kolkata'`},
		{"postgres mdy new york", `SET DateStyle = 'Postgres, MDY'; SET TimeZone = 'America/New_York'`},
		{"iso kolkata", `SET TimeZone = 'Asia/Kolkata'`},
		{"interval postgres_verbose", `SET IntervalStyle = 'postgres_verbose'`},
		{"interval sql_standard", `SET IntervalStyle = 'sql_standard'`},
		{"interval iso_8601", `SET IntervalStyle = 'iso_8601'`},
		{"extra_float_digits 0", `SET extra_float_digits = 0`},
		{"extra_float_digits -15", `SET extra_float_digits = -15`},
		{"extra_float_digits 3", `SET extra_float_digits = 3`},
		{"bytea escape", `SET bytea_output = 'escape'`},
		{"lc_monetary C.UTF-8", `SET lc_monetary = 'C.UTF-8'`},
		{"all at once", `SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'; SET IntervalStyle = 'sql_standard'; SET extra_float_digits = -15; SET bytea_output = 'escape'`},
	}
	type count struct{ equal, refused, wrong, errs, bothFail int }
	var total count
	var report strings.Builder
	for _, mode := range []string{"", "simple_protocol", "exec"} {
		for _, s := range settings {
			name := s.name
			dsn := e.DSN
			if mode != "" {
				name += " " + mode
				dsn += "&default_query_exec_mode=" + mode
			}
			t.Run(name, func(t *testing.T) {
				shard := session(t, "pgshard", dsn, s.set)
				plain := session(t, "pgx", dsn, s.set)
				var c count
				for _, q := range queries {
					want, oracleErr := resultOf(plain, strings.ReplaceAll(q.sql, "vals", "vals_plain"))
					got, err := resultOf(shard, q.sql)
					var pe *pgconn.PgError
					switch {
					case oracleErr != nil && err != nil && !errors.As(oracleErr, &pe):
						// pgx cannot read the values in this mode (text it
						// does not parse: a timestamptz with a zone
						// abbreviation, bytea in escape format), from either.
						c.bothFail++
					case oracleErr != nil:
						c.errs++
						t.Errorf("oracle, %s: %v (pgshard: %v, %.300s)", q.name, oracleErr, err, got)
					case err != nil && errors.As(err, &pe) && pe.Code == "0A000":
						c.refused++
						t.Logf("refused %s: %v", q.name, err)
						if strings.Contains(q.sql, "deepvals") || strings.Contains(q.sql, "typevals") {
							// pgshard writes the text of each of its values.
							t.Errorf("%s: refused, want its values carried exactly: %v", q.name, err)
						}
					case err != nil:
						c.errs++
						t.Errorf("%s: %v", q.name, err)
					case got != want:
						c.wrong++
						t.Errorf("%s: wrong answer\nsql:  %s\ngot:  %s\nwant: %s", q.name, q.sql, got, want)
					default:
						c.equal++
					}
				}
				// INSERT ... SELECT stores what a plain server stores, read
				// back in one fixed, exact text form.
				for _, ins := range inserts {
					e.exec(`DELETE FROM typevals_dst`)
					e.exec(`DELETE FROM typevals_dst_plain`)
					if _, err := plain.Exec(strings.ReplaceAll(strings.ReplaceAll(ins.sql, "typevals ", "typevals_plain "), "typevals_dst ", "typevals_dst_plain ")); err != nil {
						t.Fatalf("oracle, %s: %v", ins.name, err)
					}
					_, err := shard.Exec(ins.sql)
					var pe *pgconn.PgError
					switch {
					case err != nil && errors.As(err, &pe) && pe.Code == "0A000":
						c.refused++
						t.Errorf("%s: refused, want its values carried exactly: %v", ins.name, err)
						continue
					case err != nil:
						c.errs++
						t.Errorf("%s: %v", ins.name, err)
						continue
					}
					read := session(t, "pgshard", e.DSN, exactRead)
					got, err := resultOfOne(read, fmt.Sprintf(storedTypes, "typevals_dst"))
					if err != nil {
						t.Fatal(err)
					}
					want, err := resultOfOne(read, fmt.Sprintf(storedTypes, "typevals_dst_plain"))
					if err != nil {
						t.Fatal(err)
					}
					if got != want {
						c.wrong++
						t.Errorf("%s: stored differently\ngot:  %s\nwant: %s", ins.name, got, want)
						continue
					}
					c.equal++
				}
				fmt.Fprintf(&report, "%-42s equal %2d refused %2d wrong %2d error %2d (unreadable by pgx in this mode %d)\n", name, c.equal, c.refused, c.wrong, c.errs, c.bothFail)
				total.equal, total.refused, total.wrong, total.errs = total.equal+c.equal, total.refused+c.refused, total.wrong+c.wrong, total.errs+c.errs
			})
		}
	}
	t.Logf("(queries + INSERT ... SELECTs) × settings × 3 query modes ((%d + %d) × %d × 3): equal %d, refused %d, wrong %d, error %d\n%s",
		len(queries), len(inserts), len(settings), total.equal, total.refused, total.wrong, total.errs, report.String())
}

// session opens a one-connection database/sql pool of driver on dsn and
// runs the SET statements set (separated by ";") in it.
func session(t *testing.T, driver, dsn, set string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	for _, stmt := range strings.Split(set, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return db
}

// resultOf runs q and renders its rows, sorted unless q has an ORDER BY
// at its top level (LIMIT 12 of a sorted list is checked as a list), each
// value as the driver returns it (instants in UTC, bytes quoted).
func resultOf(db *sql.DB, q string) (string, error) {
	rows, err := db.Query(q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteString(" | ")
			}
			switch x := v.(type) {
			case time.Time:
				b.WriteString(x.UTC().Format(time.RFC3339Nano))
			case []byte:
				fmt.Fprintf(&b, "%q", x)
			default:
				fmt.Fprintf(&b, "%v", x)
			}
		}
		lines = append(lines, b.String())
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if !strings.Contains(q[strings.LastIndex(q, ")")+1:], "ORDER BY") {
		slices.Sort(lines)
	}
	return strings.Join(cols, ",") + ": " + strings.Join(lines, " / "), nil
}

// TestUserTypeRetriedInsideTransaction: a multi-shard DISTINCT over a
// composite whose text would not read back under DateStyle 'SQL, DMY' is
// retried with the servers' user types (Combine) — inside a transaction
// too, where the first attempt's refusal must not fail the transaction —
// and answers what a plain table answers; a composite pgshard cannot carry
// exactly (a money attribute beside a timestamptz) is refused with 0A000,
// not 25P02.
func TestUserTypeRetriedInsideTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range append(e.c.Nodes[:1:1], e.workers...) {
		for _, ddl := range []string{
			`CREATE TYPE stamp AS (at timestamptz, f float8)`,
			`CREATE TYPE mixed AS (at timestamptz, n numeric, d date)`,
			`CREATE TYPE odd AS (at timestamptz, i interval)`,
			`CREATE TYPE far AS (at timestamptz, m money)`,
		} {
			if _, err := e.worker(n).Exec(ctx, ddl); err != nil {
				t.Fatalf("%s on %s: %v", ddl, n.Addr(), err)
			}
		}
	}
	for _, table := range []string{"ut", "ut_plain"} {
		e.exec(`CREATE TABLE ` + table + ` (k int, st stamp, mx mixed, od odd, fr far)`)
		if table == "ut" {
			e.exec(`SELECT master_create_distributed_table('ut', 'k')`)
			e.exec(`SELECT master_create_worker_shards('ut', 8, 1)`)
		}
		for k := 1; k <= 12; k++ {
			e.exec(fmt.Sprintf(`INSERT INTO %s VALUES (%d, ('2024-06-%02d 10:00+05:30', %d.0 / 7), ('2024-06-%02d 10:00+05:30', %d.5, '2024-06-%02d'), ('2024-06-%02d 10:00+05:30', '%d hours'), ('2024-06-%02d 10:00+05:30', %d.5))`, table, k, k%5+1, k%3, k%5+1, k, k%5+1, k%5+1, k%4, k%5+1, k%3))
		}
	}
	shard := session(t, "pgshard", e.DSN, `SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'`)
	plain := session(t, "pgx", e.DSN, `SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'`)
	for _, tc := range []struct {
		name, sql string
		refused   bool
	}{
		{"composite carried exactly", `SELECT DISTINCT st FROM ut`, false},
		{"composite with numeric and date carried exactly", `SELECT DISTINCT mx FROM ut`, false},
		{"composite with interval carried exactly", `SELECT DISTINCT od FROM ut`, false},
		{"composite refused", `SELECT DISTINCT fr FROM ut`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := resultOfOne(plain, strings.ReplaceAll(tc.sql, "ut", "ut_plain"))
			if err != nil {
				t.Fatal(err)
			}
			for _, inTx := range []bool{false, true} {
				var got string
				if inTx {
					tx, err := shard.BeginTx(ctx, nil)
					if err != nil {
						t.Fatal(err)
					}
					got, err = resultOfOne(tx, tc.sql)
					tx.Rollback()
					checkTravel(t, tc.refused, inTx, got, want, err)
				} else {
					got, err = resultOfOne(shard, tc.sql)
					checkTravel(t, tc.refused, inTx, got, want, err)
				}
			}
		})
	}
}

// checkTravel checks one answer of TestUserTypeRetriedInsideTransaction.
func checkTravel(t *testing.T, refused, inTx bool, got, want string, err error) {
	t.Helper()
	var pe *pgconn.PgError
	switch {
	case refused && (err == nil || !errors.As(err, &pe) || pe.Code != "0A000"):
		t.Errorf("in a transaction %v: want a 0A000 refusal, got %v (%.200s)", inTx, err, got)
	case !refused && err != nil:
		t.Errorf("in a transaction %v: %v", inTx, err)
	case !refused && got != want:
		t.Errorf("in a transaction %v: got %s, want %s", inTx, got, want)
	}
}

// resultOfOne renders the rows of q, whose columns it reads as text, in
// a pool or a transaction.
func resultOfOne(db interface {
	Query(string, ...any) (*sql.Rows, error)
}, q string) (string, error) {
	rows, err := db.Query(q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var lines []string
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprint(v.String))
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	slices.Sort(lines)
	return strings.Join(cols, ",") + ": " + strings.Join(lines, " / "), nil
}
