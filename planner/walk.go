package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// walk calls fn for every message in the subtree of m, m included, depth
// first. When fn returns false the children of that message are skipped.
func walk(m protoreflect.ProtoMessage, fn func(protoreflect.ProtoMessage) bool) {
	if m == nil {
		return
	}
	walkReflect(m.ProtoReflect(), fn)
}

func walkReflect(m protoreflect.Message, fn func(protoreflect.ProtoMessage) bool) {
	if !m.IsValid() || !fn(m.Interface()) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkReflect(l.Get(i).Message(), fn)
			}
			return true
		}
		walkReflect(v.Message(), fn)
		return true
	})
}

// nodesOf wraps the non-nil nodes given into one slice, for walking several
// clauses at once.
func nodesOf(groups ...[]*pg_query.Node) []*pg_query.Node {
	var out []*pg_query.Node
	for _, g := range groups {
		for _, n := range g {
			if n != nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// stringOf returns the string value of a String node, or "".
func stringOf(n *pg_query.Node) string {
	if n == nil {
		return ""
	}
	if s := n.GetString_(); s != nil {
		return s.Sval
	}
	return ""
}

// funcName returns the unqualified, lower-case name of a function call and
// its schema ("" when unqualified).
func funcName(fc *pg_query.FuncCall) (schema, name string) {
	switch len(fc.Funcname) {
	case 1:
		return "", stringOf(fc.Funcname[0])
	case 2:
		return stringOf(fc.Funcname[0]), stringOf(fc.Funcname[1])
	}
	return "?", "?"
}
