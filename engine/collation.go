package engine

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/plan"
)

// learnMergeState asks PostgreSQL, on a placement of shard index shard,
// which collation each sort key's values have, without running the query
// (LIMIT 0; as text, so that every type has one: a text key keeps its own),
// what that collation is (pg_collation: provider, locale, determinism), and
// what the database's default collation and encoding are (pg_database): the
// merge compares text in Go only where PostgreSQL orders it by its bytes
// (textOrderIsBytewise). Rows of pg_collation and pg_database are read as
// jsonb, so that the columns of every PostgreSQL version are found by name.
func learnMergeState(ctx context.Context, vc Cursor, s *SortMerge, shard int, args []driver.NamedValue) (plan.MergeState, error) {
	m := s
	sql, err := s.Merge.ShardSQL(shard)
	if err != nil {
		return plan.MergeState{}, err
	}
	visibleKeys := 0
	for _, k := range m.Keys {
		if !k.Extra {
			visibleKeys = max(visibleKeys, k.Column+1)
		}
	}
	alias := "s"
	if visibleKeys > 0 {
		names := make([]string, visibleKeys)
		for i := range names {
			names[i] = "a" + strconv.Itoa(i+1)
		}
		alias += "(" + strings.Join(names, ", ") + ")"
	}
	q := "SELECT (SELECT to_jsonb(d) FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()), pg_catalog.getdatabaseencoding()"
	for i, k := range m.Keys {
		col := "a" + strconv.Itoa(k.Column+1)
		if k.Extra {
			col = pgx.Identifier{fmt.Sprintf("?pgshard_sort%d", k.Column+1)}.Sanitize()
		}
		q += fmt.Sprintf(", (SELECT to_jsonb(c) FROM pg_catalog.pg_collation c WHERE c.oid = pg_catalog.pg_collation_for((SELECT s.%s::text FROM (%s) %s LIMIT 0))::pg_catalog.regcollation) AS k%d", col, sql, alias, i)
	}
	values := make([]any, len(args))
	for i, a := range args {
		values[i] = a.Value
	}
	vals, err := probeShard(ctx, vc, s.Target, shard, q, values)
	var state plan.MergeState
	if err == nil {
		database, _ := vals[0].(map[string]any)
		encoding, _ := vals[1].(string)
		state = plan.MergeState{Known: true, Bytewise: make([]bool, len(m.Keys))}
		for i := range m.Keys {
			coll, collatable := vals[i+2].(map[string]any)
			state.Bytewise[i] = !collatable || textOrderIsBytewise(collationOf(coll, database), encoding)
		}
	}
	if err != nil {
		return plan.MergeState{}, fmt.Errorf("pgshard: reading the collations of ORDER BY keys: %w", err)
	}
	return state, nil
}

// collation is what decides how PostgreSQL orders text under a collation.
type collation struct {
	// provider is pg_collation.collprovider: 'c' libc, 'i' ICU, 'b'
	// builtin (PostgreSQL 17).
	provider string
	// collate is libc's LC_COLLATE locale; locale is the ICU or builtin
	// locale.
	collate, locale string
	deterministic   bool
}

// collationOf reads a pg_collation row (as jsonb) into a collation; the
// database's default collation ("default", provider 'd') is the database's
// (a pg_database row as jsonb). Columns that a version lacks take the values
// that version implies: libc before PostgreSQL 15, deterministic before 12.
func collationOf(coll, database map[string]any) collation {
	str := func(row map[string]any, keys ...string) string {
		for _, k := range keys {
			if v, ok := row[k].(string); ok {
				return v
			}
		}
		return ""
	}
	c := collation{
		provider:      str(coll, "collprovider"),
		collate:       str(coll, "collcollate"),
		locale:        str(coll, "colllocale", "colliculocale"),
		deterministic: true,
	}
	if d, ok := coll["collisdeterministic"].(bool); ok {
		c.deterministic = d
	}
	if c.provider == "d" {
		c.provider = str(database, "datlocprovider")
		c.collate = str(database, "datcollate")
		c.locale = str(database, "datlocale", "daticulocale")
	}
	if c.provider == "" {
		c.provider = "c"
	}
	return c
}

// textOrderIsBytewise reports whether PostgreSQL orders text under c, in a
// database of encoding (getdatabaseencoding), by its bytes as pgx returns
// them (UTF-8), which is how the merge compares text in Go:
//   - libc C and POSIX compare with strcmp; libc C.UTF-8 (glibc) by code
//     point, which for valid UTF-8 is byte order (TestCUTF8OrdersByCodePoint
//     checks it against the server);
//   - the builtin provider's C and C.UTF-8 by code point;
//   - ICU, every other libc locale and every nondeterministic collation
//     otherwise.
//
// In a database encoding other than UTF8 (or SQL_ASCII, which is never
// converted) the server orders the bytes of its encoding, while a client
// whose client_encoding is UTF8 (as pgx's simple protocol requires) reads
// the text converted, in another byte order (WIN1252's 0x80 is U+20AC, after
// 'é'), so nothing is.
func textOrderIsBytewise(c collation, encoding string) bool {
	if encoding != "UTF8" && encoding != "SQL_ASCII" {
		return false
	}
	if !c.deterministic {
		return false
	}
	switch c.provider {
	case "c":
		return c.collate == "C" || c.collate == "POSIX" || isCUTF8(c.collate)
	case "b":
		return c.locale == "C" || isCUTF8(c.locale)
	}
	return false
}

// isCUTF8 reports whether a locale name is C.UTF-8, in any of its
// spellings (C.UTF-8, C.utf8, ...).
func isCUTF8(locale string) bool {
	return strings.EqualFold(locale, "C.UTF-8") || strings.EqualFold(locale, "C.UTF8")
}

// probeShard runs sql, a query of one row, on a placement a read of shard
// index idx of p's table may use (Cursor.OnShard, failing over as reads
// do), and returns the row's values as pgx decodes them (jsonb as
// map[string]any).
func probeShard(ctx context.Context, vc Cursor, p *plan.Target, idx int, sql string, args []any) ([]any, error) {
	var vals []any
	err := vc.OnShard(ctx, p, idx, func(c *pgx.Conn) error {
		row, err := c.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer row.Close()
		if !row.Next() {
			if err := row.Err(); err != nil {
				return err
			}
			return sqlerr.New(sqlerr.InternalError, "probe of shard %d returned no row", p.Table.Shards[idx].ID)
		}
		if vals, err = row.Values(); err != nil {
			return err
		}
		return row.Err()
	})
	return vals, err
}
