package catalog

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/pgtest"
)

func TestShardStatementsText(t *testing.T) {
	d := &TemplateDDL{
		Schema:   "My Schema",
		Name:     `we"ird`,
		Unlogged: true,
		Options:  []string{"fillfactor='70'"},
		Columns: []ColumnDDL{
			{Name: "id", Type: "bigint", NotNull: true},
			{Name: "Name", Type: "text", Collation: `pg_catalog."C"`, Default: "'x'::text"},
			{Name: "twice", Type: "bigint", Generated: "(id * 2)"},
		},
		Constraints: []ConstraintDDL{
			{Name: "pk", Def: "PRIMARY KEY (id)"},
			{Name: "late", Def: "CHECK ((id > 0)) NOT VALID", NotValid: true},
		},
		Indexes: []IndexDDL{
			{Name: "a USING b", Unique: true, Body: "USING btree (\"Name\")"},
			{Name: "plain", Body: "USING hash (id)"},
		},
	}
	got := d.ShardStatements(10000)
	want := []string{
		`CREATE SCHEMA IF NOT EXISTS "My Schema"`,
		"CREATE UNLOGGED TABLE \"My Schema\".\"we\"\"ird_10000\" (\n" +
			"\t\"id\" bigint NOT NULL,\n" +
			"\t\"Name\" text COLLATE pg_catalog.\"C\" DEFAULT 'x'::text,\n" +
			"\t\"twice\" bigint GENERATED ALWAYS AS ((id * 2)) STORED,\n" +
			"\tCONSTRAINT \"pk_10000\" PRIMARY KEY (id)\n" +
			") WITH (fillfactor='70')",
		`ALTER TABLE "My Schema"."we""ird_10000" ADD CONSTRAINT "late_10000" CHECK ((id > 0)) NOT VALID`,
		`CREATE UNIQUE INDEX "a USING b_10000" ON "My Schema"."we""ird_10000" USING btree ("Name")`,
		`CREATE INDEX "plain_10000" ON "My Schema"."we""ird_10000" USING hash (id)`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ShardStatements:\n%s\nwant:\n%s", strings.Join(got, ";\n"), strings.Join(want, ";\n"))
	}
	if got := d.CopyColumns(); !slices.Equal(got, []string{"id", "Name"}) {
		t.Errorf("CopyColumns = %q", got)
	}
	if got := d.ShardTableIdentifier(7); got != `"My Schema"."we""ird_7"` {
		t.Errorf("ShardTableIdentifier = %s", got)
	}

	pub := &TemplateDDL{Schema: "public", Name: "t"}
	if got := pub.ShardStatements(1); !slices.Equal(got, []string{`CREATE TABLE "public"."t_1" ()`}) {
		t.Errorf("empty public table: %q", got)
	}
}

func TestShardDDLIndexBody(t *testing.T) {
	for _, tc := range []struct {
		def, prefix, body string
		ok                bool
	}{
		{`CREATE INDEX i ON public.t USING btree (a)`, `CREATE INDEX i ON public.t `, `USING btree (a)`, true},
		{`CREATE UNIQUE INDEX "x USING y" ON "S"."T USING z" USING gist (r) WHERE (a > 1)`,
			`CREATE UNIQUE INDEX "x USING y" ON "S"."T USING z" `, `USING gist (r) WHERE (a > 1)`, true},
		{`CREATE INDEX i ON ONLY public.t USING btree (a)`, `CREATE INDEX i ON public.t `, "", false},
		{`CREATE INDEX i ON public.t WHERE`, `CREATE INDEX i ON public.t `, "", false},
	} {
		body, ok := indexBody(tc.def, tc.prefix)
		if ok != tc.ok || body != tc.body {
			t.Errorf("indexBody(%q, %q) = %q, %v; want %q, %v", tc.def, tc.prefix, body, ok, tc.body, tc.ok)
		}
	}
}

