package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/pgshard/pgshard/internal/pgtest"
)

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testLogger sends GORM's SQL log to t.Log, so a failing test shows the
// statements GORM made.
type testLogger struct{ t *testing.T }

func (l testLogger) Printf(format string, args ...any) { l.t.Logf(format, args...) }

// newDB creates database name on every node of cluster, opens it through
// GORM over pgshard with cfg and registers the workers.
func newDB(t *testing.T, cluster *pgtest.Cluster, name string, cfg gorm.Config) *gorm.DB {
	t.Helper()
	ctx := context.Background()
	errs := make(chan error, len(cluster.Nodes))
	for _, n := range cluster.Nodes {
		go func() {
			conn, err := pgx.Connect(ctx, n.DSN(""))
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
			errs <- err
		}()
	}
	for range cluster.Nodes {
		must(t, <-errs)
	}
	cfg.Logger = logger.New(testLogger{t}, logger.Config{LogLevel: logger.Info, Colorful: false})
	db, err := open(cluster.Nodes[0].DSN(name), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	return db
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// refusedOrOK accepts what pgshard refuses by design today in either state:
// refused with SQLSTATE 0A000 (reported in the log), or supported (then
// check runs).
func refusedOrOK(t *testing.T, what string, err error, check func()) {
	t.Helper()
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		t.Logf("%s: supported", what)
		check()
	case errors.As(err, &pgErr) && pgErr.Code == "0A000":
		t.Logf("%s: refused: %v", what, err)
	default:
		t.Fatalf("%s: %v (want success or SQLSTATE 0A000)", what, err)
	}
}

type accountView struct {
	Name     string
	Plan     string
	Balance  int64
	Nickname *string
}

func viewAccounts(as []Account) []accountView {
	var out []accountView
	for _, a := range as {
		out = append(out, accountView{a.Name, a.Plan, a.Balance, a.Nickname})
	}
	return out
}

// hookedAccount is an Account whose AfterCreate hook fails for the name
// "reject": with GORM's default transaction the INSERT is rolled back, with
// SkipDefaultTransaction it stays.
type hookedAccount struct{ Account }

func (hookedAccount) TableName() string { return "accounts" }

var errRejected = errors.New("rejected by AfterCreate")

func (a *hookedAccount) AfterCreate(*gorm.DB) error {
	if a.Name == "reject" {
		return errRejected
	}
	return nil
}

// accountV2 is Account with one more field, for AutoMigrate.
type accountV2 struct {
	Account
	Country string
}

func (accountV2) TableName() string { return "accounts" }

func sortByID(as []Account) {
	slices.SortFunc(as, func(a, b Account) int { return cmp.Compare(a.ID, b.ID) })
}

func TestGORM(t *testing.T) {
	cluster := pgtest.StartTB(t, 5)
	workers := cluster.Nodes[1:]

	t.Run("scenario", func(t *testing.T) {
		t.Parallel()
		db := newDB(t, cluster, "scenario", gorm.Config{})
		must(t, createSchema(db, workers))
		must(t, scenario(db, logWriter{t}))

		var accounts []Account
		must(t, db.Find(&accounts).Error)
		sortByID(accounts)
		want := []accountView{
			{"alice", "pro", 70, ptr("al")},
			{"bob", "pro", 5, ptr("bobby")},
			{"carol", "pro", 72, nil},
		}
		if got := viewAccounts(accounts); !reflect.DeepEqual(got, want) {
			t.Errorf("accounts = %+v, want %+v", got, want)
		}
		var live, all int64
		must(t, db.Model(&Event{}).Count(&live).Error)
		must(t, db.Unscoped().Model(&Event{}).Count(&all).Error)
		if live != 4 || all != 5 {
			t.Errorf("events: %d live, %d in all; want 4 and 5", live, all)
		}
		var gone Event
		must(t, db.Unscoped().First(&gone, "device_id = ? AND kind = ?", "sensor-a", "boot").Error)
		if !gone.DeletedAt.Valid {
			t.Errorf("soft-deleted event has deleted_at NULL")
		}
	})

	for _, mode := range []struct {
		name string
		cfg  gorm.Config
	}{
		{"default transaction", gorm.Config{}},
		{"SkipDefaultTransaction", gorm.Config{SkipDefaultTransaction: true}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t, cluster, strings.ToLower(strings.ReplaceAll(mode.name, " ", "_")), mode.cfg)
			must(t, createSchema(db, workers))
			t.Run("AfterCreate error", func(t *testing.T) {
				ok := hookedAccount{Account{Email: "ok@example.test", Name: "ok", Plan: "free"}}
				must(t, db.Create(&ok).Error)
				bad := hookedAccount{Account{Email: "reject@example.test", Name: "reject", Plan: "free"}}
				if err := db.Create(&bad).Error; !errors.Is(err, errRejected) {
					t.Fatalf("Create: %v, want %v", err, errRejected)
				}
				if bad.ID == 0 || bad.ID == ok.ID {
					t.Fatalf("RETURNING id: %d (other row %d)", bad.ID, ok.ID)
				}
				err := db.First(&Account{}, bad.ID).Error
				if mode.cfg.SkipDefaultTransaction {
					must(t, err) // no transaction: the row stays
				} else if !errors.Is(err, gorm.ErrRecordNotFound) {
					t.Fatalf("row of the rolled back Create: %v, want ErrRecordNotFound", err)
				}
				for _, id := range []uint64{ok.ID, bad.ID} {
					must(t, db.Delete(&Account{}, id).Error)
				}
			})
			testAccounts(t, db)
			testEvents(t, db)
		})
	}

	t.Run("AutoMigrate", func(t *testing.T) {
		t.Parallel()
		db := newDB(t, cluster, "automigrate", gorm.Config{})
		for _, w := range workers {
			must(t, db.Exec(`SELECT master_add_node(?, ?)`, w.Host, w.Port).Error)
		}
		// Before the table is distributed, AutoMigrate is an ordinary
		// CREATE TABLE on the metadata database.
		must(t, createWithAutoMigrate(db, &Account{}, "accounts", "id"))
		must(t, createWithAutoMigrate(db, &Event{}, "events", "device_id"))
		a := Account{Email: "x@example.test", Name: "x", Plan: "free"}
		must(t, db.Create(&a).Error)
		var got Account
		must(t, db.First(&got, a.ID).Error)
		if got.Email != a.Email || got.ID == 0 {
			t.Fatalf("read back %+v, want %+v", got, a)
		}
		e := []Event{{DeviceID: "d", Kind: "k", At: t0}, {DeviceID: "d", Kind: "k", At: t0}}
		must(t, db.Create(&e).Error)
		if e[0].ID == 0 || e[0].ID == e[1].ID {
			t.Fatalf("event ids %d, %d", e[0].ID, e[1].ID)
		}
		// Once distributed, AutoMigrate of the same model finds nothing to
		// change (it reads the columns with SELECT * FROM accounts LIMIT 1,
		// a multi-shard query).
		must(t, db.AutoMigrate(&Account{}, &Event{}))
		// A new field needs ALTER TABLE, which pgshard runs on the template
		// and every placement (the root package's
		// TestGORMAutoMigrateDistributed checks each placement).
		refusedOrOK(t, "AutoMigrate adding a column to a distributed table", db.AutoMigrate(&accountV2{}), func() {
			var got accountV2
			must(t, db.First(&got, a.ID).Error)
			if got.Email != a.Email || got.Country != "" {
				t.Errorf("read back %+v", got)
			}
		})
		must(t, db.First(&got, a.ID).Error)
	})
}

