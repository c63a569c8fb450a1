package pgshard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

// newMigrate opens golang-migrate on db (a pgshard handle) with the
// migration files of fsys.
func newMigrate(t *testing.T, db *sql.DB, fsys fs.FS) (*migrate.Migrate, database.Driver) {
	t.Helper()
	drv, err := postgres.WithInstance(db, &postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := iofs.New(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "postgres", drv)
	if err != nil {
		t.Fatal(err)
	}
	return m, drv
}

// migrateCode is the SQLSTATE of the statement a migration failed on.
func migrateCode(err error) string {
	var dbErr database.Error
	if errors.As(err, &dbErr) {
		return codeOf(dbErr.OrigErr)
	}
	var dbErrPtr *database.Error
	if errors.As(err, &dbErrPtr) {
		return codeOf(dbErrPtr.OrigErr)
	}
	return codeOf(err)
}

func (e *env) migrationVersion(m *migrate.Migrate) string {
	e.t.Helper()
	v, dirty, err := m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return "none"
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprintf("%d dirty=%v", v, dirty)
}

// eventsState is what the tests compare: the rows through pgshard, the
// plans table, the rows per placement read on the workers, and the columns
// of the template and of one shard table.
func (e *env) eventsState() []string {
	e.t.Helper()
	out := tableRows(e.t, e.DB, `SELECT tenant_id, id, payload FROM events ORDER BY 1, 2`)
	if e.queryInt(`SELECT count(*) FROM pg_class WHERE relname = 'plans'`) == 1 {
		out = append(out, tableRows(e.t, e.DB, `SELECT name, quota FROM plans ORDER BY 1`)...)
	}
	out = append(out, e.placementCounts("events")...)
	out = append(out, tableRows(e.t, e.DB, `SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'events'::regclass AND attnum > 0 AND NOT attisdropped`)...)
	p := e.placements("events")[0]
	var cols, indexes string
	if err := e.workerAt(p.Host, p.Port).QueryRow(context.Background(), `SELECT
		(SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped),
		(SELECT count(*)::text FROM pg_index WHERE indrelid = $1::regclass)`, fmt.Sprintf("events_%d", p.ShardID)).Scan(&cols, &indexes); err != nil {
		e.t.Fatal(err)
	}
	e.assertReplicasIdentical("events")
	return append(out, "shard columns "+cols, "shard indexes "+indexes)
}

// TestGolangMigrate runs a multi-file migration with golang-migrate through
// sql.Open("pgshard", dsn): a file that creates and distributes a table, a
// file that seeds it and makes an ordinary table, one step down and up
// again; then the files that alter, index and drop, which pgshard refuses
// then the files that alter, index and drop, checked on every placement
// (the old code refused 3_add_column with 0A000), and 5_drop down, which
// creates and distributes the table again.
func TestGolangMigrate(t *testing.T) {
	e := newEnv(t)
	m, _ := newMigrate(t, e.DB, os.DirFS("testdata/migrations"))
	if err := m.Migrate(2); err != nil {
		t.Fatalf("migrating to 2: %v", err)
	}
	if v := e.migrationVersion(m); v != "2 dirty=false" {
		t.Fatalf("version %s", v)
	}
	if n := e.queryInt(`SELECT count(*) FROM events`); n != 13 {
		t.Fatalf("events has %d rows, want 13", n)
	}
	if got := tableRows(t, e.DB, `SELECT payload FROM events WHERE tenant_id = 2`); !reflect.DeepEqual(got, []string{`it's "quoted"; (seen)`}) {
		t.Fatalf("tenant 2: %v", got)
	}
	for _, key := range []int64{1, 5, 12} {
		if h := e.holders("events", "tenant_id", key); len(h) != 1 {
			t.Fatalf("tenant %d is in shards %v", key, sortedKeys(h))
		}
	}
	seeded := e.eventsState()
	if len(e.placements("events")) != 8 {
		t.Fatalf("events has %d placements, want 8", len(e.placements("events")))
	}

	// One step down and up again.
	if err := m.Steps(-1); err != nil {
		t.Fatalf("down to 1: %v", err)
	}
	if v := e.migrationVersion(m); v != "1 dirty=false" {
		t.Fatalf("version %s", v)
	}
	if n := e.queryInt(`SELECT count(*) FROM events`) + e.queryInt(`SELECT count(*) FROM pg_class WHERE relname = 'plans'`); n != 0 {
		t.Fatalf("after down: %d rows or tables left", n)
	}
	if err := m.Migrate(2); err != nil {
		t.Fatalf("migrating to 2 again: %v", err)
	}
	if got := e.eventsState(); !reflect.DeepEqual(got, seeded) {
		t.Fatalf("after down and up: %v, want %v", got, seeded)
	}

	// 3_add_column, 4_index and 5_drop change the distributed table: each
	// reaches the template and every placement (distributedShapes checks
	// each placement against the template). On the old code 3_add_column
	// was refused (0A000).
	if err := m.Migrate(3); err != nil {
		t.Fatalf("migrating to 3: %v", err)
	}
	shapes := e.distributedShapes()
	if !strings.Contains(shapes["events"], "created_at timestamp with time zone not null default now()") {
		t.Fatalf("after 3_add_column: %s", shapes["events"])
	}
	if got := tableRows(t, e.DB, `SELECT count(*) FROM events WHERE tenant_id = 1 AND created_at = '2024-01-01'`); !reflect.DeepEqual(got, []string{"2"}) {
		t.Fatalf("tenant 1's created_at: %v", got)
	}
	if got := tableRows(t, e.DB, `SELECT count(DISTINCT created_at) FROM events WHERE tenant_id <> 1`); !reflect.DeepEqual(got, []string{"1"}) {
		t.Fatalf("the other rows' created_at: %v distinct values, want the one now()", got)
	}
	e.assertReplicasIdentical("events")
	if err := m.Migrate(4); err != nil {
		t.Fatalf("migrating to 4: %v", err)
	}
	if sh := e.distributedShapes()["events"]; !strings.Contains(sh, "CREATE INDEX events_payload_idx ON public.events USING btree (payload)") {
		t.Fatalf("after 4_index: %s", sh)
	}
	if err := m.Steps(-1); err != nil {
		t.Fatalf("down to 3: %v", err)
	}
	if sh := e.distributedShapes()["events"]; sh != shapes["events"] {
		t.Fatalf("after 4_index down: %s, want %s", sh, shapes["events"])
	}
	if err := m.Up(); err != nil {
		t.Fatalf("migrating up: %v", err)
	}
	if v := e.migrationVersion(m); v != "5 dirty=false" {
		t.Fatalf("version %s", v)
	}
	if n := e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.partition`) + e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard`) +
		e.queryInt(`SELECT count(*) FROM pgs_distribution_metadata.shard_placement`) + e.queryInt(`SELECT count(*) FROM pg_class WHERE relname IN ('events', 'plans')`); n != 0 {
		t.Fatalf("after 5_drop: %d metadata rows or tables left", n)
	}
	e.assertNoShardTables("events")
	// 5_drop down creates and distributes the table again.
	if err := m.Steps(-1); err != nil {
		t.Fatalf("down to 4: %v", err)
	}
	if sh := e.distributedShapes()["events"]; !strings.Contains(sh, "created_at") || !strings.Contains(sh, "events_payload_idx") {
		t.Fatalf("after 5_drop down: %s", sh)
	}
	if len(e.placements("events")) != 8 {
		t.Fatalf("events has %d placements, want 8", len(e.placements("events")))
	}
}

