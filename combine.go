package pgshard

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/planner"
)

// partialRows are one shard's answer to a partial query, column by column,
// in PostgreSQL's text form (nil for NULL).
type partialRows struct {
	oids []uint32
	cols [][]*string
}

// combineQuery runs a plan's partial query on every shard (in parallel
// outside a transaction), then the combine query over all partial rows on
// one worker: PostgreSQL computes the final answer.
func (cn *conn) combineQuery(ctx context.Context, p *planner.Plan, nargs []driver.NamedValue) (driver.Rows, error) {
	args, _, err := cn.bindArgs(ctx, p, nargs)
	if err != nil {
		return nil, err
	}
	shardArgs := append([]any{pgx.QueryResultFormats{pgx.TextFormatCode}}, planner.ShardArgs(p, args)...)
	shards, err := cn.targetShards(p, args)
	if err != nil {
		return nil, err
	}
	n := len(shards)
	parts := make([]partialRows, n)
	errs := make([]error, n)
	run := func(i int) {
		sql, err := p.ShardSQL(shards[i])
		if err != nil {
			errs[i] = err
			return
		}
		errs[i] = cn.onPlacement(ctx, &p.Table.Shards[shards[i]], func(dc *stdlib.Conn) error {
			rows, err := dc.Conn().Query(ctx, sql, shardArgs...)
			if err != nil {
				return err
			}
			defer rows.Close()
			fds := rows.FieldDescriptions()
			part := partialRows{oids: make([]uint32, len(fds)), cols: make([][]*string, len(fds))}
			for j, fd := range fds {
				part.oids[j] = fd.DataTypeOID
			}
			for rows.Next() {
				for j, raw := range rows.RawValues() {
					if raw == nil {
						part.cols[j] = append(part.cols[j], nil)
						continue
					}
					s := string(raw)
					part.cols[j] = append(part.cols[j], &s)
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
			parts[i] = part
			return nil
		})
	}
	if cn.tx != nil {
		for i := 0; i < n; i++ {
			if run(i); errs[i] != nil {
				return nil, errs[i]
			}
		}
	} else {
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); run(i) }()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
	}
	k := len(parts[0].oids)
	arrays := make([][]*string, k)
	for _, part := range parts {
		for j := range arrays {
			arrays[j] = append(arrays[j], part.cols[j]...)
		}
	}
	home := &p.Table.Shards[shards[0]]
	var sql string
	err = cn.onPlacement(ctx, home, func(dc *stdlib.Conn) error {
		types, err := cn.c.typeNames(ctx, dc.Conn(), parts[0].oids)
		if err != nil {
			return err
		}
		sql, err = p.Combine.SQL(types)
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
	return cn.readShard(ctx, home, sql, cargs)
}

// onPlacement calls fn with a connection to the first reachable finalized
// placement of shard, failing over as reads do, and releases it after.
func (cn *conn) onPlacement(ctx context.Context, shard *catalog.Shard, fn func(dc *stdlib.Conn) error) error {
	var lastErr error
	for _, pl := range cn.readPlacements(shard) {
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
	return unreachable(shard, lastErr)
}

// typeNames returns format_type's name for each type OID, from a cache
// filled by asking the server once per OID.
func (c *Connector) typeNames(ctx context.Context, conn *pgx.Conn, oids []uint32) ([]string, error) {
	c.typeMu.Lock()
	defer c.typeMu.Unlock()
	if c.types == nil {
		c.types = map[uint32]string{}
	}
	var missing []uint32
	for _, o := range oids {
		if _, ok := c.types[o]; !ok {
			missing = append(missing, o)
		}
	}
	if len(missing) > 0 {
		rows, err := conn.Query(ctx, `SELECT o, format_type(o, NULL) FROM unnest($1::oid[]) AS o`, missing)
		if err != nil {
			return nil, fmt.Errorf("pgshard: naming result types: %w", err)
		}
		for rows.Next() {
			var o uint32
			var name string
			if err := rows.Scan(&o, &name); err != nil {
				rows.Close()
				return nil, err
			}
			c.types[o] = name
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make([]string, len(oids))
	for i, o := range oids {
		out[i] = c.types[o]
	}
	return out, nil
}