// relDesc is a table's definition as the catalogs of its server tell it, for
// comparing a template with its shards.
type relDesc struct {
	Persistence string
	Options     []string
	Columns     []string
	Constraints []string
	Indexes     []string
}

// describeRel reads relid's definition. For a template, names get suffix and
// what a shard must not have is removed: nextval defaults, identity, foreign
// keys.
func describeRel(t *testing.T, ctx context.Context, conn *pgx.Conn, relid uint32, suffix string, template bool) relDesc {
	t.Helper()
	var d relDesc
	if err := conn.QueryRow(ctx, `SELECT relpersistence::text, coalesce(reloptions, '{}') FROM pg_class WHERE oid = $1`, relid).
		Scan(&d.Persistence, &d.Options); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity::text, a.attgenerated::text,
		       coalesce(pg_get_expr(d.adbin, d.adrelid), ''), coalesce(co.collname, '')
		FROM pg_attribute a
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		LEFT JOIN pg_collation co ON co.oid = a.attcollation
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, relid)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, typ, identity, generated, def, coll string
		var notNull bool
		if err := rows.Scan(&name, &typ, &notNull, &identity, &generated, &def, &coll); err != nil {
			t.Fatal(err)
		}
		if template && (identity != "" || strings.Contains(def, "nextval(")) {
			identity, def = "", ""
		}
		d.Columns = append(d.Columns, fmt.Sprintf("%s %s notnull=%v identity=%q generated=%q default=%q collation=%q",
			name, typ, notNull, identity, generated, def, coll))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = conn.Query(ctx, `
		SELECT conname, contype::text, pg_get_constraintdef(oid), convalidated
		FROM pg_constraint WHERE conrelid = $1`, relid)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, typ, def string
		var valid bool
		if err := rows.Scan(&name, &typ, &def, &valid); err != nil {
			t.Fatal(err)
		}
		if template && typ == "f" {
			continue
		}
		d.Constraints = append(d.Constraints, fmt.Sprintf("%s %s %s validated=%v", name+suffix, typ, def, valid))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(d.Constraints)
	rows, err = conn.Query(ctx, `
		SELECT ic.relname, i.indisunique, i.indisprimary, i.indisexclusion, i.indnullsnotdistinct, am.amname,
		       i.indnkeyatts, i.indnatts, i.indoption::text,
		       (SELECT string_agg(opc.opcname, ',' ORDER BY u.k)
		          FROM unnest(i.indclass::oid[]) WITH ORDINALITY u(oid, k) JOIN pg_opclass opc ON opc.oid = u.oid),
		       (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), ', ' ORDER BY k)
		          FROM generate_series(1, i.indnatts) k),
		       coalesce(pg_get_expr(i.indpred, i.indrelid, true), '')
		FROM pg_index i
		JOIN pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_am am ON am.oid = ic.relam
		WHERE i.indrelid = $1`, relid)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, am, option, opclasses, cols, pred string
		var unique, primary, exclusion, nullsNotDistinct bool
		var nkey, natts int16
		if err := rows.Scan(&name, &unique, &primary, &exclusion, &nullsNotDistinct, &am, &nkey, &natts, &option, &opclasses, &cols, &pred); err != nil {
			t.Fatal(err)
		}
		d.Indexes = append(d.Indexes, fmt.Sprintf("%s unique=%v primary=%v exclusion=%v nnd=%v %s key=%d/%d option=%s opclass=%s (%s) where %q",
			name+suffix, unique, primary, exclusion, nullsNotDistinct, am, nkey, natts, option, opclasses, cols, pred))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(d.Indexes)
	return d
}

