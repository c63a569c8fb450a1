package planner

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	plantypes "github.com/pgshard/pgshard/plan"
)

// DDLOp is the kind of schema change a DDLPlan makes (plan.DDLOp).
type DDLOp = plantypes.DDLOp

// The kinds of schema change (plan.DDLOp).
const (
	DDLAlterTable  = plantypes.DDLAlterTable
	DDLCreateIndex = plantypes.DDLCreateIndex
	DDLDropIndex   = plantypes.DDLDropIndex
	DDLDropTable   = plantypes.DDLDropTable
	DDLTruncate    = plantypes.DDLTruncate
	DDLRename      = plantypes.DDLRename
	DDLComment     = plantypes.DDLComment
	DDLAnalyze     = plantypes.DDLAnalyze
	DDLVacuum      = plantypes.DDLVacuum
)

// IndexEnv is what an Env may offer to plan statements that name an index
// rather than its table (DROP INDEX, ALTER INDEX ... RENAME): the table an
// index belongs to. An Env without it makes such statements run on the
// metadata database alone, as they do for ordinary tables.
type IndexEnv interface {
	// IndexTable resolves index name (schema "" for the search_path) and
	// returns its table's schema and name; ok is false when there is no
	// such index.
	IndexTable(schema, name string) (tableSchema, table string, ok bool)
}

// DDLPlan is a schema change on distributed tables (Kind SchemaChange): the
// statement the template tables get on the metadata database, and the one
// each shard gets, written from the parse tree with the shard's relation
// names (ShardSQL). Immutable once planned.
type DDLPlan struct {
	Op DDLOp
	// Tables are the distributed tables the statement changes, the first
	// one the statement's own; the others (the referenced table of a
	// FOREIGN KEY, further tables of DROP TABLE / TRUNCATE) are co-located
	// with it, so that shard index i of each lives on the same nodes.
	Tables []*catalog.Table
	// TemplateSQL is what the metadata database runs on the templates;
	// "" when they are left alone (TRUNCATE: templates hold no rows).
	TemplateSQL string
	// Concurrent is set for CREATE / DROP INDEX CONCURRENTLY, which run
	// outside a transaction, placement by placement.
	Concurrent bool
	// IndexName is the name of the index CREATE INDEX makes (pgshard
	// names an unnamed one), "" for other statements.
	IndexName string
	// KeyRename is the new name of the distribution column (RENAME COLUMN
	// of the key), recorded in pgs_distribution_metadata.partition; "" for
	// other statements.
	KeyRename string
	// Defaults are the non-constant defaults of added columns: each is
	// evaluated once on the metadata database and the shards fill the
	// column's existing rows with that value, as one PostgreSQL would
	// (every row the same now()); the default itself then applies to new
	// rows. Their functions must not be volatile (VolatileCheck).
	Defaults []DefaultEval
	// Functions are the names of the functions the added columns' defaults
	// and the USING expressions call: a volatile one would give each
	// replica other values, and is refused at execute time.
	Functions []string

	tree *pg_query.ParseResult
	// locs maps the location of each RangeVar naming a distributed table
	// (in tree) to its index in Tables.
	locs map[int32]int
	// rewrite renames the objects of the shard statement other than the
	// tables' RangeVars (constraints, indexes); it runs on a copy of the
	// statement.
	rewrite func(stmt *pg_query.Node, shards []ShardRef)
}

// DefaultEval is one added column's default, evaluated once
// (plan.DefaultEval).
type DefaultEval = plantypes.DefaultEval

// ShardRef names the shard of one of DDLPlan.Tables a shard statement is
// written for: its id and its table's name on the workers (plan.ShardRef).
type ShardRef = plantypes.ShardRef

// ShardSQL returns the statement for shard index i of the plan's tables
// (shards[j] is Tables[j]'s), with values the results of Defaults, in
// order; "" when the shards have nothing to run.
func (d *DDLPlan) ShardSQL(shards []ShardRef, values []*string) (string, error) {
	tree := proto.Clone(d.tree).(*pg_query.ParseResult)
	stmt := tree.Stmts[0].Stmt
	walk(stmt, func(m protoreflect.ProtoMessage) bool {
		if rv, ok := m.(*pg_query.RangeVar); ok {
			if j, ok := d.locs[rv.Location]; ok {
				rv.Relname = shards[j].Table
				rv.Schemaname = d.Tables[j].Schema
			}
		}
		return true
	})
	if d.rewrite != nil {
		d.rewrite(stmt, shards)
	}
	if len(values) > 0 {
		fillDefaults(stmt, d.Defaults, values)
	}
	if at := stmt.GetAlterTableStmt(); at != nil && len(at.Cmds) == 0 {
		return "", nil // nothing for the shards (a sequence default)
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return "", sqlerr.New(sqlerr.InternalError, "pgshard: writing the shard statement: %v", err)
	}
	return out, nil
}

