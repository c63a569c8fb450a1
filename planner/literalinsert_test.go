package planner

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
)

// literalKeyTypes are the key types of literalSnapshot's tables k_<name>:
// every type catalog.Hash supports.
var literalKeyTypes = []struct {
	name, typeName string
	oid            uint32
}{
	{"int2", "smallint", 21},
	{"int4", "integer", 23},
	{"int8", "bigint", 20},
	{"text", "text", 25},
	{"varchar", "character varying", 1043},
	{"bpchar", "character(5)", 1042},
	{"name", "name", 19},
	{"bool", "boolean", 16},
	{"uuid", "uuid", 2950},
	{"date", "date", 1082},
	{"ts", "timestamp without time zone", 1114},
	{"tstz", "timestamp with time zone", 1184},
}

// literalSnapshot is the catalog of the literal-INSERT tests:
//   - k_<type> (a int, k <type>, b text, c numeric): key k, 8 shards, 1
//     replica, one per literalKeyTypes;
//   - r_text: as k_text with 2 replicas;
//   - "Sch ema"."Mixed Case" ("Id" bigint, "the value" text): key "Id", 4
//     shards, 2 replicas;
//   - seqd (id bigint default nextval, k int, v text), key k: a
//     sequence default, which is computed beforehand;
//   - volat (k int, v text, at timestamptz default now()), key k, 2
//     replicas: a volatile default, computed beforehand;
//   - plain: an ordinary table.
func literalSnapshot(tb testing.TB) *catalog.Snapshot {
	tb.Helper()
	var tables []*catalog.Table
	names := map[string]string{"plain": "public"}
	relid, shardID := uint32(20000), int64(50000)
	add := func(schema, name, key string, keyType uint32, cols []catalog.Column, shards, replicas int) {
		t := &catalog.Table{RelationID: relid, Schema: schema, Name: name, Method: 'h', KeyColumn: key, KeyType: keyType,
			Columns: cols, Shards: makeShards(relid, shardID, shards, replicas), ColocationID: int64(relid)}
		for i, c := range cols {
			if c.Name == key {
				t.KeyIndex = i
			}
		}
		tables = append(tables, t)
		names[name] = schema
		relid += 10
		shardID += int64(shards)
	}
	kcols := func(oid uint32, typeName string) []catalog.Column {
		return []catalog.Column{
			{Name: "a", TypeOID: oidInt4, TypeName: "integer"},
			{Name: "k", TypeOID: oid, TypeName: typeName},
			{Name: "b", TypeOID: oidText, TypeName: "text"},
			{Name: "c", TypeOID: 1700, TypeName: "numeric"},
		}
	}
	for _, kt := range literalKeyTypes {
		add("public", "k_"+kt.name, "k", kt.oid, kcols(kt.oid, kt.typeName), 8, 1)
	}
	add("public", "r_text", "k", oidText, kcols(oidText, "text"), 8, 2)
	add("Sch ema", "Mixed Case", "Id", oidInt8, []catalog.Column{
		{Name: "Id", TypeOID: oidInt8, TypeName: "bigint"},
		{Name: "the value", TypeOID: oidText, TypeName: "text"},
	}, 4, 2)
	add("public", "seqd", "k", oidInt4, []catalog.Column{
		{Name: "id", TypeOID: oidInt8, TypeName: "bigint", Default: "nextval('seqd_id_seq'::regclass)", SequenceDefault: true},
		{Name: "k", TypeOID: oidInt4, TypeName: "integer"},
		{Name: "v", TypeOID: oidText, TypeName: "text"},
	}, 4, 1)
	add("public", "volat", "k", oidInt4, []catalog.Column{
		{Name: "k", TypeOID: oidInt4, TypeName: "integer"},
		{Name: "v", TypeOID: oidText, TypeName: "text"},
		{Name: "at", TypeOID: oidTimestamptz, TypeName: "timestamp with time zone", Default: "now()"},
	}, 4, 2)
	snap, err := catalog.NewSnapshot(7, testNodes, []string{"public"}, tables, names)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// literalKeys are key literals of each key type: plain, negative, quoted,
// cast, out of int4's range, and some the scanner or the planner refuses
// (a numeric for an integer key, a cast with a type modifier, NULL).
var literalKeys = map[string][]string{
	"int2":    {"1", "-5", "0", "32767", "-32768", "'42'", "' 7 '", "007", "1::int", "'3'::smallint", "2::int2"},
	"int4":    {"1", "-5", "0", "2147483647", "-2147483648", "'42'", "007", "3::integer", "'9'::int4", "-0", "00000000000000000001"},
	"int8":    {"1", "-5", "2147483648", "-2147483649", "9223372036854775807", "-9223372036854775808", "'12'", "4::bigint", "5::int8::bigint", "'6'::int"},
	"text":    {"'abc'", "'it''s'", "''", "'ünï'", "123", "-7", "1.5", "'x'::text", "'y'::varchar", "'z'::character varying", "' padded '"},
	"varchar": {"'abc'", "'x'::varchar", "'y'::text", "'q''q'", "99", "'long text with spaces'"},
	"bpchar":  {"'ab'", "'ab   '", "'abcde'", "'x'::bpchar", "7"},
	"name":    {"'abc'", "'" + strings.Repeat("n", 70) + "'", "'x'::name"},
	"bool":    {"TRUE", "false", "'t'", "'yes'", "'off'", "'1'", "True::boolean", "'0'::bool"},
	"uuid":    {"'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12}'", "'a0eebc999c0b4ef8bb6d6bb9bd380a13'::uuid"},
	"date":    {"'2024-01-02'", "'01/02/2024'"},
	"ts":      {"'2024-01-02 03:04:05'"},
	"tstz":    {"'2024-01-02 03:04:05+00'"},
}

// literalOthers are items of the other columns: every constant form the
// scanner reads, with casts of every shape it passes to pg_query.
var literalOthers = []string{
	"'plain'", "'it''s'", "''", "NULL", "-12.5", "1e-3", ".5", "5.", "'{1,2}'::int[]", "'1.25'::numeric(4,2)",
	"'x'::character varying(10)", "'2024-01-02 03:04:05'::timestamp with time zone", "'2'::double precision",
	"'multi\nline'", "'tab\there'", "'ünïcödé'", "TRUE", "null", "'b'::pg_catalog.text", "'[1]'::int[3]",
	"'t'::timestamp(3) without time zone", "42::bigint::text",
}

// literalStatement builds an INSERT into table of n rows whose key is
// drawn from keys (the key column at position keyAt) and whose other
// items from literalOthers; sep joins the rows.
func literalStatement(rng *rand.Rand, head string, width, keyAt, n int, keys []string, sep string) string {
	var b strings.Builder
	b.WriteString(head)
	for r := range n {
		if r > 0 {
			b.WriteString(sep)
		}
		b.WriteByte('(')
		for i := range width {
			if i > 0 {
				b.WriteString(", ")
			}
			if i == keyAt {
				b.WriteString(keys[rng.IntN(len(keys))])
			} else {
				b.WriteString(literalOthers[rng.IntN(len(literalOthers))])
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// literalCorpus is the statements of the differential test, each with
// whether the scanner must plan it (fast).
func literalCorpus() []struct {
	name string
	sql  string
	fast bool
} {
	type tc = struct {
		name string
		sql  string
		fast bool
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var out []tc
	for _, kt := range literalKeyTypes {
		keys := literalKeys[kt.name]
		fast := !catalog.KeyTextDependsOnSettings(kt.oid)
		head := "INSERT INTO k_" + kt.name + " VALUES "
		out = append(out,
			tc{kt.name + ": every key form", literalStatement(rng, head, 4, 1, 200, keys, ", "), fast},
			tc{kt.name + ": two rows", literalStatement(rng, head, 4, 1, 2, keys, ","), fast},
			tc{kt.name + ": one key repeated", literalStatement(rng, head, 4, 1, 50, keys[:1], ",\n  "), fast},
			tc{kt.name + ": column list, key last", literalStatement(rng, "insert into public.k_"+kt.name+" ( b , c,a,k )values", 4, 3, 30, keys, " , "), fast},
			tc{kt.name + ": key only", literalStatement(rng, "INSERT INTO \"k_"+kt.name+"\" (k) VALUES ", 1, 0, 20, keys, ", ") + ";", fast},
		)
	}
	ints := literalKeys["int8"]
	out = append(out,
		tc{"10k rows", literalStatement(rng, "INSERT INTO k_int8 VALUES ", 4, 1, 10_000, ints, ", "), true},
		tc{"replicated", literalStatement(rng, "INSERT INTO r_text (a, k, b) VALUES ", 3, 1, 100, literalKeys["text"], ", "), true},
		tc{"quoted schema and names", literalStatement(rng, `INSERT INTO "Sch ema"."Mixed Case" ("the value", "Id") VALUES `, 2, 1, 40, ints, ", "), true},
		tc{"leading white space, trailing semicolon", "\n\t INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 2, 'b', 2) ;\n ", true},
		tc{"first columns only", "INSERT INTO k_int4 VALUES (1, 1), (2, 2), (3, 300)", true},
		tc{"NULL key", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, NULL, 'b', 2)", false},
		tc{"mixed row widths", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 2, 'b')", false},
		tc{"numeric key for an integer", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 2.5, 'b', 2)", false},
		tc{"key cast with a type modifier", "INSERT INTO k_text VALUES (1, 'a', 'a', 1), (2, 'b'::varchar(3), 'b', 2)", false},
		tc{"key cast to character, which is character(1)", "INSERT INTO k_bpchar VALUES (1, 'a', 'a', 1), (2, 'b'::character, 'b', 2)", false},
		tc{"key cast to another family", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, '2'::text, 'b', 2)", false},
		tc{"bool key for a text key", "INSERT INTO k_text VALUES (1, 'a', 'a', 1), (2, TRUE, 'b', 2)", false},
		tc{"int key out of range", "INSERT INTO k_int2 VALUES (1, 1, 'a', 1), (2, 40000, 'b', 2)", false},
		tc{"bad uuid", "INSERT INTO k_uuid VALUES (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'a', 1), (2, 'nope', 'b', 2)", false},
		tc{"E string", "INSERT INTO k_text VALUES (1, 'a', 'a', 1), (2, E'b\\n', 'b', 2)", false},
		tc{"backslash", `INSERT INTO k_text VALUES (1, 'a', 'a', 1), (2, 'b\', 'b', 2)`, false},
		tc{"comment", "INSERT INTO k_text VALUES (1, 'a', 'a', 1), -- c\n (2, 'b', 'b', 2)", false},
		tc{"block comment", "INSERT INTO k_text VALUES (1, 'a', /* c */ 'a', 1), (2, 'b', 'b', 2)", false},
		tc{"string continued", "INSERT INTO k_text VALUES (1, 'a', 'a', 1), (2, 'b'\n'c', 'b', 2)", false},
		tc{"dollar quotes", "INSERT INTO k_text VALUES (1, 'a', 'a', 1), (2, $$b$$, 'b', 2)", false},
		tc{"unicode escapes", "INSERT INTO k_text VALUES (1, 'a', 'a', 1), (2, U&'b', 'b', 2)", false},
		tc{"typed literal", "INSERT INTO k_text VALUES (1, 'a', 'a', 1), (2, text 'b', 'b', 2)", false},
		tc{"hex integer", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 0x10, 'b', 2)", false},
		tc{"underscores", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 1_000, 'b', 2)", false},
		tc{"parameter", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, $1, 'b', 2)", false},
		tc{"DEFAULT", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (DEFAULT, 2, 'b', 2)", false},
		tc{"function", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 2, lower('B'), 2)", false},
		tc{"expression", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 1 + 1, 'b', 2)", false},
		tc{"cast then operator", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 2, 'b'::text IS NULL, 2)", false},
		tc{"negative cast", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, -2::int, 'b', 2)", false},
		tc{"collation", "INSERT INTO k_text VALUES (1, 'a', 'a', 1), (2, 'b', 'b'::text COLLATE C, 2)", false},
		tc{"subquery", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 2, (SELECT 'b'), 2)", false},
		tc{"ON CONFLICT", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 2, 'b', 2) ON CONFLICT DO NOTHING", false},
		tc{"RETURNING", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 2, 'b', 2) RETURNING k", false},
		tc{"two statements", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1), (2, 2, 'b', 2); SELECT 1", false},
		tc{"date key", "INSERT INTO k_date VALUES (1, '2024-01-02', 'a', 1), (2, '2024-01-03', 'b', 2)", false},
		tc{"sequence default", "INSERT INTO seqd (k, v) VALUES (1, 'a'), (2, 'b')", false},
		tc{"volatile default, replicated", "INSERT INTO volat (k, v) VALUES (1, 'a'), (2, 'b')", false},
		tc{"unknown column", "INSERT INTO k_int4 (a, nope) VALUES (1, 1), (2, 2)", false},
		tc{"key left out", "INSERT INTO k_int4 (a, b) VALUES (1, 'a'), (2, 'b')", false},
		tc{"ordinary table", "INSERT INTO plain VALUES (1, 'a'), (2, 'b')", false},
		tc{"one row", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1)", false},
		tc{"more items than columns", "INSERT INTO k_int4 VALUES (1, 1, 'a', 1, 5), (2, 2, 'b', 2, 5)", false},
		tc{"unknown table", "INSERT INTO nope VALUES (1, 1), (2, 2)", false},
	)
	return out
}

// TestLiteralInsertPlansLikeParsed is the differential test of the
// scanner: every statement of literalCorpus, planned from its scan
// (planLiteralInsert) and from its parse tree (planParsed), gets the same
// keys, the same shard for every row and the same rows for every shard
// (the shard statements parse to equal trees); a statement the scanner
// declines is planned by New exactly as by planParsed, errors included.
func TestLiteralInsertPlansLikeParsed(t *testing.T) {
	snap := literalSnapshot(t)
	env := testEnv()
	for _, tc := range literalCorpus() {
		t.Run(tc.name, func(t *testing.T) {
			fast := planLiteralInsert(tc.sql, snap, env)
			if (fast != nil) != tc.fast {
				t.Fatalf("scanned: %v, want %v", fast != nil, tc.fast)
			}
			if err := compareLiteralInsert(tc.sql, snap, env); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// compareLiteralInsert plans sql both ways and reports how they differ.
func compareLiteralInsert(sql string, snap *catalog.Snapshot, env Env) error {
	full, ferr := planParsed(sql, snap, env)
	fast := planLiteralInsert(sql, snap, env)
	if fast == nil {
		// Declined: New plans it the ordinary way.
		p, err := New(sql, snap, env)
		if !sameError(err, ferr) {
			return fmt.Errorf("New: error %v, parsed %v", err, ferr)
		}
		if err == nil {
			if p.Kind != full.Kind || !reflect.DeepEqual(withoutNodes(p.InsertKeys), withoutNodes(full.InsertKeys)) {
				return fmt.Errorf("New: %v %v, parsed %v %v", p.Kind, p.InsertKeys, full.Kind, full.InsertKeys)
			}
			if len(p.InsertKeys) > 0 {
				s, err := p.RowShards(nil)
				ws, werr := full.RowShards(nil)
				if !sameError(err, werr) || !reflect.DeepEqual(s, ws) {
					return fmt.Errorf("New: row shards %v (%v), parsed %v (%v)", s, err, ws, werr)
				}
			}
		}
		return nil
	}
	if ferr != nil {
		return fmt.Errorf("scanned a statement the parser refuses: %v", ferr)
	}
	if fast.Kind != full.Kind || fast.Modifies != full.Modifies || fast.Table != full.Table || fast.Eval != nil || full.Eval != nil ||
		fast.ShardParams != nil || full.ShardParams != nil || fast.SettingKeyParams != nil || full.SettingKeyParams != nil {
		return fmt.Errorf("scanned plan %v %v %v eval %+v, parsed %v %v %v eval %+v",
			fast.Kind, fast.Modifies, fast.Table.Name, fast.Eval, full.Kind, full.Modifies, full.Table.Name, full.Eval)
	}
	if !reflect.DeepEqual(withoutNodes(fast.InsertKeys), withoutNodes(full.InsertKeys)) {
		return fmt.Errorf("keys\n%v\nparsed\n%v", fast.InsertKeys, full.InsertKeys)
	}
	shards, err := fast.RowShards(nil)
	wshards, werr := full.RowShards(nil)
	if err != nil || werr != nil || !reflect.DeepEqual(shards, wshards) {
		return fmt.Errorf("row shards %v (%v), parsed %v (%v)", shards, err, wshards, werr)
	}
	got, err := shardRows(fast, shards)
	if err != nil {
		return fmt.Errorf("scanned: %v", err)
	}
	want, err := shardRows(full, shards)
	if err != nil {
		return fmt.Errorf("parsed: %v", err)
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d shard statements, parsed %d", len(got), len(want))
	}
	for s, g := range got {
		w := want[s]
		if !proto.Equal(g.tree, w.tree) {
			return fmt.Errorf("shard %d:\n%s\nparsed:\n%s", s, g.sql, w.sql)
		}
		if !reflect.DeepEqual(g.rows, w.rows) {
			return fmt.Errorf("shard %d: rows %v, parsed %v", s, g.rows, w.rows)
		}
	}
	return nil
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

// shardStatement is the statement a plan sends one shard: its text, its
// parse tree without locations, and the VALUES rows it carries.
type shardStatement struct {
	sql  string
	tree *pg_query.ParseResult
	rows []int
}

// shardRows returns, by shard index, the statements an execution of an
// INSERT plan sends for rows routed to shards.
func shardRows(p *Plan, shards []int) (map[int]shardStatement, error) {
	out := map[int]shardStatement{}
	add := func(shard int, sql string, rows []int) error {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			return fmt.Errorf("shard %d statement does not parse: %v\n%s", shard, err, sql)
		}
		clearLocations(tree)
		out[shard] = shardStatement{sql: sql, tree: tree, rows: rows}
		return nil
	}
	same := true
	for _, s := range shards {
		same = same && s == shards[0]
	}
	if same {
		sql, err := p.ShardSQL(shards[0])
		if err != nil {
			return nil, err
		}
		rows := make([]int, len(shards))
		for i := range rows {
			rows[i] = i
		}
		return out, add(shards[0], sql, rows)
	}
	parts, err := p.SplitInsert(nil, shards)
	if err != nil {
		return nil, err
	}
	for _, part := range parts {
		if len(part.Args) > 0 {
			return nil, fmt.Errorf("shard %d has arguments %v", part.Shard, part.Args)
		}
		if err := add(part.Shard, part.SQL, part.Rows); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// clearLocations zeroes every location in a parse tree, so that trees of
// texts written differently compare equal.
func clearLocations(m proto.Message) {
	var clear func(protoreflect.Message)
	clear = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.Name() == "location" || fd.Name() == "stmt_location" || fd.Name() == "stmt_len":
				m.Clear(fd)
			case fd.Message() != nil && fd.IsList():
				for i := 0; i < v.List().Len(); i++ {
					clear(v.List().Get(i).Message())
				}
			case fd.Message() != nil && !fd.IsMap():
				clear(v.Message())
			}
			return true
		})
	}
	clear(m.ProtoReflect())
}

// FuzzLiteralInsert compares the scanned plan of an INSERT with its
// parsed plan (compareLiteralInsert) on texts the fuzzer derives from
// literalCorpus (committed under testdata/fuzz/FuzzLiteralInsert).
func FuzzLiteralInsert(f *testing.F) {
	for _, tc := range literalCorpus() {
		if len(tc.sql) < 4096 {
			f.Add(tc.sql)
		}
	}
	snap := literalSnapshot(f)
	env := testEnv()
	f.Fuzz(func(t *testing.T, sql string) {
		if err := compareLiteralInsert(sql, snap, env); err != nil {
			t.Fatalf("%v\n%q", err, sql)
		}
	})
}

// TestWriteLiteralInsertSeeds writes literalCorpus's short statements as
// FuzzLiteralInsert's committed seed corpus when -update is given.
func TestWriteLiteralInsertSeeds(t *testing.T) {
	if !*update {
		return
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzLiteralInsert")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, tc := range literalCorpus() {
		if len(tc.sql) >= 4096 {
			continue
		}
		data := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", tc.sql)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// literalFragments are the pieces FuzzLiteralInsertShapes builds rows
// from: constants of every form, casts, and fragments at the edge of the
// scanner's grammar (comments, escapes, operators, continued strings).
var literalFragments = []string{
	"1", "-5", "0", "007", "2147483648", "-2147483648", "9223372036854775808", "1.5", "-.5", "5.", "1e3", "1E-3", "-0",
	"'a'", "'it''s'", "''", "'ü'", "'a b'", "' 7 '", "'t'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "NULL", "TRUE", "false",
	"'1'::int", "2::bigint", "'x'::text", "'y'::varchar(3)", "'z'::character varying", "'{1}'::int[]", "'1.5'::numeric(3 , 1)",
	"NULL::text", "'x' ::  text", "'x'::text::varchar", "TRUE::boolean", "'q'::\"char\"", "'t'::timestamp with time zone",
	"'1'::double precision", "1::pg_catalog.int4", "'x'::text IS NULL", "'x'::text COLLATE C", "1::int foo",
	"--x\n1", "/**/1", "E'a'", "'a\\'", "$1", "DEFAULT", "'a'\n'b'", "'a' 'b'", "- 1", "+1", "1e", "0x1", "1_0", "1..2",
	"U&'a'", "$$a$$", "(1)", "1+1", "lower('a')", "date '2020-01-01'", "-2::int", "\x00", "'\xff'", "x", "1 2",
}

// FuzzLiteralInsertShapes compares the scanned and parsed plans
// (compareLiteralInsert) of INSERTs the fuzzer assembles from
// literalFragments: data's bytes pick the table, the column list, each
// row's items and the separators, so that most statements stay close to
// what the scanner accepts.
func FuzzLiteralInsertShapes(f *testing.F) {
	f.Add([]byte{0, 0, 4, 1, 2, 3, 4, 1, 5, 6, 7, 8})
	f.Add([]byte{3, 1, 4, 13, 14, 15, 16, 0, 17, 18, 19, 20, 2, 21, 22, 23, 24})
	f.Add([]byte{8, 2, 2, 20, 25, 3, 21, 26})
	f.Add([]byte{1, 0, 4, 27, 28, 29, 30, 1, 31, 32, 33, 34, 1, 35, 36, 37, 38})
	f.Add([]byte{2, 3, 4, 40, 1, 2, 3, 0, 41, 42, 43, 44})
	snap := literalSnapshot(f)
	env := testEnv()
	f.Fuzz(func(t *testing.T, data []byte) {
		sql := literalShape(data)
		if err := compareLiteralInsert(sql, snap, env); err != nil {
			t.Fatalf("%v\n%q", err, sql)
		}
	})
}

// literalShape assembles FuzzLiteralInsertShapes' statement from data:
// each byte below 192 picks a constant the column takes (a key of the
// table's type, or one of literalOthers), the others one of
// literalFragments.
func literalShape(data []byte) string {
	type shapeTable struct{ name, keys string }
	tables := []shapeTable{{"k_int2", "int2"}, {"k_int4", "int4"}, {"k_int8", "int8"}, {"k_text", "text"}, {"k_varchar", "varchar"},
		{"k_bpchar", "bpchar"}, {"k_name", "name"}, {"k_bool", "bool"}, {"k_uuid", "uuid"}, {"r_text", "text"}, {"k_date", "date"}}
	heads := []struct {
		text         string
		width, keyAt int
	}{{"INSERT INTO %s VALUES ", 4, 1}, {"insert into %s (a, k, b, c) values", 4, 1}, {"INSERT INTO %s(k,a)VALUES", 2, 0},
		{"INSERT INTO %s (k) VALUES\n", 1, 0}, {"INSERT INTO %s (c, b, a, k) VALUES ", 4, 3}}
	seps := []string{", ", ",", " ,\n", ",\t", ", --\n", ") , ("}
	tails := []string{"", ";", " ; ", "; SELECT 1", " RETURNING k", " ON CONFLICT DO NOTHING", "\n"}
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	t := tables[next()%len(tables)]
	h := heads[next()%len(heads)]
	width := h.width
	if w := next(); w >= 224 {
		width = 1 + w%5 // perhaps a width the columns do not take
	}
	var b strings.Builder
	fmt.Fprintf(&b, h.text, t.name)
	for row := 0; len(data) > 0 && row < 64; row++ {
		if row > 0 {
			b.WriteString(seps[next()%len(seps)])
		}
		b.WriteByte('(')
		for i := range width {
			if i > 0 {
				b.WriteString(", ")
			}
			switch c := next(); {
			case c >= 192:
				b.WriteString(literalFragments[c%len(literalFragments)])
			case i == h.keyAt:
				b.WriteString(literalKeys[t.keys][c%len(literalKeys[t.keys])])
			default:
				b.WriteString(literalOthers[c%len(literalOthers)])
			}
		}
		b.WriteByte(')')
	}
	b.WriteString(tails[next()%len(tails)])
	return b.String()
}
