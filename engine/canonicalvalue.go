package engine

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// canonicalWriter writes the canonical text of values read in binary: text
// that PostgreSQL's input functions read back as the very same value under
// any session settings (DateStyle, TimeZone, IntervalStyle,
// extra_float_digits). It walks a value by the structure of its type as
// the ServerTypes it was made with knows it, recursively: an array's
// elements, a composite's attributes, a domain's base type, a range's
// bounds, a multirange's ranges. The OIDs a value's own bytes hold (an
// array's element type, a composite's attribute types) are checked where
// they are built-in types, the same on every server; a user type's OID in
// them is the sending server's, which may differ from st's (a materialized
// subquery's values come from the shards, its types from the metadata
// server), so the structure st knows is followed instead. Malformed or
// truncated bytes give an error, never a panic.
//
// A canonicalWriter is not safe for concurrent use; its scratch buffers
// are reused from one value to the next.
type canonicalWriter struct {
	st      *ServerTypes
	scratch [maxCanonicalDepth][]byte
}

// maxCanonicalDepth bounds how deeply values nest (an array in a composite
// in an array ...): PostgreSQL forbids a type that contains itself, so a
// deeper value means a malformed one.
const maxCanonicalDepth = 16

// errMalformed is the error of a value whose bytes do not follow its
// type's binary format.
func errMalformed(what string) error {
	return sqlerr.New(sqlerr.InternalError, "pgshard: malformed binary value from a server: %s", what)
}

// errTypeChanged is the error of a value whose bytes name other types than
// the ones the server reported (ALTER TYPE since it was asked).
func errTypeChanged(oid uint32) error {
	return sqlerr.Unsupported("a value of type %d does not have the structure its server reported (was its type altered?); it cannot travel exactly between servers; select its parts as columns", oid)
}

// value appends the canonical text of v, a value of type oid in its binary
// format, to buf. depth is how deeply v is nested.
func (w *canonicalWriter) value(buf []byte, oid uint32, v []byte, depth int) ([]byte, error) {
	if depth >= maxCanonicalDepth {
		return nil, errMalformed("values nested too deeply")
	}
	if elem, ok := builtinArrayElems[oid]; ok {
		return w.array(buf, oid, elem, v, depth)
	}
	if sub, ok := builtinRanges[oid]; ok {
		return w.rangeValue(buf, sub, v, depth)
	}
	if rng, ok := builtinMultiranges[oid]; ok {
		return w.multirange(buf, rng, v, depth)
	}
	if carriableScalars[oid] {
		return appendCanonicalScalar(buf, oid, v)
	}
	if w.st != nil {
		if ut, ok := w.st.user[oid]; ok {
			switch ut.kind {
			case 'c':
				return w.record(buf, oid, ut.attrs, v, depth)
			case 'd':
				return w.value(buf, ut.elem, v, depth+1)
			case 'e': // an enum's binary form is its label
				return append(buf, v...), nil
			case 'a':
				return w.array(buf, oid, ut.elem, v, depth)
			case 'r':
				return w.rangeValue(buf, ut.elem, v, depth)
			case 'm':
				return w.multirange(buf, ut.elem, v, depth)
			}
		}
	}
	return nil, sqlerr.Unsupported("values of type %d cannot travel exactly between servers; select its parts as columns", oid)
}

// quoted appends the canonical text of v, of type oid, in double quotes,
// each double quote and backslash in it escaped: by a backslash
// (array_out's and range_out's way) when backslash is set, else doubled
// (record_out's). A quoted value is never read as NULL nor split at a
// delimiter.
func (w *canonicalWriter) quoted(buf []byte, oid uint32, v []byte, depth int, backslash bool) ([]byte, error) {
	if depth >= maxCanonicalDepth {
		return nil, errMalformed("values nested too deeply")
	}
	inner, err := w.value(w.scratch[depth][:0], oid, v, depth+1)
	if err != nil {
		return nil, err
	}
	w.scratch[depth] = inner
	buf = append(buf, '"')
	for _, c := range inner {
		if c == '"' || c == '\\' {
			if backslash {
				buf = append(buf, '\\')
			} else {
				buf = append(buf, c)
			}
		}
		buf = append(buf, c)
	}
	return append(buf, '"'), nil
}

