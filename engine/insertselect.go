package engine

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/plan"
)

// insertSelectBatch is how many rows one statement sends to a shard.
const insertSelectBatch = 1000

// InsertSelect is INSERT ... SELECT into a distributed table. When the
// planner allows it and the placements
// line up, it runs shard by shard on the workers (pushdown). Otherwise
// through the client: the SELECT runs once, as a statement of the session
// (Cursor.Statement: so it may read ordinary tables, functions or
// distributed tables alike), and its rows go to their shards in batches,
// all in one atomic statement (Cursor.Atomically): the caller's
// transaction, or an implicit one that commits with two-phase commit. The
// SELECT's rows are read whole first.
//
// An InsertSelect is made once per plan (planner.Build), immutable but for the
// statements Client caches (under its own lock), and shared by every
// connection that runs it.
type InsertSelect struct {
	// Target is what the statement writes: the target table's shards.
	Target *plan.Target
	// Version is the catalog version the plan was made against: the
	// pushdown runs only while the metadata is still at it.
	Version int64
	// Shards gives the client path's insert statement of a shard, for
	// EXPLAIN.
	Shards ShardQueries
	// Client gives the client path's statements.
	Client InsertSelectClient
	// SelectSQL is the SELECT, run through pgshard; its $i is the
	// statement's parameter SelectParams[i-1].
	SelectSQL    string
	SelectParams []int
	// Columns is the number of columns the SELECT must return.
	Columns int
	// KeyIndex is the key column's position among the SELECT's columns
	// and then Defaults' (Columns + i).
	KeyIndex int
	// Defaults, when set, computes per row the DefaultsCount columns the
	// INSERT leaves out whose defaults pgshard computes, run with $1 = the
	// number of rows.
	Defaults      string
	DefaultsCount int
	// Pushdown, when set, runs the statement shard by shard on the
	// workers, when the placements line up.
	Pushdown *InsertPushdown
	// ClientReason says why the statement runs through the client.
	ClientReason string
}

// InsertSelectClient gives the statements of the client path of an
// INSERT ... SELECT (*planner.InsertSelectPlan). Safe for concurrent use.
type InsertSelectClient interface {
	// SelectSending returns the SELECT (or, with defaults, the defaults'
	// SELECT) with column i passed to send function sends[i] ("" for
	// text).
	SelectSending(defaults bool, sends []string) (string, error)
	// ShardSQLFor returns the insert statement of shard index idx taking
	// one array per column, cast to types.
	ShardSQLFor(idx int, types []string) (string, error)
}

// InsertPushdown is the shard-by-shard form of an INSERT ... SELECT whose
// SELECT reads tables co-located with the target.
type InsertPushdown struct {
	// Select is what the SELECT runs on: its Eval step and the parameters
	// its shard statement takes.
	Select *plan.Target
	// Params are the statement's parameters the SELECT takes ($i is
	// Params[i-1]); ConflictParams those the ON CONFLICT clause takes,
	// after the SELECT's shard parameters in the shard statement.
	Params, ConflictParams []int
	// Sources are the distributed tables the SELECT reads.
	Sources []*catalog.Table
	// Shards picks the shards the SELECT's arguments leave and gives the
	// insert statement of each (*planner.InsertSelectPushdown).
	Shards PushdownShards
}

// PushdownShards picks the shards of a pushed-down INSERT ... SELECT and
// gives their statements. Safe for concurrent use.
type PushdownShards interface {
	// Shards returns the shard indexes the SELECT's arguments (after its
	// Eval's values) leave.
	Shards(args []any) ([]int, error)
	// ShardSQL returns the statement of shard index idx.
	ShardSQL(idx int) (string, error)
}

func (s *InsertSelect) Inputs() []Primitive { return nil }

// Query runs the statement; it returns no rows.
func (s *InsertSelect) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	if _, err := s.Exec(ctx, vc, nargs); err != nil {
		return nil, err
	}
	return &Buffered{}, nil
}

