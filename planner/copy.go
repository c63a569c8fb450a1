package planner

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// COPY on distributed tables.
//
// COPY t [(cols)] FROM STDIN: the driver receives the rows one by one as
// values (lib/pq's CopyIn convention through database/sql), hashes each
// row's key as an INSERT of it would be hashed (catalog.Hash, the session
// reading key texts its settings decide), and streams each shard's rows to
// every writable placement of the shard (Plan.CopyFromShardSQL): in COPY's
// binary format when every column's type is one of copyBinaryTypes
// (CopyPlan.Binary), else, or from the first value whose binary form could
// differ from its text, in COPY's text format. The data format is the
// driver's own, so no format option applies: any option but FORMAT text is
// refused.
//
// COPY t [(cols)] TO STDOUT and COPY (SELECT ...) TO STDOUT: each shard
// (those the SELECT runs on) runs the COPY on its own rows, one shard after
// the other, and the driver passes the lines on as they come: concatenated,
// which is COPY's answer only when the SELECT needs no merge across shards
// (no ORDER BY, aggregate, DISTINCT, LIMIT, ... over several shards); such a
// SELECT is refused. FORMAT text and csv with their options are
// supported; CSV's HEADER line comes from the first shard only. FORMAT
// binary is refused (each shard's output would carry its own header and
// trailer).

// CopyPlan is a COPY statement on a distributed table (Kind Scatter).
type CopyPlan struct {
	// From is true for COPY ... FROM STDIN, false for COPY ... TO STDOUT.
	From bool
	// Columns are the columns the data holds, in its order: those listed,
	// or every column of the table. Nil for COPY (SELECT ...).
	Columns []string
	// Types are the Columns' type OIDs.
	Types []uint32
	// KeyIndex is the position of the table's key in Columns (COPY FROM
	// always has it).
	KeyIndex int
	// Given is how many of Columns each row of COPY FROM holds (the
	// columns listed, or every column): Columns[Given:] are columns left
	// out whose defaults pgshard computes once on the metadata database,
	// as it does for an INSERT leaving them out (sequences, the key, and
	// defaults that are not immutable when the table is replicated), their
	// values appended to each row by DefaultsSQL.
	Given int
	// DefaultsSQL computes the defaults of Columns[Given:] for $1 rows:
	// one row per data row, each column cast to its column's type. It runs
	// in the session (its nextval, now() and settings are the session's).
	// Empty when no column is left to pgshard.
	DefaultsSQL string
	// Query is the plan of the SELECT of COPY (SELECT ...) TO STDOUT: a
	// Router plan or a Scatter plan that only concatenates shards' rows;
	// nil for a table.
	Query *Plan
	// Header is set when the output starts with a header line (HEADER),
	// which only the first shard's COPY writes.
	Header bool
	// Binary is set for a COPY FROM whose rows are sent to the shards in
	// COPY's binary format: every column's type is one of
	// copyBinaryTypes. The writer still turns to the text format at the
	// first value whose binary form could differ from what the text stores
	// (a string given for a number, ...).
	Binary bool

	options []*pg_query.Node
	// version is the parse tree version the deparser wants.
	version int32
}

// planCopy plans a COPY statement; it returns nil (with p unchanged) for a
// COPY that names no distributed table, which runs on the metadata
// database.
func planCopy(p *Plan, c *pg_query.CopyStmt, snap *catalog.Snapshot, env Env) (*Plan, error) {
	cp := &CopyPlan{From: c.IsFrom, version: p.tree.Version}
	var t *catalog.Table
	if c.Relation != nil {
		if t = snap.Lookup(c.Relation.Schemaname, c.Relation.Relname); t == nil {
			return nil, nil
		}
		if c.Relation.Catalogname != "" {
			return nil, sqlerr.Unsupported("cross-database references are not supported: %s.%s.%s", c.Relation.Catalogname, c.Relation.Schemaname, c.Relation.Relname)
		}
		if t.Invalid != nil {
			return nil, t.Invalid
		}
	} else {
		inner, err := planCopyQuery(c.Query, cp.version, snap, env)
		if err != nil || inner == nil {
			return nil, err
		}
		cp.Query, t = inner, inner.Table
	}
	if c.IsProgram || c.Filename != "" {
		if c.IsFrom {
			return nil, sqlerr.Unsupported("COPY FROM a file or program into distributed table \"%s\" is not supported; use COPY FROM STDIN", t.Name)
		}
		return nil, sqlerr.Unsupported("COPY TO a file or program from distributed table \"%s\" is not supported; use COPY TO STDOUT", t.Name)
	}
	if c.WhereClause != nil {
		return nil, sqlerr.Unsupported("COPY ... FROM ... WHERE on distributed table \"%s\" is not supported", t.Name)
	}
	if cp.Query == nil {
		if err := cp.setColumns(t, c.Attlist); err != nil {
			return nil, err
		}
		if c.IsFrom {
			if err := cp.addDefaults(t, env); err != nil {
				return nil, err
			}
			cp.Binary = true
			for _, typ := range cp.Types {
				cp.Binary = cp.Binary && copyBinaryTypes[typ]
			}
		}
	}
	if err := cp.setOptions(t, c.Options); err != nil {
		return nil, err
	}
	p.Kind, p.Table, p.Copy, p.Modifies = Scatter, t, cp, c.IsFrom
	p.tables = []*catalog.Table{t}
	p.shardSQL = make([]shardText, len(t.Shards))
	return p, nil
}