// array appends the canonical text of raw, an array of type oid whose
// elements are of type elem, in array_send's layout (ndim, has-nulls flag,
// element OID, each dimension's length and lower bound, then each element's
// length, -1 for NULL, and bytes): as array_out prints it (dimensions
// first where a lower bound is not 1), every element quoted, NULL bare.
func (w *canonicalWriter) array(buf []byte, oid, elem uint32, raw []byte, depth int) ([]byte, error) {
	if len(raw) < 12 {
		return nil, errMalformed("short array header")
	}
	ndim := int32(binary.BigEndian.Uint32(raw))
	if got := binary.BigEndian.Uint32(raw[8:]); got != elem && (got < firstNormalOID || elem < firstNormalOID) {
		return nil, errTypeChanged(oid)
	}
	if ndim < 0 || ndim > 6 || len(raw) < 12+8*int(ndim) {
		return nil, errMalformed("array dimensions")
	}
	dims := make([]int, ndim)
	items := 1
	lower := false
	for d := range dims {
		n := int32(binary.BigEndian.Uint32(raw[12+8*d:]))
		lb := int32(binary.BigEndian.Uint32(raw[16+8*d:]))
		if n < 0 || int64(lb)+int64(n) > math.MaxInt32+1 {
			return nil, errMalformed("array dimension")
		}
		dims[d] = int(n)
		if lb != 1 {
			lower = true
		}
		if items = items * int(n); items > len(raw) {
			// Each element takes 4 bytes at least.
			return nil, errMalformed("array dimensions")
		}
	}
	rest := raw[12+8*ndim:]
	delim := w.delimiter(elem)
	if ndim == 0 || items == 0 {
		if len(rest) != 0 {
			return nil, errMalformed("trailing bytes")
		}
		return append(buf, "{}"...), nil
	}
	if lower {
		for d := range dims {
			lb := int64(int32(binary.BigEndian.Uint32(raw[16+8*d:])))
			buf = append(buf, '[')
			buf = strconv.AppendInt(buf, lb, 10)
			buf = append(buf, ':')
			buf = strconv.AppendInt(buf, lb+int64(dims[d])-1, 10)
			buf = append(buf, ']')
		}
		buf = append(buf, '=')
	}
	var walk func(buf []byte, d int) ([]byte, error)
	walk = func(buf []byte, d int) ([]byte, error) {
		buf = append(buf, '{')
		for i := 0; i < dims[d]; i++ {
			if i > 0 {
				buf = append(buf, delim)
			}
			var err error
			if d+1 < len(dims) {
				if buf, err = walk(buf, d+1); err != nil {
					return nil, err
				}
				continue
			}
			if len(rest) < 4 {
				return nil, errMalformed("short array element")
			}
			n := int32(binary.BigEndian.Uint32(rest))
			rest = rest[4:]
			if n < 0 {
				buf = append(buf, "NULL"...)
				continue
			}
			if len(rest) < int(n) {
				return nil, errMalformed("short array element")
			}
			if buf, err = w.quoted(buf, elem, rest[:n], depth, true); err != nil {
				return nil, err
			}
			rest = rest[n:]
		}
		return append(buf, '}'), nil
	}
	buf, err := walk(buf, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errMalformed("trailing bytes")
	}
	return buf, nil
}

// delimiter returns the byte array_out puts between elements of type
// elem (its typdelim): a semicolon for box and the domains over it, whose
// text holds commas, a comma for every other type.
func (w *canonicalWriter) delimiter(elem uint32) byte {
	for range maxCanonicalDepth {
		if elem == 603 {
			return ';'
		}
		if w.st == nil {
			break
		}
		ut, ok := w.st.user[elem]
		if !ok || ut.kind != 'd' {
			break
		}
		elem = ut.elem
	}
	return ','
}