// TestGolangMigrateFailingFile: a migration file whose statement 2 of 3
// fails leaves nothing of it, and golang-migrate reports the version dirty.
func TestGolangMigrateFailingFile(t *testing.T) {
	e := newEnv(t)
	fsys := fstest.MapFS{}
	for dir, names := range map[string][]string{
		"testdata/migrations":     {"1_create.up.sql", "1_create.down.sql", "2_seed.up.sql", "2_seed.down.sql"},
		"testdata/migrations_bad": {"3_bad.up.sql", "3_bad.down.sql"},
	} {
		for _, n := range names {
			b, err := os.ReadFile(dir + "/" + n)
			if err != nil {
				t.Fatal(err)
			}
			fsys[n] = &fstest.MapFile{Data: b}
		}
	}
	m, _ := newMigrate(t, e.DB, fsys)
	if err := m.Migrate(2); err != nil {
		t.Fatal(err)
	}
	seeded := e.eventsState()
	err := m.Up()
	if code := migrateCode(err); code != "23505" {
		t.Fatalf("3_bad: %v (SQLSTATE %q), want 23505", err, code)
	}
	if v := e.migrationVersion(m); v != "3 dirty=true" {
		t.Fatalf("version %s", v)
	}
	if got := e.eventsState(); !reflect.DeepEqual(got, seeded) {
		t.Fatalf("after the failed file: %v, want %v", got, seeded)
	}
	if err := m.Up(); !errors.As(err, new(migrate.ErrDirty)) {
		t.Fatalf("up again: %v, want ErrDirty", err)
	}
}

// TestGolangMigrateLock: golang-migrate's lock is a session advisory lock
// taken through pgshard on the metadata database; a second migrator waits
// until the first unlocks.
func TestGolangMigrateLock(t *testing.T) {
	e := newEnv(t)
	other, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, a := newMigrate(t, e.DB, os.DirFS("testdata/migrations"))
	_, b := newMigrate(t, other, os.DirFS("testdata/migrations"))
	if err := a.Lock(); err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	go func() { locked <- b.Lock() }()
	select {
	case err := <-locked:
		t.Fatalf("second migrator locked while the first holds the lock (%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-locked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("second migrator still waits after the first unlocked")
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
}
