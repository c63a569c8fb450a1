package planner

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/engine"
	"github.com/pgshard/pgshard/internal/sqlerr"
	plantypes "github.com/pgshard/pgshard/plan"
)

// Kind is how a statement is executed.
type Kind int

const (
	// Passthrough statements touch no distributed table; they run unchanged
	// on the metadata database, where ordinary tables live.
	Passthrough Kind = iota
	// Admin statements call one of pg_shard's administrative functions.
	Admin
	// Router statements go whole to the one shard their keys pin, chosen at
	// execute time from literals and bind parameters.
	Router
	// Scatter statements run on every shard; the driver merges the answers.
	Scatter
	// Explain statements show the distributed plan of the statement they
	// explain, with each shard's own EXPLAIN.
	Explain
	// Materialize statements run some of their subqueries first, through
	// pgshard, and then the rest over their rows (MaterializePlan).
	Materialize
	// Concatenate statements are a UNION ALL whose arms run one after the
	// other, each through pgshard, their rows streamed (ConcatenatePlan).
	Concatenate
	// SchemaChange statements change distributed tables' definitions: the
	// templates and every shard, atomically (DDLPlan).
	SchemaChange
)

func (k Kind) String() string {
	switch k {
	case Passthrough:
		return "Passthrough"
	case Admin:
		return "Admin"
	case Router:
		return "Router"
	case Scatter:
		return "Scatter"
	case Explain:
		return "Explain"
	case Materialize:
		return "Materialize"
	case Concatenate:
		return "Concatenate"
	case SchemaChange:
		return "SchemaChange"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// FunctionInfo describes the functions of one name on the metadata database.
type FunctionInfo struct {
	// Aggregate is true when any function of that name is an aggregate.
	Aggregate bool
	// Window is true when any function of that name is a window function.
	Window bool
	// Immutable is true when every function of that name is immutable.
	Immutable bool
}

// Env is what the planner needs to know beyond the catalog snapshot.
// Implementations must be safe for concurrent use.
type Env interface {
	// Function describes the functions called name (unqualified, as
	// written); found is false when there is none.
	Function(name string) (info FunctionInfo, found bool)
	// Describe returns the result columns PostgreSQL gives a query on the
	// metadata database, where distributed tables have their (empty)
	// templates: their names and types, exactly as a single server would
	// report them. It may fail (an error means: unknown).
	Describe(sql string) ([]ColumnDesc, error)
}

// ColumnDesc is one result column of a described query.
type ColumnDesc struct {
	Name    string
	TypeOID uint32
}

// Plan is the plan of one SQL text against one catalog snapshot. It is
// immutable, except for its internal per-shard SQL cache, and safe for
// concurrent use.
type Plan struct {
	// SQL is the text as the application sent it.
	SQL string
	// Kind says how the statement runs.
	Kind Kind
	// Version is the catalog version the plan was made against; a plan is
	// stale once the catalog has moved on.
	Version int64
	// Modifies is true for statements that write (INSERT, UPDATE, DELETE,
	// SELECT INTO), which go to every finalized placement of their shard.
	Modifies bool
	// Table is the distributed table whose shards the statement is routed
	// by; other distributed tables in it are co-located with it.
	Table *catalog.Table
	// Admin is the administrative call, for Kind Admin.
	Admin *AdminCall
	// Aggregates are the merge steps per output column for a Scatter plan
	// whose select list is only count and sum calls; nil otherwise.
	Aggregates []Aggregate
	// Combine is set for a Scatter plan whose answer PostgreSQL combines
	// from the shards' partial rows; the shard SQL is then the partial query.
	Combine *CombinePlan
	// SortMerge, when set (a Scatter plan that only orders and cuts rows),
	// streams the answer: the driver merges the shards' sorted rows itself
	// when it can compare the keys exactly, else uses Combine.
	SortMerge *SortMergePlan
	// Eval lists expressions evaluated once on the metadata database before
	// routing (volatile values of replicated writes, sequence defaults, keys
	// that are not literals); nil when none.
	Eval *EvalPlan
	// InsertKeys are the key values of an INSERT's VALUES rows, in order.
	InsertKeys []Value
	// Prune, for a Scatter plan, lists the key values the rows it reads or
	// writes have (key IN (...), key = ANY($1), ORs of key equalities): only
	// their shards run it. Nil means every shard.
	Prune *KeySet
	// ShardParams, when not nil, lists the parameters the shard statement
	// uses, in its own numbering: its $i is the statement's parameter
	// ShardParams[i-1] (after Eval's values). Nil means $i is $i: the shard
	// statement uses parameters 1..n without a gap. A gap appears when a
	// parameter is used only in a value evaluated beforehand, or only in the
	// part of a multi-shard query that is combined afterwards.
	ShardParams []int
	// InsertSelect is set for INSERT ... SELECT into a distributed table
	// (Kind Scatter): shard by shard when it can (InsertSelect.Pushdown);
	// otherwise the SELECT runs once, through pgshard, and its rows go to
	// their shards; the shard SQL inserts from arrays of them.
	InsertSelect *InsertSelectPlan
	// Copy is set for COPY FROM STDIN and COPY TO STDOUT on a distributed
	// table (Kind Scatter; Modifies for COPY FROM).
	Copy *CopyPlan
	// Explain is set for Kind Explain.
	Explain *ExplainPlan
	// Materialize is set for Kind Materialize.
	Materialize *MaterializePlan
	// Concatenate is set for Kind Concatenate.
	Concatenate *ConcatenatePlan
	// DDL is set for Kind SchemaChange.
	DDL *DDLPlan
	// SchemaCheck is set for a schema change (ALTER TABLE, CREATE INDEX,
	// DROP, TRUNCATE, RENAME, COMMENT) that the catalog says names no
	// distributed table with shards (Kind Passthrough): a driver confirms
	// the catalog is current before running it on the metadata database
	// alone, since another process may have distributed the table a
	// moment ago.
	SchemaCheck bool
	// Tx is set for a transaction control statement (BEGIN, SAVEPOINT, ...),
	// which the driver handles itself; Kind is then Passthrough.
	Tx *TxCommand
	// SettingKeyParams lists the statement's parameters that are shard key
	// values of a type whose text form the session's settings decide (date,
	// timestamp, timestamptz: catalog.KeyTextDependsOnSettings). A driver
	// given text for one of them that catalog.KeyTextIndependentOfSettings
	// rejects has the session evaluate it and passes the typed value on, to
	// the hash and to the shard alike. Nil when there is none.
	SettingKeyParams []KeyParam
	// Session is set for statements that change the session's settings or
	// temporary relations (Kind Passthrough); nil for the others.
	Session *SessionCommand
	// PureRead is set for a SELECT that locks no rows (no FOR UPDATE/SHARE)
	// and calls only immutable functions: it has no effect but its rows.
	// In a READ COMMITTED transaction, where every statement reads the rows
	// committed when it starts, such a read of a node the transaction has
	// not joined may run outside the transaction and reads the same rows.
	PureRead bool
	// Statements is set when the text holds more than one statement (Kind
	// Passthrough, nothing else set): the driver runs them in order, each
	// planned by itself, in one implicit transaction as PostgreSQL does.
	Statements []Statement

	refs []*tableRef
	// root is the statement's own query level, as the analyzer saw it.
	root *scope
	// tables lists the distributed tables in refs, each once, Table first.
	tables []*catalog.Table
	// target is the table an INSERT, UPDATE or DELETE writes; nil for reads.
	target *catalog.Table
	tree   *pg_query.ParseResult
	// argCount is how many arguments the statement takes (its highest $n),
	// before Eval adds its values.
	argCount int
	// renames maps the location of each distributed RangeVar to its table.
	renames  map[int32]*catalog.Table
	shardSQL []shardText
	// evals collects the expressions of Eval while planning (evalBuilder).
	evals *evalBuilder
	// literalRows is set for an INSERT of literal rows (planLiteralRows):
	// rewriting for a shard leaves its VALUES rows alone, so rewritten
	// copies share them.
	literalRows bool
	// rowsDropped is set once a plan of literal rows without parameters
	// holds its shard statements (the one shard's in shardSQL, or parts
	// for the shards partShards of its rows) and no longer its rows.
	rowsDropped bool
	parts       []InsertPart
	partShards  []int
	// shardTarget is what the primitives and the node layer read of the plan
	// (ShardTarget), made on first use.
	shardTarget atomic.Pointer[plantypes.Target]
	// primitives is the plan's tree of primitives (Build), made on first
	// use.
	primitives atomic.Pointer[primitiveTree]
}

// primitiveTree holds a plan's tree of primitives (nil for a plan that has
// none).
type primitiveTree struct{ root engine.Primitive }

// KeyParam is a statement parameter used as a shard key value of type Type.
type KeyParam = plantypes.KeyParam

type shardText struct {
	once sync.Once
	sql  string
	err  error
}

// EvalPlan is a SELECT run on the metadata database whose results become the
// parameters First, First+1, ... of the statement sent to the shards.
type EvalPlan = plantypes.Eval

// New plans sql against snap. It parses the text, except that of an INSERT
// of literal rows, which it scans (planLiteralInsert); callers cache the
// Plan per text and snapshot version.
func New(sql string, snap *catalog.Snapshot, env Env) (*Plan, error) {
	if p := planLiteralInsert(sql, snap, env); p != nil {
		return p, nil
	}
	return planParsed(sql, snap, env)
}

// planParsed plans sql from its parse tree, as every statement but those
// planLiteralInsert takes.
func planParsed(sql string, snap *catalog.Snapshot, env Env) (*Plan, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, parseError(err)
	}
	if p := planLiteralRows(sql, tree, snap, env); p != nil {
		return p, nil
	}
	// $0 parses but is no parameter; it would read as a NULL key (Value
	// with Param 0) and deparse as "?".
	if n, ok := minParam(tree); ok && n < 1 {
		return nil, sqlerr.New("42P02", "there is no parameter $%d", n)
	}
	p, err := plan(sql, tree, snap, env)
	if err == nil {
		p.collectSettingKeyParams()
	}
	if err != nil && sqlerr.Code(err) == sqlerr.FeatureNotSupported {
		// The shards cannot run it as it is: a UNION ALL arm by arm,
		if c := planConcatenate(sql, env); c != nil {
			return &Plan{SQL: sql, Kind: Concatenate, Version: snap.Version, Concatenate: c}, nil
		}
		// or once its subqueries that need all rows have run,
		if m := planMaterialize(sql, snap, env); m != nil {
			return &Plan{SQL: sql, Kind: Materialize, Version: snap.Version, Materialize: m}, nil
		}
		// Or once one of its tables has been read on its own.
		if m := planBroadcast(sql, snap, env); m != nil {
			return &Plan{SQL: sql, Kind: Materialize, Version: snap.Version, Materialize: m}, nil
		}
	}
	return p, err
}

// minParam returns the lowest $n in the tree; ok is false when there is none.
func minParam(tree *pg_query.ParseResult) (min int, ok bool) {
	walk(tree, func(m protoreflect.ProtoMessage) bool {
		if pr, isParam := m.(*pg_query.ParamRef); isParam && (!ok || int(pr.Number) < min) {
			min, ok = int(pr.Number), true
		}
		return true
	})
	return min, ok
}

// parseError turns a pg_query parse error into a 42601 error.
func parseError(err error) error {
	msg := err.Error()
	return sqlerr.New(sqlerr.SyntaxError, "%s", msg)
}

func plan(sql string, tree *pg_query.ParseResult, snap *catalog.Snapshot, env Env) (*Plan, error) {
	p := &Plan{SQL: sql, Kind: Passthrough, tree: tree}
	if snap != nil {
		p.Version = snap.Version
	}
	if len(tree.Stmts) == 0 {
		return p, nil
	}
	if len(tree.Stmts) > 1 {
		p.Statements = splitStatements(sql, tree)
		return p, nil
	}
	p.Tx = txCommand(tree)
	p.argCount = maxParam(tree)
	var err error
	if p.Session, err = sessionCommand(tree); err != nil {
		return nil, err
	}
	if p.Session != nil && p.Session.setConfig {
		// set_config changes the session where it runs: only the metadata
		// session's state is carried to the workers.
		a := &analyzer{snap: snap, visited: map[*pg_query.RangeVar]bool{}}
		a.checkAllVisited(tree)
		if a.err != nil {
			return nil, sqlerr.Unsupported("set_config in a statement on distributed tables is not supported; call it in a statement of its own")
		}
	}
	if call, err := adminCall(tree); call != nil || err != nil {
		if err != nil {
			return nil, err
		}
		// The arguments are selected on the metadata database, where a
		// distributed table is only its empty template.
		a := &analyzer{snap: snap, visited: map[*pg_query.RangeVar]bool{}}
		a.checkAllVisited(tree)
		if a.err != nil {
			return nil, sqlerr.Unsupported("%s cannot read its arguments from a distributed table: %s", call.Function, sqlerr.As(a.err).Message)
		}
		p.Kind, p.Admin = Admin, call
		return p, nil
	}
	stmt := tree.Stmts[0].Stmt
	p.SchemaCheck = isSchemaChange(stmt)
	if !snap.HasDistributedTables() {
		return p, nil
	}
	if c := stmt.GetCopyStmt(); c != nil {
		if cp, err := planCopy(p, c, snap, env); cp != nil || err != nil {
			return cp, err
		}
		return p, nil
	}
	if e := stmt.GetExplainStmt(); e != nil {
		a := &analyzer{snap: snap, visited: map[*pg_query.RangeVar]bool{}}
		a.checkAllVisited(e.Query)
		if a.err == nil {
			return p, nil // EXPLAIN of ordinary tables: the metadata database explains it
		}
		return planExplain(p, e, snap, env)
	}
	if isSchemaChange(stmt) {
		d, templateOnly, err := planDDL(stmt, tree.Version, snap, env)
		if err != nil {
			return nil, err
		}
		if d != nil {
			p.SchemaCheck = false
			p.Kind, p.DDL = SchemaChange, d
			p.Table = d.Tables[0]
			p.tables = d.Tables
			p.shardSQL = make([]shardText, len(p.Table.Shards))
			return p, nil
		}
		if templateOnly {
			return p, nil
		}
	}
	a := &analyzer{snap: snap, visited: map[*pg_query.RangeVar]bool{}}
	switch {
	case stmt.GetSelectStmt() != nil, stmt.GetInsertStmt() != nil, stmt.GetUpdateStmt() != nil, stmt.GetDeleteStmt() != nil:
		a.root = newScope(nil)
		a.statement(a.root, stmt)
	default:
		if err := checkUtility(stmt, snap); err != nil {
			return nil, err
		}
		a.markReferencedReferenceTables(stmt)
	}
	if ins := stmt.GetInsertStmt(); a.insertSelect && ins != nil {
		// The SELECT of an INSERT ... SELECT is planned by itself.
		sel := ins.SelectStmt
		ins.SelectStmt = nil
		a.checkAllVisited(stmt)
		ins.SelectStmt = sel
	} else {
		a.checkAllVisited(stmt)
	}
	if a.err != nil {
		return nil, a.err
	}
	if len(a.refs) == 0 && len(a.references) == 0 {
		return p, nil
	}
	// A statement on reference tables only is routed by them (one shard);
	// otherwise by its distributed tables, each shard's statement reading
	// the reference tables' shard on its node (see reference.go).
	referenceOnly := len(a.refs) == 0
	if referenceOnly {
		a.refs, a.references = a.references, nil
	} else if err := a.referenceTarget(); err != nil {
		return nil, err
	}
	if a.ordinaryRead != "" {
		return nil, sqlerr.Unsupported("table \"%s\" lives on the metadata database only; a statement on distributed table \"%s\" cannot read it (use INSERT ... SELECT, or query it separately)", a.ordinaryRead, a.refs[0].table.Name)
	}
	if a.ordinaryWrite != "" {
		return nil, sqlerr.Unsupported("a statement on distributed table \"%s\" cannot write to \"%s\", which is not distributed: the shards do not have it", a.refs[0].table.Name, a.ordinaryWrite)
	}
	p.refs = a.refs
	p.root = a.root
	p.Modifies = a.modifies
	p.PureRead = !a.modifies && pureRead(stmt, env)
	p.Table = a.refs[0].table
	for _, r := range a.refs[1:] {
		if !p.Table.ColocatedWith(r.table) {
			return nil, sqlerr.Unsupported("tables \"%s\" and \"%s\" are not co-located (in one co-location group of pgs_distribution_metadata.colocation: same key type, shard ranges and placements); a statement cannot join them", p.Table.Name, r.table.Name)
		}
	}
	p.tables = []*catalog.Table{p.Table}
	for _, r := range append(a.refs, a.references...) {
		if !slices.Contains(p.tables, r.table) {
			p.tables = append(p.tables, r.table)
		}
		if r.target {
			p.target = r.table
		}
	}
	if !a.insertSelect {
		if err := checkReplicaSystemColumns(stmt, p.target); err != nil {
			return nil, err
		}
	}
	stripSchemaQualifiers(p.tree, append(a.refs, a.references...))
	p.renames = make(map[int32]*catalog.Table, len(a.refs)+len(a.references))
	for _, r := range append(a.refs, a.references...) {
		p.renames[r.rv.Location] = r.table
	}
	p.shardSQL = make([]shardText, len(p.Table.Shards))

	if ins := stmt.GetInsertStmt(); ins != nil && a.insertSelect {
		if err := p.planInsertSelect(ins, snap, env); err != nil {
			return nil, err
		}
		p.Kind = Scatter
		return p, nil
	}
	if err := p.evalSettingKeys(); err != nil {
		return nil, err
	}
	if referenceOnly {
		if err := p.planReferenceOnly(stmt, env); err != nil {
			return nil, err
		}
		return p, nil
	}
	if err := p.checkReplicatedReferenceWrite(); err != nil {
		return nil, err
	}
	if ins := stmt.GetInsertStmt(); ins != nil && a.refs[0].target {
		if err := p.planInsert(ins, env); err != nil {
			return nil, err
		}
		p.Kind = Router
		p.compactParams()
		return p, nil
	}
	if p.Modifies && p.replicated() {
		if err := p.planReplicatedModification(stmt, env); err != nil {
			return nil, err
		}
	}
	unpinned := 0
	for _, r := range a.refs {
		if r.pin == nil {
			unpinned++
		}
	}
	if unpinned > 0 && len(a.refs) > 1 && a.linked() && a.topLevelPin() && (stmt.GetSelectStmt() == nil || stmt.GetSelectStmt().Op <= pg_query.SetOperation_SETOP_NONE) {
		// Every reference is joined on the key to the others, and one
		// pinned in the statement's own WHERE: only that shard has rows.
		unpinned = 0
	}
	if unpinned == 0 && stmt.GetSelectStmt() != nil && !pinsOneShard(a.refs) && (hasSetOperation(stmt) || constantPins(a.refs)) {
		// References pinned to different shards (arms of a set operation
		// that may be, constants that are): Route would refuse it; read
		// them one by one (Materialize).
		return nil, sqlerr.Unsupported("the statement fixes partition columns to values in different shards of \"%s\"; it cannot run on one shard", p.Table.Name)
	}
	if unpinned == 0 {
		p.Kind = Router
		p.compactParams()
		return p, nil
	}
	if len(a.references) > 0 {
		if err := checkReferenceReads(stmt, a); err != nil {
			return nil, err
		}
	}
	if len(a.refs) == 1 {
		p.Prune = a.refs[0].set
	}
	if p.Modifies && (stmt.GetUpdateStmt() != nil || stmt.GetDeleteStmt() != nil) && hasTarget(a.refs) && (len(a.refs) == 1 || a.linked()) {
		// A multi-shard UPDATE or DELETE: the driver runs it on every
		// (pruned) shard in one transaction, committed with two-phase
		// commit.
		p.Kind = Scatter
		p.compactParams()
		return p, nil
	}
	if p.Modifies {
		r := firstUnpinned(a.refs)
		if !r.target {
			return nil, sqlerr.Unsupported("a modification must fix the partition column \"%s\" of distributed table \"%s\" it reads by equality to a constant or parameter (multi-shard modifications are not supported yet)", r.table.KeyColumn, r.table.Name)
		}
		return nil, sqlerr.Unsupported("a modification of distributed table \"%s\" must fix the partition column \"%s\" by equality to a constant or parameter (multi-shard modifications are not supported yet)", r.table.Name, r.table.KeyColumn)
	}
	if err := p.planScatter(stmt.GetSelectStmt(), a, env); err != nil {
		return nil, err
	}
	if p.Combine != nil && len(a.references) > 0 {
		if err := checkCombineReferences(stmt.GetSelectStmt(), a); err != nil {
			return nil, err
		}
	}
	p.Kind = Scatter
	p.compactParams()
	return p, nil
}

// pureRead reports whether stmt is a SELECT that locks no rows, writes
// nothing (no SELECT INTO, no data-modifying WITH) and calls only immutable
// functions (immutable), at any level.
func pureRead(stmt *pg_query.Node, env Env) bool {
	if stmt.GetSelectStmt() == nil || env == nil {
		return false
	}
	pure := true
	walk(stmt, func(m protoreflect.ProtoMessage) bool {
		switch x := m.(type) {
		case *pg_query.SelectStmt:
			if len(x.LockingClause) > 0 || x.IntoClause != nil {
				pure = false
			}
		case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt:
			pure = false
		}
		return pure
	})
	return pure && immutable(stmt, env)
}

// ShardTarget returns what the primitives and the node layer read of the
// plan's statement (plan.Target). It is made on first use, once the plan
// is complete, and shared after: the plan must not change once it is
// called. Safe for concurrent use; it allocates only the first time.
func (p *Plan) ShardTarget() *plantypes.Target {
	if t := p.shardTarget.Load(); t != nil {
		return t
	}
	t := &plantypes.Target{
		Table:            p.Table,
		Tables:           p.tables,
		Written:          p.target,
		Modifies:         p.Modifies,
		PureRead:         p.PureRead,
		ReadsOtherRows:   p.ReadsOtherRows(),
		Eval:             p.Eval,
		SettingKeyParams: p.SettingKeyParams,
		ShardParams:      p.ShardParams,
	}
	if !p.shardTarget.CompareAndSwap(nil, t) {
		t = p.shardTarget.Load()
	}
	return t
}

// Tables returns the distributed tables the statement sent to the shards
// references, each once, Table first; the others are co-located with Table,
// and the statement for shard index i reads their shard i on the same node.
// Nil when it references none. The slice belongs to the plan: callers must
// not modify it.
func (p *Plan) Tables() []*catalog.Table { return p.tables }

// Target returns the distributed table an INSERT, UPDATE or DELETE writes,
// or nil. It is usually Table, but not always: the statement runs on Table's
// placements, which, for a statement that also reads other tables, a
// driver must check hold the target's writable placements.
func (p *Plan) Target() *catalog.Table { return p.target }

// ReadsOtherRows reports whether a modification reads rows besides those it
// writes: it references distributed tables more than once (UPDATE ... FROM,
// DELETE ... USING, subqueries, CTEs). Each replica of the written shard
// runs the statement and reads its own node's copy of those rows, so a
// driver must make every replica read the same committed state (see the
// driver's replicaReadLocks). INSERT ... SELECT plans lock their sources
// themselves and report false.
func (p *Plan) ReadsOtherRows() bool {
	return p.Modifies && (len(p.refs) > 1 || len(p.References()) > 0) && p.InsertSelect == nil
}

func hasTarget(refs []*tableRef) bool {
	for _, r := range refs {
		if r.target {
			return true
		}
	}
	return false
}

func firstUnpinned(refs []*tableRef) *tableRef {
	for _, r := range refs {
		if r.pin == nil {
			return r
		}
	}
	return refs[0]
}

// replicated reports whether any shard of the plan's table has more than one
// placement, so that every replica must compute the same values.
func (p *Plan) replicated() bool {
	for _, s := range p.Table.Shards {
		if len(s.Placements) > 1 {
			return true
		}
	}
	return false
}

// checkUtility refuses utility statements (DDL, COPY, ...) that name a
// distributed table: they would only reach the template table.
func checkUtility(stmt *pg_query.Node, snap *catalog.Snapshot) error {
	if d := stmt.GetDropStmt(); d != nil && d.RemoveType == pg_query.ObjectType_OBJECT_TABLE {
		for _, obj := range d.Objects {
			items := obj.GetList().GetItems()
			var schema, name string
			switch len(items) {
			case 1:
				name = stringOf(items[0])
			case 2:
				schema, name = stringOf(items[0]), stringOf(items[1])
			}
			if t := snap.Lookup(schema, name); t != nil {
				return sqlerr.Unsupported("DROP TABLE on distributed table \"%s\" is not supported", t.Name)
			}
		}
	}
	if e := stmt.GetExplainStmt(); e != nil {
		a := &analyzer{snap: snap, visited: map[*pg_query.RangeVar]bool{}}
		a.checkAllVisited(e.Query)
		if a.err != nil {
			return sqlerr.Unsupported("EXPLAIN of a statement on distributed tables is not supported yet")
		}
		return nil
	}
	a := &analyzer{snap: snap, visited: map[*pg_query.RangeVar]bool{}}
	a.markReferencedReferenceTables(stmt)
	a.checkAllVisited(stmt)
	if a.err != nil {
		kind := strings.TrimPrefix(fmt.Sprintf("%T", stmt.Node), "*pg_query.Node_")
		return sqlerr.Unsupported("%s on a distributed table is not supported: %s", statementName(kind), sqlerr.As(a.err).Message)
	}
	return nil
}

// markReferencedReferenceTables marks as visited the reference tables a
// CREATE TABLE's foreign keys reference: the shards get each constraint
// against their node's copy when they are created
// (catalog.ReadTemplateDDL).
func (a *analyzer) markReferencedReferenceTables(stmt *pg_query.Node) {
	c := stmt.GetCreateStmt()
	if c == nil {
		return
	}
	walk(c, func(m protoreflect.ProtoMessage) bool {
		if con, ok := m.(*pg_query.Constraint); ok && con.Contype == pg_query.ConstrType_CONSTR_FOREIGN && con.Pktable != nil {
			if t := a.snap.Lookup(con.Pktable.Schemaname, con.Pktable.Relname); t != nil && t.Reference() {
				a.visited[con.Pktable] = true
			}
		}
		return true
	})
}

func statementName(kind string) string {
	kind = strings.TrimSuffix(kind, "Stmt")
	var b strings.Builder
	for i, r := range kind {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// stripSchemaQualifiers turns schema.table.column references to a
// distributed table written without an alias into table.column: on the
// shards the table is renamed, keeping its name only as an alias.
func stripSchemaQualifiers(tree *pg_query.ParseResult, refs []*tableRef) {
	for _, raw := range tree.Stmts {
		walk(raw.Stmt, func(m protoreflect.ProtoMessage) bool {
			cr, ok := m.(*pg_query.ColumnRef)
			if !ok || len(cr.Fields) != 3 {
				return true
			}
			schema, rel := stringOf(cr.Fields[0]), stringOf(cr.Fields[1])
			for _, r := range refs {
				if (r.rv.Alias == nil || r.rv.Alias.Aliasname == "") && r.rv.Relname == rel && r.table.Schema == schema {
					cr.Fields = cr.Fields[1:]
					break
				}
			}
			return true
		})
	}
}

// hasSetOperation reports whether the statement has a UNION, INTERSECT or
// EXCEPT anywhere.
func hasSetOperation(stmt *pg_query.Node) bool {
	found := false
	walk(stmt, func(m protoreflect.ProtoMessage) bool {
		if s, ok := m.(*pg_query.SelectStmt); ok && setOperation(s) {
			found = true
		}
		return !found
	})
	return found
}

// constantPins reports whether every pin is a constant.
func constantPins(refs []*tableRef) bool {
	for _, r := range refs {
		if r.pin != nil && r.pin.Param > 0 {
			return false
		}
	}
	return true
}

// pinsOneShard reports whether the pinned references certainly read one
// shard whatever the arguments: every pin is the same parameter, or every
// pin a constant of the same shard.
func pinsOneShard(refs []*tableRef) bool {
	shard, param := -1, 0
	for _, r := range refs {
		if r.pin == nil {
			continue
		}
		if r.pin.Param > 0 {
			if shard >= 0 || (param > 0 && param != r.pin.Param) {
				return false
			}
			param = r.pin.Param
			continue
		}
		if param > 0 {
			return false
		}
		if r.pin.Const == nil {
			continue // key = NULL reads no row
		}
		i, err := ShardIndex(r.table, r.pin.Const)
		if err != nil || (shard >= 0 && i != shard) {
			return false
		}
		shard = i
	}
	return true
}
