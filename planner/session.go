package planner

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// SessionEffect says how a statement may change the state of the session
// that runs it beyond its transaction: settings (SET, RESET, set_config,
// DISCARD) and temporary relations, which decide how names resolve. The
// driver re-reads the session's state from the metadata database after such
// a statement, so that worker connections and name resolution follow it.
type SessionEffect int

const (
	// SessionUnchanged statements leave settings and temporary relations
	// alone (as far as pgshard can see: functions may still call set_config).
	SessionUnchanged SessionEffect = iota
	// SessionSettings statements change settings: SET, RESET, SET LOCAL,
	// SET TRANSACTION, set_config(), DISCARD, DO and CALL.
	SessionSettings
	// SessionTemp statements create temporary relations, which hide
	// tables of the same name.
	SessionTemp
	// SessionDDL statements drop or rename relations: they matter to the
	// session's names only when it has temporary relations.
	SessionDDL
)

// SessionCommand describes a statement's effect on its session's state.
type SessionCommand struct {
	Effect SessionEffect
	// Custom lists the custom (dotted, placeholder) settings the statement
	// names, lower-case: PostgreSQL does not list them in pg_settings, so the
	// driver tracks them by name.
	Custom []string
	// SetTransaction is set for SET TRANSACTION (isolation level, read
	// only) and SET CONSTRAINTS, which every server of the transaction must
	// run.
	SetTransaction bool
	// Constraints is set for SET CONSTRAINTS, which servers joining the
	// transaction later must run too.
	Constraints bool
	// setConfig is true when the statement calls set_config, which only
	// the metadata session may run.
	setConfig bool
}

// refusedSettings are the settings pgshard cannot carry to the worker
// connections of a session, with the reason; SET, SET LOCAL and set_config
// of them are refused. RESET of them is allowed: pgshard never lets them
// change.
var refusedSettings = map[string]string{
	"role":                        "statements on distributed tables run on pooled worker connections as the DSN's user",
	"session_authorization":       "statements on distributed tables run on pooled worker connections as the DSN's user",
	"session_replication_role":    "it disables triggers and foreign keys on the shards",
	"default_tablespace":          "shard tables are created by pgshard's own connections",
	"temp_tablespaces":            "shard tables are created by pgshard's own connections",
	"client_encoding":             "pgshard speaks UTF8 to every server",
	"standard_conforming_strings": "pgshard's connections rely on it being on",
	"transaction_isolation":       "use SET TRANSACTION ISOLATION LEVEL or BeginTx options",
	"transaction_read_only":       "use SET TRANSACTION READ ONLY or BeginTx options",
	"transaction_deferrable":      "use SET TRANSACTION DEFERRABLE",
}

// RefusedSetting returns why pgshard refuses to set the named setting
// (lower-case), or "" when it follows the session.
func RefusedSetting(name string) string { return refusedSettings[strings.ToLower(name)] }

func refuseSetting(name string) error {
	return sqlerr.Unsupported("setting \"%s\" is not supported by pgshard: %s", name, refusedSettings[name])
}

