package catalog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// TemplateDDL is what is needed to create shard tables of a template table:
// it's read once from the metadata database by ReadTemplateDDL, and then
// ShardStatements renders the statements for any number of shards without
// another round trip.
//
// Expressions (defaults, generation expressions, constraint and index
// definitions) are PostgreSQL's own deparsed text. When the Querier can begin a
// (sub)transaction, they are deparsed with an empty search_path, so every type,
// function and operator outside pg_catalog is schema-qualified and the
// statements mean the same on a worker whatever its search_path.
type TemplateDDL struct {
	// RelationID is the template table's oid on the metadata database.
	RelationID uint32
	// Schema and Name are the template table's schema and name (unquoted).
	Schema, Name string
	// Unlogged is true for an UNLOGGED template.
	Unlogged bool
	// Options are the table's storage parameters (reloptions), "name=value".
	Options []string
	// Columns are the template's columns in attnum order, dropped ones left out.
	Columns []ColumnDDL
	// Constraints are the CHECK, UNIQUE, PRIMARY KEY and EXCLUDE constraints,
	// in creation (oid) order. FOREIGN KEY constraints are in ForeignKeys or
	// OtherForeignKeys.
	Constraints []ConstraintDDL
	// ForeignKeys are the FOREIGN KEY constraints to reference tables, in
	// creation order: every node holds the referenced table's one shard,
	// so each shard gets the constraint against that local copy.
	ForeignKeys []ForeignKeyDDL
	// ColocatedForeignKeys are the FOREIGN KEY constraints to distributed
	// tables co-located with the template (itself included), in creation
	// order: each shard gets the constraint against the referenced table's
	// shard of the same range, on the same node (ColocatedForeignKeyStatement).
	// ShardStatements leaves them out: the referenced shard must hold its
	// rows first (repair adds them once the data is there).
	ColocatedForeignKeys []ColocatedForeignKeyDDL
	// OtherForeignKeys name the FOREIGN KEY constraints to other tables
	// ("name → table"): the shards do not get them (the referenced rows
	// live in other shards, or only on the metadata database). Creating
	// shards refuses a template that has any (see UnenforceableForeignKey).
	OtherForeignKeys []string
	// Indexes are the valid indexes that do not back a constraint, in creation
	// order.
	Indexes []IndexDDL
	// LegacyNames maps the shards of the table that an older pgshard
	// created with a name PostgreSQL truncated to that name
	// (pgs_distribution_metadata.shard_table_name); nil when there are none.
	LegacyNames map[int64]string
}

// ColumnDDL is one column of a TemplateDDL.
type ColumnDDL struct {
	Name string
	// Type is format_type(atttypid, atttypmod).
	Type string
	// Collation is the quoted, schema-qualified collation when it differs from
	// the type's default collation, "" otherwise.
	Collation string
	NotNull   bool
	// Default is the column default's SQL, "" when none. Defaults calling
	// nextval() and identity columns have none here: pgshard fills those
	// columns from the metadata database, so values are unique across shards.
	Default string
	// Generated is the expression of a GENERATED ALWAYS AS (...) STORED column,
	// "" for an ordinary column.
	Generated string
}

// ConstraintDDL is one constraint of a TemplateDDL.
type ConstraintDDL struct {
	Name string
	// Def is pg_get_constraintdef: "CHECK ((a > 0))", "PRIMARY KEY (id)", ...
	Def string
	// NotValid is true for a constraint that was added NOT VALID and never
	// validated; it is added with ALTER TABLE so that it stays so on the shard.
	NotValid bool
}

// BackedByIndex reports whether the constraint is a PRIMARY KEY, UNIQUE or
// EXCLUDE constraint, whose index is a relation of the constraint's name.
func (c ConstraintDDL) BackedByIndex() bool {
	return strings.HasPrefix(c.Def, "PRIMARY KEY") || strings.HasPrefix(c.Def, "UNIQUE") || strings.HasPrefix(c.Def, "EXCLUDE")
}

// ForeignKeyDDL is a FOREIGN KEY of a TemplateDDL to a reference table.
type ForeignKeyDDL struct {
	Name string
	// Head and Tail are pg_get_constraintdef around the referenced table's
	// name: "FOREIGN KEY (a) REFERENCES " and "(id) ON DELETE CASCADE".
	Head, Tail string
	// RefSchema and RefShard are the schema of the referenced reference
	// table and the name of its shard table on every node.
	RefSchema, RefShard string
	NotValid            bool
}

