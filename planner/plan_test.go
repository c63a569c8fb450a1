package planner

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
)

var update = flag.Bool("update", false, "rewrite testdata/plan_cases.txt with the planner's current output")

const goldenFile = "testdata/plan_cases.txt"

// Type OIDs used by the test catalog.
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt4        = 23
	oidText        = 25
	oidTextArray   = 1009
	oidBPChar      = 1042
	oidDate        = 1082
	oidTimestamptz = 1184
)

var testNodes = []catalog.Node{
	{Name: "localhost", Port: 1922},
	{Name: "localhost", Port: 1923},
	{Name: "localhost", Port: 1924},
	{Name: "localhost", Port: 1925},
}

// makeShards builds count shards with pg_shard's hash ranges, ids from
// firstID, and replicas placements each; replica j of shard i is on node
// (i+j) mod 4, as master_create_worker_shards places them.
func makeShards(relid uint32, firstID int64, count, replicas int) []catalog.Shard {
	shards := make([]catalog.Shard, count)
	for i := range shards {
		lo, hi := catalog.HashRange(i, count)
		id := firstID + int64(i)
		s := catalog.Shard{ID: id, RelationID: relid, Min: lo, Max: hi}
		for j := 0; j < replicas; j++ {
			s.Placements = append(s.Placements, catalog.Placement{
				ID:      id*10 + int64(j),
				ShardID: id,
				State:   catalog.StateFinalized,
				Node:    testNodes[(i+j)%len(testNodes)],
			})
		}
		shards[i] = s
	}
	return shards
}

func reviewColumns() []catalog.Column {
	return []catalog.Column{
		{Name: "customer_id", TypeOID: oidText, TypeName: "text"},
		{Name: "review_date", TypeOID: oidDate, TypeName: "date"},
		{Name: "review_rating", TypeOID: oidInt4, TypeName: "integer"},
		{Name: "review_votes", TypeOID: oidInt4, TypeName: "integer"},
		{Name: "product_id", TypeOID: oidBPChar, TypeName: "character(10)"},
		{Name: "product_title", TypeOID: oidText, TypeName: "text"},
		{Name: "similar_product_ids", TypeOID: oidTextArray, TypeName: "text[]"},
	}
}

