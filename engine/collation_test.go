package engine

import "testing"

// TestTextOrderIsBytewise decides, from pg_collation and pg_database rows as
// the probe reads them (jsonb, columns of PostgreSQL 14 to 17), whether the
// merge may compare text by its bytes.
func TestTextOrderIsBytewise(t *testing.T) {
	libcDefault := map[string]any{"oid": 100, "collname": "default", "collprovider": "d", "collisdeterministic": true}
	pg15 := func(provider, collate, icu string) map[string]any {
		return map[string]any{"datlocprovider": provider, "datcollate": collate, "datctype": collate, "daticulocale": icu}
	}
	pg17 := func(provider, collate, locale string) map[string]any {
		return map[string]any{"datlocprovider": provider, "datcollate": collate, "datctype": collate, "datlocale": locale}
	}
	pg14 := map[string]any{"datcollate": "C", "datctype": "C"}
	coll := func(provider, collate, locale string, deterministic bool) map[string]any {
		return map[string]any{"collprovider": provider, "collcollate": collate, "colliculocale": locale, "collisdeterministic": deterministic}
	}
	coll17 := func(provider, locale string) map[string]any {
		return map[string]any{"collprovider": provider, "collcollate": nil, "colllocale": locale, "collisdeterministic": true}
	}
	for _, tc := range []struct {
		name     string
		coll, db map[string]any
		encoding string
		want     bool
	}{
		{"default, libc C", libcDefault, pg15("c", "C", ""), "UTF8", true},
		{"default, libc POSIX", libcDefault, pg15("c", "POSIX", ""), "UTF8", true},
		{"default, libc C.UTF-8", libcDefault, pg15("c", "C.UTF-8", ""), "UTF8", true},
		{"default, libc C.utf8", libcDefault, pg15("c", "C.utf8", ""), "UTF8", true},
		{"default, libc en_US.UTF-8", libcDefault, pg15("c", "en_US.UTF-8", ""), "UTF8", false},
		// The issue: ICU default with datcollate C.UTF-8 (initdb's --locale).
		{"default, ICU en-US", libcDefault, pg15("i", "C.UTF-8", "en-US"), "UTF8", false},
		{"default, ICU und, datcollate C", libcDefault, pg15("i", "C", "und"), "UTF8", false},
		{"default, PostgreSQL 14 (libc)", libcDefault, pg14, "UTF8", true},
		{"default, builtin C", libcDefault, pg17("b", "C", "C"), "UTF8", true},
		{"default, builtin C.UTF-8", libcDefault, pg17("b", "C", "C.UTF-8"), "UTF8", true},
		{"default, builtin PG_UNICODE_FAST", libcDefault, pg17("b", "C", "PG_UNICODE_FAST"), "UTF8", false},
		{"default, ICU on PostgreSQL 17", libcDefault, pg17("i", "C", "en-US"), "UTF8", false},
		{"COLLATE C in an ICU database", coll("c", "C", "", true), pg15("i", "C.UTF-8", "en-US"), "UTF8", true},
		{"COLLATE ucs_basic", coll("c", "C", "", true), pg15("i", "C", "en-US"), "UTF8", true},
		{"COLLATE C.utf8", coll("c", "C.utf8", "", true), pg15("i", "C", "en-US"), "UTF8", true},
		{"COLLATE und-x-icu", coll("i", "und", "und", true), pg15("c", "C", ""), "UTF8", false},
		{"nondeterministic ICU", coll("i", "und-u-ks-level2", "und-u-ks-level2", false), pg15("c", "C", ""), "UTF8", false},
		{"COLLATE en_US", coll("c", "en_US.utf8", "", true), pg15("c", "C", ""), "UTF8", false},
		{"builtin C.UTF-8 collation (17)", coll17("b", "C.UTF-8"), pg17("c", "C", ""), "UTF8", true},
		{"ICU collation (17)", coll17("i", "en-US"), pg17("c", "C", ""), "UTF8", false},
		{"C in SQL_ASCII", libcDefault, pg15("c", "C", ""), "SQL_ASCII", true},
		// WIN1252 orders by its own bytes, not by those of the UTF-8 text pgx reads.
		{"C in WIN1252", libcDefault, pg15("c", "C", ""), "WIN1252", false},
		{"C in LATIN1", coll("c", "C", "", true), pg15("c", "C", ""), "LATIN1", false},
	} {
		if got := textOrderIsBytewise(collationOf(tc.coll, tc.db), tc.encoding); got != tc.want {
			t.Errorf("%s: textOrderIsBytewise(%+v, %s) = %v, want %v", tc.name, collationOf(tc.coll, tc.db), tc.encoding, got, tc.want)
		}
	}
}