// isSchemaChange reports whether stmt is one of the statements planDDL
// plans: a schema change that, on a distributed table, must reach the
// shards.
func isSchemaChange(stmt *pg_query.Node) bool {
	switch stmt.Node.(type) {
	case *pg_query.Node_AlterTableStmt, *pg_query.Node_IndexStmt, *pg_query.Node_DropStmt,
		*pg_query.Node_TruncateStmt, *pg_query.Node_RenameStmt, *pg_query.Node_CommentStmt,
		*pg_query.Node_VacuumStmt:
		return true
	}
	return false
}

// planDDL plans a schema change naming distributed tables; nil (and no
// error) when it names none, and the statement runs on the metadata
// database alone. templateOnly is set when it names only distributed
// tables without shards: then too it runs on the metadata database alone.
func planDDL(stmt *pg_query.Node, version int32, snap *catalog.Snapshot, env Env) (d *DDLPlan, templateOnly bool, err error) {
	b := &ddlBuilder{snap: snap, env: env, version: version, d: &DDLPlan{locs: map[int32]int{}}}
	switch x := stmt.Node.(type) {
	case *pg_query.Node_AlterTableStmt:
		err = b.alterTable(x.AlterTableStmt)
	case *pg_query.Node_IndexStmt:
		err = b.createIndex(x.IndexStmt)
	case *pg_query.Node_DropStmt:
		err = b.drop(x.DropStmt)
	case *pg_query.Node_TruncateStmt:
		err = b.truncate(x.TruncateStmt)
	case *pg_query.Node_RenameStmt:
		err = b.rename(x.RenameStmt)
	case *pg_query.Node_CommentStmt:
		err = b.comment(x.CommentStmt)
	case *pg_query.Node_VacuumStmt:
		err = b.vacuum(x.VacuumStmt)
	default:
		return nil, false, nil
	}
	if err != nil || len(b.d.Tables) == 0 {
		return nil, false, err
	}
	d = b.d
	for _, t := range d.Tables {
		if t.Invalid != nil {
			return nil, false, t.Invalid
		}
	}
	if len(d.Tables[0].Shards) == 0 && onlyReferences(d.Tables[1:]) && d.Op != DDLDropTable && d.Op != DDLTruncate {
		// A table without shards is its template alone: the change runs
		// there (the driver confirms first that no other process created
		// its shards meanwhile).
		return nil, true, nil
	}
	for _, t := range d.Tables[1:] {
		if !d.Tables[0].ColocatedWith(t) {
			return nil, false, sqlerr.Unsupported("%s of distributed tables \"%s\" and \"%s\" in one statement is not supported: they are not co-located; run one statement per table", d.Op, d.Tables[0].Name, t.Name)
		}
	}
	d.tree = &pg_query.ParseResult{Version: version, Stmts: []*pg_query.RawStmt{{Stmt: stmt}}}
	if d.Op != DDLTruncate {
		text, err := pg_query.Deparse(d.tree)
		if err != nil {
			return nil, false, sqlerr.New(sqlerr.InternalError, "pgshard: writing the template statement: %v", err)
		}
		d.TemplateSQL = text
	}
	return d, false, nil
}

// onlyReferences reports whether every table of ts is a reference table
// (the referenced tables of foreign keys a table without shards gets on
// its template: its shards are created with them, see
// catalog.ReadTemplateDDL).
func onlyReferences(ts []*catalog.Table) bool {
	for _, t := range ts {
		if !t.Reference() {
			return false
		}
	}
	return true
}

// ddlBuilder collects a DDLPlan.
type ddlBuilder struct {
	snap *catalog.Snapshot
	env  Env
	d    *DDLPlan
	// version is the parse tree's, which deparsing checks.
	version int32
}

// table registers rv when it names a distributed table and returns the
// table and its index in Tables; nil when it names none.
func (b *ddlBuilder) table(rv *pg_query.RangeVar) (*catalog.Table, int) {
	if rv == nil {
		return nil, -1
	}
	t := b.snap.Lookup(rv.Schemaname, rv.Relname)
	if t == nil {
		return nil, -1
	}
	i := slices.Index(b.d.Tables, t)
	if i < 0 {
		b.d.Tables = append(b.d.Tables, t)
		i = len(b.d.Tables) - 1
	}
	b.d.locs[rv.Location] = i
	return t, i
}

// shardName is a DDLPlan rewrite helper: name extended with the shard id of
// table index j (catalog.ShardName), as the shard's constraints and indexes
// are named.
func shardName(name string, shards []ShardRef, j int) string {
	return catalog.ShardName(name, shards[j].ID)
}

