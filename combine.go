package pgshard

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// partialRows are one shard's answer to a partial query, column by column,
// in PostgreSQL's text form (nil for NULL).
type partialRows struct {
	types []typeRef
	cols  [][]*string
}

// combineQuery runs a plan's partial query on every shard (in parallel
// outside a transaction), then the combine query over all partial rows on
// one worker: PostgreSQL computes the final answer.
//
// args are the statement's, bound (bindArgs).
func (cn *conn) combineQuery(ctx context.Context, p *planner.Plan, args []any) (driver.Rows, error) {
	shardArgs := append([]any{pgx.QueryResultFormats{pgx.TextFormatCode}}, planner.ShardArgs(p, args)...)
	shards, err := cn.targetShards(p, args)
	if err != nil {
		return nil, err
	}
	n := len(shards)
	parts := make([]partialRows, n)
	shapes := newShardShapes(p)
	limit := int64(maxCombineBytes)
	var held atomic.Int64 // bytes of partial rows read, all shards together
	err = cn.eachShard(n, func(i int) error {
		sql, err := p.ShardSQL(shards[i])
		if err != nil {
			return err
		}
		return cn.onPlacement(ctx, p, shards[i], func(dc *stdlib.Conn) error {
			rows, err := dc.Conn().Query(ctx, sql, shardArgs...)
			if err != nil {
				return err
			}
			defer rows.Close()
			fds := rows.FieldDescriptions()
			if err := shapes.check(shardShape{idx: shards[i], desc: fieldsDescription(dc.Conn().TypeMap(), fds)}); err != nil {
				return err
			}
			part := partialRows{types: make([]typeRef, len(fds)), cols: make([][]*string, len(fds))}
			for j, fd := range fds {
				part.types[j] = typeRef{fd.DataTypeOID, fd.TypeModifier}
			}
			read := int64(0) // this attempt's, given back if it fails over
			for rows.Next() {
				size := int64(0)
				for j, raw := range rows.RawValues() {
					size += partialValueOverhead
					if raw == nil {
						part.cols[j] = append(part.cols[j], nil)
						continue
					}
					size += int64(len(raw))
					s := string(raw)
					part.cols[j] = append(part.cols[j], &s)
				}
				read += size
				if held.Add(size) > limit {
					// Closing the rows reads the rest without keeping it.
					return combineLimitError(limit)
				}
			}
			if err := rows.Err(); err != nil {
				held.Add(-read)
				return err
			}
			parts[i] = part
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	k := len(parts[0].types)
	arrays := make([][]*string, k)
	for _, part := range parts {
		for j := range arrays {
			arrays[j] = append(arrays[j], part.cols[j]...)
		}
	}
	home := shards[0]
	var sql string
	homeSQL, err := p.ShardSQL(shards[0])
	if err != nil {
		return nil, err
	}
	err = cn.onPlacement(ctx, p, home, func(dc *stdlib.Conn) error {
		types, collatable, err := cn.c.typeNames(ctx, dc.Conn(), parts[0].types)
		if err != nil {
			return err
		}
		collations, err := partialCollations(ctx, dc.Conn(), p, homeSQL, collatable, shardArgs)
		if err != nil {
			return err
		}
		sql, err = p.Combine.SQL(planner.CombineInput{Types: types, Collations: collations})
		return err
	})
	if err != nil {
		return nil, err
	}
	cargs := make([]driver.NamedValue, 0, len(p.Combine.Params)+k)
	for _, pn := range p.Combine.Params {
		var v any
		if pn <= len(args) {
			v = args[pn-1]
		}
		cargs = append(cargs, driver.NamedValue{Ordinal: len(cargs) + 1, Value: v})
	}
	for _, a := range arrays {
		if a == nil {
			a = []*string{}
		}
		cargs = append(cargs, driver.NamedValue{Ordinal: len(cargs) + 1, Value: a})
	}
	return cn.readShard(ctx, p, home, sql, cargs)
}

// maxCombineBytes bounds the partial rows a multi-shard query whose answer
// PostgreSQL combines (GROUP BY, DISTINCT, window functions, ...) holds in
// memory, all shards together: beyond it the statement fails (54000) rather
// than exhausting the process's memory. The combine query's arguments
// encode them once more while it is sent.
var maxCombineBytes = 256 << 20

// partialValueOverhead is what one partial value costs besides its text: a
// string header and a pointer to it.
const partialValueOverhead = 24

// combineLimitError is the error of a query whose partial rows exceed
// limit bytes.
func combineLimitError(limit int64) error {
	return sqlerr.New("54000", "the shards' partial results of this multi-shard query (combined by PostgreSQL: GROUP BY, DISTINCT, window functions, ...) exceed pgshard's limit of %s held in memory; filter the rows, group them more coarsely, or fix its partition column by equality", byteSize(limit))
}

// byteSize formats n bytes in MB when it is a whole number of them.
func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// onPlacement calls fn with a connection to the first reachable placement
// a read of plan p's shard index idx may use (readPlacements), failing over
// as reads do, and releases it after.
func (cn *conn) onPlacement(ctx context.Context, p *planner.Plan, idx int, fn func(dc *stdlib.Conn) error) error {
	var lastErr error
	placements := cn.readPlacements(p, idx)
	for _, pl := range placements {
		dc, release, err := cn.workerConn(ctx, pl.Node, false)
		if err == nil {
			err = fn(dc)
			release()
			if err == nil {
				return nil
			}
		}
		if !cn.failoverAllowed(ctx, pl.Node, err) {
			return cn.txFailed(noBadConn(err))
		}
		lastErr = err
	}
	if len(placements) == 0 {
		return noReadPlacement(p, idx)
	}
	return unreachable(&p.Table.Shards[idx], lastErr)
}

// typeRef is a result column's type: its OID and modifier (bit(3),
// char(4), numeric(10,2) keep theirs through the combine step).
type typeRef struct {
	oid    uint32
	typmod int32
}

// typeInfo is what the combine step needs of a result type.
type typeInfo struct {
	name       string // format_type, with the modifier
	collatable bool
}

// typeNames returns format_type's name for each type and whether it is
// collatable, from a cache filled by asking the server once per type.
func (c *Connector) typeNames(ctx context.Context, conn *pgx.Conn, types []typeRef) ([]string, []bool, error) {
	c.typeMu.Lock()
	defer c.typeMu.Unlock()
	if c.types == nil {
		c.types = map[typeRef]typeInfo{}
	}
	for _, t := range types {
		if _, ok := c.types[t]; ok {
			continue
		}
		var ti typeInfo
		if err := conn.QueryRow(ctx, `SELECT format_type($1::oid, $2::int), coalesce((SELECT typcollation <> 0 FROM pg_type WHERE oid = $1::oid), false)`,
			t.oid, t.typmod).Scan(&ti.name, &ti.collatable); err != nil {
			return nil, nil, fmt.Errorf("pgshard: naming result type %d: %w", t.oid, err)
		}
		c.types[t] = ti
	}
	names := make([]string, len(types))
	collatable := make([]bool, len(types))
	for i, t := range types {
		names[i], collatable[i] = c.types[t].name, c.types[t].collatable
	}
	return names, collatable, nil
}

// partialCollations returns the collation of each partial column ("" for
// the database default or a type without collation), so that the combine
// query sorts, groups and compares text as the shards did (COLLATE clauses,
// columns with their own collation). It asks PostgreSQL once per plan,
// without running the partial query (LIMIT 0).
func partialCollations(ctx context.Context, conn *pgx.Conn, p *planner.Plan, partialSQL string, collatable []bool, args []any) ([]string, error) {
	if got, ok := p.Combine.Collations(); ok {
		return got, nil
	}
	n := len(collatable)
	out := make([]string, n)
	var asked []int
	q := "SELECT "
	for i := 0; i < n; i++ {
		if !collatable[i] {
			continue
		}
		if len(asked) > 0 {
			q += ", "
		}
		asked = append(asked, i)
		q += fmt.Sprintf("pg_collation_for((SELECT s.%s FROM (%s) s LIMIT 0))", pgx.Identifier{p.Combine.ColumnName(i)}.Sanitize(), partialSQL)
	}
	if len(asked) == 0 {
		p.Combine.SetCollations(out)
		return out, nil
	}
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pgshard: reading collations of partial results: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		for j, v := range vals {
			i := asked[j]
			if s, ok := v.(string); ok && s != "" && s != `"default"` && s != "default" {
				if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
					s = strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
				}
				out[i] = s
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	p.Combine.SetCollations(out)
	return out, nil
}
