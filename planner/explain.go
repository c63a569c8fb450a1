package planner

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// ExplainPlan is an EXPLAIN of a statement on distributed tables: the
// driver shows Inner's distributed plan (shards, placements, the SQL sent to
// each, the merge) and each shard's own EXPLAIN with Options.
type ExplainPlan struct {
	Inner *Plan
	// Options is the EXPLAIN option list as written, "(ANALYZE, VERBOSE)" or
	// "" for none, to prefix the shard SQL with.
	Options string
	Analyze bool
}

func planExplain(p *Plan, e *pg_query.ExplainStmt, snap *catalog.Snapshot, env Env) (*Plan, error) {
	inner, err := pg_query.Deparse(&pg_query.ParseResult{Version: parserVersion, Stmts: []*pg_query.RawStmt{{Stmt: e.Query}}})
	if err != nil {
		return nil, sqlerr.New(sqlerr.InternalError, "deparsing the explained statement: %v", err)
	}
	ip, err := New(inner, snap, env)
	if err != nil {
		return nil, err
	}
	ex := &ExplainPlan{Inner: ip}
	var opts []string
	for _, o := range e.Options {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		name := strings.ToUpper(d.Defname)
		on := true
		if d.Arg != nil {
			v := strings.ToLower(stringOf(d.Arg))
			if c := d.Arg.GetAConst(); c != nil {
				if sv := c.GetSval(); sv != nil {
					v = strings.ToLower(sv.Sval)
				}
				if bv := c.GetBoolval(); bv != nil && !bv.Boolval {
					v = "false"
				}
			}
			on = v != "false" && v != "off" && v != "0"
			if name == "FORMAT" {
				if v != "text" {
					return nil, sqlerr.Unsupported("EXPLAIN of a statement on distributed tables supports FORMAT TEXT only")
				}
				continue
			}
		}
		if name == "ANALYZE" && on {
			ex.Analyze = true
		}
		if on {
			opts = append(opts, name)
		} else {
			opts = append(opts, name+" false")
		}
	}
	if ex.Analyze && ip.Modifies {
		return nil, sqlerr.Unsupported("EXPLAIN ANALYZE of a modification of distributed tables is not supported: it would write to one placement only")
	}
	if len(opts) > 0 {
		ex.Options = "(" + strings.Join(opts, ", ") + ")"
	}
	p.Kind = Explain
	p.Explain = ex
	return p, nil
}