func connectTB(t *testing.T, ctx context.Context, dsn string, params map[string]string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func execAll(t *testing.T, ctx context.Context, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestTemplateDDLShards(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := pgtest.StartTB(t, 2)
	meta := connectTB(t, ctx, c.Nodes[0].DSN(""), nil)
	// ReadTemplateDDL reads through a session whose search_path finds the
	// "Other Schema" types unqualified; the shards must still name them fully.
	reader := connectTB(t, ctx, c.Nodes[0].DSN(""), map[string]string{"search_path": `"Other Schema", public`})
	worker := connectTB(t, ctx, c.Nodes[1].DSN(""), nil)

	type violation struct {
		sql, code string
	}
	cases := []struct {
		name   string
		setup  []string // on the metadata server
		wsetup []string // on the worker, before the shards
		table  string   // regclass text of the template
		ok     []string // inserts that succeed on shard 10000 (%s: the shard table)
		bad    []violation
	}{
		{
			name: "public table with serial, identity, generated and every constraint kind",
			setup: []string{
				`CREATE TABLE public.events (
					id bigserial,
					tenant int NOT NULL,
					seq serial,
					ident int GENERATED ALWAYS AS IDENTITY,
					ident2 bigint GENERATED BY DEFAULT AS IDENTITY,
					name text NOT NULL DEFAULT 'unnamed',
					created timestamptz NOT NULL DEFAULT now(),
					amount numeric(10,2) DEFAULT 0,
					tags text[],
					doubled int GENERATED ALWAYS AS (tenant * 2) STORED,
					during tsrange,
					CONSTRAINT amount_positive CHECK (amount >= 0),
					PRIMARY KEY (tenant, id),
					UNIQUE (tenant, name),
					EXCLUDE USING gist (during WITH &&)
				)`,
				`CREATE INDEX events_created_idx ON public.events (created DESC NULLS LAST)`,
				`CREATE INDEX events_big_lower_name ON public.events (lower(name)) INCLUDE (amount) WHERE amount > 100`,
				`ALTER TABLE public.events ADD CONSTRAINT tenant_positive CHECK (tenant > 0) NOT VALID`,
			},
			table: "public.events",
			ok: []string{
				`INSERT INTO %s (id, tenant, seq, ident, ident2, name, during) VALUES (1, 1, 1, 1, 1, 'a', '[2020-01-01,2020-02-01)')`,
				`INSERT INTO %s (id, tenant, seq, ident, ident2) VALUES (2, 1, 2, 2, 2)`, // name defaults to 'unnamed'
			},
			bad: []violation{
				{`INSERT INTO %s (id, tenant, seq, ident, ident2, name, amount) VALUES (3, 1, 3, 3, 3, 'c', -1)`, "23514"},
				{`INSERT INTO %s (id, tenant, seq, ident, ident2, name) VALUES (4, -1, 4, 4, 4, 'd')`, "23514"}, // NOT VALID still checks new rows
				{`INSERT INTO %s (id, tenant, seq, ident, ident2, name) VALUES (5, 1, 5, 5, 5, 'a')`, "23505"},  // UNIQUE (tenant, name)
				{`INSERT INTO %s (id, tenant, seq, ident, ident2, name) VALUES (1, 1, 6, 6, 6, 'f')`, "23505"},  // PRIMARY KEY
				{`INSERT INTO %s (id, tenant, ident, ident2, name) VALUES (7, 1, 7, 7, 'g')`, "23502"},          // serial: NOT NULL, no default
				{`INSERT INTO %s (id, tenant, seq, ident2, name) VALUES (8, 1, 8, 8, 'h')`, "23502"},            // identity: no identity on the shard
				{`INSERT INTO %s (id, tenant, seq, ident, ident2, name, during) VALUES (9, 1, 9, 9, 9, 'i', '[2020-01-15,2020-03-01)')`, "23P01"},
			},
		},
		{
			name: "mixed-case quoted names",
			setup: []string{
				`CREATE TABLE public."CamelCase" (
					"Id" int NOT NULL,
					"Select" text COLLATE "C" CHECK ("Select" <> ''),
					"weird ""col""" int DEFAULT 42,
					CONSTRAINT "CamelCase PK" PRIMARY KEY ("Id")
				)`,
				`CREATE INDEX "Weird USING idx" ON public."CamelCase" ("weird ""col""", lower("Select"))`,
			},
			table: `public."CamelCase"`,
			ok:    []string{`INSERT INTO %s ("Id", "Select") VALUES (1, 'x')`},
			bad: []violation{
				{`INSERT INTO %s ("Id", "Select") VALUES (2, '')`, "23514"},
				{`INSERT INTO %s ("Id", "Select") VALUES (1, 'y')`, "23505"},
			},
		},
		{
			name: "other schema with user type, foreign key and storage options",
			setup: []string{
				`CREATE SCHEMA "Other Schema"`,
				`CREATE TYPE "Other Schema".mood AS ENUM ('sad', 'ok', 'happy')`,
				`CREATE TABLE "Other Schema".items (
					item_id bigint PRIMARY KEY,
					camel_id int REFERENCES public."CamelCase" ("Id"),
					feeling "Other Schema".mood NOT NULL DEFAULT 'ok',
					price int CHECK (price > 0),
					sku text,
					UNIQUE (sku, camel_id)
				) WITH (fillfactor = 70)`,
				`CREATE UNIQUE INDEX items_sku_lower ON "Other Schema".items (lower(sku)) WHERE price > 10`,
			},
			wsetup: []string{
				`CREATE SCHEMA "Other Schema"`,
				`CREATE TYPE "Other Schema".mood AS ENUM ('sad', 'ok', 'happy')`,
			},
			table: `"Other Schema".items`,
			ok: []string{
				`INSERT INTO %s (item_id, camel_id, price, sku) VALUES (1, 999, 20, 'ABC')`, // no foreign key on the shard
			},
			bad: []violation{
				{`INSERT INTO %s (item_id, price, sku) VALUES (2, 0, 'x')`, "23514"},
				{`INSERT INTO %s (item_id, camel_id, price, sku) VALUES (3, 1, 50, 'abc')`, "23505"}, // unique partial expression index
				{`INSERT INTO %s (item_id, camel_id, price, sku) VALUES (1, 1, 5, 'q')`, "23505"},
			},
		},
		{
			name: "unlogged table in a schema the worker lacks",
			setup: []string{
				`CREATE SCHEMA analytics`,
				`CREATE UNLOGGED TABLE analytics.hits (
					id bigint GENERATED BY DEFAULT AS IDENTITY,
					url text NOT NULL,
					at date DEFAULT current_date,
					CHECK (url ~ '^https?://')
				)`,
				`CREATE INDEX ON analytics.hits USING hash (url)`,
			},
			table: "analytics.hits",
			ok:    []string{`INSERT INTO %s (id, url) VALUES (1, 'https://x')`},
			bad:   []violation{{`INSERT INTO %s (id, url) VALUES (2, 'ftp://x')`, "23514"}},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			execAll(t, ctx, meta, tc.setup...)
			execAll(t, ctx, worker, tc.wsetup...)
			var relid uint32
			if err := meta.QueryRow(ctx, `SELECT $1::regclass::oid`, tc.table).Scan(&relid); err != nil {
				t.Fatal(err)
			}
			ddl, err := ReadTemplateDDL(ctx, reader, relid)
			if err != nil {
				t.Fatal(err)
			}
			var sp string
			if err := reader.QueryRow(ctx, `SHOW search_path`).Scan(&sp); err != nil || sp != `"Other Schema", public` {
				t.Fatalf("reader's search_path after ReadTemplateDDL = %q, %v", sp, err)
			}
			want := describeRel(t, ctx, meta, relid, "_10000", true)
			for _, shardID := range []int64{10000, 10001} {
				stmts := ddl.ShardStatements(shardID)
				if got := strings.HasPrefix(stmts[0], "CREATE SCHEMA IF NOT EXISTS "); got != (ddl.Schema != "public") {
					t.Errorf("first statement %q: CREATE SCHEMA is %v for schema %q", stmts[0], got, ddl.Schema)
				}
				err := pgx.BeginFunc(ctx, worker, func(tx pgx.Tx) error {
					for _, s := range stmts {
						if _, err := tx.Exec(ctx, s); err != nil {
							return fmt.Errorf("%s: %w", s, err)
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			// The shard is "<name>_10000" in the template's schema.
			var shardRel uint32
			shardName := pgx.Identifier{ddl.Schema, ddl.Name + "_10000"}.Sanitize()
			if err := worker.QueryRow(ctx, `SELECT $1::regclass::oid`, shardName).Scan(&shardRel); err != nil {
				t.Fatalf("shard table %s: %v", shardName, err)
			}
			got := describeRel(t, ctx, worker, shardRel, "", false)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("shard differs from template\n got: %s\nwant: %s", dump(got), dump(want))
			}
			// Shard 10001's names end in _10001.
			var other uint32
			if err := worker.QueryRow(ctx, `SELECT $1::regclass::oid`, pgx.Identifier{ddl.Schema, ddl.Name + "_10001"}.Sanitize()).Scan(&other); err != nil {
				t.Fatal(err)
			}
			if got1, want1 := describeRel(t, ctx, worker, other, "", false), describeRel(t, ctx, meta, relid, "_10001", true); !reflect.DeepEqual(got1, want1) {
				t.Errorf("shard 10001 differs from template\n got: %s\nwant: %s", dump(got1), dump(want1))
			}

			for _, s := range tc.ok {
				execAll(t, ctx, worker, fmt.Sprintf(s, shardName))
			}
			for _, v := range tc.bad {
				_, err := worker.Exec(ctx, fmt.Sprintf(v.sql, shardName))
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != v.code {
					t.Errorf("%s: got %v, want SQLSTATE %s", v.sql, err, v.code)
				}
			}
		})
	}

	t.Run("in a caller's transaction", func(t *testing.T) {
		var relid uint32
		if err := meta.QueryRow(ctx, `SELECT '"Other Schema".items'::regclass::oid`).Scan(&relid); err != nil {
			t.Fatal(err)
		}
		viaConn, err := ReadTemplateDDL(ctx, meta, relid)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := reader.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = "Other Schema"`); err != nil {
			t.Fatal(err)
		}
		viaTx, err := ReadTemplateDDL(ctx, tx, relid)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(viaConn, viaTx) {
			t.Errorf("read in a transaction differs:\n%+v\n%+v", viaTx, viaConn)
		}
		if !strings.Contains(viaTx.Columns[2].Type, `"Other Schema".mood`) {
			t.Errorf("type not qualified: %q", viaTx.Columns[2].Type)
		}
		var sp string
		if err := tx.QueryRow(ctx, `SHOW search_path`).Scan(&sp); err != nil || sp != `"Other Schema"` {
			t.Errorf("caller's search_path after ReadTemplateDDL = %q, %v", sp, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		execAll(t, ctx, meta, `CREATE VIEW public.v AS SELECT 1 AS x`)
		var view uint32
		if err := meta.QueryRow(ctx, `SELECT 'public.v'::regclass::oid`).Scan(&view); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			relid uint32
			code  string
		}{{view, "42809"}, {4000000000, "42P01"}} {
			_, err := ReadTemplateDDL(ctx, meta, tc.relid)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tc.code {
				t.Errorf("ReadTemplateDDL(%d) = %v, want SQLSTATE %s", tc.relid, err, tc.code)
			}
		}
	})
}

func dump(d relDesc) string {
	var b strings.Builder
	fmt.Fprintf(&b, "persistence=%s options=%q\n", d.Persistence, d.Options)
	for _, l := range [][]string{d.Columns, d.Constraints, d.Indexes} {
		for _, s := range l {
			b.WriteString("  " + s + "\n")
		}
	}
	return b.String()
}

// TestColocatedForeignKeyStatementText: each shard's foreign key to a
// co-located table is the template's definition with the shard's table,
// the constraint named ShardName(name, shard) (as DDL through pgshard
// names it) and the referenced table's shard of the same range, written
// from the parse tree: quoted, long names shortened, NOT VALID kept or
// forced, the rest of the definition untouched.
func TestColocatedForeignKeyStatementText(t *testing.T) {
	long := strings.Repeat("k", 60)
	for _, tc := range []struct {
		name     string
		d        TemplateDDL
		def      string
		fkName   string
		ref      ShardTableRef
		notValid bool
		want     string
	}{
		{"plain", TemplateDDL{Schema: "public", Name: "orders"},
			"FOREIGN KEY (customer_id) REFERENCES public.customers(id) ON DELETE CASCADE", "orders_customer_fk",
			ShardTableRef{10000, "customers_10000"}, false,
			"ALTER TABLE IF EXISTS public.orders_10004 ADD CONSTRAINT orders_customer_fk_10004 FOREIGN KEY (customer_id) REFERENCES public.customers_10000 (id) ON DELETE CASCADE"},
		{"quoted and long names", TemplateDDL{Schema: "My Schema", Name: `we"ird`},
			`FOREIGN KEY (k, "Other") REFERENCES "My Schema"."Cust omers"(k, "Other") MATCH FULL ON UPDATE RESTRICT DEFERRABLE INITIALLY DEFERRED`, long,
			ShardTableRef{10000, ShardName("Cust omers", 10000)}, false,
			`ALTER TABLE IF EXISTS "My Schema"."we""ird_10004" ADD CONSTRAINT ` + ShardName(long, 10004) + ` FOREIGN KEY (k, "Other") REFERENCES "My Schema"."Cust omers_10000" (k, "Other") MATCH FULL ON UPDATE RESTRICT DEFERRABLE INITIALLY DEFERRED`},
		{"template NOT VALID", TemplateDDL{Schema: "public", Name: "orders"},
			"FOREIGN KEY (customer_id) REFERENCES public.customers(id) NOT VALID", "f",
			ShardTableRef{10000, "customers_10000"}, false,
			"ALTER TABLE IF EXISTS public.orders_10004 ADD CONSTRAINT f_10004 FOREIGN KEY (customer_id) REFERENCES public.customers_10000 (id) NOT VALID"},
		{"forced NOT VALID", TemplateDDL{Schema: "public", Name: "orders"},
			"FOREIGN KEY (customer_id) REFERENCES public.customers(id)", "f",
			ShardTableRef{10000, "customers_10000"}, true,
			"ALTER TABLE IF EXISTS public.orders_10004 ADD CONSTRAINT f_10004 FOREIGN KEY (customer_id) REFERENCES public.customers_10000 (id) NOT VALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fk, err := colocatedForeignKey(ForeignKeyDDL{Name: tc.fkName, RefSchema: tc.d.Schema}, tc.def, 1, "ref")
			if err != nil {
				t.Fatal(err)
			}
			fk.RefShards = map[int64]ShardTableRef{10004: tc.ref}
			got, err := tc.d.ColocatedForeignKeyStatement(&fk, 10004, tc.notValid)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
			// The template's parse tree is left as it was.
			again, err := tc.d.ColocatedForeignKeyStatement(&fk, 10004, tc.notValid)
			if err != nil || again != got {
				t.Fatalf("second statement %q, %v; want %q", again, err, got)
			}
			if _, err := tc.d.ColocatedForeignKeyStatement(&fk, 10005, false); err == nil || !strings.Contains(err.Error(), "no co-located shard") {
				t.Fatalf("shard without a referenced shard: %v", err)
			}
		})
	}
}
