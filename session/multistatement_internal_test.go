package session

import (
	"database/sql/driver"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/planner"
)

// Statements of the tables below, as planner.New describes them.
var (
	stBegin    = planner.Statement{SQL: "BEGIN", Tx: &planner.TxCommand{Kind: "BEGIN"}}
	stCommit   = planner.Statement{SQL: "COMMIT", Tx: &planner.TxCommand{Kind: "COMMIT"}}
	stRollback = planner.Statement{SQL: "ROLLBACK", Tx: &planner.TxCommand{Kind: "ROLLBACK"}}
	stPrepare  = planner.Statement{SQL: "PREPARE TRANSACTION 'x'", Tx: &planner.TxCommand{Kind: "PREPARE"}}
	stPrepared = planner.Statement{SQL: "COMMIT PREPARED 'x'", Tx: &planner.TxCommand{Kind: "OTHER"}}
	stInsert   = planner.Statement{SQL: "INSERT INTO kv VALUES (1, 'a')"}
	stCreate   = planner.Statement{SQL: "SELECT master_create_distributed_table('kv', 'k')", Admin: "master_create_distributed_table"}
	stShards   = planner.Statement{SQL: "SELECT master_create_worker_shards('kv', 4, 2)", Admin: "master_create_worker_shards"}
	stCopy     = planner.Statement{SQL: "SELECT master_copy_shard_placement(1, 'h', 1, 'h', 2)", Admin: "master_copy_shard_placement"}
)

// TestCheckStatements covers the strings refused before any statement
// runs: each refusal is 0A000 and names the statement, except the
// transaction left open, which concerns the whole string.
func TestCheckStatements(t *testing.T) {
	cases := []struct {
		name  string
		stmts []planner.Statement
		inTx  bool
		which string // "" = accepted; else the "statement i of n" of the refusal, or "string"
	}{
		{"writes", []planner.Statement{stInsert, stInsert}, false, ""},
		{"explicit block closed", []planner.Statement{stInsert, stBegin, stInsert, stCommit}, false, ""},
		{"explicit block rolled back", []planner.Statement{stBegin, stInsert, stRollback, stInsert}, false, ""},
		{"BEGIN left open", []planner.Statement{stInsert, stBegin, stInsert}, false, "string"},
		{"BEGIN left open after a COMMIT", []planner.Statement{stBegin, stCommit, stBegin}, false, "string"},
		{"BEGIN inside a transaction", []planner.Statement{stBegin, stInsert}, true, ""},
		{"COMMIT inside a transaction", []planner.Statement{stInsert, stCommit}, true, "statement 2 of 2"},
		{"ROLLBACK inside a transaction", []planner.Statement{stRollback, stInsert}, true, "statement 1 of 2"},
		{"PREPARE TRANSACTION", []planner.Statement{stInsert, stPrepare}, false, "statement 2 of 2"},
		{"COMMIT PREPARED", []planner.Statement{stPrepared, stInsert}, false, "statement 1 of 2"},
		{"distributing a table", []planner.Statement{stCreate, stShards}, false, ""},
		{"a statement after the distribution", []planner.Statement{stCreate, stShards, stInsert}, false, "statement 3 of 3"},
		{"a statement after the distribution's COMMIT", []planner.Statement{stCreate, stShards, stCommit, stInsert}, false, ""},
		{"an administrative function inside a transaction", []planner.Statement{stInsert, stCreate}, true, "statement 2 of 2"},
		{"an administrative function that needs its own string", []planner.Statement{stInsert, stCopy}, false, "statement 2 of 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkStatements(c.stmts, c.inTx)
			if c.which == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if code := sqlerr.Code(err); code != sqlerr.FeatureNotSupported {
				t.Fatalf("got %v (SQLSTATE %q), want %s", err, code, sqlerr.FeatureNotSupported)
			}
			if c.which != "string" && !strings.Contains(err.Error(), c.which) {
				t.Fatalf("%q does not say %q", err, c.which)
			}
			if c.which == "string" && strings.Contains(err.Error(), "statement ") {
				t.Fatalf("%q names a statement; the refusal concerns the whole string", err)
			}
		})
	}
}

// TestCheckMultiArgs checks the arguments of a string as pgx's driver
// does: none needed under the extended protocol (42601 otherwise); under
// the simple protocol every one used and none missing.
func TestCheckMultiArgs(t *testing.T) {
	uses := func(params ...int) planner.Statement { return planner.Statement{SQL: "x", Params: params} }
	args := func(n int) []driver.NamedValue {
		out := make([]driver.NamedValue, n)
		for i := range out {
			out[i] = driver.NamedValue{Ordinal: i + 1, Value: int64(i)}
		}
		return out
	}
	cases := []struct {
		name   string
		simple bool
		stmts  []planner.Statement
		nargs  int
		want   string // "" = accepted; else a SQLSTATE or a part of the message
	}{
		{"no arguments, extended", false, []planner.Statement{uses(), uses()}, 0, ""},
		{"arguments, extended", false, []planner.Statement{uses(1), uses(2)}, 2, sqlerr.SyntaxError},
		{"every argument used", true, []planner.Statement{uses(2), uses(1, 2)}, 2, ""},
		{"an argument missing", true, []planner.Statement{uses(1), uses(3)}, 2, "insufficient arguments"},
		{"an argument unused", true, []planner.Statement{uses(1), uses()}, 2, "unused argument: 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkMultiArgs(c.simple, c.stmts, args(c.nargs))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "":
			case err == nil:
				t.Fatalf("accepted, want %q", c.want)
			case sqlerr.Code(err) != c.want && !strings.Contains(err.Error(), c.want):
				t.Fatalf("got %v (SQLSTATE %q), want %q", err, sqlerr.Code(err), c.want)
			}
		})
	}
}

// TestStatementArgs checks that each statement gets the string's arguments
// it uses, renumbered from $1.
func TestStatementArgs(t *testing.T) {
	nargs := []driver.NamedValue{{Ordinal: 1, Value: "a"}, {Ordinal: 2, Value: "b"}, {Ordinal: 3, Value: "c"}}
	cases := []struct {
		params []int
		want   []driver.NamedValue
	}{
		{nil, nil},
		{[]int{3}, []driver.NamedValue{{Ordinal: 1, Value: "c"}}},
		{[]int{2, 1, 3}, []driver.NamedValue{{Ordinal: 1, Value: "b"}, {Ordinal: 2, Value: "a"}, {Ordinal: 3, Value: "c"}}},
	}
	for _, c := range cases {
		if got := statementArgs(planner.Statement{Params: c.params}, nargs); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Params %v: got %v, want %v", c.params, got, c.want)
		}
	}
}

// TestStatementError checks that a PostgreSQL error keeps its SQLSTATE and
// fields (the original is not changed) and that other errors stay
// reachable with errors.Is.
func TestStatementError(t *testing.T) {
	pgErr := &pgconn.PgError{Code: "22012", Message: "division by zero", Detail: "d"}
	err := statementError(2, 4, pgErr)
	var got *pgconn.PgError
	if !errors.As(err, &got) || got.Code != "22012" || got.Detail != "d" || got.Message != "statement 3 of 4: division by zero" {
		t.Fatalf("got %#v", err)
	}
	if pgErr.Message != "division by zero" {
		t.Fatalf("the original error was changed: %q", pgErr.Message)
	}
	other := errors.New("lost")
	if err := statementError(0, 1, other); !errors.Is(err, other) || !strings.Contains(err.Error(), "statement 1 of 1") {
		t.Fatalf("got %v", err)
	}
}
