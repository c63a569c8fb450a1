package engine

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// COPY's binary format, as CopyWriter writes it to the shards: each batch
// is one COPY ... FROM STDIN (FORMAT binary) whose data is the header,
// the rows (each its number of fields, then each field's length, -1 for
// NULL, and bytes in its type's binary format) and the trailer. The plan
// decides whether a COPY starts in binary (planner.CopyPlan.Binary, from
// the columns' types); a value whose binary form is not certain to be what
// the text format stores (a string for a number, a date or a bytea, which
// the server reads under its settings; any Go type not listed in
// appendBinary) turns the writer to the text format for the rest of the
// COPY, the batches already written in binary sent first.

// copyBinaryHeader is the header of a binary COPY's data: the signature,
// the flags (none) and the length of the header extension (none).
var copyBinaryHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyBinaryTrailer ends a binary COPY's data: a row of -1 fields.
var copyBinaryTrailer = []byte{0xff, 0xff}

// Years of time.Time values written in binary: PostgreSQL's timestamp
// range. Outside it (where pgx's binary forms would overflow) the server
// reads the text and says what is wrong.
const (
	minBinaryYear = -4713
	maxBinaryYear = 294276
)

// appendBinaryRow appends vals, a row of values of types, in COPY's binary
// format, and reports whether every value had a binary form appendBinary
// writes; when not, buf is returned as it was.
func (w *CopyWriter) appendBinaryRow(buf []byte, types []uint32, vals []any) ([]byte, bool) {
	start := len(buf)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(vals)))
	for i, v := range vals {
		var ok bool
		if buf, ok = w.appendBinary(buf, types[i], v); !ok {
			return buf[:start], false
		}
	}
	return buf, true
}

// appendBinary appends v, a value of a column of type typ, as one field of
// a binary COPY row (its length, then its bytes), when its binary form is
// what the text format (appendValue) stores for it: NULL; a string into
// text, varchar, bpchar, json or jsonb; bytes into those (but json) and
// bytea; an integer into an integer column it fits, numeric, or float8
// when float8 holds it exactly; a float64 into float8, a float32 into
// float4; a bool into bool; a time.Time into timestamptz, timestamp or
// date (within PostgreSQL's range); [16]byte into uuid; pgtype.Numeric
// into numeric, pgtype.Interval into interval (as the session's defaults
// come). It reports false for anything else, buf unchanged.
func (w *CopyWriter) appendBinary(buf []byte, typ uint32, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return binary.BigEndian.AppendUint32(buf, math.MaxUint32), true
	case string:
		switch typ {
		case 25, 1043, 1042, 114: // text, varchar, bpchar, json
			return append(binary.BigEndian.AppendUint32(buf, uint32(len(x))), x...), true
		case 3802: // jsonb: a version byte, then the text
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(x)+1))
			return append(append(buf, 1), x...), true
		}
		return buf, false
	case []byte:
		if x == nil {
			return binary.BigEndian.AppendUint32(buf, math.MaxUint32), true
		}
		switch typ {
		case 25, 1043, 1042, 17: // text, varchar, bpchar, bytea
			return append(binary.BigEndian.AppendUint32(buf, uint32(len(x))), x...), true
		}
		return buf, false
	case int64:
		return w.appendBinaryInt(buf, typ, x)
	case int:
		return w.appendBinaryInt(buf, typ, int64(x))
	case int32:
		return w.appendBinaryInt(buf, typ, int64(x))
	case int16:
		return w.appendBinaryInt(buf, typ, int64(x))
	case int8:
		return w.appendBinaryInt(buf, typ, int64(x))
	case float64:
		if typ != 701 {
			return buf, false
		}
		buf = binary.BigEndian.AppendUint32(buf, 8)
		return binary.BigEndian.AppendUint64(buf, math.Float64bits(x)), true
	case float32:
		if typ != 700 {
			return buf, false
		}
		buf = binary.BigEndian.AppendUint32(buf, 4)
		return binary.BigEndian.AppendUint32(buf, math.Float32bits(x)), true
	case bool:
		if typ != 16 {
			return buf, false
		}
		b := byte(0)
		if x {
			b = 1
		}
		return append(binary.BigEndian.AppendUint32(buf, 1), b), true
	case time.Time:
		if (typ != 1184 && typ != 1114 && typ != 1082) || x.Year() < minBinaryYear || x.Year() > maxBinaryYear {
			return buf, false
		}
		return w.appendBinaryPgx(buf, typ, x)
	case [16]byte:
		if typ != 2950 {
			return buf, false
		}
		return append(binary.BigEndian.AppendUint32(buf, 16), x[:]...), true
	case pgtype.Numeric:
		if typ != 1700 {
			return buf, false
		}
		return w.appendBinaryPgx(buf, typ, x)
	case pgtype.Interval:
		if typ != 1186 {
			return buf, false
		}
		return w.appendBinaryPgx(buf, typ, x)
	}
	return buf, false
}

// appendBinaryInt appends x into a column of type typ: int2, int4 and
// int8 when it fits, numeric, float8 when x is within ±2^53 (where float8
// holds it exactly, as the server reads its digits).
func (w *CopyWriter) appendBinaryInt(buf []byte, typ uint32, x int64) ([]byte, bool) {
	switch typ {
	case 20:
		buf = binary.BigEndian.AppendUint32(buf, 8)
		return binary.BigEndian.AppendUint64(buf, uint64(x)), true
	case 23:
		if x < math.MinInt32 || x > math.MaxInt32 {
			return buf, false // the server says it is out of range
		}
		buf = binary.BigEndian.AppendUint32(buf, 4)
		return binary.BigEndian.AppendUint32(buf, uint32(int32(x))), true
	case 21:
		if x < math.MinInt16 || x > math.MaxInt16 {
			return buf, false
		}
		buf = binary.BigEndian.AppendUint32(buf, 2)
		return binary.BigEndian.AppendUint16(buf, uint16(int16(x))), true
	case 701:
		if x < -(1<<53) || x > 1<<53 {
			return buf, false
		}
		buf = binary.BigEndian.AppendUint32(buf, 8)
		return binary.BigEndian.AppendUint64(buf, math.Float64bits(float64(x))), true
	case 1700:
		return w.appendBinaryPgx(buf, typ, x)
	}
	return buf, false
}

// appendBinaryPgx appends v in typ's binary format as pgx encodes it, its
// length first; false when pgx cannot.
func (w *CopyWriter) appendBinaryPgx(buf []byte, typ uint32, v any) ([]byte, bool) {
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	enc, err := w.tm.Encode(typ, pgtype.BinaryFormatCode, v, buf)
	if err != nil || enc == nil {
		return buf[:at], false
	}
	binary.BigEndian.PutUint32(enc[at:], uint32(len(enc)-at-4))
	return enc, true
}
