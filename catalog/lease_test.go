package catalog

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgshard/pgshard/internal/pgtest"
)

// TestLeaseNeedsARecordedHeartbeat: a Cache may write (BeginWrite) only
// while its last recorded heartbeat is recent, because WaitForAcks stops
// waiting for a process whose heartbeat is older than the lease. When the
// version check succeeds but the heartbeat is not recorded, the Cache must
// not write on that check.
func TestLeaseNeedsARecordedHeartbeat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pgtest.StartTB(t, 1)
	conn, err := pgx.Connect(ctx, c.Nodes[0].DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := EnsureSchema(ctx, conn); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, c.Nodes[0].DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// failHeartbeats makes every heartbeat fail while the version check,
	// which reads other tables, still succeeds.
	const failHeartbeats = `CREATE FUNCTION public.no_heartbeat() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE 'heartbeat refused'; END$$;
		CREATE TRIGGER no_heartbeat BEFORE INSERT OR UPDATE ON pgs_distribution_metadata.process FOR EACH ROW EXECUTE FUNCTION public.no_heartbeat()`

	for _, tc := range []struct {
		name      string
		heartbeat bool
	}{
		{"heartbeat recorded", true},
		{"heartbeat not recorded", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.heartbeat {
				if _, err := conn.Exec(ctx, failHeartbeats); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if _, err := conn.Exec(ctx, `DROP TRIGGER no_heartbeat ON pgs_distribution_metadata.process`); err != nil {
						t.Fatal(err)
					}
				}()
			}
			cache := NewCache(pool)
			snap, err := cache.Refresh(ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			_, _, done, err := cache.BeginWrite()
			if !tc.heartbeat {
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "55000" {
					t.Fatalf("BeginWrite without a recorded heartbeat: got %v, want SQLSTATE 55000", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			done()
			var acked int64
			if err := conn.QueryRow(ctx, `SELECT acked FROM pgs_distribution_metadata.process WHERE id = $1`, cache.lease.id).Scan(&acked); err != nil {
				t.Fatal(err)
			}
			if acked != snap.Version {
				t.Fatalf("heartbeat acked %d, want %d", acked, snap.Version)
			}
			cache.Close(ctx)
		})
	}
}
