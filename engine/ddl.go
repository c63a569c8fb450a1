package engine

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/plan"
)

// DDL is a schema change on distributed tables (plan.DDLPlan): the
// template tables on the metadata database and every finalized placement
// of their shards change together, as one atomic statement
// (Cursor.Atomically: the open transaction, or an implicit one committed
// with two-phase commit). Inside it the metadata rows of the tables are
// locked first (FOR UPDATE, as master_create_worker_shards does), and the
// shards and placements are read there, not from the cached catalog, so a
// process whose catalog is stale changes the shards that exist. Each shard
// statement takes its table's ACCESS EXCLUSIVE lock (as PostgreSQL's own
// ALTER TABLE does) until the commit: writes to the table wait only while
// the change applies.
//
// Inactive placements are left alone: a repair recreates them from the
// template's current definition. A placement being filled (a repair or a
// move in progress) makes the change wait for no one: it is refused
// (55000) before anything is applied.
//
// CREATE and DROP INDEX CONCURRENTLY cannot run in a transaction: they run
// placement by placement (concurrently), see there. ANALYZE and VACUUM
// change no schema: see maintain.
//
// A DDL is made once per plan (planner.Build), immutable and shared by every
// connection that runs it.
type DDL struct {
	// Target is what the statement runs on (for EXPLAIN's placements).
	Target *plan.Target
	// Op is the kind of schema change.
	Op plan.DDLOp
	// Tables are the distributed tables the statement changes, the first
	// one the statement's own; the others are co-located with it.
	Tables []*catalog.Table
	// TemplateSQL is what the metadata database runs on the templates;
	// "" when they are left alone.
	TemplateSQL string
	// Concurrent is set for CREATE / DROP INDEX CONCURRENTLY.
	Concurrent bool
	// IndexName is the name of the index CREATE INDEX makes, "" for other
	// statements.
	IndexName string
	// KeyRename is the new name of the distribution column (RENAME COLUMN
	// of the key); "" for other statements.
	KeyRename string
	// Defaults are the non-constant defaults of added columns, each
	// evaluated once on the metadata database.
	Defaults []plan.DefaultEval
	// Functions are the functions the added columns' defaults and USING
	// expressions call, refused when volatile.
	Functions []string
	// Statements writes the statement of each shard (*plan.DDLPlan).
	Statements DDLStatements
}

// DDLStatements writes the statement of a schema change for one shard
// index of its tables (*plan.DDLPlan). Safe for concurrent use.
type DDLStatements interface {
	// ShardSQL returns the statement for the shards (shards[j] is
	// Tables[j]'s), with values the results of Defaults, in order; ""
	// when the shards have nothing to run.
	ShardSQL(shards []plan.ShardRef, values []*string) (string, error)
}

func (x *DDL) Inputs() []Primitive { return nil }

func (x *DDL) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	if _, err := x.Exec(ctx, vc, nargs); err != nil {
		return nil, err
	}
	return &Buffered{}, nil
}