func (b *ddlBuilder) alterTable(s *pg_query.AlterTableStmt) error {
	if s.Objtype != pg_query.ObjectType_OBJECT_TABLE {
		if s.Objtype == pg_query.ObjectType_OBJECT_INDEX {
			return nil
		}
		if b.snap.Lookup(s.Relation.GetSchemaname(), s.Relation.GetRelname()) != nil {
			return sqlerr.Unsupported("ALTER %s on distributed table \"%s\" is not supported", strings.TrimPrefix(s.Objtype.String(), "OBJECT_"), s.Relation.Relname)
		}
		return nil
	}
	t, _ := b.table(s.Relation)
	if t == nil {
		return nil
	}
	b.d.Op = DDLAlterTable
	// slots extend the names of the constraints the commands name with
	// the shard id, on the shard's copy of the statement.
	var slots []func(s *pg_query.AlterTableStmt, shards []ShardRef)
	var seqDefaults []int
	for ci, c := range s.Cmds {
		cmd := c.GetAlterTableCmd()
		if cmd == nil {
			return sqlerr.Unsupported("ALTER TABLE on distributed table \"%s\": unexpected command", t.Name)
		}
		ci := ci
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddColumn:
			def := cmd.Def.GetColumnDef()
			if err := b.addColumn(t, def); err != nil {
				return err
			}
			for k, cn := range def.Constraints {
				k := k
				con := cn.GetConstraint()
				// A reference table's column may also be UNIQUE or a
				// PRIMARY KEY (addColumn refuses them on a distributed one).
				suffix, named := map[pg_query.ConstrType]string{
					pg_query.ConstrType_CONSTR_CHECK: "check", pg_query.ConstrType_CONSTR_FOREIGN: "fkey",
					pg_query.ConstrType_CONSTR_UNIQUE: "key", pg_query.ConstrType_CONSTR_PRIMARY: "pkey",
					pg_query.ConstrType_CONSTR_EXCLUSION: "excl"}[con.Contype]
				if named {
					if con.Conname == "" {
						cols := []string{def.Colname}
						if con.Contype == pg_query.ConstrType_CONSTR_PRIMARY {
							cols = nil
						}
						con.Conname = constraintName(t.Name, cols, suffix)
					}
					slots = append(slots, func(s *pg_query.AlterTableStmt, shards []ShardRef) {
						c := s.Cmds[ci].GetAlterTableCmd().Def.GetColumnDef().Constraints[k].GetConstraint()
						c.Conname = shardName(c.Conname, shards, 0)
					})
				}
			}
		case pg_query.AlterTableType_AT_DropColumn:
			if cmd.Name == t.KeyColumn {
				return sqlerr.Unsupported("cannot drop column \"%s\" of distributed table \"%s\": it is the distribution column", cmd.Name, t.Name)
			}
		case pg_query.AlterTableType_AT_AlterColumnType:
			if cmd.Name == t.KeyColumn {
				return sqlerr.Unsupported("cannot change the type of column \"%s\" of distributed table \"%s\": it is the distribution column, and its rows' shards follow from its hash", cmd.Name, t.Name)
			}
			if def := cmd.Def.GetColumnDef(); def != nil && def.RawDefault != nil {
				b.d.Functions = append(b.d.Functions, functionNames(def.RawDefault)...)
			}
		case pg_query.AlterTableType_AT_ColumnDefault:
			if cmd.Def != nil && callsNextval(cmd.Def) {
				// pgshard fills sequence columns from the metadata
				// database; the shards carry no such default.
				seqDefaults = append(seqDefaults, ci)
			}
		case pg_query.AlterTableType_AT_DropNotNull, pg_query.AlterTableType_AT_SetNotNull,
			pg_query.AlterTableType_AT_SetRelOptions, pg_query.AlterTableType_AT_ResetRelOptions,
			pg_query.AlterTableType_AT_SetLogged, pg_query.AlterTableType_AT_SetUnLogged,
			pg_query.AlterTableType_AT_SetStatistics, pg_query.AlterTableType_AT_SetStorage,
			pg_query.AlterTableType_AT_SetCompression:
		case pg_query.AlterTableType_AT_AddConstraint:
			con := cmd.Def.GetConstraint()
			if err := b.addConstraint(t, con); err != nil {
				return err
			}
			slots = append(slots, func(s *pg_query.AlterTableStmt, shards []ShardRef) {
				c := s.Cmds[ci].GetAlterTableCmd().Def.GetConstraint()
				c.Conname = shardName(c.Conname, shards, 0)
			})
		case pg_query.AlterTableType_AT_DropConstraint, pg_query.AlterTableType_AT_ValidateConstraint:
			slots = append(slots, func(s *pg_query.AlterTableStmt, shards []ShardRef) {
				c := s.Cmds[ci].GetAlterTableCmd()
				c.Name = shardName(c.Name, shards, 0)
			})
		case pg_query.AlterTableType_AT_AlterConstraint:
			slots = append(slots, func(s *pg_query.AlterTableStmt, shards []ShardRef) {
				c := s.Cmds[ci].GetAlterTableCmd().Def.GetConstraint()
				c.Conname = shardName(c.Conname, shards, 0)
			})
		default:
			return sqlerr.Unsupported("ALTER TABLE %s on distributed table \"%s\" is not supported", strings.TrimPrefix(cmd.Subtype.String(), "AT_"), t.Name)
		}
	}
	b.d.rewrite = func(stmt *pg_query.Node, shards []ShardRef) {
		s := stmt.GetAlterTableStmt()
		for _, f := range slots {
			f(s, shards)
		}
		if len(seqDefaults) == 0 {
			return
		}
		// pgshard fills sequence columns from the metadata database: the
		// shards carry no such default.
		var keep []*pg_query.Node
		for i, c := range s.Cmds {
			if !slices.Contains(seqDefaults, i) {
				keep = append(keep, c)
			}
		}
		s.Cmds = keep
	}
	return nil
}

