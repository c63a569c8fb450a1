package session

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/plan"
)

// The Eval step (bindArgs) and the reading of shard key texts the session's
// settings decide, both in the connection's own metadata session.

// evalCount is how many values the plan's Eval step appends.
func evalCount(p *plan.Target) int {
	if p.Eval == nil {
		return 0
	}
	return p.Eval.Count
}

// evaluate runs an EvalPlan in the session and returns its values: text,
// or typed Go values for those Typed marks.
func (s *Session) evaluate(ctx context.Context, ep *plan.Eval, args []any) ([]any, error) {
	ec, err := s.evalSession(ctx)
	if err != nil {
		return nil, err
	}
	formats := make(pgx.QueryResultFormats, ep.Count)
	for i := range formats {
		formats[i] = pgx.TextFormatCode
		if ep.Typed != nil && ep.Typed[i] {
			formats[i] = pgx.BinaryFormatCode
		}
	}
	evalArgs := make([]any, 0, len(ep.Params)+1)
	evalArgs = append(evalArgs, formats)
	for _, n := range ep.Params {
		evalArgs = append(evalArgs, args[n-1])
	}
	values, err := queryOneRow(ctx, ec, ep.SQL, evalArgs, formats)
	if err != nil {
		s.dropClosedSession(ec)
		return nil, fmt.Errorf("pgshard: evaluating values on the metadata database: %w", err)
	}
	return values, nil
}

// evalSession is the connection the Eval step runs on: the metadata
// session, as joined to the transaction when a statement of the
// transaction joined it (SET LOCAL then applies), else as it is.
func (s *Session) evalSession(ctx context.Context) (*pgx.Conn, error) {
	if s.tx != nil && s.tx.meta != nil {
		return s.tx.meta.conn.Conn(), nil
	}
	ms, err := s.metaSession(ctx)
	if err != nil {
		return nil, err
	}
	return ms.Conn(), nil
}

// dropClosedSession forgets the metadata session when c, the connection a
// statement used, was it and is closed (outside a transaction): the next
// statement opens a new one.
func (s *Session) dropClosedSession(c *pgx.Conn) {
	if s.tx == nil && s.session != nil && s.session.Conn() == c && c.IsClosed() {
		s.dropSession()
	}
}

// queryOneRow runs sql on c and returns its one row: text columns as
// strings, binary ones decoded to Go values (infinity as its text).
//
// Values asked for in binary need the extended protocol: on a connection
// whose default is the simple protocol (default_query_exec_mode in the DSN),
// which returns text whatever is asked, the query is described and run with
// the extended protocol (pgx.QueryExecModeDescribeExec).
func queryOneRow(ctx context.Context, c *pgx.Conn, sql string, args []any, formats pgx.QueryResultFormats) ([]any, error) {
	if c.Config().DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol && slices.Contains(formats, pgx.BinaryFormatCode) {
		args = append([]any{pgx.QueryExecModeDescribeExec}, args...)
	}
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, sqlerr.New(sqlerr.InternalError, "evaluating values returned no row")
	}
	fields := rows.FieldDescriptions()
	raws := rows.RawValues()
	values := make([]any, len(raws))
	for i, raw := range raws {
		if raw == nil {
			continue
		}
		if formats[i] != pgx.BinaryFormatCode {
			values[i] = string(raw)
			continue
		}
		v, err := decodeBinary(c.TypeMap(), fields[i].DataTypeOID, raw)
		if err != nil {
			return nil, err
		}
		values[i] = v
	}
	rows.Close()
	return values, rows.Err()
}

// keyText is a shard key value given as text that only the session can
// read: args[index], of key type typ.
type keyText struct {
	index int
	typ   uint32
	text  string
}

// settingKeyText reports whether args[i], a key of type typ, is text whose
// value the session's settings decide.
func settingKeyText(args []any, i int, typ uint32) (keyText, bool) {
	if i < 0 || i >= len(args) {
		return keyText{}, false
	}
	v := args[i]
	if val, ok := v.(driver.Valuer); ok {
		r, err := val.Value()
		if err != nil {
			return keyText{}, false // reported where the value is used
		}
		v = r
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		// A named string type: pgx sends it as text too, which the
		// worker reads under the session's settings.
		rv := reflect.ValueOf(v)
		if !rv.IsValid() || rv.Kind() != reflect.String {
			return keyText{}, false
		}
		s = rv.String()
	}
	if catalog.KeyTextIndependentOfSettings(typ, s) {
		return keyText{}, false
	}
	return keyText{index: i, typ: typ, text: s}, true
}

// keyTypeNames are the SQL names of the key types whose text the session's
// settings decide (catalog.KeyTextDependsOnSettings).
var keyTypeNames = map[uint32]string{1082: "pg_catalog.date", 1114: "pg_catalog.timestamp", 1184: "pg_catalog.timestamptz"}

// evalKeyTexts has the session read each key text as its key type, in one
// round trip, and puts the typed values (time.Time, or infinity as text) in
// args and out in their place: routing hashes them and the shards receive
// them, so both see the value the session means.
func (s *Session) evalKeyTexts(ctx context.Context, keys []keyText, args []any, out []driver.NamedValue) error {
	var b strings.Builder
	b.WriteString("SELECT ")
	formats := make(pgx.QueryResultFormats, len(keys))
	qargs := make([]any, 0, len(keys)+1)
	qargs = append(qargs, formats)
	for i, k := range keys {
		name, ok := keyTypeNames[k.typ]
		if !ok {
			return sqlerr.New(sqlerr.InternalError, "no SQL name for key type OID %d", k.typ)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d::text::%s", i+1, name)
		formats[i] = pgx.BinaryFormatCode
		qargs = append(qargs, k.text)
	}
	ec, err := s.evalSession(ctx)
	if err != nil {
		return err
	}
	values, err := queryOneRow(ctx, ec, b.String(), qargs, formats)
	if err != nil {
		s.dropClosedSession(ec)
		return fmt.Errorf("pgshard: reading shard key values in the session: %w", err)
	}
	for i, k := range keys {
		args[k.index] = values[i]
		out[k.index] = driver.NamedValue{Ordinal: out[k.index].Ordinal, Name: out[k.index].Name, Value: values[i]}
	}
	return nil
}

// decodeBinary decodes one value the session returned in binary as the Go
// value a worker accepts for it; an infinite date or timestamp becomes its
// text ("infinity", "-infinity").
func decodeBinary(m *pgtype.Map, oid uint32, raw []byte) (any, error) {
	typ, ok := m.TypeForOID(oid)
	if !ok {
		return nil, sqlerr.New(sqlerr.InternalError, "no decoder for a value of type OID %d", oid)
	}
	v, err := typ.Codec.DecodeValue(m, oid, pgx.BinaryFormatCode, raw)
	if err != nil {
		return nil, err
	}
	if inf, ok := v.(pgtype.InfinityModifier); ok {
		return inf.String(), nil
	}
	return v, nil
}
