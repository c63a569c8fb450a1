// Command gorm uses pgshard through GORM (gorm.io/gorm with the
// gorm.io/driver/postgres dialector) on a local cluster it starts itself:
// one metadata node and four workers.
//
//	go run ./examples/gorm
//
// GORM opens pgshard by driver name:
//
//	db, err := gorm.Open(postgres.New(postgres.Config{DriverName: "pgshard", DSN: dsn}), &gorm.Config{})
//
// Two tables show the two usual shapes:
//
//   - accounts is distributed by its bigserial primary key id. GORM's
//     INSERT ... RETURNING "id" gets the id from the sequence on the metadata
//     database (pgshard computes it there before routing), so ids are unique
//     across shards, and every statement GORM makes by primary key runs on one
//     shard.
//   - events is distributed by device_id (text); id is a bigserial that is
//     unique across shards too, but not the shard key. The GORM model declares
//     the primary key (device_id, id), so that GORM's updates and deletes of a
//     loaded row say WHERE device_id = ... AND id = ... and run on one shard.
//
// The tables are created with SQL on the metadata database and distributed
// with master_create_distributed_table and master_create_worker_shards.
// AutoMigrate can create a table too, before it is distributed (see
// createWithAutoMigrate).
//
// What to keep in mind with GORM:
//
//   - Once a table is distributed, AutoMigrate succeeds only while the table
//     already matches the model: any ALTER TABLE it would run is refused
//     (SQLSTATE 0A000, "ALTER TABLE on a distributed table is not
//     supported"). A table created by hand, with defaults the model does not
//     declare, does not match.
//   - Make the shard key part of the primary key GORM knows. Then every
//     statement GORM makes for a loaded row names the key and runs on one
//     shard, and Save does not assign the key: pgshard refuses SET key = ...
//     ("modifying the partition value of rows is not allowed") even to the
//     same value.
//   - Anything else works across shards: First on another column, Find with
//     conditions, Count, Updates and Deletes by other columns (one atomic
//     statement over the shards), Create of a slice whose rows fall in
//     several shards (one atomic INSERT, RETURNING "id" in order).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	_ "github.com/pgshard/pgshard"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// Account is distributed by ID.
type Account struct {
	ID        uint64 `gorm:"primaryKey"`
	Email     string
	Name      string
	Plan      string
	Balance   int64
	Nickname  *string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Event is distributed by DeviceID. GORM knows the primary key as
// (device_id, id), with id filled in by the database.
type Event struct {
	DeviceID  string `gorm:"primaryKey"`
	ID        uint64 `gorm:"primaryKey;autoIncrement"`
	Kind      string
	Reading   *float64
	At        time.Time
	DeletedAt gorm.DeletedAt
}

const accountsDDL = `CREATE TABLE accounts (
	id         bigserial   PRIMARY KEY,
	email      text        NOT NULL,
	name       text        NOT NULL,
	plan       text        NOT NULL DEFAULT 'free',
	balance    bigint      NOT NULL DEFAULT 0,
	nickname   text,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
)`

const eventsDDL = `CREATE TABLE events (
	device_id  text             NOT NULL,
	id         bigserial        NOT NULL,
	kind       text             NOT NULL,
	reading    double precision,
	at         timestamptz      NOT NULL,
	deleted_at timestamptz,
	PRIMARY KEY (device_id, id)
)`

// open opens dsn with GORM over pgshard.
func open(dsn string, cfg *gorm.Config) (*gorm.DB, error) {
	return gorm.Open(postgres.New(postgres.Config{DriverName: "pgshard", DSN: dsn}), cfg)
}

// createSchema registers the workers and creates and distributes both
// tables, 16 shards of 2 replicas each.
func createSchema(db *gorm.DB, workers []*pgtest.Node) error {
	for _, w := range workers {
		if err := db.Exec(`SELECT master_add_node(?, ?)`, w.Host, w.Port).Error; err != nil {
			return err
		}
	}
	for _, q := range []string{
		accountsDDL,
		`SELECT master_create_distributed_table('accounts', 'id')`,
		`SELECT master_create_worker_shards('accounts', 16, 2)`,
		eventsDDL,
		`SELECT master_create_distributed_table('events', 'device_id')`,
		`SELECT master_create_worker_shards('events', 16, 2)`,
	} {
		if err := db.Exec(q).Error; err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// createWithAutoMigrate is the other way to make the table: AutoMigrate
// creates it on the metadata database, then it is distributed. Run
// AutoMigrate only before distributing: see the package comment.
func createWithAutoMigrate(db *gorm.DB, model any, table, key string) error {
	if err := db.AutoMigrate(model); err != nil {
		return err
	}
	if err := db.Exec(`SELECT master_create_distributed_table(?, ?)`, table, key).Error; err != nil {
		return err
	}
	return db.Exec(`SELECT master_create_worker_shards(?, 16, 2)`, table).Error
}

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)

func newAccounts() []Account {
	return []Account{
		{Email: "alice@example.test", Name: "alice", Plan: "pro", Balance: 100, Nickname: ptr("al")},
		{Email: "bob@example.test", Name: "bob", Plan: "free", Balance: 5},
		{Email: "carol@example.test", Name: "carol", Plan: "pro", Balance: 42},
		{Email: "dave@example.test", Name: "dave", Plan: "free"},
	}
}

func newEvents() []Event {
	return []Event{
		{DeviceID: "sensor-a", Kind: "temp", Reading: ptr(21.5), At: t0},
		{DeviceID: "sensor-a", Kind: "temp", Reading: ptr(22.25), At: t0.Add(time.Minute)},
		{DeviceID: "sensor-a", Kind: "boot", At: t0.Add(-time.Hour)},
		{DeviceID: "sensor-b", Kind: "temp", Reading: ptr(-3.0), At: t0},
		{DeviceID: "sensor-c", Kind: "boot", At: t0},
	}
}

// createAccounts creates the accounts in one multi-row INSERT ... RETURNING
// "id". The ids come from the sequence on the metadata database, so the
// rows fall in different shards: pgshard splits the INSERT per shard, runs
// the parts as one atomic statement and returns the ids in VALUES order.
func createAccounts(db *gorm.DB, accounts []Account) error {
	return db.Create(&accounts).Error
}

// createEvents creates the events of one device in one multi-row INSERT:
// they share device_id, so they share a shard.
func createEvents(db *gorm.DB, deviceID string, events []Event) error {
	var batch []*Event
	for i := range events {
		if events[i].DeviceID == deviceID {
			batch = append(batch, &events[i])
		}
	}
	return db.Create(batch).Error
}

// accountsOnPlan filters on a column that is not the shard key: every
// shard answers, pgshard merges the rows in ORDER BY order.
func accountsOnPlan(db *gorm.DB, plan string) ([]Account, error) {
	var as []Account
	err := db.Where("plan = ?", plan).Order("id").Find(&as).Error
	return as, err
}

// accountByEmail looks an account up by a column that is not the shard key:
// First's ORDER BY id LIMIT 1 runs on every shard and is merged.
func accountByEmail(db *gorm.DB, email string) (Account, error) {
	var a Account
	err := db.Where("email = ?", email).First(&a).Error
	return a, err
}

// transfer moves money between two accounts, usually on two shards, in one
// transaction: pgshard commits it with two-phase commit.
func transfer(db *gorm.DB, from, to uint64, amount int64) error {
	return db.Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Account{ID: from}).Where("balance >= ?", amount).Update("balance", gorm.Expr("balance - ?", amount))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return errInsufficientFunds
		}
		return tx.Model(&Account{ID: to}).Update("balance", gorm.Expr("balance + ?", amount)).Error
	})
}