func (x *DDL) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	d := x
	if d.Concurrent {
		return x.concurrently(ctx, vc)
	}
	if d.Op == plan.DDLAnalyze || d.Op == plan.DDLVacuum {
		return x.maintain(ctx, vc)
	}
	var version int64
	var leftovers []leftover
	err := vc.Atomically(ctx, nil, func() error {
		l, err := readLayout(ctx, vc, d, true)
		if err != nil {
			return err
		}
		if err := checkVolatile(ctx, vc, d); err != nil {
			return err
		}
		values, err := evalDefaults(ctx, vc, d)
		if err != nil {
			return err
		}
		if d.TemplateSQL != "" {
			if _, err := vc.MetaQuery(ctx, d.TemplateSQL); err != nil {
				return err
			}
		}
		for i := 0; i < l.count(); i++ {
			sql, err := d.Statements.ShardSQL(l.refs(i), values)
			if err != nil {
				return err
			}
			if sql == "" {
				continue
			}
			for _, pl := range l.tables[0].shards[i].placements {
				if pl.State != catalog.StateFinalized {
					if d.Op == plan.DDLDropTable {
						leftovers = append(leftovers, leftover{pl, sql})
					}
					continue
				}
				if err := vc.WritePlacement(ctx, pl, sql); err != nil {
					return fmt.Errorf("pgshard: %s on shard %d on %s: %w", d.Op, pl.ShardID, pl.Node, err)
				}
			}
		}
		if err := l.updateMetadata(ctx, vc, d); err != nil {
			return err
		}
		version, err = bumpVersion(ctx, vc)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The inactive placements of a dropped table: their tables are
	// dropped when their node answers; what is left behind is only
	// garbage, which a new table's shards (other ids) never collide with.
	for _, lo := range leftovers {
		_ = vc.WritePlacement(ctx, lo.pl, lo.sql)
	}
	if err := vc.SchemaChanged(ctx, version); err != nil {
		return nil, err
	}
	return Result{}, nil
}

// leftover is a statement for an inactive placement, run after the commit.
type leftover struct {
	pl  catalog.Placement
	sql string
}

// concurrently runs CREATE or DROP INDEX CONCURRENTLY outside a
// transaction, as PostgreSQL requires: placement after placement, each on
// its own. CREATE builds the index on the template first (an error there
// changes nothing), then on every finalized placement; when a placement
// fails, the index is dropped again (DROP INDEX CONCURRENTLY IF EXISTS)
// from every placement it was built on, the failed one included (where
// PostgreSQL leaves an invalid index), and from the template, so the table
// is as before; the error says so, or names what the cleanup could not
// drop. DROP runs on the placements first and on the template last: when
// a placement fails, the template still has the index and the error says
// how many placements no longer do; the same statement with IF EXISTS
// finishes the job.
func (x *DDL) concurrently(ctx context.Context, vc Cursor) (driver.Result, error) {
	d := x
	if vc.InTransaction() {
		return nil, sqlerr.New("25001", "%s CONCURRENTLY cannot run inside a transaction block", d.Op)
	}
	l, err := readLayout(ctx, vc, d, false)
	if err != nil {
		return nil, err
	}
	type step struct {
		pl       catalog.Placement
		sql      string
		shardIdx int
	}
	var steps []step
	for i := 0; i < l.count(); i++ {
		sql, err := d.Statements.ShardSQL(l.refs(i), nil)
		if err != nil {
			return nil, err
		}
		for _, pl := range l.tables[0].shards[i].placements {
			if pl.State == catalog.StateFinalized {
				steps = append(steps, step{pl, sql, i})
			}
		}
	}
	if d.Op == plan.DDLCreateIndex {
		if _, err := vc.MetaQuery(ctx, d.TemplateSQL); err != nil {
			return nil, err
		}
		for k, s := range steps {
			err := vc.WritePlacement(ctx, s.pl, s.sql)
			if err == nil {
				continue
			}
			// Undo: the index off every placement tried so far and off
			// the template.
			var left []string
			for _, u := range steps[:k+1] {
				drop := "DROP INDEX CONCURRENTLY IF EXISTS " + quoteIdent(l.tables[0].schema) + "." + quoteIdent(catalog.ShardName(d.IndexName, u.pl.ShardID))
				// The failed placement's own drop may fail as it did
				// (its node unreachable: nothing was built there).
				if uerr := vc.WritePlacement(context.WithoutCancel(ctx), u.pl, drop); uerr != nil && u.pl.ID != s.pl.ID {
					left = append(left, fmt.Sprintf("%s on %s", catalog.ShardName(d.IndexName, u.pl.ShardID), u.pl.Node))
				}
			}
			if _, uerr := vc.MetaQuery(context.WithoutCancel(ctx), "DROP INDEX CONCURRENTLY IF EXISTS "+quoteIdent(l.tables[0].schema)+"."+quoteIdent(d.IndexName)); uerr != nil {
				left = append(left, fmt.Sprintf("%s on the metadata database", d.IndexName))
			}
			if len(left) > 0 {
				return nil, fmt.Errorf("pgshard: CREATE INDEX CONCURRENTLY failed on shard %d on %s (%w); dropping the index again failed for %s: drop those by hand", s.pl.ShardID, s.pl.Node, err, strings.Join(left, ", "))
			}
			return nil, fmt.Errorf("pgshard: CREATE INDEX CONCURRENTLY failed on shard %d on %s, and the index was dropped again from the template and the %d placements it was built on: the table is as before: %w", s.pl.ShardID, s.pl.Node, k, err)
		}
	} else {
		for k, s := range steps {
			if err := vc.WritePlacement(ctx, s.pl, s.sql); err != nil {
				return nil, fmt.Errorf("pgshard: DROP INDEX CONCURRENTLY failed on shard %d on %s after %d of %d placements; the template keeps the index: run the statement again with IF EXISTS to finish: %w", s.pl.ShardID, s.pl.Node, k, len(steps), err)
			}
		}
		if _, err := vc.MetaQuery(ctx, d.TemplateSQL); err != nil {
			return nil, err
		}
	}
	version, err := bumpVersion(ctx, vc)
	if err != nil {
		return nil, err
	}
	if err := vc.SchemaChanged(ctx, version); err != nil {
		return nil, err
	}
	return Result{}, nil
}

// maintain runs ANALYZE or VACUUM on the template and then on every
// finalized placement of the table's shards, one after the other (inactive
// and filling placements are skipped: a repair copies their rows afresh,
// and autovacuum analyzes them there). Neither changes the schema: no
// metadata row is locked and the metadata version stays. VACUUM cannot run
// in a transaction block (25001, as PostgreSQL refuses it); outside one
// each placement's statement commits on its own, as does ANALYZE's. An
// ANALYZE in an open transaction runs in it (Atomically), as PostgreSQL's
// does, and is committed with it.
func (x *DDL) maintain(ctx context.Context, vc Cursor) (driver.Result, error) {
	d := x
	if d.Op == plan.DDLVacuum && vc.InTransaction() {
		return nil, sqlerr.New("25001", "VACUUM cannot run inside a transaction block")
	}
	run := func() error {
		l, err := readLayout(ctx, vc, d, false)
		if err != nil {
			return err
		}
		if _, err := vc.MetaQuery(ctx, d.TemplateSQL); err != nil {
			return err
		}
		for i := 0; i < l.count(); i++ {
			sql, err := d.Statements.ShardSQL(l.refs(i), nil)
			if err != nil {
				return err
			}
			for _, pl := range l.tables[0].shards[i].placements {
				if pl.State != catalog.StateFinalized {
					continue
				}
				if err := vc.WritePlacement(ctx, pl, sql); err != nil {
					return fmt.Errorf("pgshard: %s on shard %d on %s: %w", d.Op, pl.ShardID, pl.Node, err)
				}
			}
		}
		return nil
	}
	var err error
	if vc.InTransaction() {
		err = vc.Atomically(ctx, nil, run)
	} else {
		err = run()
	}
	if err != nil {
		return nil, err
	}
	return Result{}, nil
}

func (x *DDL) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, desc *Description) error {
	d := x
	how := "in one transaction (two-phase commit)"
	switch {
	case d.Concurrent, d.Op == plan.DDLVacuum:
		how = "placement by placement, outside a transaction"
	case d.Op == plan.DDLAnalyze:
		how = "placement by placement (in the open transaction, if any)"
	}
	desc.Add("pgshard: %s of %s on the template and every finalized placement of its %d shards, %s", d.Op, d.Tables[0].Name, len(d.Tables[0].Shards), how)
	if d.TemplateSQL != "" {
		desc.Add("  template SQL: %s", d.TemplateSQL)
	}
	for i := range d.Tables[0].Shards {
		refs := make([]plan.ShardRef, len(d.Tables))
		for j, t := range d.Tables {
			if !t.Reference() && i >= len(t.Shards) {
				return sqlerr.New(sqlerr.ObjectNotInPrereq, "co-located tables \"%s\" and \"%s\" have different shard counts", d.Tables[0].Name, t.Name)
			}
			s := t.ShardAt(i)
			refs[j] = plan.ShardRef{ID: s.ID, Table: t.ShardTableName(s.ID)}
		}
		sql, err := d.Statements.ShardSQL(refs, nil)
		if err != nil {
			return err
		}
		s := &d.Tables[0].Shards[i]
		desc.Add("  shard %d on %s", s.ID, desc.Placements(x.Target, s))
		desc.Add("    SQL: %s", sql)
	}
	return nil
}

