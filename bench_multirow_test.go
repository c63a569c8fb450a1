package pgshard_test

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkInsertMultiRowParams: a 10-row INSERT with parameters ($1 ...
// $20), as ORMs send a batch, through database/sql's Exec (not prepared by
// the application), new keys of one shard each time; pgshard and pgx's
// database/sql driver on that shard's table.
func BenchmarkInsertMultiRowParams(b *testing.B) {
	f := newBenchFixture(b, false)
	const rows = 10
	values := make([]string, rows)
	for i := range values {
		values[i] = fmt.Sprintf("($%d, $%d)", 2*i+1, 2*i+2)
	}
	list := strings.Join(values, ", ")
	args := func() []any {
		a := make([]any, 0, 2*rows)
		for range rows {
			a = append(a, f.key(), benchValue)
		}
		return a
	}
	benchSubs(b, false, []benchOp{
		{"pgshard", func() error { _, err := f.e.DB.Exec(`INSERT INTO t (k, v) VALUES `+list, args()...); return err }},
		{"pgx", func() error {
			_, err := f.pgxDB.Exec(`INSERT INTO `+f.shardTable+` (k, v) VALUES `+list, args()...)
			return err
		}},
	})
}
