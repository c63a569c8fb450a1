package pgshard_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgshard/pgshard/engine"
)

// TestCopyFromBinaryStoresWhatInsertDoes: a COPY FROM STDIN of typed Go
// values, which pgshard sends to the shards in COPY's binary format, stores
// what INSERTs of the same values store in a plain table on one server,
// under DateStyle SQL, DMY and TimeZone Asia/Kolkata, for every type the
// binary format covers; and so does a COPY whose rows from the 20th on
// give some values as text (a date in DMY order, an integer with spaces, a
// float in exponent form, an interval), at which the writer turns to the
// text format. Both tables are read back in one exact text form (ISO,
// UTC, extra_float_digits 3).
func TestCopyFromBinaryStoresWhatInsertDoes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	saved := engine.CopyBatchBytes
	engine.CopyBatchBytes = 1 << 10
	t.Cleanup(func() { engine.CopyBatchBytes = saved })
	const columns = `(k bigint, b bool, by bytea, i2 smallint, i4 int, t text, j json, jb jsonb, f4 real, f8 float8,
		bc char(5), vc varchar(10), d date, ts timestamp, tz timestamptz, iv interval, n numeric(12,3), nn numeric, u uuid)`
	const list = `k, b, by, i2, i4, t, j, jb, f4, f8, bc, vc, d, ts, tz, iv, n, nn, u`
	const set = `SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'`
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	row := func(i int, text bool) []any {
		at := time.Date(2024, 2, 3, 10, 4, 5, 123456789, kolkata).Add(time.Duration(i) * 7777777 * time.Microsecond)
		var nn pgtype.Numeric
		if err := nn.Scan(fmt.Sprintf("%d.000%d", i*1000003, i)); err != nil {
			t.Fatal(err)
		}
		r := []any{int64(i) * 1_000_000_007, i%2 == 0, []byte{0, byte(i), '\\', 'x'}, int16(i), i * 7919, fmt.Sprintf("t%d\t\\N\n", i),
			fmt.Sprintf(`{"a": %d, "b": "\u00e9"}`, i), fmt.Sprintf(`{"b": [%d, 1.50], "a": null}`, i), float32(i) / 3, float64(i) / 7,
			"ab", fmt.Sprintf("vc%d", i), at, at, at,
			pgtype.Interval{Microseconds: int64(i) * 3_600_000_001, Days: int32(-i), Months: int32(i), Valid: true},
			int64(i) * 31, nn, [16]byte{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}
		if i%7 == 0 {
			r[2], r[5], r[12], r[17] = nil, nil, nil, nil
		}
		if text {
			r[4] = fmt.Sprintf(" %d ", i*7919)
			r[9] = fmt.Sprintf("%de-3", i)
			r[12] = at.Format("02/01/2006")
			r[15] = fmt.Sprintf("%d days 02:00:00.5", i)
		}
		return r
	}
	for _, c := range []struct {
		name   string
		textAt int // the row from which some values are text; -1 never
	}{{"typed values", -1}, {"text from row 20", 20}} {
		t.Run(c.name, func(t *testing.T) {
			table := strings.ReplaceAll("cb_"+c.name, " ", "_")
			e.exec(`CREATE TABLE ` + table + ` ` + columns)
			e.exec(`SELECT master_create_distributed_table($1, 'k')`, table)
			e.exec(`SELECT master_create_worker_shards($1, 4, 2)`, table)
			e.exec(`CREATE TABLE ` + table + `_plain ` + columns)
			var data [][]any
			for i := range 60 {
				data = append(data, row(i, c.textAt >= 0 && i >= c.textAt))
			}
			shard := session(t, "pgshard", e.DSN, set)
			if err := copyRowsErr(shard, `COPY `+table+` (`+list+`) FROM STDIN`, data); err != nil {
				t.Fatal(err)
			}
			plain, err := pgx.Connect(ctx, e.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close(ctx)
			for _, s := range strings.Split(set, ";") {
				if _, err := plain.Exec(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			ph := make([]string, len(data[0]))
			for i := range ph {
				ph[i] = fmt.Sprintf("$%d", i+1)
			}
			for _, r := range data {
				if _, err := plain.Exec(ctx, `INSERT INTO `+table+`_plain (`+list+`) VALUES (`+strings.Join(ph, ", ")+`)`, r...); err != nil {
					t.Fatalf("oracle: %v", err)
				}
			}
			e.assertReplicasIdentical(table)
			read := session(t, "pgshard", e.DSN, `SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC'; SET extra_float_digits = 3`)
			cols := strings.ReplaceAll(list, ", ", "::text, ") + "::text"
			stored := `SELECT concat_ws(' | ', ` + cols + `) FROM %s`
			got, err := resultOfOne(read, fmt.Sprintf(stored, table))
			if err != nil {
				t.Fatal(err)
			}
			want, err := resultOfOne(read, fmt.Sprintf(stored, table+"_plain"))
			if err != nil {
				t.Fatal(err)
			}
			sameRows(t, got, want)
		})
	}
}
