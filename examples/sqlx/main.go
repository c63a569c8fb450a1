// Command sqlx uses pgshard through github.com/jmoiron/sqlx on a local
// cluster it starts itself: one metadata node and four workers.
//
// The table is a multi-tenant users table distributed by tenant_id, so that
// every statement that names a tenant runs on one shard. The example shows
// NamedExec (one row, and batches: of one tenant, one shard; of several,
// split over the shards atomically), Get and Select with struct scanning,
// statements that fix the tenant (one shard) and statements that do not
// (every shard, merged by pgshard, ORDER BY and aggregates included),
// UPDATE and DELETE, and transactions over several shards (Beginx ...
// Commit with a prepared named statement, and a rollback).
//
//	go run ./examples/sqlx
//
// sqlx picks the placeholder style from the driver name and does not know
// "pgshard", so the example tells it once:
//
//	sqlx.BindDriver("pgshard", sqlx.DOLLAR)
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	_ "github.com/pgshard/pgshard"
	"github.com/pgshard/pgshard/internal/pgtest"
)

func init() {
	// sqlx rewrites :name parameters (NamedExec, PrepareNamed) and ?
	// (Rebind, In) into the driver's placeholders; PostgreSQL's are $1, $2.
	sqlx.BindDriver("pgshard", sqlx.DOLLAR)
}

// User is one row of the users table. Nullable columns are sql.Null* or
// pointers; sqlx maps columns to fields by the db tags.
type User struct {
	TenantID  string         `db:"tenant_id"`
	UserID    int64          `db:"user_id"`
	Name      string         `db:"name"`
	Email     sql.NullString `db:"email"`
	Plan      string         `db:"plan"`
	Score     *int32         `db:"score"`
	CreatedAt time.Time      `db:"created_at"`
	LastLogin sql.NullTime   `db:"last_login"`
}

func (u User) String() string {
	score := "NULL"
	if u.Score != nil {
		score = fmt.Sprint(*u.Score)
	}
	email := "NULL"
	if u.Email.Valid {
		email = u.Email.String
	}
	login := "NULL"
	if u.LastLogin.Valid {
		login = u.LastLogin.Time.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s/%d %-6s email=%-18s plan=%-4s score=%-4s created=%s last_login=%s",
		u.TenantID, u.UserID, u.Name, email, u.Plan, score, u.CreatedAt.UTC().Format(time.RFC3339), login)
}

const usersDDL = `CREATE TABLE users (
	tenant_id  text        NOT NULL,
	user_id    bigint      NOT NULL,
	name       text        NOT NULL,
	email      text,
	plan       text        NOT NULL DEFAULT 'free',
	score      integer,
	created_at timestamptz NOT NULL,
	last_login timestamptz,
	PRIMARY KEY (tenant_id, user_id)
)`

const insertUser = `INSERT INTO users (tenant_id, user_id, name, email, plan, score, created_at, last_login)
	VALUES (:tenant_id, :user_id, :name, :email, :plan, :score, :created_at, :last_login)`