// addColumn checks an added column and names its constraints.
func (b *ddlBuilder) addColumn(t *catalog.Table, def *pg_query.ColumnDef) error {
	if def == nil {
		return sqlerr.Unsupported("ALTER TABLE ADD COLUMN on distributed table \"%s\": unexpected column definition", t.Name)
	}
	if tn := def.TypeName; tn != nil && len(tn.Names) > 0 {
		switch strings.ToLower(stringOf(tn.Names[len(tn.Names)-1])) {
		case "serial", "serial2", "serial4", "serial8", "smallserial", "bigserial":
			return sqlerr.Unsupported("cannot add serial column \"%s\" to distributed table \"%s\": its existing rows would take values from each shard's own sequence; add a plain column, fill it, then SET DEFAULT nextval(...)", def.Colname, t.Name)
		}
	}
	for _, cn := range def.Constraints {
		con := cn.GetConstraint()
		switch con.GetContype() {
		case pg_query.ConstrType_CONSTR_IDENTITY:
			return sqlerr.Unsupported("cannot add identity column \"%s\" to distributed table \"%s\": its existing rows would take values from each shard's own sequence", def.Colname, t.Name)
		case pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE, pg_query.ConstrType_CONSTR_EXCLUSION:
			if !t.Reference() {
				return keylessUnique(t, con.Contype)
			}
		case pg_query.ConstrType_CONSTR_FOREIGN:
			// To a reference table (whose copy every node holds) the
			// column's constraint is checked shard by shard.
			if ref := b.snap.Lookup(con.Pktable.GetSchemaname(), con.Pktable.GetRelname()); ref == nil || !ref.Reference() || t.Reference() {
				return sqlerr.Unsupported("cannot add column \"%s\" to distributed table \"%s\" with a foreign key: a foreign key between distributed tables must include the distribution column; add the column, then the constraint", def.Colname, t.Name)
			}
			b.table(con.Pktable)
		case pg_query.ConstrType_CONSTR_DEFAULT:
			if isConstant(con.RawExpr) {
				continue
			}
			if callsNextval(con.RawExpr) {
				return sqlerr.Unsupported("cannot add column \"%s\" to distributed table \"%s\" with a sequence default: its existing rows would need values from the sequence shard by shard; add a plain column, fill it, then SET DEFAULT", def.Colname, t.Name)
			}
			b.d.Functions = append(b.d.Functions, functionNames(con.RawExpr)...)
			sel := &pg_query.SelectStmt{TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
				Val: &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
					Arg:      &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{Arg: con.RawExpr, TypeName: def.TypeName}}},
					TypeName: &pg_query.TypeName{Names: []*pg_query.Node{pg_query.MakeStrNode("text")}, Typemod: -1},
				}}},
			}}}}}
			text, err := pg_query.Deparse(&pg_query.ParseResult{Version: b.version, Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}}}})
			if err != nil {
				return sqlerr.New(sqlerr.InternalError, "pgshard: writing the default of column \"%s\": %v", def.Colname, err)
			}
			b.d.Defaults = append(b.d.Defaults, DefaultEval{Column: def.Colname, SQL: text})
		}
	}
	return nil
}

// fillDefaults replaces, in a shard's ALTER TABLE, each added column's
// non-constant default by its value (values[i] for defs[i]) and appends
// SET DEFAULT of the expression itself, so that existing rows get the one
// value and new rows the default.
func fillDefaults(stmt *pg_query.Node, defs []DefaultEval, values []*string) {
	s := stmt.GetAlterTableStmt()
	if s == nil {
		return
	}
	var extra []*pg_query.Node
	for _, c := range s.Cmds {
		cmd := c.GetAlterTableCmd()
		if cmd.Subtype != pg_query.AlterTableType_AT_AddColumn {
			continue
		}
		def := cmd.Def.GetColumnDef()
		i := slices.IndexFunc(defs, func(d DefaultEval) bool { return d.Column == def.Colname })
		if i < 0 {
			continue
		}
		for _, cn := range def.Constraints {
			con := cn.GetConstraint()
			if con.Contype != pg_query.ConstrType_CONSTR_DEFAULT {
				continue
			}
			expr := con.RawExpr
			val := &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Isnull: true, Location: -1}}}
			if values[i] != nil {
				val = pg_query.MakeAConstStrNode(*values[i], -1)
			}
			con.RawExpr = &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
				Arg: val, TypeName: def.TypeName}}}
			extra = append(extra, &pg_query.Node{Node: &pg_query.Node_AlterTableCmd{AlterTableCmd: &pg_query.AlterTableCmd{
				Subtype: pg_query.AlterTableType_AT_ColumnDefault, Name: def.Colname, Def: expr, Behavior: pg_query.DropBehavior_DROP_RESTRICT}}})
		}
	}
	s.Cmds = append(s.Cmds, extra...)
}