// ddlLayout is the tables of a schema change as the metadata database has
// them inside the change's transaction.
type ddlLayout struct {
	tables []ddlTable
}

type ddlTable struct {
	relid  uint32
	schema string
	name   string
	shards []ddlShard
	// reference is set for a reference table (the target of a foreign
	// key): its one shard is on every node, beside each shard index of
	// the others.
	reference bool
}

type ddlShard struct {
	id         int64
	legacy     string
	placements []catalog.Placement
}

func (l *ddlLayout) count() int { return len(l.tables[0].shards) }

// refs names shard index i of every table.
func (l *ddlLayout) refs(i int) []plan.ShardRef {
	out := make([]plan.ShardRef, len(l.tables))
	for j, t := range l.tables {
		s := t.shards[0]
		if !t.reference {
			s = t.shards[i]
		}
		name := s.legacy
		if name == "" {
			name = catalog.ShardName(t.name, s.id)
		}
		out[j] = plan.ShardRef{ID: s.id, Table: name}
	}
	return out
}

// readLayout reads the plan's tables, their shards and placements from the
// metadata database; with lock, their partition rows are locked FOR UPDATE
// first (in the atomic statement's transaction), so that no shards are
// created, and no other change applied, until it ends.
func readLayout(ctx context.Context, vc Cursor, d *DDL, lock bool) (*ddlLayout, error) {
	relids := make([]int64, len(d.Tables))
	for i, t := range d.Tables {
		relids[i] = int64(t.RelationID)
	}
	q := `SELECT relation_id::int8 FROM pgs_distribution_metadata.partition WHERE relation_id::int8 = ANY($1)`
	if lock {
		q += ` ORDER BY relation_id FOR UPDATE`
	}
	rows, err := vc.MetaQuery(ctx, q, relids)
	if err != nil {
		return nil, err
	}
	if len(rows) != len(relids) {
		return nil, sqlerr.New(sqlerr.ObjectNotInPrereq, "distributed table \"%s\" changed meanwhile (another process dropped or changed it); run the statement again", d.Tables[0].Name)
	}
	l := &ddlLayout{tables: make([]ddlTable, len(d.Tables))}
	names, err := vc.MetaQuery(ctx, `SELECT c.oid::int8, n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid::int8 = ANY($1)`, relids)
	if err != nil {
		return nil, err
	}
	for j := range l.tables {
		l.tables[j].relid = d.Tables[j].RelationID
		for _, r := range names {
			if r[0].(int64) == relids[j] {
				l.tables[j].schema, l.tables[j].name = r[1].(string), r[2].(string)
			}
		}
		if l.tables[j].name == "" {
			return nil, sqlerr.New(sqlerr.UndefinedTable, "the template of distributed table \"%s\" no longer exists", d.Tables[j].Name)
		}
	}
	shards, err := vc.MetaQuery(ctx, `SELECT s.relation_id::int8, s.id, coalesce(n.table_name, ''), p.id, p.shard_state, p.node_name, p.node_port
		FROM pgs_distribution_metadata.shard s
		LEFT JOIN pgs_distribution_metadata.shard_table_name n ON n.shard_id = s.id
		JOIN pgs_distribution_metadata.shard_placement p ON p.shard_id = s.id
		WHERE s.relation_id::int8 = ANY($1)
		ORDER BY s.relation_id, s.min_value::int, s.id, p.id`, relids)
	if err != nil {
		return nil, err
	}
	for j := range l.tables {
		t := &l.tables[j]
		for _, r := range shards {
			if r[0].(int64) != relids[j] {
				continue
			}
			id := r[1].(int64)
			if len(t.shards) == 0 || t.shards[len(t.shards)-1].id != id {
				t.shards = append(t.shards, ddlShard{id: id, legacy: r[2].(string)})
			}
			pl := catalog.Placement{ID: r[3].(int64), ShardID: id, State: catalog.ShardState(r[4].(int32)),
				Node: catalog.Node{Name: r[5].(string), Port: int(r[6].(int32))}}
			if pl.State == catalog.StateFilling && d.Op != plan.DDLDropTable && d.Op != plan.DDLAnalyze && d.Op != plan.DDLVacuum {
				return nil, sqlerr.New(sqlerr.ObjectNotInPrereq, "shard %d of \"%s\" is being repaired or moved (placement %d on %s is filling); run the schema change once that finishes", id, t.name, pl.ID, pl.Node)
			}
			s := &t.shards[len(t.shards)-1]
			s.placements = append(s.placements, pl)
		}
		t.reference = d.Tables[j].Reference()
		if j > 0 && t.reference && len(t.shards) == 1 {
			continue
		}
		if len(t.shards) != len(l.tables[0].shards) {
			return nil, sqlerr.New(sqlerr.ObjectNotInPrereq, "co-located tables \"%s\" and \"%s\" have different shard counts", l.tables[0].name, t.name)
		}
		if d.Op == plan.DDLRename && d.KeyRename == "" && j == 0 {
			for _, s := range t.shards {
				if s.legacy != "" {
					return nil, sqlerr.Unsupported("cannot rename distributed table \"%s\": shard %d's table has the name an older pgshard gave it (%s); move its shards first", t.name, s.id, s.legacy)
				}
			}
		}
	}
	return l, nil
}