// ColocatedForeignKeyDDL is a FOREIGN KEY of a TemplateDDL to a
// distributed table in the template's co-location group, on the
// distribution column: shard i's rows reference rows of the referenced
// table's shard i, which lives on the same nodes. Immutable once read.
type ColocatedForeignKeyDDL struct {
	Name string
	// RefRelationID, RefSchema and RefName are the referenced table's oid,
	// schema and name on the metadata database.
	RefRelationID      uint32
	RefSchema, RefName string
	// NotValid is true when the template's constraint was added NOT VALID
	// and never validated.
	NotValid bool
	// RefShards maps each shard of the template to the referenced table's
	// shard with the same range.
	RefShards map[int64]ShardTableRef
	// stmt is "ALTER TABLE x ADD CONSTRAINT y <pg_get_constraintdef>",
	// parsed once; each shard's statement is a copy with its names.
	stmt *pg_query.ParseResult
}

// ShardTableRef is one shard's id and the name of its table on the
// workers (see TemplateDDL.ShardTableName).
type ShardTableRef struct {
	ID    int64
	Table string
}

// ColocatedForeignKeyStatement returns the ALTER TABLE IF EXISTS ... ADD
// CONSTRAINT that gives shard shardID's table the foreign key fk (one of
// d.ColocatedForeignKeys) against the referenced table's shard of the same
// range: the constraint named ShardName(fk.Name, shardID), as DDL through
// pgshard names it on the shards, and referencing the shard table's quoted
// name, both set in the parse tree of the template's definition. notValid
// adds it NOT VALID whatever the template's.
func (d *TemplateDDL) ColocatedForeignKeyStatement(fk *ColocatedForeignKeyDDL, shardID int64, notValid bool) (string, error) {
	ref, ok := fk.RefShards[shardID]
	if !ok {
		return "", sqlerr.New(sqlerr.ObjectNotInPrereq, "shard %d of \"%s.%s\" has no co-located shard of \"%s.%s\", which its foreign key \"%s\" references", shardID, d.Schema, d.Name, fk.RefSchema, fk.RefName, fk.Name)
	}
	tree, ok := proto.Clone(fk.stmt).(*pg_query.ParseResult)
	if !ok || len(tree.Stmts) != 1 {
		return "", fmt.Errorf("catalog: foreign key %q of %s.%s: unexpected parse tree", fk.Name, d.Schema, d.Name)
	}
	alter := tree.Stmts[0].GetStmt().GetAlterTableStmt()
	if alter == nil || len(alter.Cmds) != 1 {
		return "", fmt.Errorf("catalog: foreign key %q of %s.%s: unexpected parse tree", fk.Name, d.Schema, d.Name)
	}
	con := alter.Cmds[0].GetAlterTableCmd().GetDef().GetConstraint()
	if con == nil || con.Pktable == nil {
		return "", fmt.Errorf("catalog: foreign key %q of %s.%s: unexpected parse tree", fk.Name, d.Schema, d.Name)
	}
	alter.Relation = &pg_query.RangeVar{Schemaname: d.Schema, Relname: d.ShardTableName(shardID), Inh: true, Relpersistence: "p"}
	alter.MissingOk = true
	con.Conname = ShardName(fk.Name, shardID)
	con.Pktable.Schemaname, con.Pktable.Relname = fk.RefSchema, ref.Table
	if notValid {
		con.SkipValidation, con.InitiallyValid = true, false
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return "", fmt.Errorf("catalog: writing foreign key %q of shard %d of %s.%s: %w", fk.Name, shardID, d.Schema, d.Name, err)
	}
	return out, nil
}

// DropColocatedForeignKeyStatement returns the ALTER TABLE IF EXISTS ...
// DROP CONSTRAINT IF EXISTS that removes foreign key fk from shard
// shardID's table.
func (d *TemplateDDL) DropColocatedForeignKeyStatement(fk *ColocatedForeignKeyDDL, shardID int64) string {
	return "ALTER TABLE IF EXISTS " + d.ShardTableIdentifier(shardID) + " DROP CONSTRAINT IF EXISTS " + pgx.Identifier{ShardName(fk.Name, shardID)}.Sanitize()
}

// RefShardIdentifier returns the quoted, schema-qualified name of the
// table of the referenced table's shard that shard shardID's foreign key fk
// references; ok is false when there is none.
func (fk *ColocatedForeignKeyDDL) RefShardIdentifier(shardID int64) (ref ShardTableRef, identifier string, ok bool) {
	ref, ok = fk.RefShards[shardID]
	if !ok {
		return ref, "", false
	}
	return ref, pgx.Identifier{fk.RefSchema, ref.Table}.Sanitize(), true
}

