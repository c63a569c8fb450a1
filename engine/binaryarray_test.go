package engine

import (
	"bytes"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestBinaryArrayEncoding: a binaryArray reaches pgx's encoder byte for
// byte in the binary format, for a type pgx knows (timestamptz[]) and one it
// does not (a user type's array, OID 99999), and fails in the text format;
// AcceptBinaryArrays installs its hook once however often it is called.
func TestBinaryArrayEncoding(t *testing.T) {
	m := pgtype.NewMap()
	before := len(m.TryWrapEncodePlanFuncs)
	AcceptBinaryArrays(m)
	AcceptBinaryArrays(m)
	if got := len(m.TryWrapEncodePlanFuncs); got != before+1 {
		t.Fatalf("hooks: %d, want %d", got, before+1)
	}
	elem := []byte{0, 0, 0, 0, 0, 0, 0, 42}
	cases := []struct {
		name  string
		oid   uint32
		elems [][]byte
		want  []byte
	}{
		{"timestamptz[] with a NULL", 1185, [][]byte{elem, nil, {}}, cat(
			be(1), be(1), be(1184), be(3), be(1),
			be(8), elem, be(0xFFFFFFFF), be(0))},
		{"unknown array type", 99999, [][]byte{elem}, cat(
			be(1), be(0), be(1184), be(1), be(1), be(8), elem)},
		{"empty", 1185, nil, cat(be(0), be(0), be(1184))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newBinaryArray(1184, c.elems)
			got, err := m.Encode(c.oid, pgtype.BinaryFormatCode, a, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("encoded %x, want %x", got, c.want)
			}
			if _, err := m.Encode(c.oid, pgtype.TextFormatCode, a, nil); !errors.Is(err, errBinaryArrayText) {
				t.Fatalf("text format: %v, want %v", err, errBinaryArrayText)
			}
		})
	}
	// Without the hook pgx cannot encode it at all.
	if _, err := pgtype.NewMap().Encode(1185, pgtype.BinaryFormatCode, newBinaryArray(1184, [][]byte{elem}), nil); err == nil {
		t.Fatal("a map without the hook encoded a binaryArray")
	}
}

func be(n uint32) []byte { return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)} }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
