package engine

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// fuzzTypes is a ServerTypes made by hand for FuzzCanonicalWriter: a
// composite with timestamptz, interval, float8, text and enum attributes
// (20000), the enum (20001), arrays of the composite (20002) and of a
// domain over timestamptz (20003, 20005), a composite nesting them with
// built-in arrays and ranges (20004), a range over float8 and its
// multirange (20006, 20007), a composite of geometric, network, bit
// string, tsvector, xml, name, oid, "char" and range attributes and its
// array (20008, 20011), and an array of a domain over box (20009, 20010).
var fuzzTypes = &ServerTypes{user: map[uint32]userType{
	20000: {kind: 'c', attrs: []uint32{1184, 1186, 701, 25, 20001}},
	20001: {kind: 'e'},
	20002: {kind: 'a', elem: 20000},
	20003: {kind: 'd', elem: 1184},
	20004: {kind: 'c', attrs: []uint32{20000, 20002, 1009, 1187, 3910, 20005, 4534}},
	20005: {kind: 'a', elem: 20003},
	20006: {kind: 'r', elem: 701},
	20007: {kind: 'm', elem: 20006},
	20008: {kind: 'c', attrs: []uint32{1184, 600, 603, 602, 604, 628, 718, 869, 650, 829, 774, 1560, 1562, 3614, 142, 19, 26, 18, 20006}},
	20009: {kind: 'd', elem: 603},
	20010: {kind: 'a', elem: 20009},
	20011: {kind: 'a', elem: 20008},
}}

// fuzzOIDs are the types FuzzCanonicalWriter reads its bytes as.
var fuzzOIDs = []uint32{20000, 20001, 20002, 20003, 20004, 20005, 1185, 1021, 1022, 3911, 4534, 6153, 3910,
	1186, 1083, 1266, 1114, 1184, 1082, 1700, 16, 21, 23, 20, 17, 2950, 3802, 114, 25, 700, 701, 1187, 1231,
	20006, 20007, 20008, 20009, 20010, 20011, 600, 601, 602, 603, 604, 628, 718, 869, 650, 829, 774, 1560, 1562,
	3614, 142, 19, 26, 18, 1020, 1017, 3904, 3906, 4451, 4532, 3905, 6150, 3643, 1041}

// fuzzPick returns the pick FuzzCanonicalWriter reads as type oid.
func fuzzPick(oid uint32) uint8 {
	for i, o := range fuzzOIDs {
		if o == oid {
			return uint8(i)
		}
	}
	panic("no fuzz type " + strconv.FormatUint(uint64(oid), 10))
}

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
	// The geometric, network, bit string and tsvector types, user ranges
	// and multiranges, box arrays (';'), and a composite of them.
	f8 := func(b []byte, v float64) []byte { return binary.BigEndian.AppendUint64(b, math.Float64bits(v)) }
	point := f8(f8(nil, 0.1), math.NaN())
	box := f8(f8(f8(f8(nil, 1), 2), 0.1), math.Copysign(0, -1))
	path := be32(append([]byte{1}, 0, 0, 0, 0)[:1], 2)
	path = append(append(path, point...), point...)
	polygon := append(be32(nil, 1), point...)
	inet4 := []byte{pgsqlAFInet, 24, 0, 4, 192, 168, 0, 1}
	inet6 := append([]byte{pgsqlAFInet6, 64, 1, 16}, make([]byte, 16)...)
	bits := []byte{0, 0, 0, 5, 0xA8}
	tsv := be32(nil, 2)
	tsv = append(tsv, `it's\`...)
	tsv = append(tsv, 0, 0, 2, 0xC0, 1, 0, 7)
	tsv = append(tsv, 'z', 0, 0, 0)
	rng := []byte{rangeLBInc}
	rng = append(be32(rng, 8), f8(nil, 0.1)...)
	rng = append(be32(rng, 8), f8(nil, 1e-300)...)
	multi := append(be32(be32(nil, 1), uint32(len(rng))), rng...)
	var boxes []byte
	boxes = be32(be32(be32(boxes, 1), 0), 20009)
	boxes = be32(be32(boxes, 2), 1)
	boxes = append(be32(boxes, uint32(len(box))), box...)
	boxes = append(be32(boxes, uint32(len(box))), box...)
	var geo []byte
	geo = be32(geo, 19)
	for _, a := range []struct {
		oid uint32
		v   []byte
	}{
		{1184, make([]byte, 8)}, {600, point}, {603, box}, {602, path}, {604, polygon}, {628, f8(point, 1)}, {718, f8(point, 2)},
		{869, inet4}, {650, inet6}, {829, make([]byte, 6)}, {774, make([]byte, 8)}, {1560, bits}, {1562, bits}, {3614, tsv},
		{142, []byte("<a/>")}, {19, []byte("n")}, {26, be32(nil, 42)}, {18, []byte{0xE9}}, {20006, rng},
	} {
		geo = append(be32(be32(geo, a.oid), uint32(len(a.v))), a.v...)
	}
	f.Add(fuzzPick(600), point)
	f.Add(fuzzPick(603), box)
	f.Add(fuzzPick(602), path)
	f.Add(fuzzPick(604), polygon)
	f.Add(fuzzPick(869), inet4)
	f.Add(fuzzPick(650), inet6)
	f.Add(fuzzPick(1562), bits)
	f.Add(fuzzPick(3614), tsv)
	f.Add(fuzzPick(20006), rng)
	f.Add(fuzzPick(20007), multi)
	f.Add(fuzzPick(20010), boxes)
	f.Add(fuzzPick(20008), geo)
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
