package txn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/catalog"
)

// The names of prepared transactions and what they tell.

// gidPrefix starts the name of every prepared transaction pgshard makes.
const gidPrefix = "pgshard_"

// newTxID makes a transaction id of the commit-record scheme.
func newTxID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return txIDPrefix + hex.EncodeToString(b[:])
}

// parseTxID returns the transaction id of a prepared transaction of the
// commit-record scheme (<id>_<i>).
func parseTxID(prepared string) (string, bool) {
	if !strings.HasPrefix(prepared, txIDPrefix) {
		return "", false
	}
	i := strings.LastIndexByte(prepared, '_')
	if i < len(txIDPrefix) {
		return "", false
	}
	return prepared[:i], true
}

// metaServer is the server key of the metadata database (in names of the
// older scheme, and for recovery).
const metaServer = "meta"

// parseGID splits a prepared transaction's name of the older scheme,
// pgshard_<hex coordinator>_<hex>_<i>, into the transaction id and its
// coordinator's server key.
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

// participantGID names participant i's prepared transaction of
// transaction gid, prepared by the backend with process id pid:
// <gid>_<i>p<pid>, or <gid>_<i> when pid is 0 (unknown). The pid tells the
// resolvers whether the coordinator's connection to that server is gone
// (preparerGoneSQL); parseTxID, of this version and of the previous one,
// reads the id up to the last '_'.
func participantGID(gid string, i int, pid uint32) string {
	var buf [64]byte // one allocation, the string's
	b := append(buf[:0], gid...)
	b = append(b, '_')
	b = strconv.AppendInt(b, int64(i), 10)
	if pid != 0 {
		b = append(b, 'p')
		b = strconv.AppendUint(b, uint64(pid), 10)
	}
	return string(b)
}

// gidHasPID reports whether a prepared transaction's name ends in
// _<i>p<pid> (participantGID with a pid), as preparerGoneSQL matches it.
func gidHasPID(gid string) bool {
	i := strings.LastIndexByte(gid, '_')
	if i < 0 {
		return false
	}
	part, pid, ok := strings.Cut(gid[i+1:], "p")
	return ok && isDigits(part) && isDigits(pid)
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// backendPIDKey marks, in a connection's CustomData, that the process id
// the server reported when it connected is its backend's own
// (verifyBackendPID).
const backendPIDKey = "pgshard.backendPID"

// backendPID is pc's backend process id when verifyBackendPID confirmed
// it, else 0.
func backendPID(pc *pgconn.PgConn) uint32 {
	if ok, _ := pc.CustomData()[backendPIDKey].(bool); ok {
		return pc.PID()
	}
	return 0
}

// verifyBackendPID is the worker connections' pgconn AfterConnect: it
// asks the server for its backend's process id (one round trip per new
// connection) and records whether it is the one the connection reported.
// Behind a connection pooler that answers in the server's place (PgBouncer)
// it is not, and the pid must not go into prepared transactions' names: a
// pid no backend has would make every undecided transaction look abandoned
// (preparerGoneSQL).
func verifyBackendPID(ctx context.Context, pc *pgconn.PgConn) error {
	res, err := pc.Exec(ctx, "SELECT pg_backend_pid()").ReadAll()
	if err != nil {
		return err
	}
	if len(res) == 1 && len(res[0].Rows) == 1 && len(res[0].Rows[0]) == 1 {
		if pid, err := strconv.ParseUint(string(res[0].Rows[0][0]), 10, 32); err == nil && uint32(pid) == pc.PID() {
			pc.CustomData()[backendPIDKey] = true
		}
	}
	return nil
}

func nodeOfKey(key string) catalog.Node {
	i := strings.LastIndexByte(key, ':')
	port, _ := strconv.Atoi(key[i+1:])
	return catalog.Node{Name: key[:i], Port: port}
}