// testSnapshot is the catalog every planner test runs against:
//
//   - customer_reviews (key customer_id text): 16 shards, 2 replicas;
//   - orders (key customer_id text): co-located with customer_reviews (group 1);
//   - items (key id int8): 4 shards, 2 replicas, not co-located;
//   - events (key id bigint with a sequence default): 4 shards, 1 replica;
//   - visits (key id bigint): co-located with events;
//   - accounts, users, logs: ordinary tables in public;
//   - other.customer_reviews would be an ordinary table (schema other is not
//     distributed).
func testSnapshot(tb testing.TB) *catalog.Snapshot {
	tb.Helper()
	reviews := &catalog.Table{
		RelationID: 16384, Schema: "public", Name: "customer_reviews", Method: 'h',
		KeyColumn: "customer_id", KeyType: oidText, KeyIndex: 0,
		Columns:      reviewColumns(),
		Shards:       makeShards(16384, 10000, 16, 2),
		ColocationID: 1,
	}
	orders := &catalog.Table{
		RelationID: 16390, Schema: "public", Name: "orders", Method: 'h',
		KeyColumn: "customer_id", KeyType: oidText, KeyIndex: 1,
		Columns: []catalog.Column{
			{Name: "order_id", TypeOID: oidInt8, TypeName: "bigint"},
			{Name: "customer_id", TypeOID: oidText, TypeName: "text"},
			{Name: "product_id", TypeOID: oidBPChar, TypeName: "character(10)"},
			{Name: "amount", TypeOID: oidInt4, TypeName: "integer"},
			{Name: "ordered_at", TypeOID: oidTimestamptz, TypeName: "timestamp with time zone", Default: "now()"},
		},
		Shards:       makeShards(16390, 10016, 16, 2),
		ColocationID: 1,
	}
	items := &catalog.Table{
		RelationID: 16400, Schema: "public", Name: "items", Method: 'h',
		KeyColumn: "id", KeyType: oidInt8, KeyIndex: 0,
		Columns: []catalog.Column{
			{Name: "id", TypeOID: oidInt8, TypeName: "bigint"},
			{Name: "name", TypeOID: oidText, TypeName: "text"},
			{Name: "price", TypeOID: oidInt4, TypeName: "integer", Default: "0"},
			{Name: "customer_id", TypeOID: oidText, TypeName: "text"},
		},
		Shards:       makeShards(16400, 10032, 4, 2),
		ColocationID: 2,
	}
	events := &catalog.Table{
		RelationID: 16410, Schema: "public", Name: "events", Method: 'h',
		KeyColumn: "id", KeyType: oidInt8, KeyIndex: 0,
		Columns: []catalog.Column{
			{Name: "id", TypeOID: oidInt8, TypeName: "bigint", NotNull: true, Default: "nextval('events_id_seq'::regclass)", SequenceDefault: true},
			{Name: "created_at", TypeOID: oidTimestamptz, TypeName: "timestamp with time zone", Default: "now()"},
			{Name: "payload", TypeOID: oidText, TypeName: "text"},
		},
		Shards:       makeShards(16410, 10036, 4, 1),
		ColocationID: 3,
	}
	visits := &catalog.Table{
		RelationID: 16420, Schema: "public", Name: "visits", Method: 'h',
		KeyColumn: "id", KeyType: oidInt8, KeyIndex: 0,
		Columns: []catalog.Column{
			{Name: "id", TypeOID: oidInt8, TypeName: "bigint"},
			{Name: "page", TypeOID: oidText, TypeName: "text"},
			{Name: "n", TypeOID: oidInt4, TypeName: "integer"},
		},
		Shards:       makeShards(16420, 10040, 4, 1),
		ColocationID: 3,
	}
	names := map[string]string{
		"visits":           "public",
		"customer_reviews": "public",
		"orders":           "public",
		"items":            "public",
		"events":           "public",
		"accounts":         "public",
		"users":            "public",
		"logs":             "public",
	}
	snap, err := catalog.NewSnapshot(7, testNodes, []string{"public"}, []*catalog.Table{reviews, orders, items, events, visits}, names)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// fakeEnv describes the functions of the metadata database.
type fakeEnv map[string]FunctionInfo

func (e fakeEnv) Function(name string) (FunctionInfo, bool) {
	info, ok := e[name]
	return info, ok
}

// Describe is not available without a server: the planner falls back to
// its own column names.
func (e fakeEnv) Describe(sql string) ([]ColumnDesc, error) {
	return nil, errors.New("no server in planner tests")
}

// IndexTable knows one index, cr_key of customer_reviews.
func (e fakeEnv) IndexTable(schema, name string) (string, string, bool) {
	if name == "cr_key" && (schema == "" || schema == "public") {
		return "public", "customer_reviews", true
	}
	return "", "", false
}

func testEnv() Env {
	env := fakeEnv{}
	for _, f := range []string{"lower", "upper", "length", "abs", "coalesce", "md5"} {
		env[f] = FunctionInfo{Immutable: true}
	}
	for _, f := range []string{"now", "random", "nextval", "clock_timestamp", "gen_random_uuid"} {
		env[f] = FunctionInfo{}
	}
	for _, f := range []string{"count", "sum", "min", "max", "avg", "array_agg", "string_agg", "bool_and"} {
		env[f] = FunctionInfo{Aggregate: true, Immutable: true}
	}
	for _, f := range []string{"row_number", "rank"} {
		env[f] = FunctionInfo{Window: true, Immutable: true}
	}
	return env
}

// goldenCase is one case of the golden file.
type goldenCase struct {
	comments []string // lines starting with #, before the SQL
	sql      string
	want     string
	line     int
}

// readGolden parses the golden file: optional # comment lines, the SQL (one or
// more lines), a line "----", the expected output up to a blank line.
func readGolden(t *testing.T, path string) []goldenCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []goldenCase
	var cur goldenCase
	state := 0 // 0: before SQL, 1: SQL, 2: output
	var sqlLines, outLines []string
	flush := func() {
		cur.sql = strings.Join(sqlLines, "\n")
		cur.want = strings.Join(outLines, "\n")
		cases = append(cases, cur)
		cur = goldenCase{}
		sqlLines, outLines = nil, nil
		state = 0
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch state {
		case 0:
			switch {
			case strings.TrimSpace(line) == "":
			case strings.HasPrefix(line, "#"):
				cur.comments = append(cur.comments, line)
			default:
				cur.line = n
				sqlLines = append(sqlLines, line)
				state = 1
			}
		case 1:
			if line == "----" {
				state = 2
			} else {
				sqlLines = append(sqlLines, line)
			}
		case 2:
			if strings.TrimSpace(line) == "" {
				flush()
			} else {
				outLines = append(outLines, line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	switch state {
	case 1:
		t.Fatalf("%s:%d: case without ----", path, cur.line)
	case 2:
		flush()
	}
	if len(cur.comments) > 0 {
		t.Fatalf("%s: trailing comments without a case", path)
	}
	return cases
}

func writeGolden(t *testing.T, path string, cases []goldenCase) {
	t.Helper()
	var b strings.Builder
	for i, c := range cases {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, cm := range c.comments {
			b.WriteString(cm + "\n")
		}
		b.WriteString(c.sql + "\n----\n")
		if c.want != "" {
			b.WriteString(c.want + "\n")
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// render is what the golden file records for one SQL text: the plan's
// description, its kind line followed by the shape of the tree of
// primitives Build makes of it ("tree: SortMerge(Combine)"; none for a
// plan the session runs itself).
func render(sql string, snap *catalog.Snapshot, env Env) string {
	p, err := New(sql, snap, env)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return fmt.Sprintf("error %s: %s", pgErr.Code, pgErr.Message)
		}
		return fmt.Sprintf("error (not a PgError %T): %v", err, err)
	}
	out := strings.TrimRight(p.Describe(), "\n")
	prim := Build(p)
	if prim == nil {
		return out
	}
	kind, rest, _ := strings.Cut(out, "\n")
	out = kind + "\ntree: " + engine.Tree(prim)
	if rest != "" {
		out += "\n" + rest
	}
	return out
}

func TestPlanGolden(t *testing.T) {
	snap := testSnapshot(t)
	env := testEnv()
	cases := readGolden(t, goldenFile)
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	changed := false
	for i := range cases {
		c := &cases[i]
		got := render(c.sql, snap, env)
		if got != c.want {
			if *update {
				c.want = got
				changed = true
				continue
			}
			t.Errorf("%s:%d:\n%s\n---- got:\n%s\n---- want:\n%s", goldenFile, c.line, c.sql, got, c.want)
		}
	}
	if *update && changed {
		writeGolden(t, goldenFile, cases)
	}
	t.Logf("%d cases", len(cases))
}

// TestPlanInvariants checks, for every golden case the planner accepts, what
// must hold whatever the golden output says: errors are PgErrors, the shard
// SQL of every shard parses, names only shard tables (never a distributed
// table, which on a worker is the empty template or missing), and keeps the
// statement's kind; a passthrough statement reads no distributed table.
func TestPlanInvariants(t *testing.T) {
	checkPlanInvariants(t, testSnapshot(t), goldenFile)
}

// checkPlanInvariants checks TestPlanInvariants' rules on the cases of the
// golden file goldenFile, planned against snap.
func checkPlanInvariants(t *testing.T, snap *catalog.Snapshot, goldenFile string) {
	env := testEnv()
	for _, c := range readGolden(t, goldenFile) {
		p, err := New(c.sql, snap, env)
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code == "" {
				t.Errorf("%s:%d: error is not a PgError with a code: %v", goldenFile, c.line, err)
			}
			continue
		}
		if p.Kind == Explain {
			// An EXPLAIN is checked through the plan it explains.
			p = p.Explain.Inner
		}
		switch p.Kind {
		case Materialize:
			checkMaterialize(t, c.line, p.Materialize)
			continue
		case SchemaChange:
			// Every shard's statement parses.
			for i := range p.ShardCount() {
				sql, err := p.ShardSQL(i)
				if err != nil {
					t.Errorf("%s:%d: shard %d: %v", goldenFile, c.line, i, err)
					continue
				}
				if _, err := pg_query.Parse(sql); err != nil {
					t.Errorf("%s:%d: shard %d: %s: %v", goldenFile, c.line, i, sql, err)
				}
			}
			continue
		case Passthrough, Admin:
			if p.Table != nil || p.ShardCount() != 0 {
				t.Errorf("%s:%d: %v plan has a table", goldenFile, c.line, p.Kind)
			}
			continue
		}
		if p.Table == nil || p.ShardCount() != len(p.Table.Shards) {
			t.Fatalf("%s:%d: plan without table", goldenFile, c.line)
		}
		if p.Kind == Scatter && p.Modifies {
			// Only a multi-shard UPDATE or DELETE of one table that reads
			// no other distributed table may run on several shards.
			stmt := p.tree.Stmts[0].Stmt
			targets := 0
			for _, r := range p.refs {
				if r.target {
					targets++
				}
			}
			if targets != 1 || (stmt.GetUpdateStmt() == nil && stmt.GetDeleteStmt() == nil && p.InsertSelect == nil) {
				t.Errorf("%s:%d: scatter plan modifies more than one table's shards", goldenFile, c.line)
			}
		}
		orig, _ := pg_query.Parse(c.sql)
		ctes := cteNames(orig)
		for i := 0; i < p.ShardCount(); i++ {
			sql, err := p.ShardSQL(i)
			if err != nil {
				t.Errorf("%s:%d: ShardSQL(%d): %v", goldenFile, c.line, i, err)
				continue
			}
			tree, err := pg_query.Parse(sql)
			if err != nil {
				t.Errorf("%s:%d: shard SQL does not parse: %v\n%s", goldenFile, c.line, err, sql)
				continue
			}
			if len(tree.Stmts) != len(orig.Stmts) {
				t.Errorf("%s:%d: shard SQL has %d statements", goldenFile, c.line, len(tree.Stmts))
			}
			walk(tree, func(m protoreflect.ProtoMessage) bool {
				rv, ok := m.(*pg_query.RangeVar)
				if !ok {
					return true
				}
				if rv.Schemaname == "" && ctes[rv.Relname] {
					return true
				}
				if tb := snap.Lookup(rv.Schemaname, rv.Relname); tb != nil {
					t.Errorf("%s:%d: shard %d SQL still names distributed table %s: %s", goldenFile, c.line, i, tb.Name, sql)
				}
				if strings.Contains(rv.Relname, "_100") {
					want := p.Table.Shards[i].ID
					var found bool
					for _, r := range p.refs {
						if rv.Relname == r.table.ShardTableName(r.table.Shards[i].ID) {
							found = true
						}
					}
					if !found {
						t.Errorf("%s:%d: shard %d (id %d) SQL names %s", goldenFile, c.line, i, want, rv.Relname)
					}
				}
				return true
			})
		}
	}
}

func cteNames(tree *pg_query.ParseResult) map[string]bool {
	out := map[string]bool{}
	walk(tree, func(m protoreflect.ProtoMessage) bool {
		if cte, ok := m.(*pg_query.CommonTableExpr); ok {
			out[cte.Ctename] = true
		}
		return true
	})
	return out
}

// checkMaterialize checks that a Materialize plan's subqueries and outer
// statement parse, and that the outer statement's arguments are the
// statement's own and the arrays.
func checkMaterialize(t *testing.T, line int, m *MaterializePlan) {
	t.Helper()
	in := MaterializeInput{}
	arrays := 0
	for _, sq := range m.Subqueries {
		for _, q := range []string{sq.SQL, sq.TypedSQL} {
			if _, err := pg_query.Parse(q); err != nil {
				t.Errorf("%s:%d: subquery does not parse: %v\n%s", goldenFile, line, err, q)
			}
		}
		in.Names = append(in.Names, []string{"a", "b", "c"})
		in.Types = append(in.Types, []string{"int", "text", "date"})
		arrays += 3
	}
	sql, params, err := m.SQL(in)
	if err != nil {
		t.Fatalf("%s:%d: %v", goldenFile, line, err)
	}
	if _, err := pg_query.Parse(sql); err != nil {
		t.Errorf("%s:%d: outer statement does not parse: %v\n%s", goldenFile, line, err, sql)
	}
	for _, n := range params {
		if n < 1 || n > m.Args+arrays {
			t.Errorf("%s:%d: outer statement takes argument %d of %d", goldenFile, line, n, m.Args+arrays)
		}
	}
}
