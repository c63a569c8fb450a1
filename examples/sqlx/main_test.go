package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// logWriter sends the scenario's output to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// norm puts times in UTC so that users compare with reflect.DeepEqual.
func norm(us ...User) []User {
	out := make([]User, len(us))
	for i, u := range us {
		u.CreatedAt = u.CreatedAt.UTC()
		if u.LastLogin.Valid {
			u.LastLogin.Time = u.LastLogin.Time.UTC()
		}
		out[i] = u
	}
	return out
}

func with(u User, f func(*User)) User {
	f(&u)
	return u
}

// afterScenario is the number of users the scenario leaves.
const afterScenario = 7

func TestSQLX(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster := pgtest.StartTB(t, 5)
	db, err := sqlx.Open("pgshard", cluster.Nodes[0].DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := createSchema(ctx, db, cluster.Nodes[1:]); err != nil {
		t.Fatal(err)
	}

	if err := scenario(ctx, db, logWriter{t}); err != nil {
		t.Fatalf("scenario: %v", err)
	}

	// What the scenario must have left: alice gave dave 20 points, bob's
	// login was recorded, frank was deleted, the overdrawing transfer
	// changed nothing.
	aliceNow := with(alice, func(u *User) { u.Score = ptr[int32](30) })
	bob := with(acme[0], func(u *User) { u.LastLogin = sql.NullTime{Time: loginAt, Valid: true} })
	carol := acme[1]
	dave := with(others[0], func(u *User) { u.Score = ptr[int32](20) })
	erin := others[1]
	tony, bruce := newcomers[0], newcomers[1]

	t.Run("reads", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			read func() (any, error)
			want any
		}{
			{"Get by key, nullable columns NULL", func() (any, error) { return getUser(ctx, db, "acme", 2) }, norm(bob)[0]},
			{"Get by key, nullable columns set", func() (any, error) { return getUser(ctx, db, "acme", 3) }, norm(carol)[0]},
			{"Get by key after cross-shard transaction", func() (any, error) { return getUser(ctx, db, "globex", 1) }, norm(dave)[0]},
			{"Select by key", func() (any, error) { return tenantUsers(ctx, db, "acme") }, norm(aliceNow, bob, carol)},
			{"Select by key, no rows", func() (any, error) { return tenantUsers(ctx, db, "umbrella") }, []User(nil)},
			{"Get by key, inserted in a transaction", func() (any, error) { return getUser(ctx, db, "wayne", 1) }, norm(bruce)[0]},
			{"Select all (multi-shard, ORDER BY)", func() (any, error) { return allUsers(ctx, db) }, norm(aliceNow, bob, carol, dave, erin, tony, bruce)},
			{"Select non-key WHERE (multi-shard)", func() (any, error) { return usersOnPlan(ctx, db, "pro") }, norm(aliceNow, carol, dave, tony)},
			{"Select non-key WHERE, other value", func() (any, error) { return usersOnPlan(ctx, db, "free") }, norm(bob, erin, bruce)},
			{"Get count(*) (multi-shard)", func() (any, error) { return countUsers(ctx, db) }, int64(afterScenario)},
			{"aggregates (multi-shard)", func() (any, error) {
				s, err := statsForPlan(ctx, db, "pro")
				s.First.Time = s.First.Time.UTC()
				return s, err
			}, planStats{Users: 4, Scored: 4, Total: sql.NullInt64{Int64: 30 + 7 + 20 + 99, Valid: true}, MaxScore: sql.NullInt32{Int32: 99, Valid: true}, First: sql.NullTime{Time: t0.Add(-24 * time.Hour), Valid: true}}},
			{"aggregates over no rows", func() (any, error) {
				return statsForPlan(ctx, db, "enterprise")
			}, planStats{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := tc.read()
				if err != nil {
					t.Fatal(err)
				}
				if u, ok := got.(User); ok {
					got = norm(u)[0]
				}
				if us, ok := got.([]User); ok && us != nil {
					got = norm(us...)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got  %+v\nwant %+v", got, tc.want)
				}
			})
		}
	})

	t.Run("deleted row is gone", func(t *testing.T) {
		_, err := getUser(ctx, db, "umbrella", 1)
		if !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("Get of a deleted row: %v, want sql.ErrNoRows", err)
		}
	})

	t.Run("multi-row INSERT across shards", func(t *testing.T) {
		batch := []User{
			{TenantID: "hooli", UserID: 1, Name: "gavin", Plan: free, CreatedAt: t0},
			{TenantID: "piedpiper", UserID: 1, Name: "richard", Plan: free, Score: ptr[int32](9), CreatedAt: t0},
			{TenantID: "hooli", UserID: 2, Name: "jared", Plan: free, CreatedAt: t0},
		}
		n, err := addUsers(ctx, db, batch)
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Errorf("rows affected = %d, want 3", n)
		}
		for _, want := range batch {
			got, err := getUser(ctx, db, want.TenantID, want.UserID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(norm(got), norm(want)) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}
		// DELETE with the key IN a list: the shards of those keys.
		res, err := db.Exec(`DELETE FROM users WHERE tenant_id IN ($1, $2)`, "hooli", "piedpiper")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 3 {
			t.Errorf("DELETE ... IN: %d rows, want 3", n)
		}
		if n, err := countUsers(ctx, db); err != nil || n != afterScenario {
			t.Fatalf("count after the batch and the DELETE = %d, %v; want %d", n, err, afterScenario)
		}

		// A batch across shards that fails on one shard writes nothing.
		bad := []User{
			{TenantID: "hooli", UserID: 1, Name: "gavin", Plan: free, CreatedAt: t0},
			{TenantID: "acme", UserID: 1, Name: "duplicate", Plan: free, CreatedAt: t0},
		}
		_, err = addUsers(ctx, db, bad)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			t.Fatalf("batch with a duplicate key: %v, want unique_violation 23505", err)
		}
		if _, err := getUser(ctx, db, "hooli", 1); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("row of the failed batch: %v, want sql.ErrNoRows", err)
		}
	})

	t.Run("multi-shard UPDATE", func(t *testing.T) {
		res, err := db.NamedExec(`UPDATE users SET score = coalesce(score, 0) + :bonus WHERE plan = :plan`, map[string]any{"bonus": 1, "plan": "free"})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 3 {
			t.Errorf("rows affected = %d, want 3", n)
		}
		var scores []struct {
			Name  string `db:"name"`
			Score int32  `db:"score"`
		}
		if err := db.Select(&scores, `SELECT name, score FROM users WHERE plan = 'free' ORDER BY name`); err != nil {
			t.Fatal(err)
		}
		want := "[{bob 1} {bruce 1} {erin 4}]"
		if got := fmt.Sprint(scores); got != want {
			t.Errorf("scores %s, want %s", got, want)
		}
		// and back
		if _, err := db.Exec(`UPDATE users SET score = nullif(score - 1, 0) WHERE plan = 'free'`); err != nil {
			t.Fatal(err)
		}
		if u, err := getUser(ctx, db, "acme", 2); err != nil || u.Score != nil {
			t.Fatalf("bob after the second UPDATE: %+v, %v", u, err)
		}
	})

	t.Run("pagination over every shard", func(t *testing.T) {
		all, err := allUsers(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			query string
			args  []any
			want  []User
		}{
			{"LIMIT literal", `SELECT * FROM users ORDER BY tenant_id, user_id LIMIT 3`, nil, all[:3]},
			{"LIMIT $1", `SELECT * FROM users ORDER BY tenant_id, user_id LIMIT $1`, []any{3}, all[:3]},
			{"LIMIT and OFFSET literals", `SELECT * FROM users ORDER BY tenant_id, user_id LIMIT 2 OFFSET 4`, nil, all[4:6]},
			{"LIMIT $1 OFFSET $2", `SELECT * FROM users ORDER BY tenant_id, user_id LIMIT $1 OFFSET $2`, []any{2, 4}, all[4:6]},
			{"OFFSET $1", `SELECT * FROM users ORDER BY tenant_id, user_id OFFSET $1`, []any{5}, all[5:]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got []User
				err := db.Select(&got, tc.query, tc.args...)
				if err != nil {
					t.Fatalf("%s: %v", tc.query, err)
				}
				if !reflect.DeepEqual(norm(got...), norm(tc.want...)) {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			})
		}
	})

	t.Run("multi-row INSERT in one shard, duplicate key: nothing written", func(t *testing.T) {
		batch := []User{
			{TenantID: "acme", UserID: 10, Name: "new", Plan: free, CreatedAt: t0},
			{TenantID: "acme", UserID: 1, Name: "dup", Plan: free, CreatedAt: t0},
		}
		_, err := addUsers(ctx, db, batch)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			t.Fatalf("got %v, want unique_violation 23505", err)
		}
		if _, err := getUser(ctx, db, "acme", 10); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("row of the failed batch: %v, want sql.ErrNoRows", err)
		}
	})

	t.Run("updates and deletes by key report rows affected", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			run  func() (int64, error)
			want int64
		}{
			{"update existing", func() (int64, error) { return recordLogin(ctx, db, "initech", 1, loginAt) }, 1},
			{"update missing", func() (int64, error) { return recordLogin(ctx, db, "initech", 99, loginAt) }, 0},
			{"delete missing", func() (int64, error) { return deleteUser(ctx, db, "umbrella", 1) }, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n, err := tc.run()
				if err != nil {
					t.Fatal(err)
				}
				if n != tc.want {
					t.Fatalf("rows affected = %d, want %d", n, tc.want)
				}
			})
		}
		u, err := getUser(ctx, db, "initech", 1)
		if err != nil {
			t.Fatal(err)
		}
		if !u.LastLogin.Valid || !u.LastLogin.Time.Equal(loginAt) {
			t.Fatalf("last_login = %v, want %v (microseconds kept)", u.LastLogin, loginAt)
		}
	})

	t.Run("transaction sees its own writes on every shard, rollback undoes them", func(t *testing.T) {
		batch := []User{
			{TenantID: "hooli", UserID: 1, Name: "gavin", Plan: pro, Score: ptr[int32](1), CreatedAt: t0},
			{TenantID: "hooli", UserID: 2, Name: "jared", Plan: free, CreatedAt: t0},
			{TenantID: "piedpiper", UserID: 1, Name: "richard", Plan: pro, CreatedAt: t0},
		}
		tx, err := db.Beginx()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.NamedExec(insertUser, batch[:2]); err != nil {
			t.Fatalf("batch in transaction: %v", err)
		}
		if _, err := tx.NamedExec(insertUser, batch[2]); err != nil {
			t.Fatal(err)
		}
		got, err := getUser(ctx, tx, "piedpiper", 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := norm(batch[2])[0]; !reflect.DeepEqual(norm(got)[0], want) {
			t.Fatalf("read own write: %+v, want %+v", got, want)
		}
		if n, err := countUsers(ctx, tx); err != nil || n != afterScenario+3 {
			t.Fatalf("count in transaction = %d, %v; want %d", n, err, afterScenario+3)
		}
		var pros []User
		if err := tx.Select(&pros, `SELECT * FROM users WHERE plan = $1`, "pro"); err != nil {
			t.Fatal(err)
		}
		if len(pros) != 6 {
			t.Fatalf("pro users in transaction = %d, want 6", len(pros))
		}
		if n, err := countUsers(ctx, db); err != nil || n != afterScenario {
			t.Fatalf("count outside the transaction = %d, %v; want %d (uncommitted rows visible?)", n, err, afterScenario)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if n, err := countUsers(ctx, db); err != nil || n != afterScenario {
			t.Fatalf("count after rollback = %d, %v; want %d", n, err, afterScenario)
		}
		if _, err := getUser(ctx, db, "hooli", 1); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("rolled back row: %v, want sql.ErrNoRows", err)
		}
	})

	t.Run("committed transaction", func(t *testing.T) {
		tx, err := db.Beginx()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.NamedExec(insertUser, User{TenantID: "hooli", UserID: 1, Name: "gavin", Plan: pro, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`UPDATE users SET plan = 'pro' WHERE tenant_id = $1 AND user_id = $2`, "initech", 1); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`DELETE FROM users WHERE tenant_id = $1 AND user_id = $2`, "acme", 2); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		us, err := usersOnPlan(ctx, db, "pro")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, u := range us {
			keys = append(keys, u.TenantID+"/"+u.Name)
		}
		want := []string{"acme/alice", "acme/carol", "globex/dave", "hooli/gavin", "initech/erin", "stark/tony"}
		if !reflect.DeepEqual(keys, want) {
			t.Fatalf("pro users after commit = %v, want %v", keys, want)
		}
		if n, err := countUsers(ctx, db); err != nil || n != afterScenario {
			t.Fatalf("count after commit = %d, %v; want %d", n, err, afterScenario)
		}
	})
}
