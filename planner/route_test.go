package planner

import (
	"database/sql/driver"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Hashes and shard indexes computed by PostgreSQL 15 (hashtext, hashint8,
// and (h + 2^31) / ((2^32-1)/count) for the shard index), so that routing is
// checked against the server and not only against catalog.Hash.
var serverHashes = []struct {
	keyType uint32
	value   any
	hash    int32
	shard16 int // index among 16 shards (text keys)
	shard4  int // index among 4 shards (int8 keys)
}{
	{oidText, "tomato", 828595980, 11, -1},
	{oidText, "HN802", 1312979697, 12, -1},
	{oidText, "potato", 602972939, 10, -1},
	{oidText, "apple", 823404995, 11, -1},
	{oidText, "banana", -1169189636, 3, -1},
	{oidText, "cherry", 72826312, 8, -1},
	{oidText, "12", -633628209, 5, -1},
	{oidText, "-12", -177942505, 7, -1},
	{oidText, "5000000000", 858192142, 11, -1},
	{oidInt8, int64(42), 1509752520, -1, 3},
	{oidInt8, int64(5000000000), -694934712, -1, 1},
	{oidInt8, int64(-5000000000), 954517114, -1, 2},
	{oidInt8, int64(1), -1905060026, -1, 0},
	{oidInt8, int64(2), 1134484726, -1, 3},
	{oidInt8, int64(7), -978793473, -1, 1},
}

func TestServerHashes(t *testing.T) {
	snap := testSnapshot(t)
	reviews := snap.Lookup("", "customer_reviews")
	items := snap.Lookup("", "items")
	for _, h := range serverHashes {
		got, err := catalog.Hash(h.keyType, h.value)
		if err != nil {
			t.Errorf("Hash(%d, %v): %v", h.keyType, h.value, err)
			continue
		}
		if got != h.hash {
			t.Errorf("Hash(%d, %v) = %d, server says %d", h.keyType, h.value, got, h.hash)
		}
		tbl, want := reviews, h.shard16
		if h.keyType == oidInt8 {
			tbl, want = items, h.shard4
		}
		if i := tbl.ShardForHash(h.hash); i != want {
			t.Errorf("%s: hash %d in shard index %d, want %d", tbl.Name, h.hash, i, want)
		}
	}
}

// shardOf is the index of the shard of tbl whose range holds v's hash,
// computed independently of the planner.
func shardOf(t *testing.T, tbl *catalog.Table, v any) int {
	t.Helper()
	h, err := catalog.Hash(tbl.KeyType, v)
	if err != nil {
		t.Fatalf("Hash(%v): %v", v, err)
	}
	for i, s := range tbl.Shards {
		if s.Min <= h && h <= s.Max {
			return i
		}
	}
	t.Fatalf("no shard of %s holds hash %d", tbl.Name, h)
	return -1
}

func mustPlan(t *testing.T, sql string) *Plan {
	t.Helper()
	p, err := New(sql, testSnapshot(t), testEnv())
	if err != nil {
		t.Fatalf("New(%q): %v", sql, err)
	}
	return p
}

// textValuer and int64Valuer are driver.Valuers, as applications pass them.
type textValuer string

func (v textValuer) Value() (driver.Value, error) { return string(v), nil }

type int64Valuer int64

func (v int64Valuer) Value() (driver.Value, error) { return int64(v), nil }

type nullValuer struct{}

func (nullValuer) Value() (driver.Value, error) { return nil, nil }

type failingValuer struct{}

func (failingValuer) Value() (driver.Value, error) { return nil, errors.New("boom") }

type myString string

func TestRoute(t *testing.T) {
	snap := testSnapshot(t)
	reviews := snap.Lookup("", "customer_reviews")
	items := snap.Lookup("", "items")
	events := snap.Lookup("", "events")
	tomato := "tomato"
	var i42 int64 = 42
	cases := []struct {
		name  string
		sql   string
		args  []any
		table *catalog.Table
		// want is the key value whose shard the statement must go to; nil
		// with wantIndex >= 0 gives the index directly.
		want      any
		wantIndex int
		wantCode  string
	}{
		{name: "text literal", sql: "SELECT * FROM customer_reviews WHERE customer_id = 'tomato'", table: reviews, want: "tomato"},
		{name: "text param string", sql: "SELECT * FROM customer_reviews WHERE customer_id = $1", args: []any{"tomato"}, table: reviews, want: "tomato"},
		{name: "text param bytes", sql: "SELECT * FROM customer_reviews WHERE customer_id = $1", args: []any{[]byte("tomato")}, table: reviews, want: "tomato"},
		{name: "text param pointer", sql: "SELECT * FROM customer_reviews WHERE customer_id = $1", args: []any{&tomato}, table: reviews, want: "tomato"},
		{name: "text param named type", sql: "SELECT * FROM customer_reviews WHERE customer_id = $1", args: []any{myString("tomato")}, table: reviews, want: "tomato"},
		{name: "text param valuer", sql: "SELECT * FROM customer_reviews WHERE customer_id = $1", args: []any{textValuer("tomato")}, table: reviews, want: "tomato"},
		{name: "text param cast", sql: "SELECT * FROM customer_reviews WHERE customer_id = $1::text", args: []any{"HN802"}, table: reviews, want: "HN802"},
		{name: "second param", sql: "SELECT * FROM customer_reviews WHERE review_rating > $1 AND customer_id = $2", args: []any{3, "HN802"}, table: reviews, want: "HN802"},
		{name: "reversed", sql: "SELECT * FROM customer_reviews WHERE $1 = customer_id", args: []any{"cherry"}, table: reviews, want: "cherry"},
		{name: "update", sql: "UPDATE customer_reviews SET review_rating = $1 WHERE customer_id = $2", args: []any{5, "banana"}, table: reviews, want: "banana"},
		{name: "delete", sql: "DELETE FROM customer_reviews WHERE customer_id = 'potato'", table: reviews, want: "potato"},
		{name: "insert literal", sql: "INSERT INTO customer_reviews (customer_id) VALUES ('tomato')", table: reviews, want: "tomato"},
		{name: "insert param", sql: "INSERT INTO customer_reviews (review_rating, customer_id) VALUES ($1, $2)", args: []any{1, "tomato"}, table: reviews, want: "tomato"},
		{name: "insert integer literal into text key", sql: "INSERT INTO customer_reviews (customer_id) VALUES (12)", table: reviews, want: "12"},
		{name: "insert negative integer into text key", sql: "INSERT INTO customer_reviews (customer_id) VALUES (-12)", table: reviews, want: "-12"},
		{name: "insert large integer into text key", sql: "INSERT INTO customer_reviews (customer_id) VALUES (5000000000)", table: reviews, want: "5000000000"},
		{name: "multi-row same shard", sql: "INSERT INTO customer_reviews (customer_id) VALUES ('tomato'), ('apple'), ($1)", args: []any{"tomato"}, table: reviews, want: "tomato"},
		{name: "multi-row different shards", sql: "INSERT INTO customer_reviews (customer_id) VALUES ('tomato'), ('potato')", table: reviews, wantCode: sqlerr.FeatureNotSupported},
		{name: "multi-row different shards by param", sql: "INSERT INTO customer_reviews (customer_id) VALUES ('tomato'), ($1)", args: []any{"banana"}, table: reviews, wantCode: sqlerr.FeatureNotSupported},
		{name: "insert NULL literal", sql: "INSERT INTO customer_reviews (customer_id) VALUES (NULL)", table: reviews, wantCode: sqlerr.NotNullViolation},
		{name: "insert NULL param", sql: "INSERT INTO customer_reviews (customer_id) VALUES ($1)", args: []any{nil}, table: reviews, wantCode: sqlerr.NotNullViolation},
		{name: "insert NULL valuer", sql: "INSERT INTO customer_reviews (customer_id) VALUES ($1)", args: []any{nullValuer{}}, table: reviews, wantCode: sqlerr.NotNullViolation},
		{name: "insert NULL pointer", sql: "INSERT INTO customer_reviews (customer_id) VALUES ($1)", args: []any{(*string)(nil)}, table: reviews, wantCode: sqlerr.NotNullViolation},
		{name: "insert NULL in second row", sql: "INSERT INTO customer_reviews (customer_id) VALUES ('tomato'), (NULL)", table: reviews, wantCode: sqlerr.NotNullViolation},
		{name: "failing valuer", sql: "SELECT * FROM customer_reviews WHERE customer_id = $1", args: []any{failingValuer{}}, table: reviews, wantCode: "?"},
		{name: "missing param", sql: "SELECT * FROM customer_reviews WHERE customer_id = $2", args: []any{"x"}, table: reviews, wantCode: sqlerr.ProtocolViolation},
		{name: "wrong Go type", sql: "SELECT * FROM customer_reviews WHERE customer_id = $1", args: []any{3.5}, table: reviews, wantCode: sqlerr.DatatypeMismatch},
		{name: "where NULL matches nothing", sql: "SELECT * FROM customer_reviews WHERE customer_id = $1", args: []any{nil}, table: reviews, wantIndex: 0},

		{name: "int8 literal", sql: "SELECT * FROM items WHERE id = 42", table: items, want: int64(42)},
		{name: "int8 string literal", sql: "SELECT * FROM items WHERE id = '42'", table: items, want: int64(42)},
		{name: "int8 negative large literal", sql: "SELECT * FROM items WHERE id = -5000000000", table: items, want: int64(-5000000000)},
		{name: "int8 large literal", sql: "SELECT * FROM items WHERE id = 5000000000", table: items, want: int64(5000000000)},
		{name: "int8 param int", sql: "SELECT * FROM items WHERE id = $1", args: []any{42}, table: items, want: int64(42)},
		{name: "int8 param int32", sql: "SELECT * FROM items WHERE id = $1", args: []any{int32(42)}, table: items, want: int64(42)},
		{name: "int8 param uint8", sql: "SELECT * FROM items WHERE id = $1", args: []any{uint8(42)}, table: items, want: int64(42)},
		{name: "int8 param string", sql: "SELECT * FROM items WHERE id = $1", args: []any{"42"}, table: items, want: int64(42)},
		{name: "int8 param float", sql: "SELECT * FROM items WHERE id = $1", args: []any{42.0}, table: items, want: int64(42)},
		{name: "int8 param pointer", sql: "SELECT * FROM items WHERE id = $1", args: []any{&i42}, table: items, want: int64(42)},
		{name: "int8 param valuer", sql: "SELECT * FROM items WHERE id = $1", args: []any{int64Valuer(42)}, table: items, want: int64(42)},
		{name: "int8 param bad text", sql: "SELECT * FROM items WHERE id = $1", args: []any{"forty-two"}, table: items, wantCode: sqlerr.InvalidTextRepr},
		{name: "int8 insert", sql: "INSERT INTO items (id, name) VALUES ($1, 'a')", args: []any{int64(7)}, table: items, want: int64(7)},
		{name: "int8 insert rows one shard", sql: "INSERT INTO items (id) VALUES (3), (4), (7)", table: items, want: int64(7)},
		{name: "int8 insert rows two shards", sql: "INSERT INTO items (id) VALUES (1), (2)", table: items, wantCode: sqlerr.FeatureNotSupported},

		{name: "sequence default is the eval param", sql: "INSERT INTO events (payload) VALUES ($1)", args: []any{"x", int64(7)}, table: events, want: int64(7)},
		{name: "sequence default rows", sql: "INSERT INTO events (payload) VALUES ('a'), ('b')", args: []any{int64(5), int64(8)}, table: events, want: int64(8)},
		{name: "sequence default rows apart", sql: "INSERT INTO events (payload) VALUES ('a'), ('b')", args: []any{int64(1), int64(2)}, table: events, wantCode: sqlerr.FeatureNotSupported},

		{name: "join pinned once", sql: "SELECT * FROM customer_reviews a JOIN orders b ON a.customer_id = b.customer_id WHERE a.customer_id = $1", args: []any{"tomato"}, table: reviews, want: "tomato"},
		{name: "two refs same shard", sql: "SELECT * FROM customer_reviews a, orders b WHERE a.customer_id = $1 AND b.customer_id = $2", args: []any{"tomato", "apple"}, table: reviews, want: "tomato"},
		{name: "two refs different shards", sql: "SELECT * FROM customer_reviews a, orders b WHERE a.customer_id = $1 AND b.customer_id = $2", args: []any{"tomato", "potato"}, table: reviews, wantCode: sqlerr.FeatureNotSupported},
		{name: "union arms same shard", sql: "SELECT customer_id FROM customer_reviews WHERE customer_id = 'tomato' UNION ALL SELECT customer_id FROM orders WHERE customer_id = 'apple'", table: reviews, want: "tomato"},
		{name: "union arms same parameter", sql: "SELECT customer_id FROM customer_reviews WHERE customer_id = $1 UNION ALL SELECT customer_id FROM orders WHERE customer_id = $1", args: []any{"banana"}, table: reviews, want: "banana"},
		{name: "insert with pinned subquery elsewhere", sql: "INSERT INTO customer_reviews (customer_id, review_rating) VALUES ('tomato', (SELECT max(amount) FROM orders WHERE customer_id = 'banana'))", table: reviews, wantCode: sqlerr.FeatureNotSupported},
		{name: "insert with pinned subquery same shard", sql: "INSERT INTO customer_reviews (customer_id, review_rating) VALUES ('tomato', (SELECT max(amount) FROM orders WHERE customer_id = 'apple'))", table: reviews, want: "tomato"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPlan(t, c.sql)
			if p.Kind != Router {
				t.Fatalf("kind %v, want Router\n%s", p.Kind, p.Describe())
			}
			if p.Table != c.table && !p.Table.ColocatedWith(c.table) {
				t.Fatalf("table %s, want %s", p.Table.Name, c.table.Name)
			}
			got, err := p.Route(c.args)
			if c.wantCode != "" {
				if err == nil {
					t.Fatalf("Route = %d, want error %s", got, c.wantCode)
				}
				var pgErr *pgconn.PgError
				if c.wantCode != "?" && (!errors.As(err, &pgErr) || pgErr.Code != c.wantCode) {
					t.Fatalf("Route error %v (code %s), want %s", err, sqlerr.Code(err), c.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Route: %v", err)
			}
			want := c.wantIndex
			if c.want != nil {
				want = shardOf(t, c.table, c.want)
			}
			if got != want {
				t.Fatalf("Route = %d (shard %d), want %d (shard %d)", got, c.table.Shards[got].ID, want, c.table.Shards[want].ID)
			}
			// The statement sent there names that shard's tables.
			sql, err := p.ShardSQL(got)
			if err != nil {
				t.Fatal(err)
			}
			wantName := c.table.ShardTableName(c.table.Shards[want].ID)
			if !strings.Contains(sql, wantName) {
				t.Errorf("shard SQL %q does not name %s", sql, wantName)
			}
		})
	}
}

// TestRouteServerShards routes the values whose shard PostgreSQL computed.
func TestRouteServerShards(t *testing.T) {
	for _, h := range serverHashes {
		var sql string
		want := h.shard16
		if h.keyType == oidInt8 {
			sql, want = "SELECT * FROM items WHERE id = $1", h.shard4
		} else {
			sql = "SELECT * FROM customer_reviews WHERE customer_id = $1"
		}
		p := mustPlan(t, sql)
		got, err := p.Route([]any{h.value})
		if err != nil || got != want {
			t.Errorf("%v: Route = %d, %v; want %d", h.value, got, err, want)
		}
	}
}

// TestRouteLiteralEqualsParam checks that the literal and the parameter forms
// of the same value go to the same shard, for many values.
func TestRouteLiteralEqualsParam(t *testing.T) {
	snap := testSnapshot(t)
	env := testEnv()
	type form struct{ lit, param string }
	texts := []string{"tomato", "HN802", "", "a b", "ünïcødé", "it''s", "0", "-1", "  padded  ", "x\ty"}
	seen := map[int]bool{}
	for _, s := range texts {
		value := strings.ReplaceAll(s, "''", "'")
		forms := []form{
			{"SELECT * FROM customer_reviews WHERE customer_id = '" + s + "'", "SELECT * FROM customer_reviews WHERE customer_id = $1"},
			{"SELECT * FROM customer_reviews WHERE customer_id = '" + s + "'::text", "SELECT * FROM customer_reviews WHERE customer_id = $1::varchar"},
			{"UPDATE customer_reviews SET review_rating = 1 WHERE customer_id = '" + s + "'", "UPDATE customer_reviews SET review_rating = 1 WHERE customer_id = $1"},
			{"INSERT INTO customer_reviews (customer_id) VALUES ('" + s + "')", "INSERT INTO customer_reviews (customer_id) VALUES ($1)"},
			{"SELECT * FROM customer_reviews a JOIN orders b USING (customer_id) WHERE b.customer_id = '" + s + "'", "SELECT * FROM customer_reviews a JOIN orders b USING (customer_id) WHERE a.customer_id = $1"},
		}
		want := shardOf(t, snap.Lookup("", "customer_reviews"), value)
		seen[want] = true
		for _, f := range forms {
			lp, err := New(f.lit, snap, env)
			if err != nil {
				t.Fatalf("%s: %v", f.lit, err)
			}
			pp, err := New(f.param, snap, env)
			if err != nil {
				t.Fatalf("%s: %v", f.param, err)
			}
			li, lerr := lp.Route(nil)
			pi, perr := pp.Route([]any{value})
			if lerr != nil || perr != nil || li != pi || li != want {
				t.Errorf("%q: literal form -> %d (%v), parameter form -> %d (%v), want %d\n%s\n%s", value, li, lerr, pi, perr, want, f.lit, f.param)
			}
		}
	}
	for _, n := range []int64{0, 1, -1, 42, 2147483647, -2147483648, 5000000000, -5000000000, 9223372036854775807, -9223372036854775808} {
		lit := "SELECT * FROM items WHERE id = " + formatInt(n)
		lp := mustPlan(t, lit)
		pp := mustPlan(t, "SELECT * FROM items WHERE id = $1")
		sp := mustPlan(t, "SELECT * FROM items WHERE id = '"+formatInt(n)+"'")
		li, lerr := lp.Route(nil)
		pi, perr := pp.Route([]any{n})
		si, serr := sp.Route(nil)
		want := shardOf(t, snap.Lookup("", "items"), n)
		if lerr != nil || perr != nil || serr != nil || li != want || pi != want || si != want {
			t.Errorf("%d: literal %d (%v), param %d (%v), string %d (%v), want %d", n, li, lerr, pi, perr, si, serr, want)
		}
	}
	if len(seen) < 3 {
		t.Errorf("test values cover only %d shards", len(seen))
	}
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

// TestRouteEvalParams checks that values the plan evaluates first are
// appended after the statement's own parameters and route the statement.
func TestRouteEvalParams(t *testing.T) {
	p := mustPlan(t, "INSERT INTO customer_reviews (customer_id, product_title) VALUES (lower($1), $2)")
	if p.Eval == nil || p.Eval.First != 3 || p.Eval.Count != 1 || len(p.Eval.Params) != 1 || p.Eval.Params[0] != 1 {
		t.Fatalf("eval %+v", p.Eval)
	}
	got, err := p.Route([]any{"TOMATO", "title", "tomato"})
	if err != nil {
		t.Fatal(err)
	}
	if want := shardOf(t, p.Table, "tomato"); got != want {
		t.Fatalf("Route = %d, want %d", got, want)
	}
	// Without the evaluated value the plan cannot be routed.
	if _, err := p.Route([]any{"TOMATO", "title"}); sqlerr.Code(err) != sqlerr.ProtocolViolation {
		t.Fatalf("Route without eval value: %v", err)
	}
}

// TestRouteNotRouter: Route on plans of other kinds does not panic.
func TestRouteOtherKinds(t *testing.T) {
	for _, sql := range []string{"SELECT * FROM customer_reviews", "SELECT 1", "SELECT master_add_node('a', 1)"} {
		p := mustPlan(t, sql)
		if _, err := p.Route(nil); err != nil {
			t.Errorf("%s: Route: %v", sql, err)
		}
	}
}

func TestShardSQLEveryShard(t *testing.T) {
	p := mustPlan(t, "SELECT * FROM customer_reviews a JOIN orders b USING (customer_id) WHERE a.customer_id = $1")
	for i := 0; i < p.ShardCount(); i++ {
		sql, err := p.ShardSQL(i)
		if err != nil {
			t.Fatal(err)
		}
		want := "SELECT * FROM customer_reviews_" + formatInt(10000+int64(i)) + " a JOIN orders_" + formatInt(10016+int64(i)) + " b USING (customer_id) WHERE a.customer_id = $1"
		if sql != want {
			t.Errorf("shard %d:\n got %s\nwant %s", i, sql, want)
		}
		// Cached: the same text again.
		if again, _ := p.ShardSQL(i); again != sql {
			t.Errorf("shard %d: second ShardSQL differs", i)
		}
	}
}

func TestEmptyAndNilSnapshot(t *testing.T) {
	for _, sql := range []string{"", "  ", ";", "-- only a comment"} {
		p, err := New(sql, testSnapshot(t), testEnv())
		if err != nil || p.Kind != Passthrough {
			t.Errorf("%q: %v %v", sql, p, err)
		}
	}
	// Without a snapshot (no metadata yet) everything but admin calls passes through.
	p, err := New("SELECT * FROM customer_reviews WHERE customer_id = 'x'", nil, testEnv())
	if err != nil || p.Kind != Passthrough {
		t.Errorf("nil snapshot: %v %v", p, err)
	}
	p, err = New("SELECT master_add_node('localhost', 1922)", nil, testEnv())
	if err != nil || p.Kind != Admin {
		t.Errorf("nil snapshot admin: %v %v", p, err)
	}
}

// TestPlanConcurrentUse shares plans between goroutines, as the driver's plan
// cache does (run with -race).
func TestPlanConcurrentUse(t *testing.T) {
	plans := []*Plan{
		mustPlan(t, "SELECT * FROM customer_reviews a JOIN orders b USING (customer_id) WHERE a.customer_id = $1"),
		mustPlan(t, "INSERT INTO events (payload) VALUES ($1)"),
		mustPlan(t, "SELECT count(*) FROM customer_reviews"),
	}
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			for _, p := range plans {
				for i := 0; i < p.ShardCount(); i++ {
					if _, err := p.ShardSQL((i + g) % p.ShardCount()); err != nil {
						t.Error(err)
					}
				}
				_, _ = p.Route([]any{"tomato", int64(g)})
				_ = p.Describe()
			}
		}(g)
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}