// testAccounts runs the CRUD steps on accounts, distributed by its
// bigserial primary key.
func testAccounts(t *testing.T, db *gorm.DB) {
	var accounts []Account
	t.Run("Create: ids from RETURNING, unique across shards", func(t *testing.T) {
		for i := 0; i < 24; i++ {
			a := Account{Email: fmt.Sprintf("user%02d@example.test", i), Name: fmt.Sprintf("user%02d", i), Plan: []string{"free", "pro", "team"}[i%3], Balance: int64(i * 10)}
			if i%4 == 0 {
				a.Nickname = ptr(fmt.Sprintf("nick%d", i))
			}
			must(t, db.Create(&a).Error)
			accounts = append(accounts, a)
		}
		seen := map[uint64]bool{}
		for _, a := range accounts {
			if a.ID == 0 || seen[a.ID] {
				t.Fatalf("id %d of %s is zero or repeated", a.ID, a.Name)
			}
			seen[a.ID] = true
		}
		// One multi-row INSERT over several shards.
		more := []Account{{Email: "b1@example.test", Name: "b1", Plan: "free"}, {Email: "b2@example.test", Name: "b2", Plan: "free"}}
		must(t, createAccounts(db, more))
		for _, a := range more {
			if a.ID == 0 || seen[a.ID] {
				t.Fatalf("id %d of %s is zero or repeated", a.ID, a.Name)
			}
			seen[a.ID] = true
		}
		accounts = append(accounts, more...)
		var n int64
		must(t, db.Model(&Account{}).Count(&n).Error)
		if n != int64(len(accounts)) {
			t.Fatalf("count = %d, want %d", n, len(accounts))
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("Create of several rows on different shards", func(t *testing.T) {
		var batch []Account
		for i := range 6 {
			batch = append(batch, Account{Email: fmt.Sprintf("m%d@example.test", i), Name: fmt.Sprintf("m%d", i), Plan: "multi"})
		}
		must(t, db.Create(&batch).Error)
		// RETURNING "id" must give each struct its own row's id.
		seen := map[uint64]bool{}
		for _, want := range batch {
			var got Account
			must(t, db.First(&got, want.ID).Error)
			if seen[want.ID] || got.Email != want.Email {
				t.Errorf("id %d: read back %s, want %s", want.ID, got.Email, want.Email)
			}
			seen[want.ID] = true
		}
		// A batch that fails on one shard writes nothing on any.
		dup := []Account{{Email: "ok@example.test", Name: "ok", Plan: "multi"}, {ID: batch[0].ID, Email: "dup", Name: "dup", Plan: "multi"}}
		var pgErr *pgconn.PgError
		if err := db.Create(&dup).Error; !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			t.Fatalf("batch with a duplicate id: %v, want SQLSTATE 23505", err)
		}
		var n int64
		must(t, db.Model(&Account{}).Where("plan = ?", "multi").Count(&n).Error)
		if n != int64(len(batch)) {
			t.Fatalf("%d rows after the failed batch, want %d", n, len(batch))
		}
		// Delete of a slice: WHERE id IN (...) over several shards.
		res := db.Delete(&batch)
		must(t, res.Error)
		if res.RowsAffected != int64(len(batch)) {
			t.Errorf("Delete(slice): RowsAffected = %d, want %d", res.RowsAffected, len(batch))
		}
		must(t, db.Model(&Account{}).Where("plan = ?", "multi").Count(&n).Error)
		if n != 0 {
			t.Fatalf("%d rows of the batch left", n)
		}
	})

	t.Run("First by key", func(t *testing.T) {
		for _, want := range []Account{accounts[0], accounts[7], accounts[len(accounts)-1]} {
			var got Account
			must(t, db.First(&got, want.ID).Error)
			if got.ID != want.ID || got.Email != want.Email || got.Plan != want.Plan || got.Balance != want.Balance ||
				!reflect.DeepEqual(got.Nickname, want.Nickname) || !got.CreatedAt.Equal(want.CreatedAt.Truncate(time.Microsecond)) {
				t.Errorf("First(%d) = %+v, want %+v", want.ID, got, want)
			}
		}
		var none Account
		if err := db.First(&none, uint64(1<<40)).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
			t.Errorf("First of a missing id: %v, want ErrRecordNotFound", err)
		}
	})

	t.Run("Where on non-key columns (every shard)", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			query func(*gorm.DB) *gorm.DB
			want  func(Account) bool
		}{
			{"plan = pro", func(db *gorm.DB) *gorm.DB { return db.Where("plan = ?", "pro") }, func(a Account) bool { return a.Plan == "pro" }},
			{"struct condition", func(db *gorm.DB) *gorm.DB { return db.Where(&Account{Plan: "team"}) }, func(a Account) bool { return a.Plan == "team" }},
			{"balance range", func(db *gorm.DB) *gorm.DB { return db.Where("balance BETWEEN ? AND ?", 50, 120) }, func(a Account) bool { return a.Balance >= 50 && a.Balance <= 120 }},
			{"nickname IS NULL", func(db *gorm.DB) *gorm.DB { return db.Where("nickname IS NULL") }, func(a Account) bool { return a.Nickname == nil }},
			{"email IN", func(db *gorm.DB) *gorm.DB {
				return db.Where("email IN ?", []string{"user03@example.test", "user04@example.test"})
			}, func(a Account) bool { return a.Email == "user03@example.test" || a.Email == "user04@example.test" }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got []Account
				must(t, tc.query(db).Find(&got).Error)
				sortByID(got)
				var want []string
				for _, a := range accounts {
					if tc.want(a) {
						want = append(want, a.Email)
					}
				}
				var emails []string
				for _, a := range got {
					emails = append(emails, a.Email)
				}
				if len(want) == 0 || !reflect.DeepEqual(emails, want) {
					t.Errorf("got %v, want %v", emails, want)
				}
				var n int64
				must(t, tc.query(db.Model(&Account{})).Count(&n).Error)
				if n != int64(len(want)) {
					t.Errorf("Count = %d, want %d", n, len(want))
				}
			})
		}
		a, err := accountByEmail(db, "user05@example.test")
		must(t, err)
		if a.ID != accounts[5].ID || a.Name != "user05" {
			t.Errorf("accountByEmail: %+v, want id %d", a, accounts[5].ID)
		}
		if _, err := accountByEmail(db, "nobody@example.test"); !errors.Is(err, gorm.ErrRecordNotFound) {
			t.Errorf("accountByEmail of a missing email: %v", err)
		}
		for _, tc := range []struct {
			name  string
			query func(*Account) error
			want  Account
		}{
			{"First by plan: lowest id", func(a *Account) error { return db.Where("plan = ?", "team").First(a).Error }, accounts[2]},
			{"Last by plan: highest id", func(a *Account) error { return db.Where("plan = ?", "team").Last(a).Error }, accounts[23]},
			{"First ordered by balance DESC", func(a *Account) error { return db.Order("balance DESC").First(a).Error }, accounts[23]},
		} {
			var got Account
			must(t, tc.query(&got))
			if got.ID != tc.want.ID {
				t.Errorf("%s: %s (id %d), want %s (id %d)", tc.name, got.Name, got.ID, tc.want.Name, tc.want.ID)
			}
		}
		var n int64
		must(t, db.Model(&Account{}).Where("plan = ?", "pro").Count(&n).Error)
		if n != 8 {
			t.Errorf("Count of pro = %d, want 8", n)
		}
		var plans []struct {
			Plan  string
			N     int64
			Total int64
		}
		must(t, db.Model(&Account{}).Select("plan, count(*) AS n, sum(balance) AS total").Where("balance >= ?", 0).
			Group("plan").Order("plan").Scan(&plans).Error)
		want := map[string][2]int64{}
		for _, a := range accounts {
			w := want[a.Plan]
			want[a.Plan] = [2]int64{w[0] + 1, w[1] + a.Balance}
		}
		if len(plans) != len(want) {
			t.Errorf("GROUP BY plan: %+v, want %v", plans, want)
		}
		for _, p := range plans {
			if w := want[p.Plan]; p.N != w[0] || p.Total != w[1] {
				t.Errorf("GROUP BY plan: %+v, want %v", p, w)
			}
		}
	})

	t.Run("pagination over every shard", func(t *testing.T) {
		var emails []string
		for _, a := range accounts {
			emails = append(emails, a.Email)
		}
		slices.Sort(emails)
		for _, tc := range []struct {
			name          string
			limit, offset int
			want          []string
		}{
			{"Limit", 3, -1, emails[:3]},
			{"Limit and Offset", 3, 4, emails[4:7]},
			{"Offset", -1, 20, emails[20:]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got []Account
				err := db.Order("email").Limit(tc.limit).Offset(tc.offset).Find(&got).Error
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				var gotEmails []string
				for _, a := range got {
					gotEmails = append(gotEmails, a.Email)
				}
				if !reflect.DeepEqual(gotEmails, tc.want) {
					t.Errorf("got %v, want %v", gotEmails, tc.want)
				}
			})
		}
	})

	t.Run("Updates by key", func(t *testing.T) {
		a := accounts[1]
		for _, tc := range []struct {
			name   string
			update func() *gorm.DB
			check  func(Account) bool
		}{
			{"Updates with a struct", func() *gorm.DB { return db.Model(&a).Updates(Account{Plan: "team", Nickname: ptr("x")}) },
				func(got Account) bool { return got.Plan == "team" && got.Nickname != nil && *got.Nickname == "x" }},
			{"Updates with a map, to NULL", func() *gorm.DB {
				return db.Model(&Account{ID: a.ID}).Updates(map[string]any{"nickname": nil, "balance": 999})
			}, func(got Account) bool { return got.Nickname == nil && got.Balance == 999 }},
			{"Update of one column with an expression", func() *gorm.DB {
				return db.Model(&Account{ID: a.ID}).Update("balance", gorm.Expr("balance + ?", 1))
			}, func(got Account) bool { return got.Balance == 1000 }},
			{"Save of the whole row", func() *gorm.DB {
				var cur Account
				if err := db.First(&cur, a.ID).Error; err != nil {
					return db.Session(&gorm.Session{}).Model(nil)
				}
				cur.Name, cur.Plan = "renamed", "free"
				return db.Save(&cur)
			}, func(got Account) bool { return got.Name == "renamed" && got.Plan == "free" && got.Balance == 1000 }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := tc.update()
				must(t, res.Error)
				if res.RowsAffected != 1 {
					t.Errorf("RowsAffected = %d, want 1", res.RowsAffected)
				}
				var got Account
				must(t, db.First(&got, a.ID).Error)
				if !tc.check(got) {
					t.Errorf("after update: %+v", got)
				}
				if !got.UpdatedAt.After(got.CreatedAt) {
					t.Errorf("updated_at %v not after created_at %v", got.UpdatedAt, got.CreatedAt)
				}
			})
		}
		// Another row of the same plan is untouched.
		var other Account
		must(t, db.First(&other, accounts[4].ID).Error)
		if other.Balance != accounts[4].Balance || other.Name != accounts[4].Name {
			t.Errorf("untouched row changed: %+v", other)
		}
	})

	t.Run("transaction over two shards", func(t *testing.T) {
		from, to := accounts[10], accounts[11]
		must(t, transfer(db, from.ID, to.ID, 30))
		if err := transfer(db, from.ID, to.ID, 1_000_000); !errors.Is(err, errInsufficientFunds) {
			t.Fatalf("overdraft: %v", err)
		}
		// A rollback after the second write: both shards must be unchanged.
		var zero int64
		must(t, db.Model(&Account{}).Where("balance = 0").Count(&zero).Error)
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Model(&Account{ID: from.ID}).Update("balance", 0).Error; err != nil {
				return err
			}
			if err := tx.Model(&Account{ID: to.ID}).Update("balance", 0).Error; err != nil {
				return err
			}
			var n int64
			if err := tx.Model(&Account{}).Where("balance = 0").Count(&n).Error; err != nil {
				return err
			}
			// The multi-shard count sees the transaction's own writes.
			if n != zero+2 {
				return fmt.Errorf("count in transaction = %d, want %d", n, zero+2)
			}
			return errors.New("roll back")
		})
		if err == nil || err.Error() != "roll back" {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			id   uint64
			want int64
		}{{from.ID, from.Balance - 30}, {to.ID, to.Balance + 30}} {
			var got Account
			must(t, db.First(&got, tc.id).Error)
			if got.Balance != tc.want {
				t.Errorf("balance of %d = %d, want %d", tc.id, got.Balance, tc.want)
			}
		}
	})

	t.Run("Delete by key", func(t *testing.T) {
		for _, a := range []Account{accounts[2], accounts[3]} {
			res := db.Delete(&Account{}, a.ID)
			must(t, res.Error)
			if res.RowsAffected != 1 {
				t.Errorf("Delete(%d): RowsAffected = %d", a.ID, res.RowsAffected)
			}
			if err := db.First(&Account{}, a.ID).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
				t.Errorf("First after Delete: %v", err)
			}
		}
		res := db.Delete(&accounts[5]) // by the loaded model's primary key
		must(t, res.Error)
		if res.RowsAffected != 1 {
			t.Errorf("Delete(model): RowsAffected = %d", res.RowsAffected)
		}
		var n int64
		must(t, db.Model(&Account{}).Count(&n).Error)
		if n != int64(len(accounts)-3) {
			t.Errorf("count = %d, want %d", n, len(accounts)-3)
		}
	})
}

