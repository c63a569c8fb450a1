package session

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// MetaQuery runs sql on the metadata database in this session: joined to
// the open transaction (the atomic statement's, inside Atomically) when
// there is one, which a failure fails; the rows are read whole.
func (s *Session) MetaQuery(ctx context.Context, sql string, args ...any) ([][]any, error) {
	ms, err := s.passthroughSession(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := ms.Conn().Query(ctx, sql, args...)
	if err != nil {
		return nil, s.sessionErr(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, s.sessionErr(err)
		}
		out = append(out, vals)
	}
	return out, s.sessionErr(rows.Err())
}

// SchemaChanged reloads the catalog after a schema change committed
// metadata version and waits (at most a lease) until every live process
// has seen it (catalog.WaitForAcks): once the statement returns, no process
// plans with the old shape. Inside a transaction the change is not
// committed yet: the transaction does both after its commit.
func (s *Session) SchemaChanged(ctx context.Context, version int64) error {
	if s.tx != nil {
		s.tx.afterCommit = append(s.tx.afterCommit, func(ctx context.Context) {
			_ = s.c.schemaChanged(ctx, version)
		})
		return nil
	}
	return s.c.schemaChanged(ctx, version)
}

// schemaChanged is SchemaChanged outside a transaction.
func (c *Cluster) schemaChanged(ctx context.Context, version int64) error {
	if _, err := c.cache.Refresh(ctx, false); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, catalog.LeaseDuration+time.Second)
	defer cancel()
	if err := catalog.WaitForAcks(wctx, c.meta, version); err != nil && ctx.Err() != nil {
		return err
	}
	// A process that has not acked within the lease stops writing when
	// its lease runs out: the change stands either way.
	return nil
}

// IndexTable resolves an index (by the session's search_path when the
// planning call has the session) to its table, for the planner's schema
// changes that name an index (planner.IndexEnv).
func (e funcEnv) IndexTable(schema, name string) (tableSchema, table string, ok bool) {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	ident := pgx.Identifier{name}
	if schema != "" {
		ident = pgx.Identifier{schema, name}
	}
	const q = `SELECT n.nspname::text, c.relname::text FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE i.indexrelid = to_regclass($1)`
	var err error
	if e.session != nil {
		err = e.session.QueryRow(ctx, q, ident.Sanitize()).Scan(&tableSchema, &table)
	} else {
		err = e.cache.pool.QueryRow(ctx, q, ident.Sanitize()).Scan(&tableSchema, &table)
	}
	return tableSchema, table, err == nil
}

// staleShape reports whether err is PostgreSQL's refusal to run a prepared
// statement whose result columns changed since it was prepared (a schema
// change from this or another process): pgx drops such a statement from
// its cache, so running it again prepares it anew.
func staleShape(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == sqlerr.FeatureNotSupported && pgErr.Message == "cached plan must not change result type"
}