// record appends the canonical text of raw, a composite of type oid whose
// attributes are of types attrs, in record_send's layout (the number of
// attributes, then each one's type OID, length, -1 for NULL, and bytes):
// as record_out prints it, each non-NULL attribute quoted, NULL as
// nothing.
func (w *canonicalWriter) record(buf []byte, oid uint32, attrs []uint32, raw []byte, depth int) ([]byte, error) {
	if len(raw) < 4 {
		return nil, errMalformed("short composite header")
	}
	if n := int32(binary.BigEndian.Uint32(raw)); n < 0 || int(n) != len(attrs) {
		return nil, errTypeChanged(oid)
	}
	rest := raw[4:]
	buf = append(buf, '(')
	for i, attr := range attrs {
		if i > 0 {
			buf = append(buf, ',')
		}
		if len(rest) < 8 {
			return nil, errMalformed("short composite attribute")
		}
		got := binary.BigEndian.Uint32(rest)
		size := int32(binary.BigEndian.Uint32(rest[4:]))
		rest = rest[8:]
		if got != attr && (got < firstNormalOID || attr < firstNormalOID) {
			return nil, errTypeChanged(oid)
		}
		if size < 0 {
			continue // NULL
		}
		if len(rest) < int(size) {
			return nil, errMalformed("short composite attribute")
		}
		var err error
		if buf, err = w.quoted(buf, attr, rest[:size], depth, false); err != nil {
			return nil, err
		}
		rest = rest[size:]
	}
	if len(rest) != 0 {
		return nil, errMalformed("trailing bytes")
	}
	return append(buf, ')'), nil
}

// The flags of range_send's first byte (rangetypes.h).
const (
	rangeEmpty   = 0x01
	rangeLBInc   = 0x02
	rangeUBInc   = 0x04
	rangeLBInf   = 0x08
	rangeUBInf   = 0x10
	rangeLBNull  = 0x20
	rangeUBNull  = 0x40
	rangeAllowed = rangeEmpty | rangeLBInc | rangeUBInc | rangeLBInf | rangeUBInf
)

// rangeValue appends the canonical text of raw, a range of subtype sub in
// range_send's layout (a flags byte, then each finite bound's length and
// bytes): "empty", or as range_out prints it, each finite bound quoted.
func (w *canonicalWriter) rangeValue(buf []byte, sub uint32, raw []byte, depth int) ([]byte, error) {
	if len(raw) < 1 {
		return nil, errMalformed("short range")
	}
	flags := raw[0]
	rest := raw[1:]
	if flags&^rangeAllowed != 0 {
		return nil, errMalformed("range flags")
	}
	if flags&rangeEmpty != 0 {
		if flags != rangeEmpty || len(rest) != 0 {
			return nil, errMalformed("empty range")
		}
		return append(buf, "empty"...), nil
	}
	bound := func(buf []byte, inf byte) ([]byte, error) {
		if flags&inf != 0 {
			return buf, nil
		}
		if len(rest) < 4 {
			return nil, errMalformed("short range bound")
		}
		n := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if n < 0 || len(rest) < int(n) {
			return nil, errMalformed("short range bound")
		}
		v := rest[:n]
		rest = rest[n:]
		return w.quoted(buf, sub, v, depth, true)
	}
	open, closing := byte('('), byte(')')
	if flags&rangeLBInc != 0 {
		open = '['
	}
	if flags&rangeUBInc != 0 {
		closing = ']'
	}
	buf = append(buf, open)
	buf, err := bound(buf, rangeLBInf)
	if err != nil {
		return nil, err
	}
	buf = append(buf, ',')
	if buf, err = bound(buf, rangeUBInf); err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errMalformed("trailing bytes")
	}
	return append(buf, closing), nil
}

// multirange appends the canonical text of raw, a multirange of ranges of
// type rng in multirange_send's layout (the number of ranges, then each
// one's length and range_send bytes): as multirange_out prints it.
func (w *canonicalWriter) multirange(buf []byte, rng uint32, raw []byte, depth int) ([]byte, error) {
	if len(raw) < 4 {
		return nil, errMalformed("short multirange")
	}
	n := int32(binary.BigEndian.Uint32(raw))
	rest := raw[4:]
	if n < 0 || int(n) > len(rest)/4 {
		return nil, errMalformed("multirange length")
	}
	buf = append(buf, '{')
	for i := 0; i < int(n); i++ {
		if i > 0 {
			buf = append(buf, ',')
		}
		if len(rest) < 4 {
			return nil, errMalformed("short multirange")
		}
		size := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if size < 0 || len(rest) < int(size) {
			return nil, errMalformed("short multirange")
		}
		var err error
		if buf, err = w.value(buf, rng, rest[:size], depth+1); err != nil {
			return nil, err
		}
		rest = rest[size:]
	}
	if len(rest) != 0 {
		return nil, errMalformed("trailing bytes")
	}
	return append(buf, '}'), nil
}
