package planner

import (
	"reflect"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	plantypes "github.com/pgshard/pgshard/plan"
)

// ShardIndex returns the index, in Table.Shards, of the shard that holds key
// value v.
func ShardIndex(t *catalog.Table, v any) (int, error) { return plantypes.ShardIndex(t, v) }

// Route returns the index of the one shard a Router plan runs on, for the
// given arguments (args[0] is $1, after Eval's values are appended). Every
// pinned reference and every inserted row must map to the same shard.
func (p *Plan) Route(args []any) (int, error) {
	shard := -1
	set := func(i int) error {
		if shard >= 0 && shard != i {
			if p.InsertKeys != nil {
				return sqlerr.Unsupported("a multi-row INSERT into distributed table \"%s\" whose rows belong to different shards is not supported yet; insert them one by one or in a transaction", p.Table.Name)
			}
			return sqlerr.Unsupported("the statement fixes partition columns to values in different shards of \"%s\"; it cannot run on one shard", p.Table.Name)
		}
		shard = i
		return nil
	}
	for _, k := range p.InsertKeys {
		v, err := k.Resolve(args)
		if err != nil {
			return 0, err
		}
		if v == nil {
			return 0, sqlerr.New(sqlerr.NotNullViolation, "cannot plan INSERT using row with NULL value in partition column \"%s\"", p.Table.KeyColumn)
		}
		i, err := ShardIndex(p.Table, v)
		if err != nil {
			return 0, err
		}
		if err := set(i); err != nil {
			return 0, err
		}
	}
	for _, r := range p.refs {
		if r.pin == nil {
			continue
		}
		v, err := r.pin.Resolve(args)
		if err != nil {
			return 0, err
		}
		if v == nil {
			// key = NULL matches no row on any shard.
			continue
		}
		i, err := ShardIndex(r.table, v)
		if err != nil {
			if sqlerr.Code(err) == sqlerr.FeatureNotSupported {
				return 0, err
			}
			return 0, sqlerr.WithDetail(sqlerr.As(err), "while routing by partition column \"%s\" of \"%s\"", r.table.KeyColumn, r.table.Name)
		}
		if err := set(i); err != nil {
			return 0, err
		}
	}
	if shard < 0 {
		shard = 0
	}
	return shard, nil
}

// ShardCount is the number of shards a Router or Scatter plan can run on.
func (p *Plan) ShardCount() int {
	if p.Table == nil {
		return 0
	}
	return len(p.Table.Shards)
}

// ShardSQL returns the statement rewritten for shard index i: every
// distributed table replaced by its shard table (keeping the original name as
// alias), parameters left as parameters. The text is computed once per shard.
func (p *Plan) ShardSQL(i int) (string, error) {
	st := &p.shardSQL[i]
	st.once.Do(func() { st.sql, st.err = p.rewrite(i) })
	return st.sql, st.err
}

func (p *Plan) rewrite(i int) (string, error) {
	if p.DDL != nil {
		return p.DDL.catalogShardSQL(i)
	}
	if p.Copy != nil {
		shards, err := p.CopyShards()
		if err != nil {
			return "", err
		}
		return p.CopyShardSQL(i, len(shards) > 0 && shards[0] == i)
	}
	if p.rowsDropped {
		return "", p.errRowsDropped()
	}
	var tree *pg_query.ParseResult
	if p.literalRows {
		var sel *pg_query.SelectStmt
		tree, sel = p.cloneWithoutRows()
		p.renameTables(tree, i)
		sel.ValuesLists = p.valuesRows()
	} else {
		tree = proto.Clone(p.tree).(*pg_query.ParseResult)
		p.renameTables(tree, i)
	}
	text, err := pg_query.Deparse(tree)
	if err != nil {
		return "", sqlerr.New(sqlerr.InternalError, "deparsing statement for shard %d: %v", p.Table.Shards[i].ID, err)
	}
	return text, nil
}

// renameTables replaces, in tree (a copy of the plan's), every distributed
// table by its shard table for shard index i, keeping the original name as
// the alias so that qualified column references still resolve.
func (p *Plan) renameTables(tree *pg_query.ParseResult, i int) {
	for _, raw := range tree.Stmts {
		walk(raw.Stmt, func(m protoreflect.ProtoMessage) bool {
			rv, ok := m.(*pg_query.RangeVar)
			if !ok {
				return true
			}
			t := p.renames[rv.Location]
			if t == nil {
				return true
			}
			if rv.Alias == nil {
				rv.Alias = &pg_query.Alias{Aliasname: rv.Relname}
			}
			rv.Relname = t.ShardTableName(t.ShardAt(i).ID)
			return true
		})
	}
}

// TargetShards returns the indexes of the shards a Scatter plan runs on for
// these arguments, ascending: those holding the Prune values, or all.
func (p *Plan) TargetShards(args []any) ([]int, error) {
	all := func() []int {
		out := make([]int, len(p.Table.Shards))
		for i := range out {
			out[i] = i
		}
		return out
	}
	if p.Prune == nil {
		return all(), nil
	}
	set := map[int]bool{}
	add := func(v any) error {
		if v == nil {
			return nil
		}
		i, err := ShardIndex(p.Table, v)
		if err != nil {
			return err
		}
		set[i] = true
		return nil
	}
	for _, v := range p.Prune.Values {
		val, err := v.Resolve(args)
		if err != nil {
			return nil, err
		}
		if err := add(val); err != nil {
			return nil, err
		}
	}
	for _, n := range p.Prune.ArrayParams {
		val, err := Value{Param: n}.Resolve(args)
		if err != nil {
			return nil, err
		}
		elems, ok := arrayElements(val)
		if !ok {
			return all(), nil // an array form pgshard cannot read: run everywhere
		}
		if settingDependentElements(p.Table.KeyType, elems) {
			return all(), nil // only the shards read these texts: run everywhere
		}
		for _, e := range elems {
			if err := add(e); err != nil {
				return nil, err
			}
		}
	}
	out := make([]int, 0, len(set))
	for i := range p.Table.Shards {
		if set[i] {
			out = append(out, i)
		}
	}
	return out, nil
}

// arrayElements returns the elements of a Go slice or array argument
// (not []byte, which is a single value).
func arrayElements(v any) ([]any, bool) {
	if v == nil {
		return nil, true
	}
	if _, ok := v.([]byte); ok {
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	if rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
		return nil, false // [16]byte is one uuid
	}
	out := make([]any, rv.Len())
	for i := range out {
		e := rv.Index(i)
		if (e.Kind() == reflect.Pointer || e.Kind() == reflect.Interface) && e.IsNil() {
			continue
		}
		out[i] = e.Interface()
	}
	return out, true
}

// settingDependentElements reports whether an array argument's elements
// include a text that, as a key of type keyType, the session's settings
// decide (catalog.KeyTextIndependentOfSettings): it cannot prune shards.
func settingDependentElements(keyType uint32, elems []any) bool {
	if !catalog.KeyTextDependsOnSettings(keyType) {
		return false
	}
	for _, e := range elems {
		var s string
		switch x := e.(type) {
		case string:
			s = x
		case []byte:
			s = string(x)
		default:
			continue
		}
		if !catalog.KeyTextIndependentOfSettings(keyType, s) {
			return true
		}
	}
	return false
}
