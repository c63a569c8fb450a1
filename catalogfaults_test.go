package pgshard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// TestCloseWithOpenTransaction: db.Close returns while a transaction is
// still open, and what the transaction did is rolled back on the workers
// and on the metadata database.
func TestCloseWithOpenTransaction(t *testing.T) {
	ctx := context.Background()
	e := setupKV(t, 4, 2)
	e.exec(`CREATE TABLE plain (x int PRIMARY KEY)`)
	db, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO kv (k, v) VALUES (1, 'open'), (2, 'open'), (3, 'open')`,
		`INSERT INTO plain VALUES (1)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("db.Close: %v", err)
		}
		t.Logf("db.Close returned after %v with a transaction open", time.Since(start).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("db.Close has not returned after 30 s while a transaction is open")
	}

	// The transaction's rows are gone and its locks released: the same keys
	// insert at once through another process.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.DB.ExecContext(wctx, `INSERT INTO kv (k, v) VALUES (1, 'after'), (2, 'after'), (3, 'after')`); err != nil {
		t.Fatalf("inserting the open transaction's keys after Close: %v", err)
	}
	if _, err := e.DB.ExecContext(wctx, `INSERT INTO plain VALUES (1)`); err != nil {
		t.Fatalf("inserting the open transaction's row of an ordinary table after Close: %v", err)
	}
	if n := e.queryInt(`SELECT count(*) FROM kv WHERE v = 'open'`); n != 0 {
		t.Fatalf("%d rows of the open transaction are visible", n)
	}
	e.assertReplicasIdentical("kv")
	_ = tx.Rollback() // the connection is gone; database/sql may report it
}

// startClusterEnv is newEnv on a cluster of its own (node 0 the metadata
// database, the others workers), for tests that restart or reconfigure
// servers.
func startClusterEnv(t *testing.T, nodes int) *env {
	t.Helper()
	return newEnvOn(t, pgtest.StartTB(t, nodes), "")
}

// TestTooManyClientsIsNotANodeFailure: a worker that refuses a connection
// with "sorry, too many clients already" (53300) is up; its placements are
// not marked inactive. A write fails with the server's error; a read goes
// to another placement; once connections free up, writes work again.
func TestTooManyClientsIsNotANodeFailure(t *testing.T) {
	ctx := context.Background()
	e := startClusterEnv(t, 3)
	busy := e.workers[1]
	admin, err := pgx.Connect(ctx, busy.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ALTER SYSTEM SET max_connections = 8`); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	if err := busy.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := busy.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.exec(`CREATE TABLE kv (k bigint PRIMARY KEY, v text)`)
	e.exec(`SELECT master_create_distributed_table('kv', 'k')`)
	e.exec(`SELECT master_create_worker_shards('kv', 4, 2)`)
	e.exec(`INSERT INTO kv (k, v) SELECT g, 'v' || g FROM generate_series(1, 20) g`)

	// Take every connection slot of the busy worker.
	var held []*pgx.Conn
	defer func() {
		for _, c := range held {
			c.Close(ctx)
		}
	}()
	for {
		c, err := pgx.Connect(ctx, busy.DSN(e.dbname))
		if err != nil {
			if !strings.Contains(err.Error(), "53300") {
				t.Fatalf("filling the busy worker's connections: %v", err)
			}
			break
		}
		held = append(held, c)
		if len(held) > 20 {
			t.Fatal("the busy worker takes more than 20 connections")
		}
	}
	t.Logf("holding %d connections of %s", len(held), busy.Addr())

	// A fresh process has no pooled connection to the busy worker.
	db := e.reopen()
	for k := 1; k <= 20; k++ {
		_, err := db.Exec(`UPDATE kv SET v = 'new' WHERE k = $1`, k)
		// The server's own error, within the connection error.
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "53300" || !strings.Contains(err.Error(), "too many clients") {
			t.Fatalf("UPDATE of k = %d while the worker refuses connections: %v, want the server's 53300", k, err)
		}
	}
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard_placement WHERE shard_state <> 1`); n != 0 {
		t.Fatalf("%d placements marked after the busy worker refused connections", n)
	}
	for k := 1; k <= 20; k++ {
		var v string
		if err := db.QueryRow(`SELECT v FROM kv WHERE k = $1`, k).Scan(&v); err != nil {
			t.Fatalf("reading k = %d while a worker is busy: %v", k, err)
		}
		if v != fmt.Sprintf("v%d", k) {
			t.Fatalf("k = %d: v = %q", k, v)
		}
	}

	for _, c := range held {
		c.Close(ctx)
	}
	held = nil
	if _, err := db.Exec(`UPDATE kv SET v = 'new'`); err != nil {
		t.Fatal(err)
	}
	if n := e.queryInt(`SELECT count(*) FROM kv WHERE v = 'new'`); n != 20 {
		t.Fatalf("%d rows updated, want 20", n)
	}
	e.assertReplicasIdentical("kv")
}

