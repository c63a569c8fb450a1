package pgshard_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestInsertSelectStoresValuesExactly: an INSERT ... SELECT that pgshard
// runs through the driver (its SELECT, ORDER BY ... LIMIT over the shards
// of a table in another co-location group, cannot run shard by shard)
// stores what one plain PostgreSQL server stores for the same statement,
// under every session setting that changes how values print and in every
// query mode: timestamptz, timestamp, date, float4/float8, interval,
// numeric, bytea, composites with timestamptz and interval attributes,
// arrays of timestamptz, float8 and a composite, tstzrange, and a
// volatile timestamptz default of a replicated target (which pgshard
// computes itself). The tables are read back in one fixed, exact text
// form (DateStyle ISO, TimeZone UTC, extra_float_digits 3, IntervalStyle
// postgres). A statement may be refused (0A000) but never store other
// values.
func TestInsertSelectStoresValuesExactly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range append(e.c.Nodes[:1:1], e.workers...) {
		for _, ddl := range []string{
			`CREATE TYPE is_stamp AS (at timestamptz, f float8)`,
			`CREATE TYPE is_span AS (at timestamptz, iv interval, f float8)`,
		} {
			if _, err := e.worker(n).Exec(ctx, ddl); err != nil {
				t.Fatalf("%s on %s: %v", ddl, n.Addr(), err)
			}
		}
	}
	const columns = `k int, ts timestamptz, tsn timestamp, d date, f4 real, f8 float8, iv interval, n numeric,
		b bytea, st is_stamp, sp is_span, tsa timestamptz[], fa float8[], sta is_stamp[], r tstzrange`
	const dflt = `, dv timestamptz DEFAULT ('2024-12-01 10:00:00.123456+05:30'::timestamptz + random() * interval '0')`
	e.exec(`CREATE TABLE is_src (` + columns + `)`)
	e.exec(`SELECT master_create_distributed_table('is_src', 'k')`)
	e.exec(`SELECT master_create_worker_shards('is_src', 8, 1)`)
	e.exec(`CREATE TABLE is_dst (` + columns + dflt + `)`)
	e.exec(`SELECT master_create_distributed_table('is_dst', 'k')`)
	e.exec(`SELECT master_create_worker_shards('is_dst', 3, 2)`)
	e.exec(`CREATE TABLE is_src_plain (` + columns + `)`)
	e.exec(`CREATE TABLE is_dst_plain (` + columns + dflt + `)`)
	rows := []string{
		`1, '2024-12-01 10:00:00.123456+05:30', '2024-12-01 10:00', '2024-12-01', 0.1, 0.30000000000000004, '1 year -2 days +03:04:05.678', 'NaN', '\x00ff5c27',
			ROW('2024-12-01 10:00+05:30', 0.1), ROW('2024-12-01 10:00:00.5+05:30', '-1 mon +1 day -00:00:00.5', 1e-300),
			'{"2024-12-01 10:00+05:30",NULL}', '{0.1,0.30000000000000004,NULL}',
			ARRAY[ROW('2024-12-01 10:00+05:30', 0.1)::is_stamp, NULL], '[2024-12-01 10:00+05:30,2024-12-02 10:00+05:30)'`,
		`2, '0044-03-15 12:00:00+00 BC', '0044-03-15 12:00 BC', '0044-03-15 BC', 3.4e38, 1e-300, '-178000000 years', 123456789.123456789, '\x5c',
			ROW('0044-03-15 12:00+00 BC', 1e-300), ROW('1999-12-31 23:59:59.999999-05', '178000000 years 1 mon -5 days -01:02:03.000004', 'NaN'),
			'[0:1]={"1999-12-31 23:59:59.999999-05","2025-03-30 01:30+00"}', '{2.5,-0.0,Infinity,NaN}',
			ARRAY[[ROW('2025-03-30 01:30+00', 2.5)::is_stamp], [ROW('1970-01-01 00:00+00', 3.4e38)::is_stamp]], '(,2024-06-01 12:00+05:30]'`,
		`3, 'infinity', '-infinity', 'infinity', 1.0000001, 0.1, '00:00:00.000001', '-Infinity', '',
			ROW(NULL, NULL), ROW(NULL, 'P1Y2M3DT4H5M6.5S', -0.0), '{}', '{}', '{}', 'empty'`,
		`4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
	}
	for i := 5; i <= 24; i++ {
		rows = append(rows, fmt.Sprintf(`%d, '2024-06-%02d %02d:%02d:00.%06d+05:30', '2024-06-%02d 12:00', '2024-06-%02d', %g, %v, '%d days %d hours', %d.25, '\x%02x',
			ROW('2024-06-%02d 10:00+05:30', %v), ROW('2024-06-%02d 10:00+05:30', '%d mons -%d days', %v), '{"2024-06-%02d 10:00+05:30"}', '{%v}', NULL, '[2024-06-%02d 10:00+05:30,)'`,
			i, i%28+1, i%24, i%60, i*7919%1000000, i%28+1, i%28+1, float32(i)/3, float64(i)/7, i, -i, i, i,
			i%28+1, float64(i)/3, i%28+1, i, i, float64(i)/11, i%28+1, float64(i%5)/7, i%28+1))
	}
	for _, r := range rows {
		e.exec(`INSERT INTO is_src VALUES (` + r + `)`)
		e.exec(`INSERT INTO is_src_plain VALUES (` + r + `)`)
	}
	const list = `k, ts, tsn, d, f4, f8, iv, n, b, st, sp, tsa, fa, sta, r`
	statements := []struct{ name, sql string }{
		{"ordered limit", `INSERT INTO is_dst (` + list + `) SELECT ` + list + ` FROM is_src ORDER BY k LIMIT 20`},
		{"other co-location group", `INSERT INTO is_dst (` + list + `) SELECT ` + list + ` FROM is_src WHERE k > 2`},
	}
	settings := []struct{ name, set string }{
		{"iso utc", ``},
		{"sql dmy kolkata", `SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'`},
		{"german new york", `SET DateStyle = 'German'; SET TimeZone = 'America/New_York'`},
		{"postgres dmy kolkata", `SET DateStyle = 'Postgres, DMY'; SET TimeZone = 'Asia/Kolkata'`},
		{"interval postgres_verbose", `SET IntervalStyle = 'postgres_verbose'`},
		{"interval sql_standard", `SET IntervalStyle = 'sql_standard'`},
		{"interval iso_8601", `SET IntervalStyle = 'iso_8601'`},
		{"extra_float_digits 0", `SET extra_float_digits = 0`},
		{"extra_float_digits -15", `SET extra_float_digits = -15`},
		{"bytea escape", `SET bytea_output = 'escape'`},
		{"all at once", `SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'; SET IntervalStyle = 'sql_standard'; SET extra_float_digits = -15; SET bytea_output = 'escape'`},
	}
	const exact = `SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC'; SET extra_float_digits = 3; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'`
	stored := `SELECT k::text || ' ' || concat_ws(' | ', ts::text, tsn::text, d::text, f4::text, f8::text, iv::text, n::text, b::text, st::text, sp::text, tsa::text, fa::text, sta::text, r::text, dv::text) FROM %s`
	type count struct{ equal, refused, wrong int }
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
				for _, st := range statements {
					e.exec(`DELETE FROM is_dst`)
					e.exec(`DELETE FROM is_dst_plain`)
					if _, err := plain.Exec(strings.ReplaceAll(strings.ReplaceAll(st.sql, "is_src", "is_src_plain"), "is_dst ", "is_dst_plain ")); err != nil {
						t.Fatalf("oracle, %s: %v", st.name, err)
					}
					_, err := shard.Exec(st.sql)
					var pe *pgconn.PgError
					switch {
					case err != nil && errors.As(err, &pe) && pe.Code == "0A000":
						c.refused++
						t.Logf("refused %s: %v", st.name, err)
						continue
					case err != nil:
						t.Fatalf("%s: %v", st.name, err)
					}
					read := session(t, "pgshard", e.DSN, exact)
					got, err := resultOfOne(read, fmt.Sprintf(stored, "is_dst"))
					if err != nil {
						t.Fatal(err)
					}
					want, err := resultOfOne(read, fmt.Sprintf(stored, "is_dst_plain"))
					if err != nil {
						t.Fatal(err)
					}
					if got == want {
						c.equal++
						continue
					}
					c.wrong++
					gl, wl := strings.Split(got, " / "), strings.Split(want, " / ")
					for i := range min(len(gl), len(wl)) {
						if gl[i] != wl[i] {
							t.Errorf("%s: stored differently\ngot:  %s\nwant: %s", st.name, gl[i], wl[i])
							break
						}
					}
					if len(gl) != len(wl) {
						t.Errorf("%s: %d rows stored, want %d", st.name, len(gl), len(wl))
					}
				}
				fmt.Fprintf(&report, "%-40s equal %d refused %d wrong %d\n", name, c.equal, c.refused, c.wrong)
				total.equal, total.refused, total.wrong = total.equal+c.equal, total.refused+c.refused, total.wrong+c.wrong
			})
		}
	}
	t.Logf("statements × settings × 3 query modes (%d × %d × 3): equal %d, refused %d, wrong %d\n%s",
		len(statements), len(settings), total.equal, total.refused, total.wrong, report.String())
}