// keylessUnique is the refusal of a UNIQUE, PRIMARY KEY or EXCLUDE
// constraint without the distribution column on a distributed table (a
// reference table's one shard holds every row on each placement, which
// can check any such constraint).
func keylessUnique(t *catalog.Table, kind pg_query.ConstrType) error {
	what := map[pg_query.ConstrType]string{pg_query.ConstrType_CONSTR_PRIMARY: "PRIMARY KEY", pg_query.ConstrType_CONSTR_UNIQUE: "UNIQUE", pg_query.ConstrType_CONSTR_EXCLUSION: "EXCLUDE"}[kind]
	return sqlerr.Unsupported("cannot create a %s constraint on distributed table \"%s\" without its distribution column \"%s\": each shard could only check its own rows", what, t.Name, t.KeyColumn)
}

// addConstraint checks a constraint added by ALTER TABLE and names it.
func (b *ddlBuilder) addConstraint(t *catalog.Table, con *pg_query.Constraint) error {
	if con == nil {
		return sqlerr.Unsupported("ALTER TABLE ADD CONSTRAINT on distributed table \"%s\": unexpected constraint", t.Name)
	}
	var cols []string
	for _, k := range con.Keys {
		cols = append(cols, stringOf(k))
	}
	switch con.Contype {
	case pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE:
		if con.Indexname != "" {
			return sqlerr.Unsupported("ADD CONSTRAINT ... USING INDEX on distributed table \"%s\" is not supported; add the constraint with its columns", t.Name)
		}
		if !slices.Contains(cols, t.KeyColumn) && !t.Reference() {
			return keylessUnique(t, con.Contype)
		}
		suffix := "key"
		if con.Contype == pg_query.ConstrType_CONSTR_PRIMARY {
			suffix, cols = "pkey", nil
		}
		if con.Conname == "" {
			con.Conname = constraintName(t.Name, cols, suffix)
		}
	case pg_query.ConstrType_CONSTR_EXCLUSION:
		keyed := false
		cols = nil
		for _, ex := range con.Exclusions {
			items := ex.GetList().GetItems()
			if len(items) != 2 {
				continue
			}
			col := items[0].GetIndexElem().GetName()
			cols = append(cols, col)
			ops := items[1].GetList().GetItems()
			if col == t.KeyColumn && len(ops) > 0 && stringOf(ops[len(ops)-1]) == "=" {
				keyed = true
			}
		}
		if !keyed && !t.Reference() {
			return keylessUnique(t, con.Contype)
		}
		if con.Conname == "" {
			con.Conname = constraintName(t.Name, cols, "excl")
		}
	case pg_query.ConstrType_CONSTR_CHECK:
		if con.Conname == "" {
			con.Conname = constraintName(t.Name, firstColumn(con.RawExpr), "check")
		}
	case pg_query.ConstrType_CONSTR_FOREIGN:
		if err := b.foreignKey(t, con); err != nil {
			return err
		}
	default:
		return sqlerr.Unsupported("ALTER TABLE ADD CONSTRAINT of this kind on distributed table \"%s\" is not supported", t.Name)
	}
	return nil
}

// foreignKey checks a FOREIGN KEY of a distributed or reference table t:
// either the referenced table is a reference table (its whole copy is on
// every node, so each shard's constraint checks the local copy), or both
// are distributed, co-located, and t's distribution column references the
// referenced table's, so that every referenced row lives in the same shard
// index, on the same nodes. A reference table cannot reference a
// distributed one: its copies would reference rows of other nodes.
func (b *ddlBuilder) foreignKey(t *catalog.Table, con *pg_query.Constraint) error {
	ref, _ := b.table(con.Pktable)
	if ref == nil {
		return sqlerr.Unsupported("cannot add a foreign key from distributed table \"%s\" to \"%s\", which is not distributed: the shards do not have it", t.Name, con.Pktable.GetRelname())
	}
	var from []string
	for _, n := range con.FkAttrs {
		from = append(from, stringOf(n))
	}
	if ref.Reference() {
		if con.Conname == "" {
			con.Conname = constraintName(t.Name, from, "fkey")
		}
		return nil
	}
	if t.Reference() {
		return sqlerr.Unsupported("cannot add a foreign key from reference table \"%s\" to distributed table \"%s\": each copy of the reference table would reference rows that live on other nodes", t.Name, ref.Name)
	}
	if !t.ColocatedWith(ref) {
		return sqlerr.Unsupported("cannot add a foreign key from distributed table \"%s\" to \"%s\": they are not co-located, so referenced rows live on other nodes", t.Name, ref.Name)
	}
	var to []string
	for _, n := range con.PkAttrs {
		to = append(to, stringOf(n))
	}
	if len(to) == 0 {
		to = ref.PrimaryKey
	}
	i := slices.Index(from, t.KeyColumn)
	if i < 0 || i >= len(to) || to[i] != ref.KeyColumn {
		return sqlerr.Unsupported("cannot add a foreign key from distributed table \"%s\" to \"%s\" that does not reference distribution column \"%s\" with distribution column \"%s\": referenced rows would live in other shards", t.Name, ref.Name, ref.KeyColumn, t.KeyColumn)
	}
	if con.Conname == "" {
		con.Conname = constraintName(t.Name, from, "fkey")
	}
	return nil
}