// TestInvalidMetadataRows: shard rows that fail validation (a range
// overlapping another shard's, a range that is not an integer) make
// statements on their tables fail with an error naming the table and the
// shards; every other statement works, in new processes and in running
// ones, which keep following metadata changes.
func TestInvalidMetadataRows(t *testing.T) {
	e := newEnv(t)
	for _, tb := range []string{"good", "overlapping", "garbled"} {
		e.exec(`CREATE TABLE ` + tb + ` (k int NOT NULL, v int)`)
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, tb)
		e.exec(`SELECT master_create_worker_shards($1, 2, 1)`, tb)
		e.exec(`INSERT INTO ` + tb + ` (k, v) SELECT g, g FROM generate_series(1, 50) g`)
	}
	running := e.reopen()
	if n := queryIntOn(t, running, `SELECT count(*) FROM good`); n != 50 {
		t.Fatalf("good: %d rows", n)
	}
	overlapID := e.queryInt(`INSERT INTO pgs_distribution_metadata.shard (relation_id, storage, min_value, max_value) VALUES ('overlapping'::regclass, 't', '0', '10') RETURNING id`)
	garbledID := e.queryInt(`SELECT max(id) FROM pgs_distribution_metadata.shard WHERE relation_id = 'garbled'::regclass`)
	e.exec(`UPDATE pgs_distribution_metadata.shard SET max_value = 'x' || max_value WHERE id = $1`, garbledID)

	check := func(db *sql.DB, who string) {
		t.Helper()
		if n := queryIntOn(t, db, `SELECT 1`); n != 1 {
			t.Fatalf("%s: SELECT 1 = %d", who, n)
		}
		if n := queryIntOn(t, db, `SELECT count(*) FROM good`); n != 50 {
			t.Fatalf("%s: good has %d rows", who, n)
		}
		if _, err := db.Exec(`INSERT INTO good (k, v) VALUES (1000, 1)`); err != nil {
			t.Fatalf("%s: writing good: %v", who, err)
		}
		if _, err := db.Exec(`DELETE FROM good WHERE k = 1000`); err != nil {
			t.Fatalf("%s: writing good: %v", who, err)
		}
		for _, bad := range []struct {
			table string
			shard int64
		}{{"overlapping", overlapID}, {"garbled", garbledID}} {
			for _, q := range []string{`SELECT count(*) FROM %s`, `INSERT INTO %s (k, v) VALUES (7, 7)`, `SELECT g.k FROM good g JOIN %s b ON g.k = b.k`} {
				_, err := db.Exec(fmt.Sprintf(q, bad.table))
				expectError(t, err, "55000", fmt.Sprintf(`"%s"`, bad.table))
				if !strings.Contains(err.Error(), fmt.Sprint(bad.shard)) {
					t.Fatalf("%s: %s: the error does not name shard %d: %v", who, fmt.Sprintf(q, bad.table), bad.shard, err)
				}
			}
		}
	}
	check(e.reopen(), "new process")
	waitFor(t, 10*time.Second, "the running process to see the invalid rows", func() bool {
		_, err := running.Exec(`SELECT count(*) FROM overlapping`)
		return err != nil
	})
	check(running, "running process")

	// Later changes are followed: a table distributed now is routed by the
	// running process (were it not, its statements would reach the empty
	// template table on the metadata database).
	e.exec(`CREATE TABLE later (k int NOT NULL, v int)`)
	e.exec(`SELECT master_create_distributed_table('later', 'k')`)
	e.exec(`SELECT master_create_worker_shards('later', 2, 1)`)
	e.exec(`INSERT INTO later (k, v) SELECT g, g FROM generate_series(1, 10) g`)
	waitFor(t, 10*time.Second, "the running process to route the new table", func() bool {
		return queryIntOn(t, running, `SELECT count(*) FROM later`) == 10
	})

	// Repaired rows: both tables work again everywhere.
	e.exec(`DELETE FROM pgs_distribution_metadata.shard WHERE id = $1`, overlapID)
	e.exec(`UPDATE pgs_distribution_metadata.shard SET max_value = substr(max_value, 2) WHERE id = $1`, garbledID)
	for _, db := range []*sql.DB{running, e.reopen()} {
		waitFor(t, 10*time.Second, "the repaired rows to be used", func() bool {
			var n int64
			err := db.QueryRow(`SELECT (SELECT count(*) FROM overlapping) + (SELECT count(*) FROM garbled)`).Scan(&n)
			return err == nil && n == 100
		})
	}
}