// UnenforceableForeignKey fails with 0A000 when the template has a
// foreign key its shards cannot enforce (OtherForeignKeys): one to a
// distributed table, or to a table the workers do not have. what is the
// table being made ("distributed table", "reference table").
func (d *TemplateDDL) UnenforceableForeignKey(what string) error {
	if len(d.OtherForeignKeys) == 0 {
		return nil
	}
	return sqlerr.Unsupported("cannot create the shards of %s \"%s\": its foreign key %s does not reference a reference table, so the shards could not enforce it; reference tables can be referenced from any table, and a foreign key between co-located distributed tables on their distribution columns can be added with ALTER TABLE once both have shards", what, d.Name, d.OtherForeignKeys[0])
}

// IndexDDL is one index of a TemplateDDL that backs no constraint.
type IndexDDL struct {
	Name   string
	Unique bool
	// Body is pg_get_indexdef after "CREATE [UNIQUE] INDEX name ON
	// schema.table ": "USING btree (a, lower(b)) INCLUDE (c) WHERE (...)".
	Body string
}

// duplicateTable is SQLSTATE 42P07, duplicate_table: a shard table's name
// is taken.
const duplicateTable = "42P07"

// maxNameBytes is the longest identifier PostgreSQL keeps (NAMEDATALEN-1):
// it truncates longer ones silently.
const maxNameBytes = 63

// shardNameHashBytes is what a shortened name spends on its hash: "_" and
// eight hex digits.
const shardNameHashBytes = 9

// ShardName is the name of shard shardID's table, or of one of its indexes
// or constraints, given the template's name: "<name>_<shardid>", pg_shard's
// name, when that fits in PostgreSQL's 63 bytes; else, as Citus's
// AppendShardIdToName does, name cut (on a UTF-8 character boundary) to
// leave room for "_<hash>_<shardid>", hash being the eight hex digits of
// PostgreSQL's hash_any of the whole name (hashtext). The result always
// ends in "_<shardid>" and is at most 63 bytes, so PostgreSQL never
// truncates it and two shards (shard ids are unique) never share a name;
// names that fit are unchanged, so existing shards keep theirs.
func ShardName(name string, shardID int64) string {
	suffix := "_" + strconv.FormatInt(shardID, 10)
	if len(name)+len(suffix) <= maxNameBytes {
		return name + suffix
	}
	keep := utf8ClipLen(name, maxNameBytes-len(suffix)-shardNameHashBytes)
	return fmt.Sprintf("%s_%08x%s", name[:keep], hashBytes(name), suffix)
}

// ShardTableName is the name of shard shardID's table on the workers:
// ShardName(d.Name, shardID), or the name recorded for a shard an older
// pgshard created (LegacyNames).
func (d *TemplateDDL) ShardTableName(shardID int64) string {
	if n, ok := d.LegacyNames[shardID]; ok {
		return n
	}
	return ShardName(d.Name, shardID)
}

// ShardTableIdentifier is the quoted, schema-qualified name of shard shardID's
// table: "schema"."name_shardid" (see ShardTableName).
func (d *TemplateDDL) ShardTableIdentifier(shardID int64) string {
	return pgx.Identifier{d.Schema, d.ShardTableName(shardID)}.Sanitize()
}

// ShardRelationNames returns the names of the relations ShardStatements
// creates for shard shardID in the template's schema: the table and the
// indexes (those of constraints too: a PRIMARY KEY, UNIQUE or EXCLUDE
// constraint's index takes its name). It fails with 42P07 when two of
// them would be equal, which only a hash collision of shortened names
// can cause.
func (d *TemplateDDL) ShardRelationNames(shardID int64) ([]string, error) {
	names := []string{d.ShardTableName(shardID)}
	for _, c := range d.Constraints {
		if c.BackedByIndex() {
			names = append(names, ShardName(c.Name, shardID))
		}
	}
	for _, ix := range d.Indexes {
		names = append(names, ShardName(ix.Name, shardID))
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return nil, sqlerr.New(duplicateTable, "shard %d of \"%s.%s\" would have two relations named \"%s\"; rename an index or constraint of the template table", shardID, d.Schema, d.Name, n)
		}
		seen[n] = true
	}
	return names, nil
}

// CopyColumns returns the names of the columns COPY reads and writes: every
// column but the generated ones, in table order.
func (d *TemplateDDL) CopyColumns() []string {
	out := make([]string, 0, len(d.Columns))
	for _, c := range d.Columns {
		if c.Generated == "" {
			out = append(out, c.Name)
		}
	}
	return out
}

