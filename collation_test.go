package pgshard_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pgshard/pgshard"
	"github.com/pgshard/pgshard/internal/pgtest"
)

// collationWords are text keys whose order differs between ICU (en-US,
// und) and bytes: case ('a' < 'B' < 'b' under ICU), accents, punctuation,
// digits, ligatures, letters outside Latin and outside the BMP.
var collationWords = []string{"a", "A", "b", "B", "ab", "a b", "a-b", "-a", "_a", "e", "E", "é", "É", "f",
	"ä", "z", "Z", "ß", "ss", "æ", "0", "10", "9", "", "ω", "Ω", "ǆ", "𝔘", "ﬀ", "x!", "x?", "Ab", "aB"}

// setupWords makes words, distributed on id over 8 shards, and plain_words,
// an ordinary table on the metadata database, with the same rows: text under
// the database's default collation, COLLATE "C", COLLATE "und-x-icu", a
// nondeterministic ICU collation, varchar and char(3).
func setupWords(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	for _, n := range e.c.Nodes {
		if _, err := e.worker(n).Exec(ctx, `CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`); err != nil {
			t.Fatal(err)
		}
	}
	ddl := `CREATE TABLE %s (id bigint PRIMARY KEY, w text, wc text COLLATE "C", wu text COLLATE "und-x-icu",
		wn text COLLATE nocase, wv varchar(10), wb char(3))`
	e.exec(strings.Replace(ddl, "%s", "words", 1))
	e.exec(`SELECT master_create_distributed_table('words', 'id')`)
	e.exec(`SELECT master_create_worker_shards('words', 8, 1)`)
	e.exec(strings.Replace(ddl, "%s", "plain_words", 1))
	fill := `INSERT INTO %s SELECT i, w, w, w, w, left(w, 10), left(w, 3) FROM (
		SELECT i, CASE WHEN i % 17 = 0 THEN NULL ELSE ($1::text[])[i % n + 1] || CASE WHEN i % 3 = 0 THEN '' ELSE ($1::text[])[(i / 7) % n + 1] END END AS w
		FROM generate_series(1, 400) i, (SELECT cardinality($1::text[]) AS n) c) s`
	e.exec(strings.Replace(fill, "%s", "words", 1), collationWords)
	e.exec(strings.Replace(fill, "%s", "plain_words", 1), collationWords)
}

// TestSortMergeFollowsCollationProvider runs multi-shard ORDER BY queries on
// text keys through pgshard and on one server, in databases whose default
// collation is ICU's (initdb --locale-provider=icu --icu-locale=en-US), libc
// C and libc C.UTF-8, and checks that the answers are the same and that the
// rows are merged in Go exactly where the key's collation orders by bytes.
func TestSortMergeFollowsCollationProvider(t *testing.T) {
	c := pgtest.StartTBWith(t, 3, pgtest.Options{InitDB: []string{"--locale-provider=icu", "--icu-locale=en-US"}})
	type query struct {
		q string
		// streams per database: icu, libc C, libc C.UTF-8
		streams [3]bool
	}
	bytewiseDefault := [3]bool{false, true, true}
	always := [3]bool{true, true, true}
	never := [3]bool{}
	queries := []query{
		{`SELECT id, w FROM %s ORDER BY w, id`, bytewiseDefault},
		{`SELECT id, w FROM %s ORDER BY w DESC, id LIMIT 25`, bytewiseDefault},
		{`SELECT id, w FROM %s ORDER BY w NULLS FIRST, id LIMIT 10 OFFSET 5`, bytewiseDefault},
		{`SELECT * FROM %s ORDER BY 2, 1 LIMIT 50`, bytewiseDefault},
		{`SELECT id, wv, wb FROM %s ORDER BY wb, wv, id`, bytewiseDefault},
		{`SELECT id FROM %s ORDER BY lower(w), id DESC`, bytewiseDefault},
		{`SELECT id, wc FROM %s ORDER BY wc, id`, always},
		{`SELECT id, w FROM %s ORDER BY w COLLATE "C" DESC, id LIMIT 40`, always},
		{`SELECT id, w COLLATE "C" AS x FROM %s ORDER BY x, id`, always},
		{`SELECT id FROM %s ORDER BY wu COLLATE "C", id`, always},
		{`SELECT id, w FROM %s ORDER BY w COLLATE "POSIX", id LIMIT 20`, always},
		{`SELECT id, wu FROM %s ORDER BY wu, id`, never},
		{`SELECT id, w FROM %s ORDER BY w COLLATE "und-x-icu", id LIMIT 30`, never},
		{`SELECT id, wc FROM %s ORDER BY wc COLLATE "en-US-x-icu" DESC, id`, never},
		{`SELECT id, wn FROM %s ORDER BY wn, id`, never},
		{`SELECT id, wn FROM %s ORDER BY wn DESC, id DESC LIMIT 33`, never},
	}
	for d, db := range []struct{ name, options string }{
		{"icu en-US", ""},
		{"libc C", "TEMPLATE template0 LOCALE_PROVIDER libc LOCALE 'C'"},
		{"libc C.UTF-8", "TEMPLATE template0 LOCALE_PROVIDER libc LOCALE 'C.UTF-8'"},
	} {
		t.Run(db.name, func(t *testing.T) {
			e := newEnvOn(t, c, db.options)
			setupWords(t, e)
			for _, q := range queries {
				t.Run(q.q, func(t *testing.T) {
					want := queryText(t, e.DB, strings.ReplaceAll(q.q, "%s", "plain_words"))
					sharded := strings.ReplaceAll(q.q, "%s", "words")
					for run := 0; run < 2; run++ { // the second run uses what the first learnt
						if got := queryText(t, e.DB, sharded); got != want {
							t.Fatalf("run %d: pgshard:\n%s\nsingle PostgreSQL:\n%s", run, got, want)
						}
					}
					streams, known, err := pgshard.SortMergeStreams(context.Background(), e.DB, sharded)
					if err != nil {
						t.Fatal(err)
					}
					if !known || streams != q.streams[d] {
						t.Fatalf("merged in Go: %v (known %v); want %v", streams, known, q.streams[d])
					}
				})
			}
		})
	}
}

