package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgshard/pgshard/catalog"
)

// Shard keys whose value the session's settings decide.
//
// A date, timestamp or timestamptz written as text means what the session
// reading it says: '01/02/2024' is February 1 under DateStyle DMY, and a
// timestamptz without a zone is in the session's TimeZone. Hashing such a
// text in Go would route by a value the worker may not store. Instead, the
// same code decides the value for routing and for storing: the session
// evaluates the text (Eval, on the connection's metadata session, which has
// its settings), the driver hashes the typed result and sends that typed
// value to the shard as a parameter. Literals become parameters at plan time
// (evalSettingKeys); text arguments are evaluated at execute time
// (SettingKeyParams). Texts that mean the same value in every session
// (catalog.KeyTextIndependentOfSettings: ISO dates, timestamptz with a zone)
// and keys of every other type stay on the fast path: hashed in Go, no round
// trip.

// evalBuilder returns the plan's builder of Eval expressions, creating it
// on first use, so that every step of planning adds to one EvalPlan.
func (p *Plan) evalBuilder() *evalBuilder {
	if p.evals == nil {
		p.evals = newEvalBuilder(p.tree)
	}
	return p.evals
}

// settingDependent reports whether v is a string literal that, as a key of
// type keyType, only the session's settings can read.
func settingDependent(v Value, keyType uint32) bool {
	s, ok := v.Const.(string)
	return ok && v.Param == 0 && v.lit != nil && !catalog.KeyTextIndependentOfSettings(keyType, s)
}

// evalSettingKeys turns every key literal the references are pinned to or
// pruned by that depends on the session's settings into a parameter that
// Eval computes as the key's type: the literal's node in the tree becomes
// that parameter, the Value its number.
func (p *Plan) evalSettingKeys() error {
	done := map[*pg_query.Node]Value{}
	changed := false
	convert := func(v *Value, keyType uint32) {
		if !settingDependent(*v, keyType) {
			return
		}
		if nv, ok := done[v.lit]; ok {
			*v = nv
			return
		}
		eb := p.evalBuilder()
		lit := v.lit
		param, nv := eb.add(castToKeyType(proto.Clone(lit).(*pg_query.Node), keyType))
		eb.markKey(nv, keyType, true)
		lit.Node = param.Node
		done[lit] = nv
		*v = nv
		changed = true
	}
	for _, r := range p.refs {
		if r.pin != nil {
			convert(r.pin, r.table.KeyType)
		}
		if r.set != nil {
			for i := range r.set.Values {
				convert(&r.set.Values[i], r.table.KeyType)
			}
		}
	}
	if !changed {
		return nil
	}
	ep, err := p.evals.build()
	if err != nil {
		return err
	}
	p.Eval = ep
	return nil
}

// castToKeyType wraps n in a cast to key type keyType (one of the types
// catalog.KeyTextDependsOnSettings accepts; n unchanged for others).
func castToKeyType(n *pg_query.Node, keyType uint32) *pg_query.Node {
	var name string
	switch keyType {
	case 1082:
		name = "date"
	case 1114:
		name = "timestamp"
	case 1184:
		name = "timestamptz"
	default:
		return n
	}
	return &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
		Arg:      n,
		TypeName: &pg_query.TypeName{Names: []*pg_query.Node{pg_query.MakeStrNode("pg_catalog"), pg_query.MakeStrNode(name)}, Typemod: -1},
		Location: -1,
	}}}
}

// collectSettingKeyParams fills SettingKeyParams from the plan's key values
// (pins, prune sets and inserted keys) that are statement parameters.
func (p *Plan) collectSettingKeyParams() {
	seen := map[int]bool{}
	add := func(v Value, keyType uint32) {
		if v.Param == 0 || v.Param > p.argCount || seen[v.Param] || !catalog.KeyTextDependsOnSettings(keyType) {
			return
		}
		seen[v.Param] = true
		p.SettingKeyParams = append(p.SettingKeyParams, KeyParam{Param: v.Param, Type: keyType})
	}
	for _, r := range p.refs {
		if r.pin != nil {
			add(*r.pin, r.table.KeyType)
		}
		if r.set != nil {
			for _, v := range r.set.Values {
				add(v, r.table.KeyType)
			}
		}
	}
	if p.Table != nil {
		for _, v := range p.InsertKeys {
			add(v, p.Table.KeyType)
		}
	}
}
