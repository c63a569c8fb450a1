package pgshard_test

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestSettingDependentKeysLandOnTheirShard: a shard key whose value depends
// on the session's settings — a timestamptz written without a zone under a
// TimeZone other than UTC, a date or timestamp written day-first under
// DateStyle 'SQL, DMY' — lands on the shard of the value PostgreSQL stores
// (its own hash of that value, asked from the server), whether it comes as a
// literal or as a text parameter, and is found again by literal, by text and
// by typed (time.Time) parameter, through routed and multi-shard reads. The
// settings are in the DSN, so the metadata and worker connections all have
// them.
func TestSettingDependentKeysLandOnTheirShard(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		params   string // added to the DSN's query string
		keyType  string
		literal  string    // inserted as a literal
		litValue time.Time // what PostgreSQL stores for literal
		text     string    // inserted as a text parameter
		txtValue time.Time
	}{
		{"timestamptz new york", "timezone=America/New_York", "timestamptz",
			"2024-01-01 00:00", time.Date(2024, 1, 1, 0, 0, 0, 0, ny),
			"2024-07-04 12:30:00", time.Date(2024, 7, 4, 12, 30, 0, 0, ny)},
		{"timestamptz kolkata", "timezone=Asia/Kolkata", "timestamptz",
			"2024-01-01 00:00", time.Date(2024, 1, 1, 0, 0, 0, 0, kolkata),
			"2023-12-31 23:59:59.5", time.Date(2023, 12, 31, 23, 59, 59, 500000000, kolkata)},
		{"date dmy", "datestyle=SQL%2CDMY", "date",
			"01/02/2024", time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC),
			"03/02/2024", time.Date(2024, 2, 3, 0, 0, 0, 0, time.UTC)},
		{"timestamp dmy", "datestyle=SQL%2CDMY", "timestamp",
			"01/02/2024 10:00", time.Date(2024, 2, 1, 10, 0, 0, 0, time.UTC),
			"13/02/2024 23:15", time.Date(2024, 2, 13, 23, 15, 0, 0, time.UTC)},
		{"date dmy in options", "options=-c%20datestyle%3DSQL%2CDMY", "date",
			"01/02/2024", time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC),
			"03/02/2024", time.Date(2024, 2, 3, 0, 0, 0, 0, time.UTC)},
		{"timestamptz dmy new york", "timezone=America/New_York&datestyle=SQL%2CDMY", "timestamptz",
			"05/01/2024 08:00", time.Date(2024, 1, 5, 8, 0, 0, 0, ny),
			"2024-01-06 09:00", time.Date(2024, 1, 6, 9, 0, 0, 0, ny)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			db, err := sql.Open("pgshard", e.DSN+"&"+c.params)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			exec(`CREATE TABLE ev (k ` + c.keyType + ` PRIMARY KEY, v text)`)
			exec(`SELECT master_create_distributed_table('ev', 'k')`)
			exec(`SELECT master_create_worker_shards('ev', 16, 2)`)

			exec(`INSERT INTO ev (k, v) VALUES ('` + c.literal + `', 'lit')`)
			exec(`INSERT INTO ev (k, v) VALUES ($1, 'text')`, c.text)

			read := func(q string, arg any, want string) {
				t.Helper()
				var got string
				var err error
				if arg == nil {
					err = db.QueryRow(q).Scan(&got)
				} else {
					err = db.QueryRow(q, arg).Scan(&got)
				}
				if err != nil {
					t.Fatalf("%s (%v): %v", q, arg, err)
				}
				if got != want {
					t.Fatalf("%s (%v) = %q, want %q", q, arg, got, want)
				}
			}
			read(`SELECT v FROM ev WHERE k = '`+c.literal+`'`, nil, "lit")
			read(`SELECT v FROM ev WHERE k = '`+c.literal+`'::`+c.keyType, nil, "lit")
			read(`SELECT v FROM ev WHERE k = $1`, c.literal, "lit")
			read(`SELECT v FROM ev WHERE k = $1`, c.litValue, "lit")
			read(`SELECT v FROM ev WHERE k = $1`, c.text, "text")
			read(`SELECT v FROM ev WHERE k = $1`, c.txtValue, "text")
			read(`SELECT v FROM ev WHERE k IN ('`+c.literal+`', '1999-01-01')`, nil, "lit")
			read(`SELECT string_agg(v, ',' ORDER BY v) FROM ev`, nil, "lit,text")
			exec(`UPDATE ev SET v = 'lit2' WHERE k = '` + c.literal + `'`)
			read(`SELECT v FROM ev WHERE k = $1`, c.litValue, "lit2")

			// In a transaction whose session says TimeZone UTC (SET LOCAL),
			// a zone-less literal is read in UTC.
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(`SET LOCAL timezone = 'UTC'`); err != nil {
				t.Fatal(err)
			}
			var got string
			utc := c.litValue.UTC().Format("2006-01-02 15:04:05.999999")
			if err := tx.QueryRow(`SELECT v FROM ev WHERE k = '` + utc + `'`).Scan(&got); err != nil || got != "lit2" {
				t.Fatalf("in a transaction under SET LOCAL timezone = 'UTC', k = '%s': %q, %v; want lit2", utc, got, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}

			for _, v := range []time.Time{c.litValue, c.txtValue} {
				want := e.shardOfServerHash("ev", c.keyType, v)
				got := e.holders("ev", "k", v)
				if len(got) != 1 || got[want] != 1 {
					t.Errorf("key %v: rows per shard %v; PostgreSQL's hash puts it on shard %d", v, got, want)
				}
			}
		})
	}
}

// shardOfServerHash returns the shard of table whose hash range holds
// PostgreSQL's own hash of v as a value of keyType (hash_array of a
// one-element array is the element's hash), computed on a worker.
func (e *env) shardOfServerHash(table, keyType string, v time.Time) int64 {
	e.t.Helper()
	ctx := context.Background()
	var h int32
	if err := e.worker(e.workers[0]).QueryRow(ctx, `SELECT hash_array(ARRAY[$1::`+keyType+`])`, v).Scan(&h); err != nil {
		e.t.Fatal(err)
	}
	var id int64
	err := e.DB.QueryRow(`SELECT id FROM pgs_distribution_metadata.shard
		WHERE relation_id = $1::regclass AND $2::int BETWEEN min_value::int AND max_value::int`, table, h).Scan(&id)
	if err != nil {
		e.t.Fatalf("shard of hash %d: %v", h, err)
	}
	return id
}

// TestIntervalKeyIsRefused: an interval (whose text form depends on
// IntervalStyle) cannot be a shard key: pgshard does not hash it, and says
// so when the table is distributed.
func TestIntervalKeyIsRefused(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE iv (k interval PRIMARY KEY, v text)`)
	_, err := e.DB.Exec(`SELECT master_create_distributed_table('iv', 'k')`)
	expectError(t, err, "42883", "could not identify a hash function for type interval")
}
