package engine

import "github.com/pgshard/pgshard/planner"

// Build returns the tree of primitives that runs p, or nil for the plans
// the driver runs itself (Passthrough statements and transaction control,
// which belong to the session). It allocates nothing for a single-shard
// plan (Route is one pointer), so it may run on every execute of a cached
// plan.
func Build(p *planner.Plan) Primitive {
	if p.Tx != nil {
		return nil
	}
	switch p.Kind {
	case planner.Router:
		return Route{Plan: p}
	case planner.Scatter:
		return buildScatter(p)
	case planner.Admin:
		return Admin{Plan: p}
	case planner.Materialize:
		return Materialize{Plan: p}
	case planner.Concatenate:
		return Concatenate{Plan: p}
	case planner.SchemaChange:
		return DDL{Plan: p}
	case planner.Explain:
		return &Explain{Plan: p, Input: Build(p.Explain.Inner)}
	}
	return nil
}

func buildScatter(p *planner.Plan) Primitive {
	switch {
	case p.Copy != nil && p.Copy.From:
		return CopyFrom{Plan: p}
	case p.Copy != nil:
		return CopyTo{Plan: p}
	case p.InsertSelect != nil:
		return InsertSelect{Plan: p}
	case p.Modifies:
		return ScatterWrite{Plan: p}
	case p.SortMerge != nil:
		return SortMerge{Plan: p}
	}
	return scatterRead(p)
}

// scatterRead is the read of a Scatter plan without its streaming merge.
func scatterRead(p *planner.Plan) scatterInput {
	switch {
	case p.Combine != nil:
		return Combine{Plan: p}
	case p.Aggregates != nil:
		return Aggregate{Plan: p}
	}
	return Scatter{Plan: p}
}