// sessionCommand classifies the statements of tree by their effect on the
// session and refuses settings pgshard cannot carry to the workers.
func sessionCommand(tree *pg_query.ParseResult) (*SessionCommand, error) {
	var cmd *SessionCommand
	mark := func(e SessionEffect) {
		if cmd == nil {
			cmd = &SessionCommand{}
		}
		if cmd.Effect == SessionUnchanged || e == SessionSettings || (e == SessionTemp && cmd.Effect == SessionDDL) {
			cmd.Effect = e
		}
	}
	for _, raw := range tree.Stmts {
		stmt := raw.Stmt
		switch x := stmt.Node.(type) {
		case *pg_query.Node_VariableSetStmt:
			if err := classifySet(x.VariableSetStmt, mark, &cmd); err != nil {
				return nil, err
			}
			continue
		case *pg_query.Node_DiscardStmt, *pg_query.Node_DoStmt, *pg_query.Node_CallStmt:
			mark(SessionSettings)
			continue
		case *pg_query.Node_ConstraintsSetStmt:
			mark(SessionSettings)
			cmd.SetTransaction, cmd.Constraints = true, true
			continue
		case *pg_query.Node_CreateStmt:
			if x.CreateStmt.GetRelation().GetRelpersistence() == "t" {
				mark(SessionTemp)
			}
		case *pg_query.Node_CreateTableAsStmt:
			if x.CreateTableAsStmt.GetInto().GetRel().GetRelpersistence() == "t" {
				mark(SessionTemp)
			}
		case *pg_query.Node_ViewStmt:
			if x.ViewStmt.GetView().GetRelpersistence() == "t" {
				mark(SessionTemp)
			}
		case *pg_query.Node_CreateSeqStmt:
			if x.CreateSeqStmt.GetSequence().GetRelpersistence() == "t" {
				mark(SessionTemp)
			}
		case *pg_query.Node_SelectStmt:
			if x.SelectStmt.GetIntoClause().GetRel().GetRelpersistence() == "t" {
				mark(SessionTemp)
			}
		case *pg_query.Node_DropStmt, *pg_query.Node_RenameStmt, *pg_query.Node_AlterTableStmt, *pg_query.Node_AlterObjectSchemaStmt:
			mark(SessionDDL)
		}
		var err error
		walk(stmt, func(m protoreflect.ProtoMessage) bool {
			fc, ok := m.(*pg_query.FuncCall)
			if !ok || err != nil {
				return err == nil
			}
			schema, name := funcName(fc)
			if strings.ToLower(name) != "set_config" || (schema != "" && schema != "pg_catalog") {
				return true
			}
			mark(SessionSettings)
			cmd.setConfig = true
			if len(fc.Args) == 0 {
				return true
			}
			setting, ok := stringConst(fc.Args[0])
			if !ok {
				err = sqlerr.Unsupported("set_config with a setting name that is not a constant is not supported by pgshard: it must know which setting changes")
				return false
			}
			setting = strings.ToLower(setting)
			if refusedSettings[setting] != "" {
				err = refuseSetting(setting)
				return false
			}
			if strings.Contains(setting, ".") {
				cmd.Custom = append(cmd.Custom, setting)
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return cmd, nil
}

// classifySet handles one SET / RESET statement.
func classifySet(s *pg_query.VariableSetStmt, mark func(SessionEffect), cmd **SessionCommand) error {
	name := strings.ToLower(s.Name)
	mark(SessionSettings)
	switch s.Kind {
	case pg_query.VariableSetKind_VAR_RESET_ALL, pg_query.VariableSetKind_VAR_RESET:
		return nil
	case pg_query.VariableSetKind_VAR_SET_MULTI:
		switch name {
		case "transaction":
			(*cmd).SetTransaction = true
			return nil
		case "session characteristics":
			// default_transaction_isolation and friends: ordinary settings.
			return nil
		case "transaction snapshot":
			return sqlerr.Unsupported("SET TRANSACTION SNAPSHOT is not supported by pgshard: a snapshot of one server cannot be imported on the others")
		}
		return sqlerr.Unsupported("SET %s is not supported by pgshard", s.Name)
	}
	if s.Kind == pg_query.VariableSetKind_VAR_SET_DEFAULT {
		return nil // back to the connection's default, which every connection has
	}
	if refusedSettings[name] != "" {
		return refuseSetting(name)
	}
	if strings.Contains(name, ".") {
		(*cmd).Custom = append((*cmd).Custom, name)
	}
	return nil
}

// stringConst returns the value of a string constant (possibly cast).
func stringConst(n *pg_query.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	if c := n.GetAConst(); c != nil && c.GetSval() != nil {
		return c.GetSval().Sval, true
	}
	return "", false
}
