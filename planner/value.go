package planner

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// Value is where a shard key value comes from at execute time: a literal in
// the SQL text, or a bind parameter.
type Value struct {
	// Param is the 1-based parameter number, or 0 for a literal.
	Param int
	// Const is the literal: a string (text, and numbers written with a
	// decimal point), an int64 or a bool. Nil with Param 0 is SQL NULL.
	Const any
	// lit is the string literal's node in the plan's parse tree, so that a
	// literal the session's settings decide can become a parameter
	// (evalSettingKeys); nil for other values.
	lit *pg_query.Node
}

// String shows the value as it appears in plans: "$2" or the literal.
func (v Value) String() string {
	if v.Param > 0 {
		return "$" + strconv.Itoa(v.Param)
	}
	switch c := v.Const.(type) {
	case nil:
		return "NULL"
	case string:
		return strconv.Quote(c)
	default:
		return fmt.Sprint(c)
	}
}

// Resolve returns the value for the given arguments (args[0] is $1).
func (v Value) Resolve(args []any) (any, error) {
	if v.Param == 0 {
		return v.Const, nil
	}
	if v.Param > len(args) {
		return nil, sqlerr.New(sqlerr.ProtocolViolation, "bind message supplies %d parameters, but the statement requires at least %d", len(args), v.Param)
	}
	a := args[v.Param-1]
	if val, ok := a.(driver.Valuer); ok {
		r, err := val.Value()
		if err != nil {
			return nil, fmt.Errorf("planner: parameter $%d: %w", v.Param, err)
		}
		return r, nil
	}
	return a, nil
}

// keyTypeNames maps the type names a cast may use to the key type OIDs they
// denote, so that `key = $1::text` still pins the key. A cast to any other
// type is not trusted to hash like the key.
var keyTypeNames = map[string]uint32{
	"bool": 16, "boolean": 16,
	"int2": 21, "smallint": 21,
	"int4": 23, "int": 23, "integer": 23,
	"int8": 20, "bigint": 20,
	"text": 25, "varchar": 1043, "character varying": 1043,
	"bpchar": 1042, "char": 1042, "character": 1042,
	"uuid": 2950, "date": 1082,
	"timestamp": 1114, "timestamptz": 1184,
	"name": 19,
}

// sameHashFamily reports whether a value cast to type a hashes, compared with
// a key of type b, as b would hash it.
func sameHashFamily(a, b uint32) bool {
	if a == b {
		return true
	}
	family := func(t uint32) int {
		switch t {
		case 21, 23, 20:
			return 1
		case 25, 1043:
			return 2
		}
		return int(t) + 100
	}
	return family(a) == family(b)
}

// castTypeOID returns the OID a TypeName denotes among keyTypeNames.
func castTypeOID(tn *pg_query.TypeName) (uint32, bool) {
	if tn == nil || len(tn.ArrayBounds) > 0 || tn.Setof {
		return 0, false
	}
	names := tn.Names
	if len(names) == 2 && stringOf(names[0]) == "pg_catalog" {
		names = names[1:]
	}
	if len(names) != 1 {
		return 0, false
	}
	oid, ok := keyTypeNames[stringOf(names[0])]
	return oid, ok
}

// constValue returns the literal value of n, when n is a constant or a
// parameter (possibly cast to a type of keyType's hash family, possibly a
// negated number).
func constValue(n *pg_query.Node, keyType uint32) (Value, bool) {
	if n == nil {
		return Value{}, false
	}
	switch x := n.Node.(type) {
	case *pg_query.Node_ParamRef:
		return Value{Param: int(x.ParamRef.Number)}, true
	case *pg_query.Node_AConst:
		c := x.AConst
		if c.Isnull {
			return Value{}, true
		}
		switch v := c.Val.(type) {
		case *pg_query.A_Const_Ival:
			if isTextType(keyType) {
				// INSERT's assignment cast makes 12 the text '12'.
				return Value{Const: strconv.FormatInt(int64(v.Ival.Ival), 10)}, true
			}
			return Value{Const: int64(v.Ival.Ival)}, true
		case *pg_query.A_Const_Fval:
			if !integerLiteral(v.Fval.Fval) && isIntegerType(keyType) {
				// 42.0 is numeric: int_key = 42.0 compares as numeric.
				return Value{}, false
			}
			return Value{Const: v.Fval.Fval}, true
		case *pg_query.A_Const_Sval:
			return Value{Const: v.Sval.Sval, lit: n}, true
		case *pg_query.A_Const_Boolval:
			return Value{Const: v.Boolval.Boolval}, true
		}
		return Value{}, false
	case *pg_query.Node_TypeCast:
		oid, ok := castTypeOID(x.TypeCast.TypeName)
		if !ok || !sameHashFamily(oid, keyType) || len(x.TypeCast.TypeName.Typmods) > 0 {
			return Value{}, false
		}
		return constValue(x.TypeCast.Arg, keyType)
	case *pg_query.Node_AExpr:
		e := x.AExpr
		if e.Kind == pg_query.A_Expr_Kind_AEXPR_OP && e.Lexpr == nil && len(e.Name) == 1 && stringOf(e.Name[0]) == "-" {
			if c := e.Rexpr.GetAConst(); c != nil && !c.Isnull {
				switch v := c.Val.(type) {
				case *pg_query.A_Const_Ival:
					if isTextType(keyType) {
						return Value{Const: strconv.FormatInt(-int64(v.Ival.Ival), 10)}, true
					}
					return Value{Const: -int64(v.Ival.Ival)}, true
				case *pg_query.A_Const_Fval:
					if !integerLiteral(v.Fval.Fval) && isIntegerType(keyType) {
						return Value{}, false
					}
					return Value{Const: "-" + v.Fval.Fval}, true
				}
			}
		}
	}
	return Value{}, false
}

// isTextType reports whether t is text, varchar, bpchar or name.
func isTextType(t uint32) bool { return t == 25 || t == 1043 || t == 1042 || t == 19 }

// isIntegerType reports whether t is int2, int4 or int8.
func isIntegerType(t uint32) bool { return t == 21 || t == 23 || t == 20 }

// integerLiteral reports whether a numeric literal (a Float node: an integer
// too large for int4, or a number with a decimal point or exponent) is
// written with digits only (and a sign: the parser folds -5000000000).
func integerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
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