// createSchema registers the workers, creates users on the metadata
// database and distributes it: 16 shards, 2 replicas each.
func createSchema(ctx context.Context, db *sqlx.DB, workers []*pgtest.Node) error {
	for _, w := range workers {
		if _, err := db.ExecContext(ctx, `SELECT master_add_node($1, $2)`, w.Host, w.Port); err != nil {
			return err
		}
	}
	for _, q := range []string{
		usersDDL,
		`SELECT master_create_distributed_table('users', 'tenant_id')`,
		`SELECT master_create_worker_shards('users', 16, 2)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", oneLine(q), err)
		}
	}
	return nil
}

// addUser inserts one row: NamedExec with a struct.
func addUser(ctx context.Context, db *sqlx.DB, u User) error {
	_, err := db.NamedExecContext(ctx, insertUser, u)
	return err
}

// addUsers inserts several rows in one statement: NamedExec with a slice
// makes one multi-row INSERT. When every row has the same tenant, it runs on
// one shard; otherwise pgshard splits it per shard and runs the parts as one
// atomic statement.
func addUsers(ctx context.Context, db *sqlx.DB, users []User) (int64, error) {
	res, err := db.NamedExecContext(ctx, insertUser, users)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// addUsersTx inserts users of any tenants atomically: one transaction, one
// prepared named statement, one row per execution. A transaction that wrote
// on several workers commits with two-phase commit.
func addUsersTx(ctx context.Context, db *sqlx.DB, users []User) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareNamedContext(ctx, insertUser)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, u := range users {
		if _, err := ins.ExecContext(ctx, u); err != nil {
			return fmt.Errorf("inserting %s/%d: %w", u.TenantID, u.UserID, err)
		}
	}
	return tx.Commit()
}

// getUser reads one row by its key: one shard.
func getUser(ctx context.Context, db sqlx.QueryerContext, tenant string, id int64) (User, error) {
	var u User
	err := sqlx.GetContext(ctx, db, &u, `SELECT * FROM users WHERE tenant_id = $1 AND user_id = $2`, tenant, id)
	return u, err
}

// tenantUsers reads every user of one tenant: one shard, so ORDER BY and
// LIMIT run there as usual.
func tenantUsers(ctx context.Context, db *sqlx.DB, tenant string) ([]User, error) {
	var us []User
	err := db.SelectContext(ctx, &us, `SELECT * FROM users WHERE tenant_id = $1 ORDER BY user_id`, tenant)
	return us, err
}

// allUsers reads every row of every shard; pgshard merges the shards' rows
// in ORDER BY order.
func allUsers(ctx context.Context, db *sqlx.DB) ([]User, error) {
	var us []User
	err := db.SelectContext(ctx, &us, `SELECT * FROM users ORDER BY tenant_id, user_id`)
	return us, err
}

// countUsers is count(*) over every shard: pgshard adds the shards' counts.
func countUsers(ctx context.Context, db sqlx.QueryerContext) (int64, error) {
	var n int64
	err := sqlx.GetContext(ctx, db, &n, `SELECT count(*) FROM users`)
	return n, err
}

// usersOnPlan filters on a column that is not the shard key: every shard.
func usersOnPlan(ctx context.Context, db *sqlx.DB, plan string) ([]User, error) {
	var us []User
	err := db.SelectContext(ctx, &us, `SELECT * FROM users WHERE plan = $1 ORDER BY tenant_id, user_id`, plan)
	return us, err
}

// planStats are aggregates over every shard, merged by pgshard.
type planStats struct {
	Users    int64         `db:"users"`
	Scored   int64         `db:"scored"`
	Total    sql.NullInt64 `db:"total"`
	MaxScore sql.NullInt32 `db:"max_score"`
	First    sql.NullTime  `db:"first"`
}

func statsForPlan(ctx context.Context, db *sqlx.DB, plan string) (planStats, error) {
	var s planStats
	err := db.GetContext(ctx, &s, `SELECT count(*) AS users, count(score) AS scored, sum(score) AS total,
		max(score) AS max_score, min(created_at) AS first FROM users WHERE plan = $1`, plan)
	return s, err
}

// recordLogin updates one row by its key, with named parameters.
func recordLogin(ctx context.Context, db *sqlx.DB, tenant string, id int64, at time.Time) (int64, error) {
	res, err := db.NamedExecContext(ctx, `UPDATE users SET last_login = :at WHERE tenant_id = :tenant AND user_id = :id`,
		map[string]any{"tenant": tenant, "id": id, "at": at})
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// deleteUser deletes one row by its key.
func deleteUser(ctx context.Context, db *sqlx.DB, tenant string, id int64) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM users WHERE tenant_id = $1 AND user_id = $2`, tenant, id)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// transferScore moves points from one user to another, possibly of another
// tenant (another shard), in one transaction. It reads the new balances
// back with UPDATE ... RETURNING; when the sender would go below zero it
// returns an error and the deferred Rollback undoes both updates, on both
// shards.
func transferScore(ctx context.Context, db *sqlx.DB, from, to User, points int32) (fromScore, toScore int32, err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	const move = `UPDATE users SET score = coalesce(score, 0) + $3 WHERE tenant_id = $1 AND user_id = $2 RETURNING score`
	if err := tx.GetContext(ctx, &toScore, move, to.TenantID, to.UserID, points); err != nil {
		return 0, 0, fmt.Errorf("crediting %s/%d: %w", to.TenantID, to.UserID, err)
	}
	if err := tx.GetContext(ctx, &fromScore, move, from.TenantID, from.UserID, -points); err != nil {
		return 0, 0, fmt.Errorf("debiting %s/%d: %w", from.TenantID, from.UserID, err)
	}
	if fromScore < 0 {
		return 0, 0, fmt.Errorf("%w: %s/%d has %d points too few", errOverdrawn, from.TenantID, from.UserID, -fromScore)
	}
	return fromScore, toScore, tx.Commit()
}

var errOverdrawn = errors.New("transfer refused")

var (
	t0   = time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)
	pro  = "pro"
	free = "free"
)

func ptr[T any](v T) *T { return &v }