// planCopyQuery plans the SELECT of COPY (SELECT ...) TO STDOUT; nil when
// it reads no distributed table.
func planCopyQuery(q *pg_query.Node, version int32, snap *catalog.Snapshot, env Env) (*Plan, error) {
	if q.GetSelectStmt() == nil {
		a := &analyzer{snap: snap, visited: map[*pg_query.RangeVar]bool{}}
		a.checkAllVisited(q)
		if a.err == nil {
			return nil, nil
		}
		return nil, sqlerr.Unsupported("COPY (...) TO STDOUT of anything but a SELECT on distributed tables is not supported")
	}
	sql, err := pg_query.Deparse(&pg_query.ParseResult{Version: version, Stmts: []*pg_query.RawStmt{{Stmt: q}}})
	if err != nil {
		return nil, sqlerr.New(sqlerr.InternalError, "deparsing the query of COPY: %v", err)
	}
	inner, err := planParsed(sql, snap, env)
	if err != nil {
		return nil, err
	}
	switch {
	case inner.Kind == Passthrough && inner.Tx == nil && inner.Session == nil:
		return nil, nil
	case inner.argCount > 0 || inner.Eval != nil:
		return nil, sqlerr.Unsupported("COPY (SELECT ...) TO STDOUT on distributed tables with parameters or values computed beforehand is not supported: %s", sql)
	case inner.Kind == Router:
	case inner.Kind == Scatter && !inner.Modifies && inner.Combine == nil && inner.Aggregates == nil && inner.SortMerge == nil && inner.InsertSelect == nil:
	default:
		return nil, sqlerr.Unsupported("COPY (SELECT ...) TO STDOUT of a query whose rows pgshard merges across shards (ORDER BY, LIMIT, aggregates, DISTINCT, GROUP BY, subqueries run first, ...) is not supported; run the SELECT through database/sql instead: %s", sql)
	}
	return inner, nil
}

// setColumns sets the columns the data holds: attlist, or every column.
func (cp *CopyPlan) setColumns(t *catalog.Table, attlist []*pg_query.Node) error {
	cp.KeyIndex = -1
	if len(attlist) == 0 {
		for _, c := range t.Columns {
			cp.Columns = append(cp.Columns, c.Name)
			cp.Types = append(cp.Types, c.TypeOID)
		}
		cp.KeyIndex = t.KeyIndex
		cp.Given = len(cp.Columns)
		return nil
	}
	for _, n := range attlist {
		name := stringOf(n)
		col := -1
		for i, c := range t.Columns {
			if c.Name == name {
				col = i
			}
		}
		if col < 0 {
			return sqlerr.New(sqlerr.UndefinedColumn, "column \"%s\" of relation \"%s\" does not exist", name, t.Name)
		}
		for _, seen := range cp.Columns {
			if seen == name {
				return sqlerr.New("42701", "column \"%s\" specified more than once", name)
			}
		}
		if name == t.KeyColumn {
			cp.KeyIndex = len(cp.Columns)
		}
		cp.Columns = append(cp.Columns, name)
		cp.Types = append(cp.Types, t.Columns[col].TypeOID)
	}
	cp.Given = len(cp.Columns)
	return nil
}

