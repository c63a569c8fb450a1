package pgshard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Atomic commit across servers (two-phase commit with the decision logged
// by one participant, the coordinator):
//
//  1. The coordinator, inside its own transaction, inserts the transaction's
//     id into pgshard.transaction_log with committed = true.
//  2. Every other participant runs PREPARE TRANSACTION '<id>_<i>'.
//  3. The coordinator commits. That commit is the decision: the log row
//     exists if and only if the coordinator committed.
//  4. Every other participant runs COMMIT PREPARED.
//
// A client that dies anywhere leaves at most prepared transactions behind.
// Recover (run by the driver every minute, and on demand) decides each by the
// coordinator's log: it inserts a committed = false row for the id, which
// blocks while the coordinator's transaction is still open and conflicts
// when it committed, then commits or rolls back the prepared transaction
// as the row says. The prepared transaction's name carries the coordinator's
// address, so recovery needs no other state. The metadata database takes
// part like any server, and is only on the path of transactions that
// touched it.

// gidPrefix starts the name of every prepared transaction pgshard makes.
const gidPrefix = "pgshard_"

// txLogDDL creates the coordinator log on a server.
const txLogDDL = `CREATE SCHEMA IF NOT EXISTS pgshard;
CREATE TABLE IF NOT EXISTS pgshard.transaction_log (
	gid text PRIMARY KEY,
	committed boolean NOT NULL,
	created timestamptz NOT NULL DEFAULT now()
)`

// metaServer is the server key of the metadata database.
const metaServer = "meta"

// serverKey names a participant's server in prepared transaction ids.
func serverKey(p *participant) string {
	if p.node == (catalog.Node{}) {
		return metaServer
	}
	return p.node.String()
}

// newGID makes a transaction id naming its coordinator.
func newGID(coordinator string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return gidPrefix + hex.EncodeToString([]byte(coordinator)) + "_" + hex.EncodeToString(b[:])
}

// parseGID splits a prepared transaction's name into the transaction id and
// its coordinator's server key.
func parseGID(prepared string) (gid, coordinator string, ok bool) {
	i := strings.LastIndexByte(prepared, '_')
	if i < 0 || !strings.HasPrefix(prepared, gidPrefix) {
		return "", "", false
	}
	gid = prepared[:i]
	parts := strings.Split(strings.TrimPrefix(gid, gidPrefix), "_")
	if len(parts) != 2 {
		return "", "", false
	}
	c, err := hex.DecodeString(parts[0])
	if err != nil {
		return "", "", false
	}
	return gid, string(c), true
}

func participantGID(gid string, i int) string { return gid + "_" + strconv.Itoa(i) }

// ensureTxLog creates the coordinator log on a server once per Connector.
func (c *Connector) ensureTxLog(ctx context.Context, server string) error {
	c.txLogMu.Lock()
	done := c.txLogReady[server]
	c.txLogMu.Unlock()
	if done {
		return nil
	}
	exec, err := c.serverExec(server)
	if err != nil {
		return err
	}
	if _, err := exec(ctx, txLogDDL); err != nil {
		var pgErr *pgconn.PgError
		// Two processes creating it at once: one loses the race on the
		// catalog's unique index; the table is there all the same.
		if !errors.As(err, &pgErr) || (pgErr.Code != "23505" && pgErr.Code != "42P07") {
			return fmt.Errorf("pgshard: creating pgshard.transaction_log on %s: %w", server, err)
		}
	}
	c.txLogMu.Lock()
	if c.txLogReady == nil {
		c.txLogReady = map[string]bool{}
	}
	c.txLogReady[server] = true
	c.txLogMu.Unlock()
	return nil
}

// serverExec returns a pooled Exec on a server named by its key.
func (c *Connector) serverExec(server string) (execFunc, error) {
	if server == metaServer {
		return c.meta.Exec, nil
	}
	np, err := c.node(nodeOfKey(server))
	if err != nil {
		return nil, err
	}
	return np.pool.Exec, nil
}

func (c *Connector) serverQueryRow(server string) (func(ctx context.Context, sql string, args ...any) pgx.Row, error) {
	if server == metaServer {
		return c.meta.QueryRow, nil
	}
	np, err := c.node(nodeOfKey(server))
	if err != nil {
		return nil, err
	}
	return np.pool.QueryRow, nil
}

func nodeOfKey(key string) catalog.Node {
	i := strings.LastIndexByte(key, ':')
	port, _ := strconv.Atoi(key[i+1:])
	return catalog.Node{Name: key[:i], Port: port}
}

type execFunc func(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
type queryFunc func(ctx context.Context, sql string, args ...any) (pgx.Rows, error)

// commitAtomic commits participants (each in an open transaction that
// wrote) atomically, as described above. On return every participant's
// transaction has ended, or is prepared and decided (committed) in the log.
func (c *Connector) commitAtomic(ctx context.Context, ps []*participant) error {
	coord, others := ps[0], ps[1:]
	key := serverKey(coord)
	if err := c.ensureTxLog(ctx, key); err != nil {
		abortAll(ctx, ps)
		return err
	}
	gid := newGID(key)
	if _, err := coord.conn.Conn().Exec(ctx, `INSERT INTO pgshard.transaction_log (gid, committed) VALUES ($1, true)`, gid); err != nil {
		abortAll(ctx, ps)
		return fmt.Errorf("pgshard: commit: logging the transaction: %w", err)
	}
	prepareErrs := make([]error, len(others))
	parallel(len(others), func(i int) {
		_, prepareErrs[i] = others[i].conn.Conn().Exec(ctx, "PREPARE TRANSACTION "+quoteLiteral(participantGID(gid, i+1)))
	})
	if err := errors.Join(prepareErrs...); err != nil {
		abortAll(ctx, []*participant{coord})
		parallel(len(others), func(i int) {
			if prepareErrs[i] == nil {
				_, _ = others[i].conn.Conn().Exec(ctx, "ROLLBACK PREPARED "+quoteLiteral(participantGID(gid, i+1)))
			}
		})
		return fmt.Errorf("pgshard: commit (prepare): %w", err)
	}
	commitStep(stepAfterPrepare)
	commitStep(stepBeforeDecision)
	if _, err := coord.conn.Conn().Exec(ctx, "COMMIT"); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			// The server answered: the coordinator rolled back, so does
			// everyone.
			parallel(len(others), func(i int) {
				_, _ = others[i].conn.Conn().Exec(ctx, "ROLLBACK PREPARED "+quoteLiteral(participantGID(gid, i+1)))
			})
			return fmt.Errorf("pgshard: commit: %w", err)
		}
		return sqlerr.New(sqlerr.ConnectionFailure, "pgshard: commit: the connection to the coordinator was lost at commit; whether transaction %s committed is decided by recovery: %v", gid, err)
	}
	commitStep(stepAfterDecision)
	commitErrs := make([]error, len(others))
	parallel(len(others), func(i int) {
		_, commitErrs[i] = others[i].conn.Conn().Exec(ctx, "COMMIT PREPARED "+quoteLiteral(participantGID(gid, i+1)))
	})
	commitStep(stepAfterCommitPrepared)
	if errors.Join(commitErrs...) == nil {
		// The log row is no longer needed; drop it off the critical path.
		c.forgetTx(key, gid)
	}
	// Committed: a COMMIT PREPARED that failed is finished by Recover.
	return nil
}