func queryIntOn(t *testing.T, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAddNodeChecks: master_add_node refuses, recording nothing, a node it
// cannot reach, a listener that is not PostgreSQL, a server without the
// database, and a node already added.
func TestAddNodeChecks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	closedPort := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		return port
	}()
	notPG, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer notPG.Close()
	go func() {
		for {
			c, err := notPG.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	notPGPort := notPG.Addr().(*net.TCPAddr).Port

	// A database that exists on the metadata node only.
	meta, err := pgx.Connect(ctx, e.c.Nodes[0].DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	onlyMeta := e.dbname + "_m"
	if _, err := meta.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{onlyMeta}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	meta.Close(ctx)
	lonely, err := sql.Open("pgshard", e.c.Nodes[0].DSN(onlyMeta))
	if err != nil {
		t.Fatal(err)
	}
	defer lonely.Close()

	w := e.workers[0]
	for _, tc := range []struct {
		label string
		db    *sql.DB
		host  string
		port  int
		code  string
		msg   string
	}{
		{"nothing listens", e.DB, "127.0.0.1", closedPort, "08001", "could not connect"},
		{"not PostgreSQL", e.DB, "127.0.0.1", notPGPort, "08001", "could not connect"},
		{"no such database", lonely, w.Host, w.Port, "3D000", onlyMeta},
		{"already added", e.DB, w.Host, w.Port, "42710", "already"},
	} {
		t.Run(tc.label, func(t *testing.T) {
			before := queryIntOn(t, tc.db, `SELECT count(*) FROM pgs_distribution_metadata.node`)
			actx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			_, err := tc.db.ExecContext(actx, `SELECT master_add_node($1, $2)`, tc.host, tc.port)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("master_add_node did not return within 60 s")
			}
			expectError(t, err, tc.code, tc.msg)
			if strings.Contains(err.Error(), "password") {
				t.Fatalf("the error mentions a password: %v", err)
			}
			if after := queryIntOn(t, tc.db, `SELECT count(*) FROM pgs_distribution_metadata.node`); after != before {
				t.Fatalf("%d nodes before, %d after a refused master_add_node", before, after)
			}
		})
	}
}

// TestReadmeListsMetadataTables: the README's table of metadata tables
// names exactly the tables the metadata schema has.
func TestReadmeListsMetadataTables(t *testing.T) {
	e := newEnv(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Metadata\n")
	if !ok {
		t.Fatal("README.md has no \"### Metadata\" section")
	}
	section, _, _ = strings.Cut(section, "\n#")
	var listed []string
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, name := range strings.Split(first, ",") {
			listed = append(listed, strings.Trim(strings.TrimSpace(name), "`"))
		}
	}
	sort.Strings(listed)
	rows, err := e.DB.Query(`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'pgs_distribution_metadata' AND c.relkind IN ('r', 'p') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if fmt.Sprint(listed) != fmt.Sprint(tables) {
		t.Fatalf("README.md lists the metadata tables %v; the schema has %v", listed, tables)
	}
}
