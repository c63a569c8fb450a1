package merge

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// connRows are rows of pgx's database/sql driver on a connection of their
// own, closed with them, as pgshard's placementRows wrap them.
type connRows struct {
	driver.Rows
	forward // the column types of Rows
	conn    driver.Conn
}

func (r *connRows) Close() error {
	err := r.Rows.Close()
	if cerr := r.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// pgxQuery runs query on a new connection of pgx's database/sql driver and
// returns its driver.Rows.
func pgxQuery(ctx context.Context, dsn, query string) (driver.Rows, error) {
	connector, err := stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	conn, err := connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.(driver.QueryerContext).QueryContext(ctx, query, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &connRows{rows, forward{rows}, conn}, nil
}

// TestPostgresMergeSort runs Parallel, MergeSort, Limit and Project over the
// rows of real shard queries (one table split by id % 4) and checks them
// against PostgreSQL's own ORDER BY ... LIMIT ... OFFSET over the table.
func TestPostgresMergeSort(t *testing.T) {
	c := pgtest.StartTB(t, 1)
	dsn := c.Nodes[0].DSN("")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(3, 5))
	var values []string
	for id := range 2000 {
		k := "NULL"
		if rng.IntN(8) > 0 {
			k = quote(randomText(rng, 2))
		}
		n := "NULL"
		if rng.IntN(8) > 0 {
			n = quote(pick(rng, "1.1", "1.10", "-0", "0", "NaN", "Infinity", "-Infinity", "2.5", fmt.Sprint(rng.IntN(100)-50)))
		}
		values = append(values, fmt.Sprintf("(%d, %s, %s::numeric, now() + %d * interval '1 second', '\\x%02x'::bytea)", id, k, n, rng.IntN(100), rng.IntN(256)))
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id int, k text, n numeric, ts timestamptz, b bytea)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES "+strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}

	const shards = 4
	const order = "k DESC, n, id" // k DESC is NULLS FIRST, n NULLS LAST
	shardQuery := func(i int) string {
		return fmt.Sprintf("SELECT k, n, ts, b, id FROM t WHERE id %% %d = %d ORDER BY %s", shards, i, order)
	}
	for _, tc := range []struct{ offset, count int64 }{{0, -1}, {0, 10}, {7, 20}, {1990, 50}, {0, 0}} {
		t.Run(fmt.Sprintf("offset=%d/count=%d", tc.offset, tc.count), func(t *testing.T) {
			open := func(ctx context.Context, i int) (driver.Rows, error) { return pgxQuery(ctx, dsn, shardQuery(i)) }
			srcs, err := Parallel(ctx, shards, 32, open)
			if err != nil {
				t.Fatal(err)
			}
			var keys []SortKey
			for _, k := range []struct {
				col  int
				desc bool
			}{{0, true}, {1, false}, {4, false}} {
				typ := srcs[0].(driver.RowsColumnTypeDatabaseTypeName).ColumnTypeDatabaseTypeName(k.col)
				cmp, ok := CompareFunc(typ, true)
				if !ok {
					t.Fatalf("no comparison for %s", typ)
				}
				keys = append(keys, SortKey{Column: k.col, Desc: k.desc, NullsFirst: k.desc, Compare: cmp})
			}
			merged := Project(Limit(MergeSort(srcs, keys), tc.offset, tc.count), 4)
			defer merged.Close()

			// Column types are the shards' (those of pgx's rows).
			ref, err := pgxQuery(ctx, dsn, "SELECT k, n, ts, b FROM t LIMIT 0")
			if err != nil {
				t.Fatal(err)
			}
			checkColumnTypes(t, merged, ref)
			ref.Close()

			got := readAll(t, merged)
			q := "SELECT k, n, ts, b FROM t ORDER BY " + order + fmt.Sprintf(" OFFSET %d", tc.offset)
			if tc.count >= 0 {
				q += fmt.Sprintf(" LIMIT %d", tc.count)
			}
			want, err := pgxQuery(ctx, dsn, q)
			if err != nil {
				t.Fatal(err)
			}
			wantRows := readAll(t, want)
			want.Close()
			if len(got) != len(wantRows) {
				t.Fatalf("%d rows, want %d", len(got), len(wantRows))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], wantRows[i]) {
					t.Fatalf("row %d = %v, want %v", i, got[i], wantRows[i])
				}
			}
			if err := merged.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
