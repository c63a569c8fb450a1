package planner

import (
	"strconv"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// InsertSelectPlan runs INSERT INTO t SELECT ...: the SELECT (SelectSQL,
// taking the statement's parameters SelectParams) runs once through pgshard
// — on the metadata database for ordinary tables and functions, on the
// shards for distributed ones — and each of its rows goes to the shard of its
// key, in batches, within one transaction. The shard SQL (Plan.ShardSQL)
// is `INSERT INTO t_<shard> (columns) SELECT * FROM unnest($1::type[], ...)`,
// one array per column: the SELECT's columns, then Defaults' columns.
type InsertSelectPlan struct {
	SelectSQL    string
	SelectParams []int
	// Columns is the number of columns the SELECT must return.
	Columns int
	// KeyIndex is the key column's position among the SELECT's columns and
	// then Defaults' (Columns + i).
	KeyIndex int
	// Defaults, when not empty, computes per row the columns the INSERT
	// leaves out whose defaults pgshard computes (sequences; volatile
	// defaults of replicated tables): run with $1 = the number of rows.
	Defaults      string
	DefaultsCount int
}

func (p *Plan) planInsertSelect(ins *pg_query.InsertStmt, env Env) error {
	t := p.Table
	if len(ins.ReturningList) > 0 {
		return sqlerr.Unsupported("INSERT ... SELECT ... RETURNING into distributed table \"%s\" is not supported", t.Name)
	}
	if ins.WithClause != nil {
		return sqlerr.Unsupported("WITH ... INSERT ... SELECT into distributed table \"%s\" is not supported; put the WITH inside the SELECT", t.Name)
	}
	cols, indirect, err := targetColumns(t, ins.Cols)
	if err != nil {
		return err
	}
	for i, c := range cols {
		if indirect[i] {
			return sqlerr.Unsupported("INSERT ... SELECT into a part of column \"%s\" of a distributed table is not supported", c.Name)
		}
	}
	// The SELECT, with its parameters numbered from $1.
	sel := proto.Clone(ins.SelectStmt).(*pg_query.Node)
	var renum paramRenumbering
	renum.apply(sel)
	ip := &InsertSelectPlan{Columns: len(cols), KeyIndex: -1, SelectParams: renum.params}
	text, err := pg_query.Deparse(&pg_query.ParseResult{Version: parserVersion, Stmts: []*pg_query.RawStmt{{Stmt: sel}}})
	if err != nil {
		return sqlerr.New(sqlerr.InternalError, "deparsing the SELECT of an INSERT: %v", err)
	}
	ip.SelectSQL = text
	if len(ins.Cols) == 0 {
		// Without a column list, a SELECT of fewer columns fills the first
		// ones and leaves the rest to their defaults, as in PostgreSQL.
		if desc, err := env.Describe(text); err == nil && len(desc) < len(cols) {
			cols = cols[:len(desc)]
			ip.Columns = len(cols)
		}
	}

	listed := map[string]bool{}
	for i, c := range cols {
		listed[c.Name] = true
		if c.Name == t.KeyColumn {
			ip.KeyIndex = i
		}
	}
	replicated := p.replicated()
	var defaults []*pg_query.Node
	for i := range t.Columns {
		c := &t.Columns[i]
		if listed[c.Name] || c.Default == "" {
			continue
		}
		if !(c.SequenceDefault || c.Name == t.KeyColumn || (replicated && !defaultImmutable(c, env))) {
			continue
		}
		def, err := parseDefault(c.Default)
		if err != nil {
			return err
		}
		if c.Name == t.KeyColumn {
			ip.KeyIndex = len(cols)
		}
		cols = append(cols, c)
		defaults = append(defaults, def)
	}
	if ip.KeyIndex < 0 {
		return sqlerr.New(sqlerr.NotNullViolation, "cannot plan INSERT using row with NULL value in partition column \"%s\"", t.KeyColumn)
	}
	if len(defaults) > 0 {
		ds := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE}
		for _, d := range defaults {
			ds.TargetList = append(ds.TargetList, resTarget("", d))
		}
		ds.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeFunction{RangeFunction: &pg_query.RangeFunction{
			Functions: []*pg_query.Node{pg_query.MakeListNode([]*pg_query.Node{funcCall("generate_series", aConstInt(1), pg_query.MakeParamRefNode(1, -1)), {}})},
		}}}}
		dtext, err := pg_query.Deparse(wrapSelect(ds))
		if err != nil {
			return sqlerr.New(sqlerr.InternalError, "deparsing defaults: %v", err)
		}
		ip.Defaults, ip.DefaultsCount = dtext, len(defaults)
	}

	// The shard statement: the INSERT with the SELECT replaced by arrays.
	ins.Cols = nil
	// One text[] per column, cast to the column's type row by row: an
	// array-typed column travels as its text form too.
	unnest := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE}
	var arrays, aliases []*pg_query.Node
	for i, c := range cols {
		ins.Cols = append(ins.Cols, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Name: c.Name}}})
		u := "c" + strconv.Itoa(i+1)
		unnest.TargetList = append(unnest.TargetList, resTarget("", typeCast(columnRef("pgshard_rows", u), c.TypeName)))
		arrays = append(arrays, typeCast(pg_query.MakeParamRefNode(int32(i+1), -1), "text[]"))
		aliases = append(aliases, pg_query.MakeStrNode(u))
	}
	unnest.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeFunction{RangeFunction: &pg_query.RangeFunction{
		Functions: []*pg_query.Node{pg_query.MakeListNode([]*pg_query.Node{funcCall("unnest", arrays...), {}})},
		Alias:     &pg_query.Alias{Aliasname: "pgshard_rows", Colnames: aliases},
	}}}}
	ins.SelectStmt = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: unnest}}
	if occ := ins.OnConflictClause; occ != nil && replicated {
		eb := newEvalBuilder(p.tree)
		if err := p.replicatedSet(t, occ.TargetList, env, eb); err != nil {
			return err
		}
		if len(eb.exprs) > 0 {
			return sqlerr.Unsupported("a non-immutable ON CONFLICT DO UPDATE value in INSERT ... SELECT into replicated table \"%s\" is not supported", t.Name)
		}
	}
	p.InsertSelect = ip
	return nil
}
