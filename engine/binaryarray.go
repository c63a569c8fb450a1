package engine

import (
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"

	"github.com/jackc/pgx/v5/pgtype"
)

// binaryArray is a query parameter holding a one-dimensional PostgreSQL
// array already in the binary wire format (array_send's): pgshard builds it
// from values the shards sent in binary, and it reaches the server byte for
// byte, whatever the session's DateStyle, TimeZone, IntervalStyle,
// extra_float_digits or lc_monetary. It is how partial rows of combined
// queries and the rows of materialized subqueries travel between servers
// (see Combine and Materialize for why not as text).
//
// The parameter's type must be the array type of the element OID given to
// newBinaryArray on the server that receives it: array_recv refuses any
// other element type. pgshard sends only built-in element types, whose
// OIDs are the same on every server.
//
// Only connections whose type map went through AcceptBinaryArrays can
// send one, and only in the binary format (the extended protocol): asked
// for its text, it fails, so pgx sends it in binary or reports the error.
type binaryArray struct {
	elemOID uint32
	elems   [][]byte // each in its type's binary format; nil for NULL
}

// errBinaryArrayText is why a binaryArray has no text form.
var errBinaryArrayText = errors.New("pgshard: an array of binary values can only be sent in the binary format (extended protocol)")

// TextValue makes pgx try the text format first for a parameter of a type
// it does not know, fail, and fall back to the binary format.
func (binaryArray) TextValue() (pgtype.Text, error) { return pgtype.Text{}, errBinaryArrayText }

// newBinaryArray is the array of elements of type elemOID, each element in
// that type's binary format (typsend's), nil for NULL. It keeps elems.
func newBinaryArray(elemOID uint32, elems [][]byte) binaryArray {
	return binaryArray{elemOID: elemOID, elems: elems}
}

// appendTo appends the array in array_recv's format to buf: a header (one
// dimension, lower bound 1; none for an empty array), then each element's
// length (-1 for NULL) and bytes.
func (a binaryArray) appendTo(buf []byte) []byte {
	if len(a.elems) == 0 {
		buf = binary.BigEndian.AppendUint32(buf, 0) // ndim 0: the empty array
		buf = binary.BigEndian.AppendUint32(buf, 0)
		return binary.BigEndian.AppendUint32(buf, a.elemOID)
	}
	hasNull := uint32(0)
	size := 20
	for _, e := range a.elems {
		size += 4 + len(e)
		if e == nil {
			hasNull = 1
		}
	}
	buf = slices.Grow(buf, size)
	buf = binary.BigEndian.AppendUint32(buf, 1) // ndim
	buf = binary.BigEndian.AppendUint32(buf, hasNull)
	buf = binary.BigEndian.AppendUint32(buf, a.elemOID)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(a.elems))) // dimension length
	buf = binary.BigEndian.AppendUint32(buf, 1)                    // lower bound
	for _, e := range a.elems {
		if e == nil {
			buf = binary.BigEndian.AppendUint32(buf, 0xFFFFFFFF) // -1: NULL
			continue
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(e)))
		buf = append(buf, e...)
	}
	return buf
}

// AcceptBinaryArrays lets connections with type map m send binaryArray
// parameters, as pgx's documented extension point for values its codecs do
// not know (TryWrapEncodePlanFuncs). It is idempotent; call it before the
// map is shared (when the connection opens).
func AcceptBinaryArrays(m *pgtype.Map) {
	mine := reflect.ValueOf(wrapBinaryArray).Pointer()
	for _, f := range m.TryWrapEncodePlanFuncs {
		if reflect.ValueOf(f).Pointer() == mine {
			return
		}
	}
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{wrapBinaryArray}, m.TryWrapEncodePlanFuncs...)
}

// wrapBinaryArray plans a binaryArray: its bytes as they are. pgx uses a
// wrapper only when the plan of its next value exists; binaryArrayNext (a
// driver.Valuer) has one for every type and format, and is never encoded.
func wrapBinaryArray(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if _, ok := value.(binaryArray); !ok {
		return nil, nil, false
	}
	return binaryArrayPlan{}, binaryArrayNext(0), true
}

// binaryArrayPlan encodes a binaryArray: it appends its bytes. pgx asks
// for it only in the binary format: in the text format a binaryArray is a
// pgtype.TextValuer, planned before any wrapper, whose TextValue fails.
type binaryArrayPlan struct{}

func (binaryArrayPlan) SetNext(pgtype.EncodePlan) {}

func (binaryArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	return value.(binaryArray).appendTo(buf), nil
}

// binaryArrayNext is the placeholder next value of wrapBinaryArray's plan.
type binaryArrayNext int

func (binaryArrayNext) Value() (driver.Value, error) { return nil, nil }
