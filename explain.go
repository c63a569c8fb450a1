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
		out := strings.Join(ps, ", ")
		if tables := in.Tables(); len(tables) > 1 && !in.Modifies {
			// A join reads only where every table's shard is finalized.
			var usable []string
			if idx := in.Table.ShardForHash(s.Min); idx >= 0 {
				for _, pl := range catalog.ColocatedPlacements(tables, idx) {
					usable = append(usable, pl.Node.String())
				}
			}
			if len(usable) == 0 {
				usable = []string{"none"}
			}
			out += "; every co-located shard finalized on: " + strings.Join(usable, ", ")
		}
		return out
	}
	switch {
	case in.InsertSelect != nil:
		if err := cn.explainInsertSelect(ctx, in, nargs, prefix, add, placements, shardLines); err != nil {
			return nil, err
		}
	case in.Kind == planner.Router:
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
	case in.Kind == planner.Scatter:
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
		shardSQL := in.ShardSQL
		switch m := in.SortMerge; {
		case in.Modifies:
			merge = "run on each shard in one transaction (two-phase commit), add up rows affected"
		case in.Aggregates != nil:
			merge = "add up the shards' count and sum"
		case m != nil && !m.State().Refused && (cn.tx == nil || len(shards) == 1):
			merge = fmt.Sprintf("merge the shards' sorted rows as they stream in (k-way, keys %s)", m.KeysString())
			if m.Offset.Set || m.Limit.Set {
				merge += fmt.Sprintf(", then OFFSET %s LIMIT %s", m.Offset, m.Limit)
			}
			if m.Extra > 0 {
				merge += fmt.Sprintf(", dropping %d sort columns", m.Extra)
			}
			merge += "; PostgreSQL combines instead when a key cannot be compared exactly in Go"
			shardSQL = m.ShardSQL
			bound = make([]driver.NamedValue, 0, len(m.Params))
			for i, a := range m.ShardArgs(args) {
				bound = append(bound, driver.NamedValue{Ordinal: i + 1, Value: a})
			}
		case in.Combine != nil:
			merge = fmt.Sprintf("PostgreSQL combines the shards' partial rows (%s, %d columns)", in.Combine.Mode, in.Combine.Columns)
		}
		add("pgshard: Scatter over %d of %d shards of %s", len(shards), len(in.Table.Shards), in.Table.Name)
		add("  merge: %s", merge)
		for i, idx := range shards {
			s := &in.Table.Shards[idx]
			sql, err := shardSQL(idx)
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
	case in.Kind == planner.Materialize:
		m := in.Materialize
		add("pgshard: Materialize: %d subqueries run first, each through pgshard on its own; then the statement runs through pgshard over their rows (text arrays cast back to the subqueries' column types)", len(m.Subqueries))
		for i, sq := range m.Subqueries {
			add("  subquery %d: %s", i+1, sq.TypedSQL)
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

// explainInsertSelect shows how INSERT ... SELECT runs: shard by shard on
// the workers (the SQL each shard runs, and the first one's own plan), or
// through the client (why, the SELECT's own distributed plan, and the
// statement that inserts the rows into each shard).
func (cn *conn) explainInsertSelect(ctx context.Context, in *planner.Plan, nargs []driver.NamedValue, prefix string, add func(string, ...any), placements func(*catalog.Shard) string, shardLines func(int, string, []driver.NamedValue, string) error) error {
	ip := in.InsertSelect
	reason := ip.ClientReason
	if pd := ip.Pushdown; pd != nil {
		shards, args, err := cn.pushdownShards(ctx, pd, nargs)
		if err != nil {
			return err
		}
		if reason = cn.pushdownBlocked(in, shards); reason == "" {
			var names []string
			for _, s := range pd.Sources {
				names = append(names, s.Name)
			}
			add("pgshard: INSERT ... SELECT pushed down to %d of %d shards of %s (co-located with %s): each shard inserts its own rows on every placement, committed together", len(shards), len(in.Table.Shards), in.Table.Name, strings.Join(names, ", "))
			for i, idx := range shards {
				s := &in.Table.Shards[idx]
				sql, err := pd.ShardSQL(idx)
				if err != nil {
					return err
				}
				add("  shard %d on %s", s.ID, placements(s))
				add("    SQL: %s", sql)
				if i == 0 {
					if err := shardLines(idx, sql, args, "    "); err != nil {
						return err
					}
				}
			}
			return nil
		}
	}
	add("pgshard: INSERT ... SELECT through the client (%s): the SELECT runs once, its rows go to their shards in batches of %d, committed together", reason, insertSelectBatch)
	sql, err := in.ShardSQL(0)
	if err != nil {
		return err
	}
	add("  insert SQL (shard %d): %s", in.Table.Shards[0].ID, sql)
	add("  SELECT: %s", ip.SelectSQL)
	args := plainArgs(nargs)
	sargs := make([]driver.NamedValue, 0, len(ip.SelectParams))
	for i, n := range ip.SelectParams {
		if n <= len(args) {
			sargs = append(sargs, driver.NamedValue{Ordinal: i + 1, Value: args[n-1]})
		}
	}
	rows, err := cn.QueryContext(ctx, prefix+ip.SelectSQL, sargs)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		add("    %v", dest[0])
	}
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
