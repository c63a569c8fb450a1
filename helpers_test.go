package pgshard_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// placement is a row of pgs_distribution_metadata.shard_placement.
type placement struct {
	ID      int64
	ShardID int64
	State   int
	Host    string
	Port    int
}

func (e *env) placements(table string) []placement {
	e.t.Helper()
	rows, err := e.DB.Query(`SELECT p.id, p.shard_id, p.shard_state, p.node_name, p.node_port
		FROM pgs_distribution_metadata.shard_placement p JOIN pgs_distribution_metadata.shard s ON s.id = p.shard_id
		WHERE s.relation_id = $1::regclass ORDER BY p.id`, table)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []placement
	for rows.Next() {
		var p placement
		if err := rows.Scan(&p.ID, &p.ShardID, &p.State, &p.Host, &p.Port); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// nodeWithout returns the first worker that holds no placement of shard
// shardID of table (host and port set); it fails the test when every
// worker holds one.
func (e *env) nodeWithout(table string, shardID int64) placement {
	e.t.Helper()
	holds := map[string]bool{}
	for _, p := range e.placements(table) {
		if p.ShardID == shardID {
			holds[fmt.Sprintf("%s:%d", p.Host, p.Port)] = true
		}
	}
	for _, w := range e.workers {
		if !holds[w.Addr()] {
			return placement{Host: w.Host, Port: w.Port}
		}
	}
	e.t.Fatalf("every worker holds a placement of shard %d of %s", shardID, table)
	return placement{}
}

// workerConn connects straight to the worker at host:port.
func (e *env) workerAt(host string, port int) *pgx.Conn {
	e.t.Helper()
	for _, w := range e.workers {
		if w.Host == host && w.Port == port {
			return e.worker(w)
		}
	}
	e.t.Fatalf("no worker %s:%d", host, port)
	return nil
}

// holders returns the shard ids whose placements physically hold rows with
// key column = value, read from every placement directly; it also checks that
// all finalized placements of a shard agree.
func (e *env) holders(table, key string, value any) map[int64]int {
	e.t.Helper()
	ctx := context.Background()
	out := map[int64]int{}
	for _, p := range e.placements(table) {
		if p.State != 1 {
			continue
		}
		conn := e.workerAt(p.Host, p.Port)
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s = $1`, pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize(), pgx.Identifier{key}.Sanitize())
		if err := conn.QueryRow(ctx, q, value).Scan(&n); err != nil {
			e.t.Fatalf("%s on %s:%d: %v", q, p.Host, p.Port, err)
		}
		if prev, ok := out[p.ShardID]; ok && prev != n {
			e.t.Fatalf("placements of shard %d disagree: %d vs %d rows", p.ShardID, prev, n)
		}
		if n > 0 {
			out[p.ShardID] = n
		}
	}
	return out
}

// placementDigests returns, per shard, the md5 of each finalized placement's
// rows; callers compare them.
func (e *env) assertReplicasIdentical(table string) {
	e.t.Helper()
	ctx := context.Background()
	digests := map[int64][]string{}
	for _, p := range e.placements(table) {
		if p.State != 1 {
			e.t.Fatalf("placement %d of shard %d is in state %d", p.ID, p.ShardID, p.State)
		}
		conn := e.workerAt(p.Host, p.Port)
		var d string
		q := fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM %s t`, pgx.Identifier{fmt.Sprintf("%s_%d", table, p.ShardID)}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&d); err != nil {
			e.t.Fatal(err)
		}
		digests[p.ShardID] = append(digests[p.ShardID], d)
	}
	for shard, ds := range digests {
		for _, d := range ds[1:] {
			if d != ds[0] {
				e.t.Fatalf("shard %d: placements differ: %v", shard, ds)
			}
		}
	}
}

// sqlState returns err's SQLSTATE, failing the test when err is not a
// *pgconn.PgError.
func sqlState(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got none")
	}
	pgErr, ok := err.(*pgconn.PgError)
	if !ok {
		var pe *pgconn.PgError
		if !asPgError(err, &pe) {
			t.Fatalf("error is %T, not *pgconn.PgError: %v", err, err)
		}
		pgErr = pe
	}
	return pgErr.Code
}

func asPgError(err error, target **pgconn.PgError) bool {
	for err != nil {
		if pe, ok := err.(*pgconn.PgError); ok {
			*target = pe
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func expectError(t testing.TB, err error, code, contains string) {
	t.Helper()
	if got := sqlState(t, err); got != code {
		t.Fatalf("SQLSTATE = %s, want %s (%v)", got, code, err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not contain %q", err.Error(), contains)
	}
}

func sortedKeys(m map[int64]int) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