var errInsufficientFunds = errors.New("insufficient funds")

func scenario(db *gorm.DB, out io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, "\n== "+format+"\n", args...) }

	say("Create of a slice: one INSERT ... RETURNING \"id\" over several shards, ids from the metadata database's sequence")
	accounts := newAccounts()
	if err := createAccounts(db, accounts); err != nil {
		return err
	}
	for _, a := range accounts {
		fmt.Fprintf(out, "  id=%d %s\n", a.ID, a.Name)
	}

	say("Create: one multi-row INSERT per device (device_id is the shard key)")
	events := newEvents()
	for _, d := range []string{"sensor-a", "sensor-b", "sensor-c"} {
		if err := createEvents(db, d, events); err != nil {
			return err
		}
	}
	for _, e := range events {
		fmt.Fprintf(out, "  %s id=%d %s\n", e.DeviceID, e.ID, e.Kind)
	}

	say("First by primary key (one shard)")
	var a Account
	if err := db.First(&a, accounts[2].ID).Error; err != nil {
		return err
	}
	fmt.Fprintf(out, "  %+v\n", a)

	say("First of an event by (device_id, id) (one shard)")
	var e Event
	if err := db.First(&e, "device_id = ? AND id = ?", "sensor-a", events[1].ID).Error; err != nil {
		return err
	}
	fmt.Fprintf(out, "  %s id=%d %s %v at %s\n", e.DeviceID, e.ID, e.Kind, *e.Reading, e.At.UTC().Format(time.RFC3339))

	say("Where on a column that is not the key (every shard)")
	pros, err := accountsOnPlan(db, "pro")
	if err != nil {
		return err
	}
	for _, a := range pros {
		fmt.Fprintf(out, "  id=%d %s %s\n", a.ID, a.Name, a.Plan)
	}

	say("Updates by primary key")
	if err := db.Model(&accounts[1]).Updates(Account{Plan: "pro", Nickname: ptr("bobby")}).Error; err != nil {
		return err
	}
	b, err := accountByEmail(db, "bob@example.test")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  id=%d %s plan=%s nickname=%s\n", b.ID, b.Name, b.Plan, *b.Nickname)

	say("transaction over two shards: alice pays carol 30")
	if err := transfer(db, accounts[0].ID, accounts[2].ID, 30); err != nil {
		return err
	}
	say("a transfer dave cannot afford rolls back")
	err = transfer(db, accounts[3].ID, accounts[0].ID, 1)
	fmt.Fprintf(out, "  %v\n", err)
	if !errors.Is(err, errInsufficientFunds) {
		return fmt.Errorf("want %v, got %v", errInsufficientFunds, err)
	}

	say("Delete by primary key; soft Delete of an event (by its primary key (device_id, id))")
	if err := db.Delete(&Account{}, accounts[3].ID).Error; err != nil {
		return err
	}
	if err := db.Delete(&events[2]).Error; err != nil {
		return err
	}

	say("Count (every shard)")
	var nAccounts, nEvents, nTemps int64
	if err := db.Model(&Account{}).Count(&nAccounts).Error; err != nil {
		return err
	}
	if err := db.Model(&Event{}).Count(&nEvents).Error; err != nil {
		return err
	}
	if err := db.Model(&Event{}).Where("kind = ?", "temp").Count(&nTemps).Error; err != nil {
		return err
	}
	fmt.Fprintf(out, "  %d accounts, %d events (%d temp)\n", nAccounts, nEvents, nTemps)

	say("every account")
	var all []Account
	if err := db.Order("id").Find(&all).Error; err != nil {
		return err
	}
	for _, a := range all {
		fmt.Fprintf(out, "  id=%d %-5s plan=%-4s balance=%d\n", a.ID, a.Name, a.Plan, a.Balance)
	}
	return nil
}

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	fmt.Println("starting a local cluster: 1 metadata node and 4 workers")
	cluster, err := pgtest.Start(ctx, 5)
	if err != nil {
		return err
	}
	defer cluster.Close()
	db, err := open(cluster.Nodes[0].DSN("postgres"), &gorm.Config{Logger: logger.Default.LogMode(logger.Silent)})
	if err != nil {
		return err
	}
	if err := createSchema(db, cluster.Nodes[1:]); err != nil {
		return err
	}
	return scenario(db, os.Stdout)
}