// forgetTx deletes a finished transaction's log row in the background.
func (c *Connector) forgetTx(server, gid string) {
	exec, err := c.serverExec(server)
	if err != nil {
		return
	}
	c.bgDone.Add(1)
	go func() {
		defer c.bgDone.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = exec(ctx, `DELETE FROM pgshard.transaction_log WHERE gid = $1`, gid)
	}()
}

func abortAll(ctx context.Context, ps []*participant) {
	for _, p := range ps {
		if !p.conn.Conn().IsClosed() && p.conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = p.conn.Conn().Exec(ctx, "ROLLBACK")
		}
	}
}

// parallel runs f(0..n-1) concurrently and waits.
func parallel(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}

// Recover finishes or rolls back every prepared transaction pgshard left on
// the metadata database and the workers (a client that died during a
// commit): committed when its coordinator logged it, rolled back otherwise.
// Prepared transactions younger than minAge are left alone, as their commit
// may still be under way (deciding them early is safe, but may roll back a
// commit that was about to succeed). It returns how many it committed and
// rolled back.
func (c *Connector) Recover(ctx context.Context, minAge time.Duration) (committed, rolledBack int, err error) {
	if err := c.init(ctx); err != nil {
		return 0, 0, err
	}
	return c.recover(ctx, minAge)
}

