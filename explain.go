package pgshard

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/planner"
)

// explain answers EXPLAIN of a statement on distributed tables: the
// distributed plan (the shards and placements chosen, the SQL sent to each,
// the merge above them), then PostgreSQL's own EXPLAIN of a shard's SQL.
// With ANALYZE every shard runs its SQL, and each one's time and row count
// are listed.
func (cn *conn) explain(ctx context.Context, p *planner.Plan, nargs []driver.NamedValue) (driver.Rows, error) {
	ex := p.Explain
	in := ex.Inner
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	prefix := "EXPLAIN "
	if ex.Options != "" {
		prefix += ex.Options + " "
	}
	shardLines := func(idx int, sql string, args []driver.NamedValue, indent string) error {
		out, err := cn.explainOn(ctx, in, idx, prefix+sql, args)
		if err != nil {
			return err
		}
		for _, l := range out {
			add("%s%s", indent, l)
		}
		return nil
	}
	placements := func(s *catalog.Shard) string {
		var ps []string
		for _, pl := range s.Placements {
			state := map[catalog.ShardState]string{catalog.StateFinalized: "finalized", catalog.StateInactive: "inactive", catalog.StateFilling: "filling"}[pl.State]
			ps = append(ps, fmt.Sprintf("%s (%s)", pl.Node, state))
		}
		return strings.Join(ps, ", ")
	}
	switch in.Kind {
	case planner.Router:
		r, err := cn.route(ctx, in, nargs)
		if err != nil {
			return nil, err
		}
		if r.parts != nil {
			add("pgshard: INSERT split by shard into %d statements of %s, committed together", len(r.parts), in.Table.Name)
			for _, part := range r.parts {
				s := &in.Table.Shards[part.Shard]
				add("  shard %d (rows %v) on %s", s.ID, part.Rows, placements(s))
				add("    SQL: %s", part.SQL)
			}
			break
		}
		verb := "reads from the first reachable finalized placement"
		if in.Modifies {
			verb = "writes every finalized placement, committed together"
		}
		add("pgshard: Router to shard %d of %s (%d shards); %s", r.shard.ID, in.Table.Name, len(in.Table.Shards), verb)
		add("  placements: %s", placements(r.shard))
		add("  SQL: %s", r.sql)
		if err := shardLines(r.index, r.sql, r.args, "  "); err != nil {
			return nil, err
		}
	case planner.Scatter:
		args, bound, err := cn.bindArgs(ctx, in, nargs)
		if err != nil {
			return nil, err
		}
		shards, err := cn.targetShards(in, args)
		if err != nil {
			return nil, err
		}
		bound = renumber(planner.ShardArgs(in, bound))
		merge := "concatenate the shards' rows, in parallel"
		switch {
		case in.Modifies:
			merge = "run on each shard in one transaction (two-phase commit), add up rows affected"
		case in.Aggregates != nil:
			merge = "add up the shards' count and sum"
		case in.Combine != nil:
			merge = fmt.Sprintf("PostgreSQL combines the shards' partial rows (%s, %d columns)", in.Combine.Mode, in.Combine.Columns)
		}
		add("pgshard: Scatter over %d of %d shards of %s", len(shards), len(in.Table.Shards), in.Table.Name)
		add("  merge: %s", merge)
		for i, idx := range shards {
			s := &in.Table.Shards[idx]
			sql, err := in.ShardSQL(idx)
			if err != nil {
				return nil, err
			}
			add("  shard %d on %s", s.ID, placements(s))
			add("    SQL: %s", sql)
			switch {
			case ex.Analyze:
				out, err := cn.explainOn(ctx, in, idx, prefix+sql, bound)
				if err != nil {
					return nil, err
				}
				add("    %s", summarizeAnalyze(out))
			case i == 0:
				if err := shardLines(idx, sql, bound, "    "); err != nil {
					return nil, err
				}
			}
		}
	default:
		add("pgshard: %s", in.Kind)
	}
	b := &bufferedRows{cols: []columnInfo{{name: "QUERY PLAN", dbType: "TEXT", scanType: reflect.TypeFor[string]()}}}
	for _, l := range lines {
		b.data = append(b.data, []driver.Value{l})
	}
	return b, nil
}

// explainOn runs an EXPLAIN of plan p's shard index idx on a placement a
// read of it may use, and returns its lines.
func (cn *conn) explainOn(ctx context.Context, p *planner.Plan, idx int, sql string, args []driver.NamedValue) ([]string, error) {
	rows, err := cn.readShard(ctx, p, idx, sql, args)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	dest := make([]driver.Value, 1)
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprint(dest[0]))
	}
}

var (
	actualRows    = regexp.MustCompile(`actual time=[0-9.]+\.\.([0-9.]+) rows=([0-9]+)`)
	executionTime = regexp.MustCompile(`Execution Time: ([0-9.]+ ms)`)
)

// summarizeAnalyze condenses a shard's EXPLAIN ANALYZE to its row count and
// execution time.
func summarizeAnalyze(lines []string) string {
	rows, took := "?", "?"
	if len(lines) > 0 {
		if m := actualRows.FindStringSubmatch(lines[0]); m != nil {
			rows = m[2]
		}
	}
	for _, l := range lines {
		if m := executionTime.FindStringSubmatch(l); m != nil {
			took = m[1]
		}
	}
	return fmt.Sprintf("actual rows=%s, execution time %s", rows, took)
}
