package planner

import (
	"fmt"
	"strings"
)

// Describe renders the plan for people and golden files: the kind, the
// routing table and the key each table reference is pinned to, values
// evaluated beforehand, merge steps, and the SQL sent to the first shard.
func (p *Plan) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kind: %s\n", p.Kind)
	switch p.Kind {
	case Passthrough:
		for i, st := range p.Statements {
			fmt.Fprintf(&b, "statement %d: %s", i+1, st.SQL)
			if st.Tx != nil {
				fmt.Fprintf(&b, " [tx %s]", st.Tx.Kind)
			}
			if st.NoTxBlock != "" {
				fmt.Fprintf(&b, " [not in a transaction block: %s]", st.NoTxBlock)
			}
			if st.Admin != "" {
				fmt.Fprintf(&b, " [admin %s]", st.Admin)
			}
			if st.Params != nil {
				fmt.Fprintf(&b, " [params %v]", st.Params)
			}
			b.WriteByte('\n')
		}
		return b.String()
	case Explain:
		fmt.Fprintf(&b, "explain options: %q\n", p.Explain.Options)
		return b.String() + p.Explain.Inner.Describe()
	case Concatenate:
		for i, a := range p.Concatenate.Arms {
			fmt.Fprintf(&b, "arm %d: %s (params %v)\n", i+1, a.SQL, a.Params)
		}
		return b.String()
	case Materialize:
		m := p.Materialize
		if m.Broadcast != "" {
			fmt.Fprintf(&b, "broadcast: %s\n", m.Broadcast)
		}
		for i, sq := range m.Subqueries {
			fmt.Fprintf(&b, "subquery %d: %s (params %v, names %v)\n", i+1, sq.SQL, sq.Params, sq.Names)
		}
		fmt.Fprintf(&b, "outline: %s\n", m.Outline())
		in := MaterializeInput{Names: make([][]string, len(m.Subqueries)), Types: make([][]string, len(m.Subqueries))}
		for i := range m.Subqueries {
			in.Names[i], in.Types[i] = []string{"n1", "n2"}, []string{"T1", "T2"}
		}
		if sql, params, err := m.SQL(in); err != nil {
			fmt.Fprintf(&b, "outer sql error: %v\n", err)
		} else {
			fmt.Fprintf(&b, "outer sql (two columns each): %s (args %v)\n", sql, params)
		}
		return b.String()
	case SchemaChange:
		return b.String() + p.DDL.describe()
	case Admin:
		fmt.Fprintf(&b, "function: %s\n", p.Admin.Function)
		for i, a := range p.Admin.Args {
			fmt.Fprintf(&b, "arg %d: %s\n", i+1, a)
		}
		if p.Admin.ArgsSQL != "" {
			fmt.Fprintf(&b, "args sql: %s\n", p.Admin.ArgsSQL)
		}
		return b.String()
	}
	if p.Copy != nil {
		p.describeCopy(&b)
		return b.String()
	}
	fmt.Fprintf(&b, "table: %s (key %s)\n", p.Table.QualifiedName(), p.Table.KeyColumn)
	if p.Modifies {
		b.WriteString("modifies: true\n")
	}
	for _, r := range p.refs {
		pin := "unpinned"
		if r.pin != nil {
			pin = r.pin.String()
		}
		fmt.Fprintf(&b, "ref %s as %s: %s\n", r.table.Name, r.name, pin)
	}
	for i, k := range p.InsertKeys {
		fmt.Fprintf(&b, "insert row %d key: %s\n", i+1, k)
	}
	if p.Eval != nil {
		fmt.Fprintf(&b, "eval: %s (params %v -> $%d..$%d)\n", p.Eval.SQL, p.Eval.Params, p.Eval.First, p.Eval.First+p.Eval.Count-1)
	}
	if p.Prune != nil {
		fmt.Fprintf(&b, "prune: values %v, array params %v\n", p.Prune.Values, p.Prune.ArrayParams)
	}
	if p.ShardParams != nil {
		fmt.Fprintf(&b, "shard params: %v\n", p.ShardParams)
	}
	for i, a := range p.Aggregates {
		fmt.Fprintf(&b, "merge column %d: %s\n", i+1, a.Kind)
	}
	if ip := p.InsertSelect; ip != nil {
		fmt.Fprintf(&b, "insert select: %s (params %v), %d columns, key at %d\n", ip.SelectSQL, ip.SelectParams, ip.Columns, ip.KeyIndex)
		if ip.Defaults != "" {
			fmt.Fprintf(&b, "insert defaults: %s\n", ip.Defaults)
		}
		if pd := ip.Pushdown; pd != nil {
			var names []string
			for _, s := range pd.Sources {
				names = append(names, s.Name)
			}
			fmt.Fprintf(&b, "insert select pushdown: %s SELECT from %s, shard by shard (select params %v, conflict params %v)\n", pd.Select.Kind, strings.Join(names, ", "), pd.Params, pd.ConflictParams)
			if pd.Select.Prune != nil {
				fmt.Fprintf(&b, "insert select prune: values %v, array params %v\n", pd.Select.Prune.Values, pd.Select.Prune.ArrayParams)
			}
			for _, r := range pd.Select.refs {
				if r.pin != nil {
					fmt.Fprintf(&b, "insert select ref %s as %s: %s\n", r.table.Name, r.name, r.pin)
				}
			}
			if sql, err := pd.ShardSQL(0); err != nil {
				fmt.Fprintf(&b, "insert select shard sql error: %v\n", err)
			} else {
				fmt.Fprintf(&b, "insert select shard %d sql: %s\n", p.Table.Shards[0].ID, sql)
			}
		} else {
			fmt.Fprintf(&b, "insert select via the client: %s\n", ip.ClientReason)
		}
	}
	if p.Combine != nil {
		fmt.Fprintf(&b, "combine: %s over %d partial columns, params %v\n", p.Combine.Mode, p.Combine.Columns, p.Combine.Params)
		types := make([]string, p.Combine.Columns)
		for i := range types {
			types[i] = "T" + fmt.Sprint(i+1)
		}
		if sql, err := p.Combine.SQL(CombineInput{Types: types}); err != nil {
			fmt.Fprintf(&b, "combine sql error: %v\n", err)
		} else {
			fmt.Fprintf(&b, "combine sql: %s\n", sql)
		}
	}
	if m := p.SortMerge; m != nil {
		fmt.Fprintf(&b, "sort merge: keys %s, %d extra columns, limit %s, offset %s, params %v\n", m.KeysString(), m.Extra, m.Limit, m.Offset, m.Params)
		if sql, err := m.ShardSQL(0); err != nil {
			fmt.Fprintf(&b, "sort merge sql error: %v\n", err)
		} else {
			fmt.Fprintf(&b, "sort merge shard sql: %s\n", sql)
		}
	}
	if sql, err := p.ShardSQL(0); err != nil {
		fmt.Fprintf(&b, "shard sql error: %v\n", err)
	} else {
		fmt.Fprintf(&b, "shard %d sql: %s\n", p.Table.Shards[0].ID, sql)
	}
	return b.String()
}
