package engine

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/plan"
)

// Explain answers EXPLAIN of a statement on distributed tables by walking
// the tree of the statement it explains (Input): each primitive describes
// itself (Primitive.Describe) — the shards and placements chosen, the SQL
// sent to each, the merge above them — with PostgreSQL's own EXPLAIN of a
// shard's SQL. With ANALYZE every shard runs its SQL, and each one's time
// and row count are listed. The last line is the tree itself (Tree):
// "pgshard: tree SortMerge(Combine)".
//
// An Explain is made once per plan (planner.Build), immutable and shared by every
// connection that runs it.
type Explain struct {
	// Options is the EXPLAIN option list as written, "(ANALYZE, VERBOSE)"
	// or "" for none, to prefix the shard SQL with.
	Options string
	// Analyze is set for EXPLAIN ANALYZE: every shard runs its SQL.
	Analyze bool
	// Input is the tree of the statement explained; nil for one the
	// session runs itself.
	Input Primitive
	// InnerKind names how the statement explained runs, for one without a
	// tree (planner.Kind).
	InnerKind string
}

func (e *Explain) Inputs() []Primitive { return []Primitive{e.Input} }

func (e *Explain) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(e.Query(ctx, vc, nargs))
}

// Query returns the lines of the plan, one row each, in a column named
// QUERY PLAN, as PostgreSQL's EXPLAIN does.
func (e *Explain) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	d := &Description{Prefix: "EXPLAIN ", Analyze: e.Analyze}
	if e.Options != "" {
		d.Prefix += e.Options + " "
	}
	if e.Input == nil {
		d.Add("pgshard: %s", e.InnerKind)
	} else {
		if err := e.Input.Describe(ctx, vc, nargs, d); err != nil {
			return nil, err
		}
		d.Add("pgshard: tree %s", Tree(e.Input))
	}
	b := &Buffered{Cols: []Column{{Name: "QUERY PLAN", DBType: "TEXT", ScanType: reflect.TypeFor[string]()}}}
	for _, l := range d.Lines {
		b.Data = append(b.Data, []driver.Value{l})
	}
	return b, nil
}

// Describe of an Explain describes what it explains.
func (e *Explain) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	if e.Input == nil {
		d.Add("pgshard: %s", e.InnerKind)
		return nil
	}
	return e.Input.Describe(ctx, vc, nargs, d)
}