// ShardStatements returns the SQL statements that create the shard table
// "<name>_<shardid>" in the same schema as the template (CREATE SCHEMA IF NOT
// EXISTS first when the schema is not public), with constraint and index names
// extended with "_<shardid>", and everything else equal to the template. Run
// them in order, in one transaction.
func (d *TemplateDDL) ShardStatements(shardID int64) []string {
	return append(d.ShardTableStatements(shardID), d.ShardIndexStatements(shardID)...)
}

// ShardTableStatements are the statements of ShardStatements up to and
// including the table with its constraints, without the other indexes: a
// caller loading rows into a new shard table creates those afterwards, which
// is faster.
func (d *TemplateDDL) ShardTableStatements(shardID int64) []string {
	var out []string
	if d.Schema != "public" {
		out = append(out, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{d.Schema}.Sanitize())
	}
	table := d.ShardTableIdentifier(shardID)
	var b strings.Builder
	b.WriteString("CREATE ")
	if d.Unlogged {
		b.WriteString("UNLOGGED ")
	}
	b.WriteString("TABLE ")
	b.WriteString(table)
	b.WriteString(" (")
	n := 0
	sep := func() {
		if n > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n\t")
		n++
	}
	for _, c := range d.Columns {
		sep()
		b.WriteString(pgx.Identifier{c.Name}.Sanitize())
		b.WriteString(" ")
		b.WriteString(c.Type)
		if c.Collation != "" {
			b.WriteString(" COLLATE ")
			b.WriteString(c.Collation)
		}
		if c.Generated != "" {
			b.WriteString(" GENERATED ALWAYS AS (")
			b.WriteString(c.Generated)
			b.WriteString(") STORED")
		} else if c.Default != "" {
			b.WriteString(" DEFAULT ")
			b.WriteString(c.Default)
		}
		if c.NotNull {
			b.WriteString(" NOT NULL")
		}
	}
	var notValid []ConstraintDDL
	for _, c := range d.Constraints {
		if c.NotValid {
			notValid = append(notValid, c)
			continue
		}
		sep()
		b.WriteString("CONSTRAINT ")
		b.WriteString(pgx.Identifier{ShardName(c.Name, shardID)}.Sanitize())
		b.WriteString(" ")
		b.WriteString(c.Def)
	}
	if n > 0 {
		b.WriteString("\n")
	}
	b.WriteString(")")
	if len(d.Options) > 0 {
		b.WriteString(" WITH (")
		b.WriteString(strings.Join(d.Options, ", "))
		b.WriteString(")")
	}
	out = append(out, b.String())
	// A NOT VALID constraint written in CREATE TABLE would be validated; added
	// afterwards it stays unvalidated, as on the template.
	for _, c := range notValid {
		out = append(out, "ALTER TABLE "+table+" ADD CONSTRAINT "+
			pgx.Identifier{ShardName(c.Name, shardID)}.Sanitize()+" "+c.Def)
	}
	return out
}

// ShardIndexStatements are the CREATE INDEX statements of ShardStatements,
// then the foreign keys to reference tables (ALTER TABLE ... ADD
// CONSTRAINT, which checks the rows already in the shard table once).
func (d *TemplateDDL) ShardIndexStatements(shardID int64) []string {
	out := make([]string, 0, len(d.Indexes)+len(d.ForeignKeys))
	table := d.ShardTableIdentifier(shardID)
	for _, ix := range d.Indexes {
		unique := ""
		if ix.Unique {
			unique = "UNIQUE "
		}
		out = append(out, "CREATE "+unique+"INDEX "+pgx.Identifier{ShardName(ix.Name, shardID)}.Sanitize()+
			" ON "+table+" "+ix.Body)
	}
	for _, fk := range d.ForeignKeys {
		out = append(out, "ALTER TABLE "+table+" ADD CONSTRAINT "+pgx.Identifier{ShardName(fk.Name, shardID)}.Sanitize()+" "+
			fk.Head+pgx.Identifier{fk.RefSchema, fk.RefShard}.Sanitize()+fk.Tail)
	}
	return out
}

