package pgshard

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/merge"
	"github.com/pgshard/pgshard/planner"
)

// sortMergeQuery answers a Scatter plan that only orders and cuts rows by
// streaming (planner.SortMergePlan): the shards' sorted rows are merged in a
// k-way merge as they arrive, OFFSET rows are skipped, the shard queries stop
// once LIMIT rows are out, and memory stays at a small buffer per shard.
//
// handled is false when the rows cannot be merged exactly in Go — a key of a
// type whose order Go does not reproduce (merge.CompareFunc), text under a
// collation that is not bytewise, a LIMIT value that is not an integer, or
// several shards inside a transaction, whose one connection per node cannot
// hold several open queries — and the caller then lets PostgreSQL combine
// the rows (combineQuery). Nothing has been sent to the shards then but, the
// first time, the collation probe.
func (cn *conn) sortMergeQuery(ctx context.Context, p *planner.Plan, args []any) (rows driver.Rows, handled bool, err error) {
	m := p.SortMerge
	state := m.State()
	if state.Refused {
		return nil, false, nil
	}
	shards, err := cn.targetShards(p, args)
	if err != nil {
		return nil, true, err
	}
	if cn.tx != nil && len(shards) > 1 {
		return nil, false, nil
	}
	offset, ok, err := boundValue(m.Offset, args, "OFFSET", sqlerr.InvalidRowCountInResultOffset)
	if err != nil || !ok {
		return nil, ok, err
	}
	count, ok, err := boundValue(m.Limit, args, "LIMIT", sqlerr.InvalidRowCountInLimit)
	if err != nil || !ok {
		return nil, ok, err
	}
	shardArgs := make([]driver.NamedValue, len(m.Params))
	for i, a := range m.ShardArgs(args) {
		shardArgs[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	if !state.Known && len(m.Keys) > 0 {
		if state, err = cn.learnMergeState(ctx, p, shards[0], shardArgs); err != nil {
			return nil, true, err
		}
		m.SetState(state)
	}
	shapes := newShardShapes(p)
	open := func(ctx context.Context, i int) (driver.Rows, error) {
		sql, err := m.ShardSQL(shards[i])
		if err != nil {
			return nil, err
		}
		return cn.readShardChecked(ctx, p, shapes, shards[i], sql, shardArgs)
	}
	var sources []driver.Rows
	release := func() {}
	if len(shards) == 1 {
		src, err := open(ctx, 0)
		if err != nil {
			return nil, true, err
		}
		sources = []driver.Rows{src}
	} else {
		fp := cn.planFanout(p, shards)
		if fp.split {
			// A node has more shards than its pool has connections: they
			// cannot all stream at once.
			return nil, false, nil
		}
		if sources, release, err = cn.streamShards(ctx, fp, open); err != nil {
			return nil, true, err
		}
	}
	keys, ok := mergeKeys(m, state, sources[0], !describesStatements(cn.c.poolConfig.ConnConfig.DefaultQueryExecMode))
	if !ok {
		m.SetState(planner.MergeState{Known: true, Refused: true})
		err := merge.CloseAll(sources)
		release()
		if err != nil && ctx.Err() != nil {
			return nil, true, err
		}
		return nil, false, nil
	}
	visible := len(sources[0].Columns()) - m.Extra
	switch {
	case len(sources) == 1:
		rows = sources[0]
	case len(keys) == 0:
		rows = merge.Concatenate(sources)
	default:
		rows = merge.MergeSort(sources, keys)
	}
	if offset > 0 || count >= 0 {
		rows = merge.Limit(rows, offset, count)
	}
	return merge.OnClose(merge.Project(rows, visible), release), true, nil
}

// mergeKeys builds the merge's sort keys from the shard rows' column types;
// ok is false when Go cannot compare some key exactly as PostgreSQL does.
//
// Keys whose values arrive as text that the session's settings change are
// not merged in Go: PostgreSQL orders them (combineQuery, which reads the
// shards' values in binary). Interval always arrives as text (stdlib reads
// it so), printed in the session's IntervalStyle; textResults tells that
// every value arrives as text (the connections' query mode is the simple
// protocol or exec), and then float and date/time keys are not merged
// either (extra_float_digits below 1 rounds floats, so that distinct values
// compare equal; DateStyle changes what there is to parse).
func mergeKeys(m *planner.SortMergePlan, state planner.MergeState, src driver.Rows, textResults bool) ([]merge.SortKey, bool) {
	width := len(src.Columns())
	visible := width - m.Extra
	typed, _ := src.(driver.RowsColumnTypeDatabaseTypeName)
	if typed == nil || visible < 0 {
		return nil, false
	}
	keys := make([]merge.SortKey, len(m.Keys))
	for i, k := range m.Keys {
		col := k.Column
		if k.Extra {
			col += visible
		} else if col >= visible {
			return nil, false
		}
		bytewise := i < len(state.Bytewise) && state.Bytewise[i]
		dbType := typed.ColumnTypeDatabaseTypeName(col)
		if dbType == "INTERVAL" || (textResults && settingDependentText[dbType]) {
			return nil, false
		}
		compare, ok := merge.CompareFunc(dbType, bytewise)
		if !ok {
			return nil, false
		}
		keys[i] = merge.SortKey{Column: col, Desc: k.Desc, NullsFirst: k.NullsFirst, Compare: compare}
	}
	return keys, true
}

// settingDependentText are the key types (as database/sql names them)
// whose text the session's settings change (mergeKeys).
var settingDependentText = map[string]bool{"FLOAT4": true, "FLOAT8": true, "INTERVAL": true, "DATE": true, "TIME": true, "TIMESTAMP": true, "TIMESTAMPTZ": true}

// boundValue reads a LIMIT or OFFSET's value from the arguments: -1 when
// there is none (absent, ALL, NULL). ok is false for a value that is not an
// integer (PostgreSQL then judges it). A negative value is PostgreSQL's error.
func boundValue(b planner.Bound, args []any, clause, code string) (n int64, ok bool, err error) {
	if !b.Set {
		return -1, true, nil
	}
	if b.Param == 0 {
		n = b.Const
	} else {
		if b.Param > len(args) {
			return 0, false, nil
		}
		switch v := args[b.Param-1].(type) {
		case nil:
			return -1, true, nil
		case int64:
			n = v
		case int:
			n = int64(v)
		case int32:
			n = int64(v)
		case int16:
			n = int64(v)
		case int8:
			n = int64(v)
		case uint32:
			n = int64(v)
		case uint16:
			n = int64(v)
		case uint8:
			n = int64(v)
		case uint64:
			if v > math.MaxInt64 {
				return 0, false, nil
			}
			n = int64(v)
		case uint:
			if uint64(v) > math.MaxInt64 {
				return 0, false, nil
			}
			n = int64(v)
		case string:
			if n, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
				return 0, false, nil
			}
		default:
			return 0, false, nil
		}
	}
	if n < 0 {
		return 0, true, sqlerr.New(code, "%s must not be negative", clause)
	}
	return n, true, nil
}

// learnMergeState asks PostgreSQL, on a placement of shard index shard,
// which collation each sort key's values have, without running the query
// (LIMIT 0; as text, so that every type has one: a text key keeps its own),
// what that collation is (pg_collation: provider, locale, determinism), and
// what the database's default collation and encoding are (pg_database): the
// merge compares text in Go only where PostgreSQL orders it by its bytes
// (textOrderIsBytewise). Rows of pg_collation and pg_database are read as
// jsonb, so that the columns of every PostgreSQL version are found by name.
func (cn *conn) learnMergeState(ctx context.Context, p *planner.Plan, shard int, args []driver.NamedValue) (planner.MergeState, error) {
	m := p.SortMerge
	sql, err := m.ShardSQL(shard)
	if err != nil {
		return planner.MergeState{}, err
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
	var state planner.MergeState
	err = cn.onPlacement(ctx, p, shard, func(dc *stdlib.Conn) error {
		row, err := dc.Conn().Query(ctx, q, values...)
		if err != nil {
			return err
		}
		defer row.Close()
		if !row.Next() {
			if err := row.Err(); err != nil {
				return err
			}
			return sqlerr.New(sqlerr.InternalError, "collation probe returned no row")
		}
		vals, err := row.Values()
		if err != nil {
			return err
		}
		database, _ := vals[0].(map[string]any)
		encoding, _ := vals[1].(string)
		state = planner.MergeState{Known: true, Bytewise: make([]bool, len(m.Keys))}
		for i := range m.Keys {
			coll, collatable := vals[i+2].(map[string]any)
			state.Bytewise[i] = !collatable || textOrderIsBytewise(collationOf(coll, database), encoding)
		}
		return row.Err()
	})
	if err != nil {
		return planner.MergeState{}, fmt.Errorf("pgshard: reading the collations of ORDER BY keys: %w", err)
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