// Tree prints a primitive and its inputs, each by its type's name:
// "SortMerge(Combine)", "Route".
func Tree(p Primitive) string {
	t := reflect.TypeOf(p)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var b strings.Builder
	b.WriteString(t.Name())
	if in := p.Inputs(); len(in) > 0 {
		b.WriteByte('(')
		for i, c := range in {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(Tree(c))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Description collects the lines of one EXPLAIN as the tree's primitives
// describe themselves. Used by one goroutine.
type Description struct {
	// Prefix is what a shard's SQL is prefixed with to have the shard
	// explain it: "EXPLAIN " and the options as written.
	Prefix string
	// Analyze is set for EXPLAIN ANALYZE: every shard runs its SQL.
	Analyze bool
	// Lines are the lines so far.
	Lines []string
}

// Add appends one line.
func (d *Description) Add(format string, args ...any) {
	d.Lines = append(d.Lines, fmt.Sprintf(format, args...))
}

// ShardLines adds, each with indent, the lines of the shard's own EXPLAIN
// of sql on shard index idx of p's table.
func (d *Description) ShardLines(ctx context.Context, vc Cursor, p plan.Targeted, idx int, sql string, args []driver.NamedValue, indent string) error {
	out, err := d.explainOn(ctx, vc, p, idx, d.Prefix+sql, args)
	if err != nil {
		return err
	}
	for _, l := range out {
		d.Add("%s%s", indent, l)
	}
	return nil
}

// explainOn runs an EXPLAIN of plan p's shard index idx on a placement a
// read of it may use, and returns its lines.
func (d *Description) explainOn(ctx context.Context, vc Cursor, p plan.Targeted, idx int, sql string, args []driver.NamedValue) ([]string, error) {
	rows, err := vc.ReadShard(ctx, p, idx, sql, args)
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

// Placements lists a shard's placements with their states; for a read of
// co-located tables, also the nodes it can read on.
func (d *Description) Placements(x plan.Targeted, s *catalog.Shard) string {
	in := x.ShardTarget()
	var ps []string
	for _, pl := range s.Placements {
		state := map[catalog.ShardState]string{catalog.StateFinalized: "finalized", catalog.StateInactive: "inactive", catalog.StateFilling: "filling"}[pl.State]
		ps = append(ps, fmt.Sprintf("%s (%s)", pl.Node, state))
	}
	out := strings.Join(ps, ", ")
	if tables := in.Tables; len(tables) > 1 && !in.Modifies {
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

// describeScatter is Describe of the multi-shard primitives (Scatter,
// ScatterWrite, Aggregate, SortMerge, Combine): the shards chosen, how their
// answers are merged (how), each shard's SQL, and the first shard's EXPLAIN
// (every shard's row count and time with ANALYZE).
func describeScatter(ctx context.Context, vc Cursor, in *plan.Target, q ShardQueries, nargs []driver.NamedValue, d *Description, how scatterMerge) error {
	args, bound, err := vc.Bind(ctx, in, nargs)
	if err != nil {
		return err
	}
	shards, err := targetShards(q, args)
	if err != nil {
		return err
	}
	bound = renumber(plan.ShardArgs(in.ShardParams, bound))
	merge, shardSQL, own := how(vc, shards, args)
	if shardSQL == nil {
		shardSQL = q.ShardSQL
	} else {
		bound = own
	}
	d.Add("pgshard: Scatter over %d of %d shards of %s", len(shards), len(in.Table.Shards), in.Table.Name)
	d.Add("  merge: %s", merge)
	for i, idx := range shards {
		s := &in.Table.Shards[idx]
		sql, err := shardSQL(idx)
		if err != nil {
			return err
		}
		d.Add("  shard %d on %s", s.ID, d.Placements(in, s))
		d.Add("    SQL: %s", sql)
		switch {
		case d.Analyze:
			out, err := d.explainOn(ctx, vc, in, idx, d.Prefix+sql, bound)
			if err != nil {
				return err
			}
			d.Add("    %s", summarizeAnalyze(out))
		case i == 0:
			if err := d.ShardLines(ctx, vc, in, idx, sql, bound, "    "); err != nil {
				return err
			}
		}
	}
	return nil
}

// scatterMerge says, for EXPLAIN, how a multi-shard primitive puts the
// answers of shards together, given its arguments (Eval's appended); and,
// for one that sends the shards statements of its own (SortMerge's), those
// statements and their arguments (shardSQL nil: the ShardQueries' own).
type scatterMerge func(vc Cursor, shards []int, args []any) (merge string, shardSQL func(int) (string, error), bound []driver.NamedValue)

// concatenated is how Scatter merges.
func concatenated(Cursor, []int, []any) (string, func(int) (string, error), []driver.NamedValue) {
	return "concatenate the shards' rows, in parallel", nil, nil
}

// written is how ScatterWrite merges.
func written(_ Cursor, shards []int, _ []any) (string, func(int) (string, error), []driver.NamedValue) {
	if len(shards) == 1 {
		return "one shard: run as a single-shard write on every writable placement, no implicit transaction", nil, nil
	}
	return "run on each shard in one transaction (two-phase commit), add up rows affected", nil, nil
}

// aggregated is how Aggregate merges.
func aggregated(Cursor, []int, []any) (string, func(int) (string, error), []driver.NamedValue) {
	return "add up the shards' count and sum", nil, nil
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
