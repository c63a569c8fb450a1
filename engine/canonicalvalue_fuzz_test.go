package engine

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// fuzzTypes is a ServerTypes made by hand for FuzzCanonicalWriter: a
// composite with timestamptz, interval, float8, text and enum attributes
// (20000), the enum (20001), arrays of the composite (20002) and of a
// domain over timestamptz (20003, 20005), and a composite nesting them
// with built-in arrays and ranges (20004).
var fuzzTypes = &ServerTypes{user: map[uint32]userType{
	20000: {kind: 'c', attrs: []uint32{1184, 1186, 701, 25, 20001}},
	20001: {kind: 'e'},
	20002: {kind: 'a', elem: 20000},
	20003: {kind: 'd', elem: 1184},
	20004: {kind: 'c', attrs: []uint32{20000, 20002, 1009, 1187, 3910, 20005, 4534}},
	20005: {kind: 'a', elem: 20003},
}}

// fuzzOIDs are the types FuzzCanonicalWriter reads its bytes as.
var fuzzOIDs = []uint32{20000, 20001, 20002, 20003, 20004, 20005, 1185, 1021, 1022, 3911, 4534, 6153, 3910,
	1186, 1083, 1266, 1114, 1184, 1082, 1700, 16, 21, 23, 20, 17, 2950, 3802, 114, 25, 700, 701, 1187, 1231}

// FuzzCanonicalWriter: canonicalWriter, given any bytes as a value of any
// type it writes, returns text or an error (XX000 malformed, 0A000
// structure changed), never panics.
func FuzzCanonicalWriter(f *testing.F) {
	be32 := func(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
	interval := make([]byte, 16)
	binary.BigEndian.PutUint64(interval, uint64(1<<63|12345))
	var rec []byte
	rec = be32(rec, 5)
	rec = be32(be32(rec, 1184), 8)
	rec = append(rec, 0, 0, 0, 0, 0, 0, 0, 1)
	rec = be32(be32(rec, 1186), 16)
	rec = append(rec, interval...)
	rec = be32(be32(rec, 701), 0xFFFFFFFF)
	rec = be32(be32(rec, 25), 3)
	rec = append(rec, `"\,`...)
	rec = be32(be32(rec, 20001), 1)
	rec = append(rec, 'x')
	var arr []byte
	arr = be32(be32(be32(arr, 1), 1), 20000)
	arr = be32(be32(arr, 2), 0)
	arr = be32(arr, uint32(len(rec)))
	arr = append(arr, rec...)
	arr = be32(arr, 0xFFFFFFFF)
	f.Add(uint8(0), rec)
	f.Add(uint8(2), arr)
	f.Add(uint8(13), interval)
	f.Add(uint8(10), []byte{0, 0, 0, 1, 0, 0, 0, 1, 1})
	f.Add(uint8(12), []byte{rangeLBInf | rangeUBInc, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(16), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, pick uint8, raw []byte) {
		oid := fuzzOIDs[int(pick)%len(fuzzOIDs)]
		w := canonicalWriter{st: fuzzTypes}
		_, err := w.value(nil, oid, raw, 0)
		var pe *pgconn.PgError
		if err != nil && (!errors.As(err, &pe) || (pe.Code != "XX000" && pe.Code != "0A000")) {
			t.Fatalf("type %d: an error without SQLSTATE XX000 or 0A000: %v", oid, err)
		}
	})
}