// addDefaults appends to Columns the columns a COPY FROM leaves out whose
// default pgshard must compute itself, as planInsert decides for an INSERT
// leaving them out: a sequence (the shard tables have none, and values
// must be unique across shards), the key (its value decides the shard),
// and, when the table is replicated, a default that is not immutable
// (each placement would compute its own). Other defaults (none, constant,
// or volatile on an unreplicated table) are left to the shard, as an
// INSERT leaves them. DefaultsSQL computes the appended ones.
func (cp *CopyPlan) addDefaults(t *catalog.Table, env Env) error {
	replicated := false
	for _, s := range t.Shards {
		replicated = replicated || len(s.Placements) > 1
	}
	listed := map[string]bool{}
	for _, name := range cp.Columns {
		listed[name] = true
	}
	var exprs []string
	for i := range t.Columns {
		c := &t.Columns[i]
		if listed[c.Name] {
			continue
		}
		if c.Default == "" {
			if c.Name == t.KeyColumn {
				return sqlerr.Unsupported("COPY into distributed table \"%s\" must list its partition column \"%s\" (it has no default)", t.Name, t.KeyColumn)
			}
			continue
		}
		if !(c.SequenceDefault || c.Name == t.KeyColumn || (replicated && !defaultImmutable(c, env))) {
			continue
		}
		expr := defaultExpr(t, c)
		if _, err := parseDefault(expr); err != nil {
			return err
		}
		if c.Name == t.KeyColumn {
			cp.KeyIndex = len(cp.Columns)
		}
		cp.Columns = append(cp.Columns, c.Name)
		cp.Types = append(cp.Types, c.TypeOID)
		exprs = append(exprs, fmt.Sprintf("(%s)::%s", expr, c.TypeName))
	}
	if len(exprs) > 0 {
		cp.DefaultsSQL = "SELECT " + strings.Join(exprs, ", ") + " FROM pg_catalog.generate_series(1, $1::int)"
	}
	return nil
}

// copyBinaryTypes are the column types a COPY FROM sends in binary: those
// whose binary form the writer encodes from the Go values it is given
// (engine's appendBinary): bool, bytea, int2, int4, int8, text, json,
// float4, float8, bpchar, varchar, date, timestamp, timestamptz,
// interval, numeric, uuid, jsonb. None holds a server-specific OID.
var copyBinaryTypes = map[uint32]bool{
	16: true, 17: true, 20: true, 21: true, 23: true, 25: true, 114: true,
	700: true, 701: true, 1042: true, 1043: true, 1082: true, 1114: true,
	1184: true, 1186: true, 1700: true, 2950: true, 3802: true,
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// copyToOptions are the options COPY TO STDOUT passes on to the shards.
var copyToOptions = map[string]bool{
	"format": true, "delimiter": true, "null": true, "header": true,
	"quote": true, "escape": true, "force_quote": true, "encoding": true,
}

// setOptions checks the WITH options: none but FORMAT text for COPY FROM;
// the formatting options of text and csv for COPY TO.
func (cp *CopyPlan) setOptions(t *catalog.Table, opts []*pg_query.Node) error {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil {
			return sqlerr.Unsupported("COPY option %v on distributed table \"%s\" is not supported", o, t.Name)
		}
		val := strings.ToLower(stringOf(d.Arg))
		if cp.From {
			if d.Defname == "format" && val == "text" {
				continue
			}
			return sqlerr.Unsupported("COPY FROM STDIN option %s on distributed table \"%s\" is not supported: pgshard writes the rows it is given as values in COPY's text format itself", strings.ToUpper(d.Defname), t.Name)
		}
		if !copyToOptions[d.Defname] {
			return sqlerr.Unsupported("COPY TO STDOUT option %s on distributed table \"%s\" is not supported", strings.ToUpper(d.Defname), t.Name)
		}
		switch d.Defname {
		case "format":
			if val != "text" && val != "csv" {
				return sqlerr.Unsupported("COPY TO STDOUT in format %s on distributed table \"%s\" is not supported (text and csv are)", val, t.Name)
			}
		case "header":
			cp.Header = headerOn(d.Arg)
		}
		cp.options = append(cp.options, o)
	}
	return nil
}

// headerOn is PostgreSQL's reading of HEADER's value (defGetCopyHeaderChoice).
func headerOn(arg *pg_query.Node) bool {
	if arg == nil {
		return true
	}
	switch x := arg.Node.(type) {
	case *pg_query.Node_Boolean:
		return x.Boolean.Boolval
	case *pg_query.Node_Integer:
		return x.Integer.Ival != 0
	}
	switch strings.ToLower(stringOf(arg)) {
	case "false", "off", "0", "f", "n", "no":
		return false
	}
	return true
}

