package engine

import "github.com/pgshard/pgshard/planner"

// Build returns the tree of primitives that runs p, or nil for the plans
// the driver runs itself (Passthrough statements and transaction control,
// which belong to the session). The tree is made once per plan and kept
// with it (planner.Plan.Primitives), immutable and shared by every
// connection: after the first call Build allocates nothing, so it may run
// on every execute of a cached plan.
func Build(p *planner.Plan) Primitive {
	prim, _ := p.Primitives(build).(Primitive)
	return prim
}

// build makes the tree of primitives of p (Build).
func build(p *planner.Plan) any {
	if p.Tx != nil {
		return nil
	}
	switch p.Kind {
	case planner.Router:
		return &Route{Target: p.ShardTarget(), Shards: p, InsertRows: len(p.InsertKeys)}
	case planner.Scatter:
		return buildScatter(p)
	case planner.Admin:
		call := p.Admin
		args := make([]Resolver, len(call.Args))
		for i, v := range call.Args {
			args[i] = v
		}
		return &Admin{Function: call.Function, Args: args, ArgsSQL: call.ArgsSQL}
	case planner.Materialize:
		mp := p.Materialize
		subs := make([]MaterializedSubquery, len(mp.Subqueries))
		for i, sq := range mp.Subqueries {
			subs[i] = MaterializedSubquery{SQL: sq.SQL, TypedSQL: sq.TypedSQL, Params: sq.Params, Names: sq.Names, Sending: sq}
		}
		return Materialize{Subqueries: subs, Outer: mp, Args: mp.Args, Broadcast: mp.Broadcast}
	case planner.Concatenate:
		return &Concatenate{Arms: p.Concatenate.Arms}
	case planner.SchemaChange:
		d := p.DDL
		return &DDL{Target: p.ShardTarget(), Op: d.Op, Tables: d.Tables, TemplateSQL: d.TemplateSQL, Concurrent: d.Concurrent,
			IndexName: d.IndexName, KeyRename: d.KeyRename, Defaults: d.Defaults, Functions: d.Functions, Statements: d}
	case planner.Explain:
		ex := p.Explain
		return &Explain{Options: ex.Options, Analyze: ex.Analyze, Input: Build(ex.Inner), InnerKind: ex.Inner.Kind.String()}
	}
	return nil
}

func buildScatter(p *planner.Plan) Primitive {
	switch {
	case p.Copy != nil && p.Copy.From:
		cp := p.Copy
		return &CopyFrom{Table: p.Table, Target: p.ShardTarget(), Columns: cp.Columns, Types: cp.Types, KeyIndex: cp.KeyIndex, Given: cp.Given, DefaultsSQL: cp.DefaultsSQL, Binary: cp.Binary, Statements: p}
	case p.Copy != nil:
		// A SELECT's own plan knows every table it reads.
		read := p.ShardTarget()
		if p.Copy.Query != nil {
			read = p.Copy.Query.ShardTarget()
		}
		return &CopyTo{Table: p.Table, Read: read, Header: p.Copy.Header, Statements: p}
	case p.InsertSelect != nil:
		return buildInsertSelect(p)
	case p.Modifies:
		return &ScatterWrite{Target: p.ShardTarget(), Shards: p}
	case p.SortMerge != nil:
		m := p.SortMerge
		return &SortMerge{Target: p.ShardTarget(), Shards: p, Merge: m, Keys: m.Keys, Extra: m.Extra, Limit: m.Limit, Offset: m.Offset, Params: m.Params, Fallback: scatterRead(p)}
	}
	return scatterRead(p)
}

// scatterRead is the read of a Scatter plan without its streaming merge.
func scatterRead(p *planner.Plan) scatterInput {
	switch {
	case p.Combine != nil:
		return Combine{Target: p.ShardTarget(), Shards: p, Step: p.Combine, Params: p.Combine.Params, Columns: p.Combine.Columns, Mode: p.Combine.Mode}
	case p.Aggregates != nil:
		return &Aggregate{Target: p.ShardTarget(), Shards: p, Aggregates: p.Aggregates}
	}
	return &Scatter{Target: p.ShardTarget(), Shards: p}
}

// buildInsertSelect makes the InsertSelect of p.
func buildInsertSelect(p *planner.Plan) *InsertSelect {
	ip := p.InsertSelect
	s := &InsertSelect{
		Target: p.ShardTarget(), Version: p.Version, Shards: p, Client: ip,
		SelectSQL: ip.SelectSQL, SelectParams: ip.SelectParams, Columns: ip.Columns, KeyIndex: ip.KeyIndex,
		Defaults: ip.Defaults, DefaultsCount: ip.DefaultsCount, ClientReason: ip.ClientReason,
	}
	if pd := ip.Pushdown; pd != nil {
		s.Pushdown = &InsertPushdown{Select: pd.Select.ShardTarget(), Params: pd.Params, ConflictParams: pd.ConflictParams, Sources: pd.Sources, Shards: pd}
	}
	return s
}