// updateMetadata records what the change means for the distribution
// metadata: a dropped table's rows are gone, a renamed distribution column
// is recorded under its new name.
func (l *ddlLayout) updateMetadata(ctx context.Context, vc Cursor, d *DDL) error {
	relids := make([]int64, len(l.tables))
	for i, t := range l.tables {
		relids[i] = int64(t.relid)
	}
	var stmts []string
	switch {
	case d.Op == plan.DDLDropTable:
		stmts = []string{
			`DELETE FROM pgs_distribution_metadata.shard WHERE relation_id::int8 = ANY($1)`,
			`DELETE FROM pgs_distribution_metadata.colocation WHERE relation_id::int8 = ANY($1)`,
			`DELETE FROM pgs_distribution_metadata.partition WHERE relation_id::int8 = ANY($1)`,
		}
	case d.KeyRename != "":
		_, err := vc.MetaQuery(ctx, `UPDATE pgs_distribution_metadata.partition SET key = $2 WHERE relation_id::int8 = $1`, relids[0], d.KeyRename)
		return err
	}
	for _, s := range stmts {
		if _, err := vc.MetaQuery(ctx, s, relids); err != nil {
			return err
		}
	}
	return nil
}

// checkVolatile refuses a change whose added column defaults (or USING
// expressions) call a volatile function: each shard and replica would
// compute other values.
func checkVolatile(ctx context.Context, vc Cursor, d *DDL) error {
	if len(d.Functions) == 0 {
		return nil
	}
	rows, err := vc.MetaQuery(ctx, `SELECT coalesce(string_agg(DISTINCT proname::text, ', '), '') FROM pg_proc WHERE proname = ANY($1) AND provolatile = 'v'`, d.Functions)
	if err != nil {
		return err
	}
	if v := rows[0][0].(string); v != "" {
		return sqlerr.Unsupported("%s on distributed table \"%s\" calls volatile function %s for existing rows: each shard and replica would compute other values; add the column without the default (or a constant one), then SET DEFAULT, then UPDATE", d.Op, d.Tables[0].Name, v)
	}
	return nil
}

// evalDefaults evaluates the added columns' non-constant defaults once, on
// the metadata database in the change's transaction.
func evalDefaults(ctx context.Context, vc Cursor, d *DDL) ([]*string, error) {
	if len(d.Defaults) == 0 {
		return nil, nil
	}
	out := make([]*string, len(d.Defaults))
	for i, def := range d.Defaults {
		rows, err := vc.MetaQuery(ctx, def.SQL)
		if err != nil {
			return nil, err
		}
		if s, ok := rows[0][0].(string); ok {
			out[i] = &s
		}
	}
	return out, nil
}

// bumpVersion moves the metadata version on (and announces it), in the
// change's transaction: every process's cached plans of the table are
// stale from its commit on.
func bumpVersion(ctx context.Context, vc Cursor) (int64, error) {
	rows, err := vc.MetaQuery(ctx, `WITH v AS (UPDATE pgs_distribution_metadata.metadata_version SET version = version + 1 RETURNING version)
		SELECT v.version FROM v, pg_notify($1, v.version::text)`, catalog.MetadataChannel)
	if err != nil {
		return 0, err
	}
	return rows[0][0].(int64), nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