// beginner is what *pgx.Conn, *pgxpool.Pool and pgx.Tx (a savepoint) share.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ReadTemplateDDL reads table relid's definition from the metadata database:
// columns with types (format_type), NOT NULL, defaults (pg_get_expr) except
// defaults calling nextval() (pgshard fills those itself),
// CHECK/UNIQUE/PRIMARY KEY/EXCLUDE constraints (pg_get_constraintdef),
// FOREIGN KEY constraints to reference tables and to co-located distributed
// tables (the others are only named, in OtherForeignKeys), and indexes that do not back a constraint
// (pg_get_indexdef). Identity columns are treated like serial ones: no default
// and no identity on the shard. Generated columns keep their GENERATED ALWAYS
// AS (...) STORED.
//
// When q can begin a transaction (or, for a pgx.Tx, a savepoint), the reads run
// in one, with search_path set to empty for that (sub)transaction only, and it
// is rolled back afterwards: the caller's session and transaction are left as
// they were. Otherwise (a *pgx.Conn inside a transaction it began with a plain
// BEGIN, or another Querier) the definitions are deparsed with the session's
// search_path.
func ReadTemplateDDL(ctx context.Context, q Querier, relid uint32) (*TemplateDDL, error) {
	b, ok := q.(beginner)
	if c, isConn := q.(*pgx.Conn); isConn && c.PgConn().TxStatus() != 'I' {
		// A connection already in a transaction it began itself (Exec
		// "BEGIN"): Begin would not nest, and its rollback would end the
		// caller's transaction.
		ok = false
	}
	if ok {
		tx, err := b.Begin(ctx)
		if err != nil {
			return nil, fmt.Errorf("catalog: reading definition of relation %d: %w", relid, err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if _, err := tx.Exec(ctx, `SELECT set_config('search_path', '', true)`); err != nil {
			return nil, fmt.Errorf("catalog: reading definition of relation %d: %w", relid, err)
		}
		q = tx
	}
	return readTemplateDDL(ctx, q, relid)
}

func readTemplateDDL(ctx context.Context, q Querier, relid uint32) (*TemplateDDL, error) {
	d := &TemplateDDL{RelationID: relid}
	var relkind, persistence string
	err := q.QueryRow(ctx, `
		SELECT n.nspname, c.relname, c.relkind::text, c.relpersistence::text,
		       coalesce((SELECT array_agg(o.option_name || '=' || quote_literal(o.option_value))
		                 FROM pg_options_to_table(c.reloptions) o), '{}')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = $1`, relid).Scan(&d.Schema, &d.Name, &relkind, &persistence, &d.Options)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlerr.New(sqlerr.UndefinedTable, "relation with OID %d does not exist", relid)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: reading definition of relation %d: %w", relid, err)
	}
	if relkind != "r" {
		return nil, sqlerr.New(sqlerr.WrongObjectType, "\"%s.%s\" is not an ordinary table", d.Schema, d.Name)
	}
	switch persistence {
	case "u":
		d.Unlogged = true
	case "t":
		return nil, sqlerr.New(sqlerr.WrongObjectType, "\"%s.%s\" is a temporary table", d.Schema, d.Name)
	}
	if err := readColumns(ctx, q, d); err != nil {
		return nil, err
	}
	if err := readConstraints(ctx, q, d); err != nil {
		return nil, err
	}
	if err := readForeignKeys(ctx, q, d); err != nil {
		return nil, err
	}
	if err := readIndexes(ctx, q, d); err != nil {
		return nil, err
	}
	if err := readLegacyNames(ctx, q, d); err != nil {
		return nil, err
	}
	return d, nil
}

// readLegacyNames reads the recorded names of d's shards that an older
// pgshard created (see ShardName), when the metadata schema has them.
func readLegacyNames(ctx context.Context, q Querier, d *TemplateDDL) error {
	var recorded bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('pgs_distribution_metadata.shard_table_name') IS NOT NULL`).Scan(&recorded); err != nil {
		return fmt.Errorf("catalog: reading shard names of %s.%s: %w", d.Schema, d.Name, err)
	}
	if !recorded {
		return nil
	}
	rows, err := q.Query(ctx, `SELECT n.shard_id, n.table_name FROM pgs_distribution_metadata.shard_table_name n
		JOIN pgs_distribution_metadata.shard s ON s.id = n.shard_id WHERE s.relation_id = $1`, d.RelationID)
	if err != nil {
		return fmt.Errorf("catalog: reading shard names of %s.%s: %w", d.Schema, d.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("catalog: reading shard names of %s.%s: %w", d.Schema, d.Name, err)
		}
		if d.LegacyNames == nil {
			d.LegacyNames = map[int64]string{}
		}
		d.LegacyNames[id] = name
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog: reading shard names of %s.%s: %w", d.Schema, d.Name, err)
	}
	return nil
}

func readColumns(ctx context.Context, q Querier, d *TemplateDDL) error {
	// A default calls nextval() when its node tree holds a FuncExpr of
	// nextval(regclass); matching the tree rather than the deparsed text does
	// not mistake a string constant 'nextval(' for a call.
	rows, err := q.Query(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
		       a.attidentity::text, a.attgenerated::text,
		       coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''),
		       coalesce(position(':funcid ' || 'pg_catalog.nextval(pg_catalog.regclass)'::pg_catalog.regprocedure::oid || ' '
		                         in ad.adbin::text) > 0, false),
		       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
		            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) ELSE '' END
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
		LEFT JOIN pg_collation co ON co.oid = a.attcollation
		LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, d.RelationID)
	if err != nil {
		return fmt.Errorf("catalog: reading columns of %s.%s: %w", d.Schema, d.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c ColumnDDL
		var identity, generated, expr string
		var nextval bool
		if err := rows.Scan(&c.Name, &c.Type, &c.NotNull, &identity, &generated, &expr, &nextval, &c.Collation); err != nil {
			return fmt.Errorf("catalog: reading columns of %s.%s: %w", d.Schema, d.Name, err)
		}
		switch {
		case generated != "":
			c.Generated = expr
		case identity != "", nextval:
			// pgshard fills the column; the shard has no default.
		default:
			c.Default = expr
		}
		d.Columns = append(d.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog: reading columns of %s.%s: %w", d.Schema, d.Name, err)
	}
	return nil
}

func readConstraints(ctx context.Context, q Querier, d *TemplateDDL) error {
	rows, err := q.Query(ctx, `
		SELECT conname, pg_get_constraintdef(oid), NOT convalidated
		FROM pg_constraint
		WHERE conrelid = $1 AND contype IN ('c', 'u', 'p', 'x')
		ORDER BY oid`, d.RelationID)
	if err != nil {
		return fmt.Errorf("catalog: reading constraints of %s.%s: %w", d.Schema, d.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c ConstraintDDL
		if err := rows.Scan(&c.Name, &c.Def, &c.NotValid); err != nil {
			return fmt.Errorf("catalog: reading constraints of %s.%s: %w", d.Schema, d.Name, err)
		}
		d.Constraints = append(d.Constraints, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog: reading constraints of %s.%s: %w", d.Schema, d.Name, err)
	}
	return nil
}

// readForeignKeys reads d's FOREIGN KEY constraints: those to reference
// tables (when the metadata schema is there) into ForeignKeys, those to
// tables co-located with d into ColocatedForeignKeys, the others into
// OtherForeignKeys.
func readForeignKeys(ctx context.Context, q Querier, d *TemplateDDL) error {
	var metadata, colocation bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('pgs_distribution_metadata.partition') IS NOT NULL,
		to_regclass('pgs_distribution_metadata.colocation') IS NOT NULL`).Scan(&metadata, &colocation); err != nil {
		return fmt.Errorf("catalog: reading foreign keys of %s.%s: %w", d.Schema, d.Name, err)
	}
	// The referenced table's shard: its one shard when it is a reference
	// table, else 0.
	shard := `0::int8`
	if metadata {
		shard = `coalesce((SELECT s.id FROM pgs_distribution_metadata.partition p
		           JOIN pgs_distribution_metadata.shard s ON s.relation_id = p.relation_id
		           WHERE p.relation_id = k.confrelid AND p.partition_method = 'n'::"char"
		           ORDER BY s.id LIMIT 1), 0)`
	}
	// Whether the referenced table is a hash-distributed table of d's
	// co-location group (d itself included).
	colocated := `false`
	if metadata && colocation {
		colocated = `coalesce((SELECT c1.colocation_id = c2.colocation_id
		           FROM pgs_distribution_metadata.colocation c1, pgs_distribution_metadata.colocation c2,
		                pgs_distribution_metadata.partition p
		           WHERE c1.relation_id = k.conrelid AND c2.relation_id = k.confrelid
		             AND p.relation_id = k.confrelid AND p.partition_method = 'h'::"char"), false)`
	}
	rows, err := q.Query(ctx, `
		SELECT k.conname, pg_get_constraintdef(k.oid), NOT k.convalidated, n.nspname, c.relname,
		       quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(c.relname), `+shard+`,
		       k.confrelid, `+colocated+`
		FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.confrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE k.conrelid = $1 AND k.contype = 'f'
		ORDER BY k.oid`, d.RelationID)
	if err != nil {
		return fmt.Errorf("catalog: reading foreign keys of %s.%s: %w", d.Schema, d.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var fk ForeignKeyDDL
		var def, refName, qualified, bare string
		var shardID int64
		var refRel uint32
		var isColocated bool
		if err := rows.Scan(&fk.Name, &def, &fk.NotValid, &fk.RefSchema, &refName, &qualified, &bare, &shardID, &refRel, &isColocated); err != nil {
			return fmt.Errorf("catalog: reading foreign keys of %s.%s: %w", d.Schema, d.Name, err)
		}
		if isColocated {
			c, err := colocatedForeignKey(fk, def, refRel, refName)
			if err != nil {
				return fmt.Errorf("catalog: reading foreign keys of %s.%s: %w", d.Schema, d.Name, err)
			}
			d.ColocatedForeignKeys = append(d.ColocatedForeignKeys, c)
			continue
		}
		// pg_get_constraintdef writes "... REFERENCES <name>(cols) ...",
		// the name qualified unless the search_path finds it.
		head, tail, ok := strings.Cut(def, " REFERENCES "+qualified+"(")
		if !ok {
			head, tail, ok = strings.Cut(def, " REFERENCES "+bare+"(")
		}
		if shardID == 0 || !ok {
			d.OtherForeignKeys = append(d.OtherForeignKeys, fmt.Sprintf("\"%s\" (to \"%s\")", fk.Name, refName))
			continue
		}
		fk.Head, fk.Tail = head+" REFERENCES ", "("+tail
		fk.RefShard = ShardName(refName, shardID)
		d.ForeignKeys = append(d.ForeignKeys, fk)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog: reading foreign keys of %s.%s: %w", d.Schema, d.Name, err)
	}
	rows.Close()
	for i := range d.ColocatedForeignKeys {
		if err := readRefShards(ctx, q, d, &d.ColocatedForeignKeys[i]); err != nil {
			return err
		}
	}
	return nil
}

// colocatedForeignKey parses the definition def (pg_get_constraintdef) of
// foreign key fk to co-located table refRel, once.
func colocatedForeignKey(fk ForeignKeyDDL, def string, refRel uint32, refName string) (ColocatedForeignKeyDDL, error) {
	c := ColocatedForeignKeyDDL{Name: fk.Name, RefRelationID: refRel, RefSchema: fk.RefSchema, RefName: refName, NotValid: fk.NotValid}
	tree, err := pg_query.Parse("ALTER TABLE x ADD CONSTRAINT y " + def)
	if err != nil {
		return c, fmt.Errorf("parsing foreign key %q (%s): %w", fk.Name, def, err)
	}
	if len(tree.Stmts) != 1 || tree.Stmts[0].GetStmt().GetAlterTableStmt() == nil {
		return c, fmt.Errorf("unexpected definition of foreign key %q: %s", fk.Name, def)
	}
	c.stmt = tree
	return c, nil
}

// readRefShards fills fk.RefShards: for every shard of d, the referenced
// table's shard with the same range and its table's name (recorded for
// shards an older pgshard made, else ShardName).
func readRefShards(ctx context.Context, q Querier, d *TemplateDDL, fk *ColocatedForeignKeyDDL) error {
	var recorded bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('pgs_distribution_metadata.shard_table_name') IS NOT NULL`).Scan(&recorded); err != nil {
		return fmt.Errorf("catalog: reading the shards foreign key %q of %s.%s references: %w", fk.Name, d.Schema, d.Name, err)
	}
	legacy := `NULL::text`
	if recorded {
		legacy = `(SELECT n.table_name FROM pgs_distribution_metadata.shard_table_name n WHERE n.shard_id = s2.id)`
	}
	rows, err := q.Query(ctx, `
		SELECT s1.id, s2.id, `+legacy+`
		FROM pgs_distribution_metadata.shard s1
		JOIN pgs_distribution_metadata.shard s2 ON s2.relation_id = $2 AND s2.min_value = s1.min_value AND s2.max_value = s1.max_value
		WHERE s1.relation_id = $1`, d.RelationID, fk.RefRelationID)
	if err != nil {
		return fmt.Errorf("catalog: reading the shards foreign key %q of %s.%s references: %w", fk.Name, d.Schema, d.Name, err)
	}
	defer rows.Close()
	fk.RefShards = map[int64]ShardTableRef{}
	for rows.Next() {
		var id int64
		var ref ShardTableRef
		var name *string
		if err := rows.Scan(&id, &ref.ID, &name); err != nil {
			return fmt.Errorf("catalog: reading the shards foreign key %q of %s.%s references: %w", fk.Name, d.Schema, d.Name, err)
		}
		ref.Table = ShardName(fk.RefName, ref.ID)
		if name != nil {
			ref.Table = *name
		}
		fk.RefShards[id] = ref
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog: reading the shards foreign key %q of %s.%s references: %w", fk.Name, d.Schema, d.Name, err)
	}
	return nil
}

func readIndexes(ctx context.Context, q Querier, d *TemplateDDL) error {
	// prefix is what pg_get_indexdef writes before " USING ": PostgreSQL
	// quotes the index name and the schema-qualified table name with
	// quote_identifier, which quote_ident calls, so the prefix is known exactly
	// and only the rest of the definition is kept. Matching the whole prefix
	// instead of searching for " USING " is safe for names holding " USING ".
	rows, err := q.Query(ctx, `
		SELECT ic.relname, i.indisunique, pg_get_indexdef(i.indexrelid),
		       'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' ||
		       quote_ident(ic.relname) || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' '
		FROM pg_index i
		JOIN pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_class c ON c.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE i.indrelid = $1 AND i.indisvalid AND i.indislive
		  AND NOT EXISTS (SELECT FROM pg_constraint k
		                  WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid
		                    AND k.contype IN ('p', 'u', 'x'))
		ORDER BY i.indexrelid`, d.RelationID)
	if err != nil {
		return fmt.Errorf("catalog: reading indexes of %s.%s: %w", d.Schema, d.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var ix IndexDDL
		var def, prefix string
		if err := rows.Scan(&ix.Name, &ix.Unique, &def, &prefix); err != nil {
			return fmt.Errorf("catalog: reading indexes of %s.%s: %w", d.Schema, d.Name, err)
		}
		body, ok := indexBody(def, prefix)
		if !ok {
			return fmt.Errorf("catalog: unexpected definition of index %q of %s.%s: %s", ix.Name, d.Schema, d.Name, def)
		}
		ix.Body = body
		d.Indexes = append(d.Indexes, ix)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog: reading indexes of %s.%s: %w", d.Schema, d.Name, err)
	}
	return nil
}

// indexBody returns the part of index definition def after prefix ("CREATE
// [UNIQUE] INDEX name ON schema.table "), which must start with "USING ".
func indexBody(def, prefix string) (string, bool) {
	body, ok := strings.CutPrefix(def, prefix)
	if !ok || !strings.HasPrefix(body, "USING ") {
		return "", false
	}
	return body, true
}

// CheckShardTableFree fails with 42P07 when shard shardID's table (see
// TemplateDDL.ShardTableName) would have the name of another shard's table
// on node, as the metadata database q records them. Names pgshard gives
// never collide; the shard tables an older pgshard created can, as
// PostgreSQL truncated their names to 63 bytes. Call it before placing
// the shard on node (a move, a repair), so that the other shard's table is
// never taken for this one's.
func CheckShardTableFree(ctx context.Context, q Querier, node Node, d *TemplateDDL, shardID int64) error {
	want := d.ShardTableName(shardID)
	rows, err := q.Query(ctx, `
		SELECT s.id, c.relname, n.table_name
		FROM pgs_distribution_metadata.shard s
		JOIN pgs_distribution_metadata.shard_placement p ON p.shard_id = s.id
		JOIN pg_class c ON c.oid = s.relation_id
		JOIN pg_namespace ns ON ns.oid = c.relnamespace
		LEFT JOIN pgs_distribution_metadata.shard_table_name n ON n.shard_id = s.id
		WHERE p.node_name = $1 AND p.node_port = $2 AND ns.nspname = $3 AND s.id <> $4`,
		node.Name, node.Port, d.Schema, shardID)
	if err != nil {
		return fmt.Errorf("catalog: reading the shard tables on %s: %w", node, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var rel string
		var legacy *string
		if err := rows.Scan(&id, &rel, &legacy); err != nil {
			return fmt.Errorf("catalog: reading the shard tables on %s: %w", node, err)
		}
		name := ShardName(rel, id)
		if legacy != nil {
			name = *legacy
		}
		if name == want {
			return sqlerr.New(duplicateTable, "shard %d cannot be placed on %s: its table \"%s.%s\" would be shard %d's table there (an older pgshard named shard tables \"<table>_<shardid>\" and PostgreSQL truncated the long names to 63 bytes); place shard %d on another node",
				shardID, node, d.Schema, want, id, shardID)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog: reading the shard tables on %s: %w", node, err)
	}
	return nil
}
