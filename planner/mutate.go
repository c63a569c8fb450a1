package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var nodeDescriptor = (&pg_query.Node{}).ProtoReflect().Descriptor()

// rewriteNodes calls fn on every *pg_query.Node below m (not m itself), top
// down. When fn returns a node, it replaces the visited one and its subtree
// is not visited.
func rewriteNodes(m protoreflect.Message, fn func(*pg_query.Node) *pg_query.Node) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		md := fd.Message()
		if md == nil || fd.IsMap() {
			return true
		}
		isNode := md.FullName() == nodeDescriptor.FullName()
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				elem := l.Get(i).Message()
				if isNode {
					if r := fn(elem.Interface().(*pg_query.Node)); r != nil {
						l.Set(i, protoreflect.ValueOfMessage(r.ProtoReflect()))
						continue
					}
				}
				rewriteNodes(elem, fn)
			}
			return true
		}
		child := v.Message()
		if isNode {
			if r := fn(child.Interface().(*pg_query.Node)); r != nil {
				m.Set(fd, protoreflect.ValueOfMessage(r.ProtoReflect()))
				return true
			}
		}
		rewriteNodes(child, fn)
		return true
	})
}

// nodeKey is a canonical form of an expression that ignores source
// locations, so that `dept` in GROUP BY and `dept` in the select list compare
// equal.
func nodeKey(n *pg_query.Node) string {
	c := proto.Clone(n)
	walk(c, func(m protoreflect.ProtoMessage) bool {
		r := m.ProtoReflect()
		if fd := r.Descriptor().Fields().ByName("location"); fd != nil {
			r.Clear(fd)
		}
		return true
	})
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	return string(b)
}

// columnRef builds a reference to column col of relation rel.
func columnRef(rel, col string) *pg_query.Node {
	fields := []*pg_query.Node{}
	if rel != "" {
		fields = append(fields, pg_query.MakeStrNode(rel))
	}
	fields = append(fields, pg_query.MakeStrNode(col))
	return pg_query.MakeColumnRefNode(fields, -1)
}

// funcCall builds name(args...).
func funcCall(name string, args ...*pg_query.Node) *pg_query.Node {
	return pg_query.MakeFuncCallNode([]*pg_query.Node{pg_query.MakeStrNode(name)}, args, -1)
}

// typeCast builds (n)::typ for a type name as format_type writes it.
func typeCast(n *pg_query.Node, typ string) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{Arg: n, TypeName: typeNameOf(typ), Location: -1}}}
}

// typeNameOf parses a type name such as "numeric", "timestamp with time
// zone" or "public.mood" into a TypeName by asking the parser.
func typeNameOf(typ string) *pg_query.TypeName {
	tree, err := pg_query.Parse("SELECT NULL::" + typ)
	if err == nil && len(tree.Stmts) == 1 {
		if tc := tree.Stmts[0].Stmt.GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetTypeCast(); tc != nil {
			return tc.TypeName
		}
	}
	return &pg_query.TypeName{Names: []*pg_query.Node{pg_query.MakeStrNode(typ)}, Location: -1}
}

func resTarget(name string, val *pg_query.Node) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Name: name, Val: val, Location: -1}}}
}

func aConstInt(i int64) *pg_query.Node { return pg_query.MakeAConstIntNode(i, -1) }