// seed data: alice alone, acme's other users in one multi-row INSERT (one
// shard), others in one multi-row INSERT over several shards, newcomers in a
// transaction.
var (
	alice = User{TenantID: "acme", UserID: 1, Name: "alice", Email: sql.NullString{String: "alice@acme.test", Valid: true}, Plan: pro, Score: ptr[int32](50), CreatedAt: t0}
	acme  = []User{
		{TenantID: "acme", UserID: 2, Name: "bob", Plan: free, CreatedAt: t0.Add(time.Hour)},
		{TenantID: "acme", UserID: 3, Name: "carol", Email: sql.NullString{String: "carol@acme.test", Valid: true}, Plan: pro, Score: ptr[int32](7), CreatedAt: t0.Add(2 * time.Hour), LastLogin: sql.NullTime{Time: t0.Add(49 * time.Hour), Valid: true}},
	}
	others = []User{
		{TenantID: "globex", UserID: 1, Name: "dave", Email: sql.NullString{String: "dave@globex.test", Valid: true}, Plan: pro, Score: ptr[int32](0), CreatedAt: t0.Add(-24 * time.Hour)},
		{TenantID: "initech", UserID: 1, Name: "erin", Plan: free, Score: ptr[int32](3), CreatedAt: t0.Add(72 * time.Hour)},
		{TenantID: "umbrella", UserID: 1, Name: "frank", Email: sql.NullString{String: "frank@umbrella.test", Valid: true}, Plan: free, CreatedAt: t0.Add(96 * time.Hour)},
	}
	newcomers = []User{
		{TenantID: "stark", UserID: 1, Name: "tony", Email: sql.NullString{String: "tony@stark.test", Valid: true}, Plan: pro, Score: ptr[int32](99), CreatedAt: t0.Add(5 * time.Minute)},
		{TenantID: "wayne", UserID: 1, Name: "bruce", Plan: free, CreatedAt: t0.Add(6 * time.Minute), LastLogin: sql.NullTime{Time: t0.Add(7 * time.Minute), Valid: true}},
	}
	loginAt = t0.Add(10*24*time.Hour + 123456*time.Microsecond)
)

// scenario runs the example's steps on a database whose schema exists and
// writes what it reads to out.
func scenario(ctx context.Context, db *sqlx.DB, out io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, "\n== "+format+"\n", args...) }
	show := func(us []User) {
		for _, u := range us {
			fmt.Fprintf(out, "  %s\n", u)
		}
	}

	say("NamedExec, one row")
	if err := addUser(ctx, db, alice); err != nil {
		return err
	}
	say("NamedExec with a slice: one multi-row INSERT of acme's users (one shard)")
	n, err := addUsers(ctx, db, acme)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %d rows\n", n)

	say("NamedExec with a slice of several tenants: one multi-row INSERT over several shards, atomic")
	n, err = addUsers(ctx, db, others)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %d rows\n", n)

	say("Beginx, a prepared named statement executed per row, Commit")
	if err := addUsersTx(ctx, db, newcomers); err != nil {
		return err
	}

	say("Get by key")
	u, err := getUser(ctx, db, "acme", 3)
	if err != nil {
		return err
	}
	show([]User{u})

	say("Select by key: every user of acme, ORDER BY on the shard")
	us, err := tenantUsers(ctx, db, "acme")
	if err != nil {
		return err
	}
	show(us)

	say("Select of every row (every shard), ORDER BY merged by pgshard")
	us, err = allUsers(ctx, db)
	if err != nil {
		return err
	}
	show(us)

	say("Get of count(*) (every shard)")
	count, err := countUsers(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %d\n", count)

	say("Select with WHERE plan = 'pro' (not the key: every shard)")
	us, err = usersOnPlan(ctx, db, pro)
	if err != nil {
		return err
	}
	show(us)

	say("Get of count, sum, max, min over every shard")
	st, err := statsForPlan(ctx, db, pro)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %+v\n", st)

	say("NamedExec UPDATE by key")
	n, err = recordLogin(ctx, db, "acme", 2, loginAt)
	if err != nil {
		return err
	}
	u, err = getUser(ctx, db, "acme", 2)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %d row\n  %s\n", n, u)

	say("transaction over two shards: alice gives dave 20 points")
	a, d, err := transferScore(ctx, db, alice, others[0], 20)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  alice %d, dave %d\n", a, d)

	say("a transfer that would overdraw rolls back on both shards")
	_, _, err = transferScore(ctx, db, others[0], alice, 1000)
	fmt.Fprintf(out, "  %v\n", err)
	if !errors.Is(err, errOverdrawn) {
		return fmt.Errorf("the overdrawing transfer should have been refused, got %v", err)
	}

	say("DELETE by key")
	n, err = deleteUser(ctx, db, "umbrella", 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %d row\n", n)

	say("what is left")
	us, err = allUsers(ctx, db)
	if err != nil {
		return err
	}
	show(us)
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
	db, err := sqlx.Open("pgshard", cluster.Nodes[0].DSN("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := createSchema(ctx, db, cluster.Nodes[1:]); err != nil {
		return err
	}
	return scenario(ctx, db, os.Stdout)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
