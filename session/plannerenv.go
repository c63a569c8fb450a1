package session

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgshard/pgshard/planner"
)

// functionCache remembers what pg_proc says of each function name, for the
// planner (aggregates, volatility). Function definitions rarely change; the
// cache lives as long as the Cluster.
type functionCache struct {
	pool *pgxpool.Pool
	mu   sync.RWMutex
	info map[string]functionEntry
}

type functionEntry struct {
	info  planner.FunctionInfo
	found bool
}

// funcEnv is the planner.Env of one planning call.
type funcEnv struct {
	ctx   context.Context
	cache *functionCache
	// session, when set, is the metadata session queries are described in
	// (a session with its own search_path or temporary tables).
	session *pgx.Conn
}

func (e funcEnv) Function(name string) (planner.FunctionInfo, bool) {
	fc := e.cache
	fc.mu.RLock()
	ent, ok := fc.info[name]
	fc.mu.RUnlock()
	if ok {
		return ent.info, ent.found
	}
	var n int
	var agg, win, imm bool
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	err := fc.pool.QueryRow(ctx, `SELECT count(*), coalesce(bool_or(prokind = 'a'), false), coalesce(bool_or(prokind = 'w'), false),
		coalesce(bool_and(provolatile = 'i'), false) FROM pg_proc WHERE proname = $1`, name).Scan(&n, &agg, &win, &imm)
	if err != nil {
		// Unknown: answer what makes the planner refuse rather than guess
		// (an aggregate, a window function, not immutable). Not cached, so
		// the next plan asks again.
		return planner.FunctionInfo{Aggregate: true, Window: true}, true
	}
	ent = functionEntry{info: planner.FunctionInfo{Aggregate: agg, Window: win, Immutable: imm}, found: n > 0}
	fc.mu.Lock()
	if fc.info == nil {
		fc.info = map[string]functionEntry{}
	}
	fc.info[name] = ent
	fc.mu.Unlock()
	return ent.info, ent.found
}

// Describe prepares sql (unnamed) on the metadata database, where the
// distributed tables have their templates, and returns its result columns.
func (e funcEnv) Describe(sql string) ([]planner.ColumnDesc, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	pc := e.session
	if pc == nil {
		conn, err := e.cache.pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer conn.Release()
		pc = conn.Conn()
	}
	sd, err := pc.PgConn().Prepare(ctx, "", sql, nil)
	if err != nil {
		return nil, err
	}
	out := make([]planner.ColumnDesc, len(sd.Fields))
	for i, f := range sd.Fields {
		out[i] = planner.ColumnDesc{Name: f.Name, TypeOID: f.DataTypeOID}
	}
	return out, nil
}