// CopyShardSQL returns the COPY that shard index i of the plan's table
// runs: COPY shard (cols) FROM STDIN for COPY FROM; for COPY TO, COPY
// shard (cols) (or the SELECT rewritten for the shard) TO STDOUT with the
// statement's options, HEADER only when first is set.
func (p *Plan) CopyShardSQL(i int, first bool) (string, error) {
	cp, t := p.Copy, p.Table
	if cp.From {
		return p.CopyFromShardSQL(i, cp.Binary)
	}
	stmt := &pg_query.CopyStmt{}
	if cp.Query != nil {
		sql, err := cp.Query.ShardSQL(i)
		if err != nil {
			return "", err
		}
		tree, err := pg_query.Parse(sql)
		if err != nil {
			return "", sqlerr.New(sqlerr.InternalError, "parsing shard %d's query of COPY: %v", t.Shards[i].ID, err)
		}
		stmt.Query = tree.Stmts[0].Stmt
	} else {
		stmt.Relation = &pg_query.RangeVar{Schemaname: t.Schema, Relname: t.ShardTableName(t.Shards[i].ID), Inh: true, Relpersistence: "p"}
		for _, c := range cp.Columns {
			stmt.Attlist = append(stmt.Attlist, pg_query.MakeStrNode(c))
		}
	}
	for _, o := range cp.options {
		if o.GetDefElem().Defname == "header" && !first {
			continue
		}
		stmt.Options = append(stmt.Options, o)
	}
	sql, err := pg_query.Deparse(&pg_query.ParseResult{Version: cp.version, Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_CopyStmt{CopyStmt: stmt}}}}})
	if err != nil {
		return "", sqlerr.New(sqlerr.InternalError, "deparsing shard %d's COPY: %v", t.Shards[i].ID, err)
	}
	return sql, nil
}

// CopyFromShardSQL returns the COPY FROM STDIN that shard index i of the
// plan's table runs for a batch of rows: in COPY's binary format when
// binary is set, else in its text format.
func (p *Plan) CopyFromShardSQL(i int, binary bool) (string, error) {
	cp, t := p.Copy, p.Table
	var b strings.Builder
	b.WriteString("COPY ")
	b.WriteString(pgx.Identifier{t.Schema, t.ShardTableName(t.Shards[i].ID)}.Sanitize())
	b.WriteString(" (")
	for j, c := range cp.Columns {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c}.Sanitize())
	}
	b.WriteString(") FROM STDIN")
	if binary {
		b.WriteString(" (FORMAT binary)")
	}
	return b.String(), nil
}

// CopyShards returns the indexes of the shards a COPY TO reads, ascending:
// the one a Router SELECT is pinned to, those a Scatter SELECT runs on, or
// every shard of the table.
func (p *Plan) CopyShards() ([]int, error) {
	q := p.Copy.Query
	switch {
	case q == nil:
		all := make([]int, len(p.Table.Shards))
		for i := range all {
			all[i] = i
		}
		return all, nil
	case q.Kind == Router:
		i, err := q.Route(nil)
		if err != nil {
			return nil, err
		}
		return []int{i}, nil
	}
	shards, err := q.TargetShards(nil)
	if err == nil && len(shards) == 0 {
		shards = []int{0}
	}
	return shards, err
}

// describeCopy is Describe's text of a COPY plan.
func (p *Plan) describeCopy(b *strings.Builder) {
	cp := p.Copy
	dir := "to stdout"
	if cp.From {
		dir = "from stdin"
	}
	fmt.Fprintf(b, "copy %s: %s (key %s)\n", dir, p.Table.QualifiedName(), p.Table.KeyColumn)
	if cp.Query != nil {
		fmt.Fprintf(b, "copy query: %s %s\n", cp.Query.Kind, cp.Query.SQL)
	} else {
		fmt.Fprintf(b, "copy columns: %s (types %v, key at %d)\n", strings.Join(cp.Columns, ", "), cp.Types, cp.KeyIndex)
		if cp.DefaultsSQL != "" {
			fmt.Fprintf(b, "copy defaults: %s given, %s computed by %s\n", strings.Join(cp.Columns[:cp.Given], ", "), strings.Join(cp.Columns[cp.Given:], ", "), cp.DefaultsSQL)
		}
	}
	if cp.Header {
		b.WriteString("copy header: first shard\n")
	}
	shards := []int{0}
	if !cp.From {
		var err error
		if shards, err = p.CopyShards(); err != nil {
			fmt.Fprintf(b, "copy shards error: %v\n", err)
			return
		}
	}
	for n, i := range shards {
		if n == 2 {
			fmt.Fprintf(b, "... %d shards in all\n", len(shards))
			break
		}
		sql, err := p.CopyShardSQL(i, n == 0)
		if err != nil {
			fmt.Fprintf(b, "shard %d sql error: %v\n", p.Table.Shards[i].ID, err)
			continue
		}
		fmt.Fprintf(b, "shard %d sql: %s\n", p.Table.Shards[i].ID, sql)
	}
}