func (c *Connector) recover(ctx context.Context, minAge time.Duration) (committed, rolledBack int, err error) {
	servers := []string{metaServer}
	for _, n := range c.snapshot().Nodes {
		servers = append(servers, n.String())
	}
	var errs []error
	for _, s := range servers {
		cm, rb, err := c.recoverServer(ctx, s, minAge)
		committed += cm
		rolledBack += rb
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
		}
	}
	return committed, rolledBack, errors.Join(errs...)
}

func (c *Connector) recoverServer(ctx context.Context, server string, minAge time.Duration) (int, int, error) {
	var query queryFunc
	var exec execFunc
	if server == metaServer {
		query, exec = c.meta.Query, c.meta.Exec
	} else {
		np, err := c.node(nodeOfKey(server))
		if err != nil {
			return 0, 0, err
		}
		query, exec = np.pool.Query, np.pool.Exec
	}
	rows, err := query(ctx, `SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'pgshard\_%' AND database = current_database()
		AND prepared <= now() - make_interval(secs => $1)`, minAge.Seconds())
	if err != nil {
		return 0, 0, err
	}
	prepared, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, 0, err
	}
	committed, rolledBack := 0, 0
	for _, name := range prepared {
		gid, coordinator, ok := parseGID(name)
		if !ok {
			continue
		}
		commit, err := c.decide(ctx, coordinator, gid)
		if err != nil {
			return committed, rolledBack, err
		}
		verb := "ROLLBACK PREPARED "
		if commit {
			verb = "COMMIT PREPARED "
		}
		if _, err := exec(ctx, verb+quoteLiteral(name)); err != nil {
			return committed, rolledBack, err
		}
		if commit {
			committed++
		} else {
			rolledBack++
		}
	}
	return committed, rolledBack, nil
}

// decide returns whether transaction gid committed, by its coordinator's
// log. An absent row becomes a committed = false row, so a coordinator still
// running can no longer commit it (its own insert then fails).
func (c *Connector) decide(ctx context.Context, coordinator, gid string) (bool, error) {
	if err := c.ensureTxLog(ctx, coordinator); err != nil {
		return false, err
	}
	exec, err := c.serverExec(coordinator)
	if err != nil {
		return false, err
	}
	if _, err := exec(ctx, `INSERT INTO pgshard.transaction_log (gid, committed) VALUES ($1, false) ON CONFLICT DO NOTHING`, gid); err != nil {
		return false, fmt.Errorf("deciding %s on %s: %w", gid, coordinator, err)
	}
	queryRow, err := c.serverQueryRow(coordinator)
	if err != nil {
		return false, err
	}
	var commit bool
	if err := queryRow(ctx, `SELECT committed FROM pgshard.transaction_log WHERE gid = $1`, gid).Scan(&commit); err != nil {
		return false, fmt.Errorf("deciding %s on %s: %w", gid, coordinator, err)
	}
	return commit, nil
}

// commit steps at which a test may stop the process (see commitStep).
const (
	stepAfterPlacementWrite = "after-placement-write" // a replicated write ran on one more placement
	stepAfterMarking        = "after-marking"         // unreachable placements were marked inactive
	stepAfterPrepare        = "after-prepare"         // every other participant prepared
	stepBeforeDecision      = "before-decision"
	stepAfterDecision       = "after-decision"
	stepAfterCommitPrepared = "after-commit-prepared"
)

// commitStep is a fault-injection point: the package's tests replace it
// (export_test.go) to kill the process at a given step. It does nothing in
// a real program.
var commitStep = func(step string) {}