// TestCUTF8OrdersByCodePoint checks what the merge believes of libc's
// C.UTF-8 (as the database's default collation and as the collation
// C.utf8): PostgreSQL orders text under it by code point, which is the
// byte order of UTF-8, for characters of every plane.
func TestCUTF8OrdersByCodePoint(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := e.worker(e.workers[0])
	var collate string
	if err := conn.QueryRow(ctx, `SELECT datcollate FROM pg_database WHERE datname = current_database()`).Scan(&collate); err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(collate, "C.UTF-8") && !strings.EqualFold(collate, "C.utf8") {
		t.Fatalf("the test cluster's databases should be libc C.UTF-8, not %q", collate)
	}
	var words []string
	for r := rune(1); r <= utf8.MaxRune; r += 37 {
		if utf8.ValidRune(r) {
			words = append(words, string(r), "a"+string(r), string(r)+"b", string([]rune{r, r/3 | 1}))
		}
	}
	words = append(words, collationWords...)
	want := slices.Clone(words)
	slices.Sort(want) // bytes
	want = slices.Compact(want)
	for _, order := range []string{`w`, `w COLLATE "C.utf8"`} {
		var got []string
		if err := conn.QueryRow(ctx, `SELECT array_agg(w ORDER BY `+order+`) FROM (SELECT DISTINCT w FROM unnest($1::text[]) w) s`, words).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("ORDER BY %s: %d distinct words, want %d", order, len(got), len(want))
		}
		bad := 0
		for i := range got {
			if got[i] != want[i] {
				if bad++; bad <= 5 {
					t.Errorf("ORDER BY %s: position %d is %+q, byte order has %+q", order, i, got[i], want[i])
				}
			}
		}
		t.Logf("ORDER BY %s: %d words, %d out of byte order", order, len(got), bad)
	}
}

// TestSortMergeInNonUTF8Database runs multi-shard ORDER BY on text in a
// WIN1252 database with collation C: PostgreSQL orders by WIN1252 bytes
// ('€' is 0x80, before 'é' at 0xE9); a client whose client_encoding is UTF8
// (as pgx's simple protocol requires) reads the text converted to UTF-8
// (where '€' is E2 82 AC, after 'é' at C3 A9), so the rows must not be
// merged in Go. Both the default client encoding (the database's) and UTF8
// are run.
func TestSortMergeInNonUTF8Database(t *testing.T) {
	e := newEnvOn(t, sharedCluster(t), "TEMPLATE template0 ENCODING 'WIN1252' LOCALE 'C'")
	utf8DB, err := sql.Open("pgshard", e.DSN+"&client_encoding=UTF8")
	if err != nil {
		t.Fatal(err)
	}
	defer utf8DB.Close()
	words := []string{"a", "z", "€", "Œ", "Ž", "š", "é", "ÿ", "É", "ü", "‰", "ab"}
	for _, table := range []string{"words", "plain_words"} {
		e.exec(`CREATE TABLE ` + table + ` (id bigint PRIMARY KEY, w text)`)
		if table == "words" {
			e.exec(`SELECT master_create_distributed_table('words', 'id')`)
			e.exec(`SELECT master_create_worker_shards('words', 8, 1)`)
		}
		e.exec(`INSERT INTO `+table+` SELECT i, ($1::text[])[i % cardinality($1::text[]) + 1] || ($1::text[])[(i / 5) % cardinality($1::text[]) + 1]
			FROM generate_series(1, 200) i`, words)
	}
	for _, q := range []string{
		`SELECT id, w FROM %s ORDER BY w, id`,
		`SELECT id, w FROM %s ORDER BY w DESC, id LIMIT 17`,
		`SELECT id, w FROM %s ORDER BY w COLLATE "C", id LIMIT 50 OFFSET 3`,
	} {
		for _, db := range []struct {
			name string
			db   *sql.DB
		}{{"client_encoding WIN1252", e.DB}, {"client_encoding UTF8", utf8DB}} {
			t.Run(db.name+"/"+q, func(t *testing.T) {
				want := queryText(t, db.db, strings.ReplaceAll(q, "%s", "plain_words"))
				sharded := strings.ReplaceAll(q, "%s", "words")
				for run := 0; run < 2; run++ {
					if got := queryText(t, db.db, sharded); got != want {
						t.Fatalf("run %d: pgshard:\n%s\nsingle PostgreSQL:\n%s", run, got, want)
					}
				}
				if streams, known, err := pgshard.SortMergeStreams(context.Background(), db.db, sharded); err != nil || !known || streams {
					t.Fatalf("merged in Go: %v (known %v, %v); want false", streams, known, err)
				}
			})
		}
	}
}