func (s *InsertSelect) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	p, ip := s.Target, s
	if ip.Pushdown != nil {
		res, done, err := s.pushdown(ctx, vc, nargs)
		if done || err != nil {
			return res, err
		}
	}
	args := plainArgs(nargs)
	sargs := make([]driver.NamedValue, len(ip.SelectParams))
	for i, n := range ip.SelectParams {
		if n > len(args) {
			return nil, sqlerr.New(sqlerr.ProtocolViolation, "bind message supplies %d parameters, but the statement requires at least %d", len(args), n)
		}
		sargs[i] = driver.NamedValue{Ordinal: i + 1, Value: args[n-1]}
	}
	data, types, err := readInsertRows(ctx, vc, ip, sargs)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return Result{}, nil
	}
	if ip.Defaults != "" {
		dtypes, err := fillDefaults(ctx, vc, ip, data)
		if err != nil {
			return nil, err
		}
		types = append(types, dtypes...)
	}
	byShard := map[int][][]*string{}
	var order []int
	for _, row := range data {
		if p.Table.Reference() {
			// Every row goes to the reference table's one shard.
			if len(order) == 0 {
				order = append(order, 0)
			}
			byShard[0] = append(byShard[0], row)
			continue
		}
		key := row[ip.KeyIndex]
		if key == nil {
			return nil, sqlerr.New(sqlerr.NotNullViolation, "cannot plan INSERT using row with NULL value in partition column \"%s\"", p.Table.KeyColumn)
		}
		idx, err := plan.ShardIndex(p.Table, *key)
		if err != nil {
			return nil, err
		}
		if _, ok := byShard[idx]; !ok {
			order = append(order, idx)
		}
		byShard[idx] = append(byShard[idx], row)
	}

	var total int64
	err = vc.Atomically(ctx, WriteNodes(p.Table, order), func() error {
		for _, idx := range order {
			sql, err := ip.Client.ShardSQLFor(idx, types)
			if err != nil {
				return err
			}
			shardRows := byShard[idx]
			for start := 0; start < len(shardRows); start += insertSelectBatch {
				batch := shardRows[start:min(start+insertSelectBatch, len(shardRows))]
				width := len(batch[0])
				arrays := make([]driver.NamedValue, width)
				for c := 0; c < width; c++ {
					col := make([]*string, len(batch))
					for r, row := range batch {
						col[r] = row[c]
					}
					arrays[c] = driver.NamedValue{Ordinal: c + 1, Value: col}
				}
				res, _, err := vc.WriteShard(ctx, p, &p.Table.Shards[idx], sql, arrays, false)
				if err != nil {
					return err
				}
				n, _ := res.RowsAffected()
				total += n
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return Result{Rows: total}, nil
}

// insertSelectScalars are the scalar types whose values the client path
// of InsertSelect reads in binary and sends as the canonical text pgshard
// writes of them (exactTransport): besides canonicalScalarTypes, every
// scalar it can write, so that no value (a date or timestamp key among
// them, which the shard is chosen by) depends on the session's DateStyle,
// IntervalStyle or bytea_output.
var insertSelectScalars = func() map[uint32]bool {
	m := map[uint32]bool{}
	for oid := range canonicalScalarTypes {
		m[oid] = true
	}
	for oid := range carriableScalars {
		m[oid] = true
	}
	return m
}()

// readInsertRows runs the SELECT of an INSERT ... SELECT on the client
// path (through pgshard, as a statement of the session) and returns its
// rows, each value in a text form that reads back exactly on a worker
// (exactTransport; nil for NULL), and for each column the type the shard
// statement casts it to (insertCastTypes). A value that cannot travel
// exactly is refused (0A000). The rows are held in memory, at most
// MaxMaterializedBytes.
func readInsertRows(ctx context.Context, vc Cursor, ip *InsertSelect, sargs []driver.NamedValue) ([][]*string, []string, error) {
	_, refs, infos, err := describeSubquery(ctx, vc, ip.SelectSQL)
	if err != nil {
		return nil, nil, err
	}
	if len(infos) != ip.Columns {
		if len(infos) > ip.Columns {
			return nil, nil, sqlerr.New(sqlerr.SyntaxError, "INSERT has more expressions than target columns")
		}
		return nil, nil, sqlerr.New(sqlerr.SyntaxError, "INSERT has more target columns than expressions")
	}
	ex, err := exactTransport(ctx, vc, refs, infos, false, insertSelectScalars)
	if err != nil {
		return nil, nil, err
	}
	sql, err := ip.Client.SelectSending(false, ex.sends)
	if err != nil {
		return nil, nil, err
	}
	budget := MaxMaterializedBytes
	cols, err := readColumns(ctx, vc, sql, sargs, len(infos), &budget)
	if err != nil {
		return nil, nil, err
	}
	if err := ex.canonicalize(cols); err != nil {
		return nil, nil, err
	}
	data := make([][]*string, len(cols[0]))
	for r := range data {
		data[r] = make([]*string, len(cols), len(cols)+ip.DefaultsCount)
		for c := range cols {
			if v := cols[c][r]; v != nil {
				s := string(v)
				data[r][c] = &s
			}
		}
	}
	return data, insertCastTypes(refs, infos), nil
}

// insertCastTypes returns, per column, the type the shard statement casts
// the column's text to (planner.InsertSelectPlan.ShardSQLFor): the type
// the SELECT returns, so that the target column takes it by PostgreSQL's
// assignment cast as a plain INSERT ... SELECT does; "" (the target
// column's own type) for text and unknown, which in PostgreSQL's INSERT
// ... SELECT a literal is read as.
func insertCastTypes(refs []TypeRef, infos []TypeInfo) []string {
	types := make([]string, len(infos))
	for j, ti := range infos {
		if oid := refs[j].OID; oid != pgtype.TextOID && oid != 705 /* unknown */ {
			types[j] = ti.Name
		}
	}
	return types
}

// canonicalize replaces the base64 values of t's canonical columns, read
// as cols, by their canonical text.
func (t transport) canonicalize(cols [][][]byte) error {
	for j, c := range cols {
		if t.canonical[j] != 0 {
			if err := t.st.canonicalBase64Column(t.canonical[j], c); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillDefaults appends, to every row, the defaults pgshard computes itself
// (sequences, volatile defaults of replicated tables), from the metadata
// database in this session, each read exactly as the SELECT's values are
// (readInsertRows), and returns the types the shard statement casts them
// to.
func fillDefaults(ctx context.Context, vc Cursor, ip *InsertSelect, data [][]*string) ([]string, error) {
	_, refs, infos, err := describeSubquery(ctx, vc, ip.Defaults)
	if err != nil {
		return nil, err
	}
	ex, err := exactTransport(ctx, vc, refs, infos, false, insertSelectScalars)
	if err != nil {
		return nil, err
	}
	sql, err := ip.Client.SelectSending(true, ex.sends)
	if err != nil {
		return nil, err
	}
	rows, err := vc.SessionTextRows(ctx, sql, len(data))
	if err != nil {
		return nil, fmt.Errorf("pgshard: computing column defaults: %w", err)
	}
	if len(rows) < len(data) {
		return nil, sqlerr.New(sqlerr.InternalError, "computing column defaults returned %d rows for %d", len(rows), len(data))
	}
	cols := make([][][]byte, len(infos))
	for j := range cols {
		cols[j] = make([][]byte, len(data))
		for i := range data {
			if v := rows[i][j]; v != nil {
				cols[j][i] = []byte(*v)
			}
		}
	}
	if err := ex.canonicalize(cols); err != nil {
		return nil, err
	}
	for i := range data {
		for j := range cols {
			var v *string
			if cols[j][i] != nil {
				s := string(cols[j][i])
				v = &s
			}
			data[i] = append(data[i], v)
		}
	}
	return insertCastTypes(refs, infos), nil
}

// pushdownShards binds the arguments of a pushed-down INSERT ... SELECT: it
// runs the SELECT's Eval step, if any, and returns the shards to run on and
// the shard statement's arguments (the SELECT's, then ON CONFLICT's).
func pushdownShards(ctx context.Context, vc Cursor, pd *InsertPushdown, nargs []driver.NamedValue) ([]int, []driver.NamedValue, error) {
	args := plainArgs(nargs)
	pick := func(ns []int) ([]driver.NamedValue, error) {
		out := make([]driver.NamedValue, len(ns))
		for i, n := range ns {
			if n > len(args) {
				return nil, sqlerr.New(sqlerr.ProtocolViolation, "bind message supplies %d parameters, but the statement requires at least %d", len(args), n)
			}
			out[i] = driver.NamedValue{Ordinal: i + 1, Value: args[n-1]}
		}
		return out, nil
	}
	sargs, err := pick(pd.Params)
	if err != nil {
		return nil, nil, err
	}
	selArgs, bound, err := vc.Bind(ctx, pd.Select, sargs)
	if err != nil {
		return nil, nil, err
	}
	shards, err := pd.Shards.Shards(selArgs)
	if err != nil {
		return nil, nil, err
	}
	cargs, err := pick(pd.ConflictParams)
	if err != nil {
		return nil, nil, err
	}
	return shards, Renumber(append(plan.ShardArgs(pd.Select.ShardParams, bound), cargs...)), nil
}

// pushdownAligned reports whether every writable placement of the target's
// shards is on a node that also holds a finalized placement of each source
// table's shard of the same index: there the shard statement reads complete
// source rows. (Co-located tables have their placements on the same nodes,
// but a repair or move may be copying one table's shard and not yet the
// other's.)
func pushdownAligned(t *catalog.Table, pd *InsertPushdown, shards []int) bool {
	for _, idx := range shards {
		for _, pl := range t.Shards[idx].Writable() {
			for _, src := range pd.Sources {
				if !src.Reference() && idx >= len(src.Shards) || !hasFinalizedOn(src.ShardAt(idx), pl.Node) {
					return false
				}
			}
		}
	}
	return true
}

func hasFinalizedOn(s *catalog.Shard, node catalog.Node) bool {
	for _, pl := range s.Finalized() {
		if pl.Node == node {
			return true
		}
	}
	return false
}

// insertSelectPushdown runs INSERT ... SELECT shard by shard: each shard's
// INSERT INTO t_i ... SELECT ... FROM s_i ... on every writable placement of
// t's shard, all shards as one atomic statement (the caller's transaction,
// or an implicit one committed with two-phase commit when several servers
// wrote). done is false, with nothing run, when a placement of the target
// is on a node without a finalized placement of a source shard: the caller
// then takes the client path.
func (s *InsertSelect) pushdown(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (res driver.Result, done bool, err error) {
	p, pd := s.Target, s.Pushdown
	shards, args, err := pushdownShards(ctx, vc, pd, nargs)
	if err != nil {
		return nil, true, err
	}
	if why := s.pushdownBlocked(vc, shards); why != "" {
		return nil, false, nil
	}
	if len(shards) == 0 {
		return Result{}, true, nil
	}
	if _, readOnly, _ := vc.TxMode(); readOnly {
		return nil, true, sqlerr.New("25006", "cannot execute %s in a read-only transaction", "INSERT")
	}
	replicated := replicatedShards(p.Table, shards)
	var total int64
	err = vc.Atomically(ctx, WriteNodes(p.Table, shards), func() error {
		if replicated {
			if err := s.lockSources(ctx, vc, shards); err != nil {
				return err
			}
		}
		for _, idx := range shards {
			sql, err := pd.Shards.ShardSQL(idx)
			if err != nil {
				return err
			}
			res, _, err := vc.WriteShard(ctx, p, &p.Table.Shards[idx], sql, args, false)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return nil
	})
	if errors.Is(err, errMetadataMoved) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	return Result{Rows: total}, true, nil
}

// pushdownBlocked says why a pushed-down INSERT ... SELECT must take the
// client path at execute time, or returns "": a placement of the target on a
// node without a finalized placement of a source shard (pushdownAligned);
// with replicas, a transaction whose snapshot is not taken per statement.
func (s *InsertSelect) pushdownBlocked(vc Cursor, shards []int) string {
	p := s.Target
	if !pushdownAligned(p.Table, s.Pushdown, shards) {
		return "a placement of the target is on a node without a finalized placement of the source's shard"
	}
	if inTx, _, perStatement := vc.TxMode(); replicatedShards(p.Table, shards) && inTx && !perStatement {
		return "the replicas would read the source in snapshots of the transaction taken at different times"
	}
	return ""
}

// replicatedShards reports whether any of the shards has several writable
// placements.
func replicatedShards(t *catalog.Table, shards []int) bool {
	for _, idx := range shards {
		if len(t.Shards[idx].Writable()) > 1 {
			return true
		}
	}
	return false
}

// errMetadataMoved abandons a pushdown for the client path: the metadata
// changed after the statement was planned.
var errMetadataMoved = errors.New("pgshard: the metadata changed during INSERT ... SELECT")

// lockSources makes the replicas of each target shard read the same source
// rows. Each placement of a target shard runs the SELECT on its own node,
// so the source's placements there must be equal when they are read:
//
//   - A writer of a source shard holds its ROW EXCLUSIVE lock on each
//     placement until it commits there (with two-phase commit, one
//     placement may commit before another). LOCK TABLE ... IN SHARE MODE on
//     every placement read waits for such writers to commit everywhere
//     and keeps new ones out until this statement's transaction ends.
//   - A placement another process marked inactive after this statement was
//     planned would still be read: once the locks are held (any write that
//     placement missed has committed elsewhere, and it marked the placement
//     first), the metadata version must still be the plan's, or the
//     statement takes the client path (errMetadataMoved).
//
// Placements are locked in the source's placement order, the order its
// writers lock them in.
func (s *InsertSelect) lockSources(ctx context.Context, vc Cursor, shards []int) error {
	p, pd := s.Target, s.Pushdown
	for _, idx := range shards {
		readers := map[catalog.Node]bool{}
		for _, pl := range p.Table.Shards[idx].Writable() {
			readers[pl.Node] = true
		}
		for _, src := range pd.Sources {
			s := src.ShardAt(idx)
			sql := "LOCK TABLE " + pgx.Identifier{src.Schema, src.ShardTableName(s.ID)}.Sanitize() + " IN SHARE MODE"
			for _, pl := range s.Finalized() {
				if !readers[pl.Node] {
					continue
				}
				if err := vc.WritePlacement(ctx, pl, sql); err != nil {
					return err
				}
			}
		}
	}
	v, err := vc.MetadataVersion(ctx)
	if err != nil {
		return fmt.Errorf("pgshard: confirming the metadata for INSERT ... SELECT: %w", err)
	}
	if v != s.Version {
		return errMetadataMoved
	}
	return nil
}

// Describe shows how INSERT ... SELECT runs: shard by shard on the workers
// (the SQL each shard runs, and the first one's own plan), or through the
// client (why, the SELECT's own distributed plan, and the statement that
// inserts the rows into each shard).
func (s *InsertSelect) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	in, ip := s.Target, s
	add := d.Add
	reason := ip.ClientReason
	if pd := ip.Pushdown; pd != nil {
		shards, args, err := pushdownShards(ctx, vc, pd, nargs)
		if err != nil {
			return err
		}
		if reason = s.pushdownBlocked(vc, shards); reason == "" {
			var names []string
			for _, s := range pd.Sources {
				names = append(names, s.Name)
			}
			add("pgshard: INSERT ... SELECT pushed down to %d of %d shards of %s (co-located with %s): each shard inserts its own rows on every placement, committed together", len(shards), len(in.Table.Shards), in.Table.Name, strings.Join(names, ", "))
			for i, idx := range shards {
				s := &in.Table.Shards[idx]
				sql, err := pd.Shards.ShardSQL(idx)
				if err != nil {
					return err
				}
				add("  shard %d on %s", s.ID, d.Placements(in, s))
				add("    SQL: %s", sql)
				if i == 0 {
					if err := d.ShardLines(ctx, vc, in, idx, sql, args, "    "); err != nil {
						return err
					}
				}
			}
			return nil
		}
	}
	add("pgshard: INSERT ... SELECT through the client (%s): the SELECT runs once, its rows go to their shards in batches of %d, committed together", reason, insertSelectBatch)
	sql, err := s.Shards.ShardSQL(0)
	if err != nil {
		return err
	}
	add("  insert SQL (shard %d): %s", in.Table.Shards[0].ID, sql)
	add("  SELECT: %s", ip.SelectSQL)
	args := plainArgs(nargs)
	sargs := make([]driver.NamedValue, 0, len(ip.SelectParams))
	for i, n := range ip.SelectParams {
		if n <= len(args) {
			sargs = append(sargs, driver.NamedValue{Ordinal: i + 1, Value: args[n-1]})
		}
	}
	rows, err := vc.Statement(ctx, d.Prefix+ip.SelectSQL, sargs)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		add("    %v", dest[0])
	}
}