// constraintName is the name PostgreSQL gives an unnamed constraint or
// index, <table>_<columns>_<suffix>, cut to 63 bytes: pgshard names them
// itself, so that the template and every shard (ShardName) agree.
func constraintName(table string, cols []string, suffix string) string {
	parts := append([]string{table}, cols...)
	name := strings.Join(parts, "_") + "_" + suffix
	for len(name) > 63 && len(parts) > 1 {
		// Cut the longest part by one byte at a time, as makeObjectName
		// shortens the longer of its names.
		longest := 0
		for i := range parts {
			if len(parts[i]) > len(parts[longest]) {
				longest = i
			}
		}
		parts[longest] = parts[longest][:len(parts[longest])-1]
		name = strings.Join(parts, "_") + "_" + suffix
	}
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// firstColumn is the first column an expression names, as PostgreSQL names
// a CHECK constraint after it; nil when it names none.
func firstColumn(n *pg_query.Node) []string {
	var col string
	walk(n, func(m protoreflect.ProtoMessage) bool {
		if cr, ok := m.(*pg_query.ColumnRef); ok && col == "" && len(cr.Fields) > 0 {
			col = stringOf(cr.Fields[len(cr.Fields)-1])
		}
		return col == ""
	})
	if col == "" {
		return nil
	}
	return []string{col}
}

// isConstant reports whether a default is a constant (possibly cast or
// negated), which every shard fills in alike.
func isConstant(n *pg_query.Node) bool {
	switch {
	case n == nil:
		return true
	case n.GetAConst() != nil:
		return true
	case n.GetTypeCast() != nil:
		return isConstant(n.GetTypeCast().Arg)
	case n.GetAExpr() != nil && n.GetAExpr().Lexpr == nil:
		return isConstant(n.GetAExpr().Rexpr)
	}
	return false
}

// callsNextval reports whether an expression calls nextval.
func callsNextval(n *pg_query.Node) bool {
	return slices.Contains(functionNames(n), "nextval")
}

// functionNames lists the (unqualified, lower-case) names of the functions
// an expression calls.
func functionNames(n *pg_query.Node) []string {
	var out []string
	walk(n, func(m protoreflect.ProtoMessage) bool {
		if fc, ok := m.(*pg_query.FuncCall); ok {
			_, name := funcName(fc)
			out = append(out, strings.ToLower(name))
		}
		return true
	})
	return out
}

func (b *ddlBuilder) createIndex(s *pg_query.IndexStmt) error {
	t, _ := b.table(s.Relation)
	if t == nil {
		return nil
	}
	b.d.Op = DDLCreateIndex
	b.d.Concurrent = s.Concurrent
	var cols []string
	for _, p := range s.IndexParams {
		el := p.GetIndexElem()
		if el.GetName() != "" {
			cols = append(cols, el.GetName())
		} else {
			cols = append(cols, "expr")
		}
	}
	if s.Unique && !t.Reference() && !slices.Contains(cols, t.KeyColumn) {
		return sqlerr.Unsupported("cannot create a unique index on distributed table \"%s\" without its distribution column \"%s\": each shard could only check its own rows", t.Name, t.KeyColumn)
	}
	if s.Idxname == "" {
		s.Idxname = constraintName(t.Name, cols, "idx")
	}
	b.d.IndexName = s.Idxname
	if s.TableSpace != "" {
		return sqlerr.Unsupported("CREATE INDEX ... TABLESPACE on distributed table \"%s\" is not supported: the workers need not have the tablespace", t.Name)
	}
	b.d.rewrite = func(stmt *pg_query.Node, shards []ShardRef) {
		ix := stmt.GetIndexStmt()
		ix.Idxname = shardName(ix.Idxname, shards, 0)
	}
	return nil
}

// indexTable resolves an index's table through the Env, when it can.
func (b *ddlBuilder) indexTable(schema, name string) *catalog.Table {
	ie, ok := b.env.(IndexEnv)
	if !ok {
		return nil
	}
	ts, tn, ok := ie.IndexTable(schema, name)
	if !ok {
		return nil
	}
	return b.snap.Lookup(ts, tn)
}

func qualified(items []*pg_query.Node) (schema, name string, ok bool) {
	switch len(items) {
	case 1:
		return "", stringOf(items[0]), true
	case 2:
		return stringOf(items[0]), stringOf(items[1]), true
	}
	return "", "", false
}

func (b *ddlBuilder) drop(s *pg_query.DropStmt) error {
	switch s.RemoveType {
	case pg_query.ObjectType_OBJECT_TABLE:
		b.d.Op = DDLDropTable
		ordinary := ""
		for _, obj := range s.Objects {
			schema, name, _ := qualified(obj.GetList().GetItems())
			t := b.snap.Lookup(schema, name)
			if t == nil {
				ordinary = name
				continue
			}
			if !slices.Contains(b.d.Tables, t) {
				b.d.Tables = append(b.d.Tables, t)
			}
		}
		if len(b.d.Tables) > 0 && ordinary != "" {
			return sqlerr.Unsupported("DROP TABLE of distributed table \"%s\" and table \"%s\" in one statement is not supported; drop them one by one", b.d.Tables[0].Name, ordinary)
		}
		tables := b.d.Tables
		b.d.rewrite = func(stmt *pg_query.Node, shards []ShardRef) {
			for _, obj := range stmt.GetDropStmt().Objects {
				items := obj.GetList().GetItems()
				schema, name, _ := qualified(items)
				t := b.snap.Lookup(schema, name)
				j := slices.Index(tables, t)
				obj.GetList().Items = []*pg_query.Node{pg_query.MakeStrNode(t.Schema), pg_query.MakeStrNode(shards[j].Table)}
			}
		}
	case pg_query.ObjectType_OBJECT_INDEX:
		b.d.Op = DDLDropIndex
		b.d.Concurrent = s.Concurrent
		ordinary := ""
		for _, obj := range s.Objects {
			schema, name, _ := qualified(obj.GetList().GetItems())
			t := b.indexTable(schema, name)
			if t == nil {
				ordinary = name
				continue
			}
			if len(b.d.Tables) > 0 && b.d.Tables[0] != t {
				return sqlerr.Unsupported("DROP INDEX of indexes of distributed tables \"%s\" and \"%s\" in one statement is not supported; drop them one by one", b.d.Tables[0].Name, t.Name)
			}
			b.d.Tables = []*catalog.Table{t}
		}
		if len(b.d.Tables) > 0 && ordinary != "" {
			return sqlerr.Unsupported("DROP INDEX of an index of distributed table \"%s\" and index \"%s\" in one statement is not supported; drop them one by one", b.d.Tables[0].Name, ordinary)
		}
		if len(b.d.Tables) == 0 {
			return nil
		}
		schema := b.d.Tables[0].Schema
		b.d.rewrite = func(stmt *pg_query.Node, shards []ShardRef) {
			for _, obj := range stmt.GetDropStmt().Objects {
				_, name, _ := qualified(obj.GetList().GetItems())
				obj.GetList().Items = []*pg_query.Node{pg_query.MakeStrNode(schema), pg_query.MakeStrNode(shardName(name, shards, 0))}
			}
		}
	default:
		for _, obj := range s.Objects {
			if items := obj.GetList().GetItems(); len(items) > 0 {
				schema, name, _ := qualified(items)
				if t := b.snap.Lookup(schema, name); t != nil && s.RemoveType != pg_query.ObjectType_OBJECT_VIEW {
					return sqlerr.Unsupported("DROP %s on distributed table \"%s\" is not supported", strings.TrimPrefix(s.RemoveType.String(), "OBJECT_"), t.Name)
				}
			}
		}
	}
	return nil
}

func (b *ddlBuilder) truncate(s *pg_query.TruncateStmt) error {
	ordinary := ""
	for _, r := range s.Relations {
		if t, _ := b.table(r.GetRangeVar()); t == nil {
			ordinary = r.GetRangeVar().GetRelname()
		}
	}
	if len(b.d.Tables) == 0 {
		return nil
	}
	b.d.Op = DDLTruncate
	if ordinary != "" {
		return sqlerr.Unsupported("TRUNCATE of distributed table \"%s\" and table \"%s\" in one statement is not supported; truncate them one by one", b.d.Tables[0].Name, ordinary)
	}
	if s.RestartSeqs {
		return sqlerr.Unsupported("TRUNCATE ... RESTART IDENTITY on distributed table \"%s\" is not supported: its sequences live on the metadata database; restart them with ALTER SEQUENCE", b.d.Tables[0].Name)
	}
	return nil
}

// vacuum plans ANALYZE or VACUUM of one distributed or reference table;
// without a table (the whole database) it runs on the metadata database
// alone. Several tables in one statement, one of them distributed, are
// refused: their shards are not paired up as co-located tables' are.
func (b *ddlBuilder) vacuum(s *pg_query.VacuumStmt) error {
	op := DDLAnalyze
	if s.IsVacuumcmd {
		op = DDLVacuum
	}
	for _, r := range s.Rels {
		b.table(r.GetVacuumRelation().GetRelation())
	}
	if len(b.d.Tables) == 0 {
		return nil
	}
	b.d.Op = op
	if len(s.Rels) > 1 {
		return sqlerr.Unsupported("%s of distributed table \"%s\" together with other tables is not supported; run one %s per table", op, b.d.Tables[0].Name, op)
	}
	return nil
}

func (b *ddlBuilder) rename(s *pg_query.RenameStmt) error {
	switch s.RenameType {
	case pg_query.ObjectType_OBJECT_TABLE:
		t, _ := b.table(s.Relation)
		if t == nil {
			return nil
		}
		b.d.Op = DDLRename
		b.d.rewrite = func(stmt *pg_query.Node, shards []ShardRef) {
			r := stmt.GetRenameStmt()
			r.Newname = catalog.ShardName(r.Newname, shards[0].ID)
		}
	case pg_query.ObjectType_OBJECT_COLUMN:
		t, _ := b.table(s.Relation)
		if t == nil {
			return nil
		}
		b.d.Op = DDLRename
		if s.Subname == t.KeyColumn {
			b.d.KeyRename = s.Newname
		}
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		t, _ := b.table(s.Relation)
		if t == nil {
			return nil
		}
		b.d.Op = DDLRename
		b.d.rewrite = func(stmt *pg_query.Node, shards []ShardRef) {
			r := stmt.GetRenameStmt()
			r.Subname = shardName(r.Subname, shards, 0)
			r.Newname = shardName(r.Newname, shards, 0)
		}
	case pg_query.ObjectType_OBJECT_INDEX:
		t := b.indexTable(s.Relation.GetSchemaname(), s.Relation.GetRelname())
		if t == nil {
			return nil
		}
		b.d.Op = DDLRename
		b.d.Tables = []*catalog.Table{t}
		b.d.rewrite = func(stmt *pg_query.Node, shards []ShardRef) {
			r := stmt.GetRenameStmt()
			r.Relation.Schemaname = t.Schema
			r.Relation.Relname = shardName(r.Relation.Relname, shards, 0)
			r.Newname = shardName(r.Newname, shards, 0)
		}
	default:
		if t := b.snap.Lookup(s.Relation.GetSchemaname(), s.Relation.GetRelname()); t != nil {
			return sqlerr.Unsupported("ALTER ... RENAME of this kind on distributed table \"%s\" is not supported", t.Name)
		}
	}
	return nil
}

func (b *ddlBuilder) comment(s *pg_query.CommentStmt) error {
	items := s.Object.GetList().GetItems()
	switch s.Objtype {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_COLUMN:
	default:
		return nil
	}
	n := len(items)
	if s.Objtype == pg_query.ObjectType_OBJECT_COLUMN {
		n--
	}
	if n < 1 || n > 2 {
		return nil
	}
	schema, name, _ := qualified(items[:n])
	t := b.snap.Lookup(schema, name)
	if t == nil {
		return nil
	}
	b.d.Op = DDLComment
	b.d.Tables = []*catalog.Table{t}
	b.d.rewrite = func(stmt *pg_query.Node, shards []ShardRef) {
		c := stmt.GetCommentStmt()
		l := c.Object.GetList()
		rest := l.Items[n:]
		l.Items = append([]*pg_query.Node{pg_query.MakeStrNode(t.Schema), pg_query.MakeStrNode(shards[0].Table)}, rest...)
	}
	return nil
}

// describe renders the plan for golden files: what it changes and the
// statements of the template and of shard index 0 (as the catalog names
// them).
func (d *DDLPlan) describe() string {
	var b strings.Builder
	names := make([]string, len(d.Tables))
	refs := make([]ShardRef, len(d.Tables))
	for i, t := range d.Tables {
		names[i] = t.Name
		if len(t.Shards) > 0 {
			refs[i] = ShardRef{ID: t.Shards[0].ID, Table: t.ShardTableName(t.Shards[0].ID)}
		}
	}
	fmt.Fprintf(&b, "ddl: %s of %s", d.Op, strings.Join(names, ", "))
	if d.Concurrent {
		b.WriteString(", concurrently")
	}
	if d.KeyRename != "" {
		fmt.Fprintf(&b, ", distribution column renamed to %s", d.KeyRename)
	}
	b.WriteByte('\n')
	for _, def := range d.Defaults {
		fmt.Fprintf(&b, "default of %s evaluated once: %s\n", def.Column, def.SQL)
	}
	if len(d.Functions) > 0 {
		fmt.Fprintf(&b, "functions checked for volatility: %v\n", d.Functions)
	}
	if d.TemplateSQL != "" {
		fmt.Fprintf(&b, "template sql: %s\n", d.TemplateSQL)
	}
	if len(d.Tables[0].Shards) == 0 {
		return b.String()
	}
	var values []*string
	for range d.Defaults {
		v := "VALUE"
		values = append(values, &v)
	}
	if sql, err := d.ShardSQL(refs, values); err != nil {
		fmt.Fprintf(&b, "shard sql error: %v\n", err)
	} else {
		fmt.Fprintf(&b, "shard %d sql: %s\n", refs[0].ID, sql)
	}
	return b.String()
}

// catalogShardSQL is the statement of shard index i as the catalog
// snapshot names the shards (the driver names them as the metadata
// database does when it runs), defaults not evaluated.
func (d *DDLPlan) catalogShardSQL(i int) (string, error) {
	refs := make([]ShardRef, len(d.Tables))
	for j, t := range d.Tables {
		if i >= len(t.Shards) {
			return "", sqlerr.New(sqlerr.ObjectNotInPrereq, "co-located tables \"%s\" and \"%s\" have different shard counts", d.Tables[0].Name, t.Name)
		}
		refs[j] = ShardRef{ID: t.Shards[i].ID, Table: t.ShardTableName(t.Shards[i].ID)}
	}
	return d.ShardSQL(refs, nil)
}