// testEvents runs the CRUD steps on events, distributed by device_id, with
// a bigserial id that is not the shard key.
func testEvents(t *testing.T, db *gorm.DB) {
	devices := []string{"dev-1", "dev-2", "dev-3", "dev-4", "dev-5"}
	byDevice := map[string][]Event{}
	t.Run("Create: batches per device, ids unique across shards", func(t *testing.T) {
		seen := map[uint64]string{}
		for i, d := range devices {
			var batch []Event
			for j := 0; j <= i; j++ {
				e := Event{DeviceID: d, Kind: []string{"temp", "boot"}[j%2], At: t0.Add(time.Duration(i*10+j) * time.Minute)}
				if e.Kind == "temp" {
					e.Reading = ptr(float64(i) + float64(j)/4)
				}
				batch = append(batch, e)
			}
			if len(batch) == 1 {
				must(t, db.Create(&batch[0]).Error)
			} else {
				must(t, db.Create(&batch).Error) // one multi-row INSERT, one shard
			}
			for _, e := range batch {
				if e.ID == 0 || seen[e.ID] != "" {
					t.Fatalf("event id %d of %s is zero or also used by %s", e.ID, d, seen[e.ID])
				}
				seen[e.ID] = d
			}
			byDevice[d] = batch
		}
		// Concurrent inserts on different shards still get distinct ids.
		var wg sync.WaitGroup
		var mu sync.Mutex
		errs := make(chan error, len(devices))
		for _, d := range devices {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 5; k++ {
					e := Event{DeviceID: d, Kind: "tick", At: t0}
					if err := db.Create(&e).Error; err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if prev := seen[e.ID]; prev != "" || e.ID == 0 {
						errs <- fmt.Errorf("id %d of %s also used by %s", e.ID, d, prev)
					}
					seen[e.ID] = d
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// A hard DELETE by a non-key column: every shard, one statement.
		res := db.Unscoped().Where("kind = ?", "tick").Delete(&Event{})
		must(t, res.Error)
		if want := int64(5 * len(devices)); res.RowsAffected != want {
			t.Errorf("deleted %d ticks, want %d", res.RowsAffected, want)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("First by (device_id, id)", func(t *testing.T) {
		for _, d := range devices {
			want := byDevice[d][len(byDevice[d])-1]
			for _, tc := range []struct {
				name  string
				query func(*Event) error
			}{
				{"string condition", func(e *Event) error { return db.First(e, "device_id = ? AND id = ?", want.DeviceID, want.ID).Error }},
				{"struct condition", func(e *Event) error {
					return db.Where(&Event{DeviceID: want.DeviceID, ID: want.ID}).First(e).Error
				}},
				{"model's primary key", func(e *Event) error {
					*e = Event{DeviceID: want.DeviceID, ID: want.ID}
					return db.First(e).Error
				}},
			} {
				var got Event
				must(t, tc.query(&got))
				if got.ID != want.ID || got.Kind != want.Kind || !got.At.Equal(want.At) || !reflect.DeepEqual(got.Reading, want.Reading) {
					t.Errorf("%s %s: got %+v, want %+v", d, tc.name, got, want)
				}
			}
		}
	})

	t.Run("Where by device (one shard, ORDER BY and LIMIT allowed)", func(t *testing.T) {
		var got []Event
		must(t, db.Where("device_id = ?", "dev-4").Order("at DESC").Limit(2).Find(&got).Error)
		if len(got) != 2 || got[0].ID != byDevice["dev-4"][3].ID || got[1].ID != byDevice["dev-4"][2].ID {
			t.Errorf("got %+v", got)
		}
	})

	t.Run("Where on non-key columns (every shard)", func(t *testing.T) {
		var temps []Event
		must(t, db.Where("kind = ? AND reading >= ?", "temp", 2).Find(&temps).Error)
		var want []uint64
		for _, d := range devices {
			for _, e := range byDevice[d] {
				if e.Kind == "temp" && *e.Reading >= 2 {
					want = append(want, e.ID)
				}
			}
		}
		var ids []uint64
		for _, e := range temps {
			ids = append(ids, e.ID)
		}
		slices.Sort(ids)
		slices.Sort(want)
		if !reflect.DeepEqual(ids, want) {
			t.Errorf("ids %v, want %v", ids, want)
		}
		type aggregates struct {
			N   int64
			Max float64
			Sum float64
		}
		var gotAgg, wantAgg aggregates
		for _, d := range devices {
			for _, e := range byDevice[d] {
				if e.Kind == "temp" {
					wantAgg.N++
					wantAgg.Sum += *e.Reading
					wantAgg.Max = max(wantAgg.Max, *e.Reading)
				}
			}
		}
		must(t, db.Model(&Event{}).Select("count(*) AS n, max(reading) AS max, sum(reading) AS sum").Where("kind = ?", "temp").Scan(&gotAgg).Error)
		if gotAgg != wantAgg || wantAgg.N != 9 {
			t.Errorf("aggregates = %+v, want %+v", gotAgg, wantAgg)
		}
	})

	t.Run("Updates by (device_id, id)", func(t *testing.T) {
		e := byDevice["dev-3"][1]
		res := db.Model(&e).Updates(Event{Kind: "reboot", Reading: ptr(7.5)})
		must(t, res.Error)
		if res.RowsAffected != 1 {
			t.Errorf("RowsAffected = %d", res.RowsAffected)
		}
		var got Event
		must(t, db.First(&got, "device_id = ? AND id = ?", e.DeviceID, e.ID).Error)
		if got.Kind != "reboot" || got.Reading == nil || *got.Reading != 7.5 {
			t.Errorf("after Updates: %+v", got)
		}
		// By id alone, which does not fix device_id: every shard, one
		// atomic statement.
		res = db.Model(&Event{}).Where("id = ?", e.ID).Update("kind", "rebooted")
		must(t, res.Error)
		if res.RowsAffected != 1 {
			t.Errorf("UPDATE by id: RowsAffected = %d", res.RowsAffected)
		}
		must(t, db.First(&got, "device_id = ? AND id = ?", e.DeviceID, e.ID).Error)
		if got.Kind != "rebooted" {
			t.Errorf("after UPDATE by id: %+v", got)
		}
		// By a non-key column, on several shards.
		var before int64
		must(t, db.Model(&Event{}).Where("kind = ?", "boot").Count(&before).Error)
		res = db.Model(&Event{}).Where("kind = ?", "boot").Update("reading", 0)
		must(t, res.Error)
		if res.RowsAffected != before || before < 2 {
			t.Errorf("UPDATE of every boot event: RowsAffected = %d, want %d", res.RowsAffected, before)
		}
		var zeros int64
		must(t, db.Model(&Event{}).Where("kind = ? AND reading = 0", "boot").Count(&zeros).Error)
		if zeros != before {
			t.Errorf("%d boot events with reading 0, want %d", zeros, before)
		}
	})

	t.Run("Delete by (device_id, id)", func(t *testing.T) {
		e := byDevice["dev-5"][0]
		// GORM's Delete of a model with a composite primary key writes
		// WHERE ("device_id","id") IN (('dev-5',n)), which fixes device_id.
		res := db.Delete(&e)
		must(t, res.Error)
		if res.RowsAffected != 1 {
			t.Errorf("soft Delete: RowsAffected = %d", res.RowsAffected)
		}
		var got Event
		if err := db.First(&got, "device_id = ? AND id = ?", e.DeviceID, e.ID).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
			t.Errorf("First after soft Delete: %v", err)
		}
		must(t, db.Unscoped().First(&got, "device_id = ? AND id = ?", e.DeviceID, e.ID).Error)
		if !got.DeletedAt.Valid {
			t.Errorf("deleted_at is NULL")
		}
		// Hard delete, with the shard key in the Where.
		res = db.Unscoped().Where("device_id = ?", e.DeviceID).Delete(&Event{}, "id = ?", e.ID)
		must(t, res.Error)
		if res.RowsAffected != 1 {
			t.Errorf("hard Delete: RowsAffected = %d", res.RowsAffected)
		}
		if err := db.Unscoped().First(&got, "device_id = ? AND id = ?", e.DeviceID, e.ID).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
			t.Errorf("First after hard Delete: %v", err)
		}
	})

	t.Run("Count", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			query func() *gorm.DB
			want  int64
		}{
			{"all live", func() *gorm.DB { return db.Model(&Event{}) }, 14},
			{"Unscoped", func() *gorm.DB { return db.Unscoped().Model(&Event{}) }, 14},
			{"one device (one shard)", func() *gorm.DB { return db.Model(&Event{}).Where("device_id = ?", "dev-4") }, 4},
			{"kind = boot", func() *gorm.DB { return db.Model(&Event{}).Where("kind = ?", "boot") }, 5}, // 6, one updated to reboot
		} {
			t.Run(tc.name, func(t *testing.T) {
				var n int64
				must(t, tc.query().Count(&n).Error)
				if n != tc.want {
					t.Errorf("Count = %d, want %d", n, tc.want)
				}
			})
		}
	})
}
