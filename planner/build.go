package planner

import "github.com/pgshard/pgshard/engine"

// Build returns the tree of primitives that runs p, or nil for the plans
// the driver runs itself (Passthrough statements and transaction control,
// which belong to the session). The tree is made once per plan and kept
// with it (Plan.primitives), immutable and shared by every connection:
// after the first call Build allocates nothing, so it may run on every
// execute of a cached plan. Safe for concurrent use.
func Build(p *Plan) engine.Primitive {
	if t := p.primitives.Load(); t != nil {
		return t.root
	}
	t := &primitiveTree{root: build(p)}
	if !p.primitives.CompareAndSwap(nil, t) {
		t = p.primitives.Load()
	}
	return t.root
}

// build makes the tree of primitives of p (Build).
func build(p *Plan) engine.Primitive {
	if p.Tx != nil {
		return nil
	}
	switch p.Kind {
	case Router:
		return &engine.Route{Target: p.ShardTarget(), Shards: p, InsertRows: len(p.InsertKeys)}
	case Scatter:
		return buildScatter(p)
	case Admin:
		call := p.Admin
		args := make([]engine.Resolver, len(call.Args))
		for i, v := range call.Args {
			args[i] = v
		}
		return &engine.Admin{Function: call.Function, Args: args, ArgsSQL: call.ArgsSQL}
	case Materialize:
		mp := p.Materialize
		subs := make([]engine.MaterializedSubquery, len(mp.Subqueries))
		for i, sq := range mp.Subqueries {
			subs[i] = engine.MaterializedSubquery{SQL: sq.SQL, TypedSQL: sq.TypedSQL, Params: sq.Params, Names: sq.Names, Sending: sq}
		}
		return engine.Materialize{Subqueries: subs, Outer: mp, Args: mp.Args, Broadcast: mp.Broadcast}
	case Concatenate:
		return &engine.Concatenate{Arms: p.Concatenate.Arms}
	case SchemaChange:
		d := p.DDL
		return &engine.DDL{Target: p.ShardTarget(), Op: d.Op, Tables: d.Tables, TemplateSQL: d.TemplateSQL, Concurrent: d.Concurrent,
			IndexName: d.IndexName, KeyRename: d.KeyRename, Defaults: d.Defaults, Functions: d.Functions, Statements: d}
	case Explain:
		ex := p.Explain
		return &engine.Explain{Options: ex.Options, Analyze: ex.Analyze, Input: Build(ex.Inner), InnerKind: ex.Inner.Kind.String()}
	}
	return nil
}

func buildScatter(p *Plan) engine.Primitive {
	switch {
	case p.Copy != nil && p.Copy.From:
		cp := p.Copy
		return &engine.CopyFrom{Table: p.Table, Target: p.ShardTarget(), Columns: cp.Columns, Types: cp.Types, KeyIndex: cp.KeyIndex, Given: cp.Given, DefaultsSQL: cp.DefaultsSQL, Binary: cp.Binary, Statements: p}
	case p.Copy != nil:
		// A SELECT's own plan knows every table it reads.
		read := p.ShardTarget()
		if p.Copy.Query != nil {
			read = p.Copy.Query.ShardTarget()
		}
		return &engine.CopyTo{Table: p.Table, Read: read, Header: p.Copy.Header, Statements: p}
	case p.InsertSelect != nil:
		return buildInsertSelect(p)
	case p.Modifies:
		return &engine.ScatterWrite{Target: p.ShardTarget(), Shards: p}
	case p.SortMerge != nil:
		m := p.SortMerge
		return &engine.SortMerge{Target: p.ShardTarget(), Shards: p, Merge: m, Keys: m.Keys, Extra: m.Extra, Limit: m.Limit, Offset: m.Offset, Params: m.Params, Fallback: scatterRead(p)}
	}
	return scatterRead(p)
}

// scatterRead is the read of a Scatter plan without its streaming merge.
func scatterRead(p *Plan) engine.ScatterInput {
	switch {
	case p.Combine != nil:
		return engine.Combine{Target: p.ShardTarget(), Shards: p, Step: p.Combine, Params: p.Combine.Params, Columns: p.Combine.Columns, Mode: p.Combine.Mode}
	case p.Aggregates != nil:
		return &engine.Aggregate{Target: p.ShardTarget(), Shards: p, Aggregates: p.Aggregates}
	}
	return &engine.Scatter{Target: p.ShardTarget(), Shards: p}
}

// buildInsertSelect makes the InsertSelect of p.
func buildInsertSelect(p *Plan) *engine.InsertSelect {
	ip := p.InsertSelect
	s := &engine.InsertSelect{
		Target: p.ShardTarget(), Version: p.Version, Shards: p, Client: ip,
		SelectSQL: ip.SelectSQL, SelectParams: ip.SelectParams, Columns: ip.Columns, KeyIndex: ip.KeyIndex,
		Defaults: ip.Defaults, DefaultsCount: ip.DefaultsCount, ClientReason: ip.ClientReason,
	}
	if pd := ip.Pushdown; pd != nil {
		s.Pushdown = &engine.InsertPushdown{Select: pd.Select.ShardTarget(), Params: pd.Params, ConflictParams: pd.ConflictParams, Sources: pd.Sources, Shards: pd}
	}
	return s
}
