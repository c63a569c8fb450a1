package pgshard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestCopyFromComputedDefaultsExactly: the columns a COPY FROM STDIN
// leaves out whose volatile defaults pgshard computes itself (the table is
// replicated, so that both placements get the same value) store what a
// COPY of the same rows into a plain table on one server stores, under
// session settings that change how their values print, in every query
// mode: a plain timestamptz, a composite holding a timestamptz and a
// float8, an array of that composite, a domain over timestamptz, an enum,
// and a timestamptz array. Under DateStyle SQL and Postgres a timestamptz
// prints with its zone's abbreviation (IST in Asia/Kolkata, which
// PostgreSQL reads as Israel time), so a value that went through the
// session's text would be stored shifted. Both tables are read back in one
// fixed, exact text form (DateStyle ISO, TimeZone UTC, extra_float_digits
// 3). These types are ones pgshard carries exactly, so none is refused.
// A composite holding money, which pgshard cannot write exactly, is
// refused (0A000, nothing stored) where DateStyle is not ISO, and stored
// as the plain server stores it where it is.
func TestCopyFromComputedDefaultsExactly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range append(e.c.Nodes[:1:1], e.workers...) {
		for _, ddl := range []string{
			`CREATE TYPE cd_stamp AS (at timestamptz, f float8)`,
			`CREATE DOMAIN cd_tstz AS timestamptz`,
			`CREATE TYPE cd_mood AS ENUM ('calm', 'keen')`,
			`CREATE TYPE cd_odd AS (at timestamptz, m money)`,
		} {
			if _, err := e.worker(n).Exec(ctx, ddl); err != nil {
				t.Fatalf("%s on %s: %v", ddl, n.Addr(), err)
			}
		}
	}
	// random() * 0 makes each default volatile and leaves its value known.
	const columns = `(k int, v text,
		dt timestamptz DEFAULT ('2024-12-01 10:00:00.123456+05:30'::timestamptz + random() * interval '0'),
		ds cd_stamp DEFAULT ROW('2024-12-01 10:00:00.5+05:30'::timestamptz + random() * interval '0', 0.1 + random() * 0)::cd_stamp,
		dsa cd_stamp[] DEFAULT ARRAY[ROW('0044-03-15 12:00:00+00 BC'::timestamptz + random() * interval '0', 1e-300)::cd_stamp, NULL],
		dd cd_tstz DEFAULT ('1999-12-31 23:59:59.999999-05'::timestamptz + random() * interval '0')::cd_tstz,
		de cd_mood DEFAULT (CASE WHEN random() < 2 THEN 'keen' ELSE 'calm' END)::cd_mood,
		dta timestamptz[] DEFAULT ARRAY['2025-03-30 01:30+00'::timestamptz + random() * interval '0', 'infinity'])`
	e.exec(`CREATE TABLE cdx ` + columns)
	e.exec(`SELECT master_create_distributed_table('cdx', 'k')`)
	e.exec(`SELECT master_create_worker_shards('cdx', 4, 2)`)
	e.exec(`CREATE TABLE cdx_plain ` + columns)
	// A composite holding money is not one pgshard writes the canonical
	// text of: it travels as the session's text, exact only where
	// DateStyle prints the instant with a numeric offset (ISO).
	const odd = `(k int, v text, dm cd_odd DEFAULT ROW('2024-12-01 10:00:00.5+05:30'::timestamptz + random() * interval '0', 1.5)::cd_odd)`
	e.exec(`CREATE TABLE cdo ` + odd)
	e.exec(`SELECT master_create_distributed_table('cdo', 'k')`)
	e.exec(`SELECT master_create_worker_shards('cdo', 4, 2)`)
	e.exec(`CREATE TABLE cdo_plain ` + odd)
	var data [][]any
	for i := range 40 {
		data = append(data, []any{i, fmt.Sprintf("v%d", i)})
	}
	settings := []struct{ name, set string }{
		{"iso utc", ``},
		{"sql dmy kolkata", `SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'`},
		{"postgres dmy kolkata", `SET DateStyle = 'Postgres, DMY'; SET TimeZone = 'Asia/Kolkata'`},
		{"german new york", `SET DateStyle = 'German'; SET TimeZone = 'America/New_York'`},
		{"extra_float_digits -15", `SET extra_float_digits = -15`},
	}
	const exact = `SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC'; SET extra_float_digits = 3`
	const stored = `SELECT k::text || ' ' || concat_ws(' | ', v, dt::text, ds::text, dsa::text, dd::text, de::text, dta::text) FROM %s`
	for _, mode := range []string{"", "simple_protocol", "exec"} {
		for _, s := range settings {
			name, dsn := s.name, e.DSN
			if mode != "" {
				name += " " + mode
				dsn += "&default_query_exec_mode=" + mode
			}
			t.Run(name, func(t *testing.T) {
				for _, table := range []string{"cdx", "cdx_plain", "cdo", "cdo_plain"} {
					e.exec(`DELETE FROM ` + table)
				}
				plain, err := pgx.Connect(ctx, e.DSN)
				if err != nil {
					t.Fatal(err)
				}
				defer plain.Close(ctx)
				for _, stmt := range strings.Split(s.set, ";") {
					if strings.TrimSpace(stmt) != "" {
						if _, err := plain.Exec(ctx, stmt); err != nil {
							t.Fatal(err)
						}
					}
				}
				for _, table := range []string{"cdx_plain", "cdo_plain"} {
					if _, err := plain.CopyFrom(ctx, pgx.Identifier{table}, []string{"k", "v"}, pgx.CopyFromRows(data)); err != nil {
						t.Fatalf("oracle: %v", err)
					}
				}
				shard := session(t, "pgshard", dsn, s.set)
				if err := copyRowsErr(shard, `COPY cdx (k, v) FROM STDIN`, data); err != nil {
					var pe *pgconn.PgError
					if errors.As(err, &pe) && pe.Code == "0A000" {
						t.Fatalf("refused, though every type here travels exactly: %v", err)
					}
					t.Fatal(err)
				}
				e.assertReplicasIdentical("cdx")
				read := session(t, "pgshard", e.DSN, exact)
				got, err := resultOfOne(read, fmt.Sprintf(stored, "cdx"))
				if err != nil {
					t.Fatal(err)
				}
				want, err := resultOfOne(read, fmt.Sprintf(stored, "cdx_plain"))
				if err != nil {
					t.Fatal(err)
				}
				sameRows(t, got, want)
				const oddStored = `SELECT k::text || ' ' || concat_ws(' | ', v, dm::text) FROM %s`
				err = copyRowsErr(shard, `COPY cdo (k, v) FROM STDIN`, data)
				var pe *pgconn.PgError
				iso := !strings.Contains(s.set, "DateStyle")
				switch {
				case err != nil && !iso && errors.As(err, &pe) && pe.Code == "0A000":
					if n := e.queryInt(`SELECT count(*) FROM cdo`); n != 0 {
						t.Fatalf("the refused COPY left %d rows", n)
					}
					return
				case err != nil:
					t.Fatalf("composite with money: %v", err)
				case !iso:
					t.Fatalf("composite with money under %s: not refused", s.set)
				}
				if got, err = resultOfOne(read, fmt.Sprintf(oddStored, "cdo")); err != nil {
					t.Fatal(err)
				}
				if want, err = resultOfOne(read, fmt.Sprintf(oddStored, "cdo_plain")); err != nil {
					t.Fatal(err)
				}
				sameRows(t, got, want)
			})
		}
	}
}

// sameRows fails t where got and want, resultOfOne's renderings, differ,
// showing the first row that does.
func sameRows(t *testing.T, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	gl, wl := strings.Split(got, " / "), strings.Split(want, " / ")
	for i := range min(len(gl), len(wl)) {
		if gl[i] != wl[i] {
			t.Fatalf("stored differently\ngot:  %s\nwant: %s", gl[i], wl[i])
		}
	}
	t.Fatalf("%d rows stored, want %d", len(gl), len(wl))
}

// copyRowsErr runs one COPY FROM STDIN through db in a transaction,
// lib/pq's way, and returns its first error (the transaction rolled back).
func copyRowsErr(db interface {
	Begin() (*sql.Tx, error)
}, copySQL string, rows [][]any) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.Prepare(copySQL)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i, r := range rows {
		if _, err := stmt.Exec(r...); err != nil {
			return fmt.Errorf("row %d: %w", i+1, err)
		}
	}
	if _, err := stmt.Exec(); err != nil {
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	return tx.Commit()
}
