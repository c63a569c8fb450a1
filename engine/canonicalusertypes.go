package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// User types whose text may not read back exactly (they hold a timestamptz
// or a float, at any depth) but whose binary form pgshard can write as
// exact text (canonicalWriter): composites, domains, enums, ranges,
// multiranges and arrays of them, built, at any depth, from
// carriableScalars, the built-in arrays of builtinArrayElems and the
// built-in ranges and multiranges. Their OIDs differ
// from server to server, so each server is asked once which of its types
// these are, and their structure (ServerTypes); a type created later
// travels as text, refused under the settings where its text would not be
// exact (never answered wrongly).

// serverTypesSQL lists the server's user types pgshard may write the
// canonical text of: OID, kind (c composite, d domain, e enum, a array,
// r range, m multirange), a domain's base type, an array's element type,
// a range's subtype or a multirange's range type, and a composite's
// attribute types in order (dropped ones left out, as record_send does).
const serverTypesSQL = `SELECT t.oid, CASE WHEN t.typtype = 'b' THEN 'a' ELSE t.typtype::text END,
	CASE t.typtype WHEN 'd' THEN t.typbasetype
		WHEN 'r' THEN (SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid)
		WHEN 'm' THEN (SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid)
		ELSE t.typelem END,
	coalesce((SELECT string_agg(a.atttypid::text, ',' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
		WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '')
FROM pg_catalog.pg_type t
WHERE t.oid >= 16384 AND (t.typtype IN ('c', 'd', 'e', 'r', 'm')
	OR (t.typtype = 'b' AND t.typelem <> 0 AND t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc))`

// userType is the structure of one user type of a server.
type userType struct {
	kind  byte     // 'c' composite, 'd' domain, 'e' enum, 'a' array, 'r' range, 'm' multirange
	elem  uint32   // a domain's base type, an array's element type, a range's subtype, a multirange's range type
	attrs []uint32 // a composite's attribute types
}

// ServerTypes is one server's user types whose binary form pgshard writes
// as canonical text (user, by OID), and the result formats that ask for
// them, and for binaryTypes and canonicalBuiltinTypes, in binary. It is
// immutable once made.
type ServerTypes struct {
	user    map[uint32]userType
	formats pgx.QueryResultFormatsByOID
}

// serverTypeCache holds the ServerTypes of each server (host, port and
// database), asked once. It is safe for concurrent use.
var serverTypeCache struct {
	sync.Mutex
	m map[string]*ServerTypes
}

// serverTypesOf returns conn's server's ServerTypes, asking it the first
// time.
func serverTypesOf(ctx context.Context, conn *pgx.Conn) (*ServerTypes, error) {
	cfg := conn.Config()
	key := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	serverTypeCache.Lock()
	st := serverTypeCache.m[key]
	serverTypeCache.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := loadServerTypes(ctx, conn)
	if err != nil {
		return nil, err
	}
	serverTypeCache.Lock()
	if serverTypeCache.m == nil {
		serverTypeCache.m = map[string]*ServerTypes{}
	}
	serverTypeCache.m[key] = st
	serverTypeCache.Unlock()
	return st, nil
}

// loadServerTypes asks conn's server for its user types (serverTypesSQL)
// and keeps those canonicalWriter can write: each built, at any depth,
// only of types it writes.
func loadServerTypes(ctx context.Context, conn *pgx.Conn) (*ServerTypes, error) {
	all := map[uint32]userType{}
	rows, err := conn.Query(ctx, serverTypesSQL, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, fmt.Errorf("pgshard: listing user types: %w", err)
	}
	for rows.Next() {
		var oid, elem uint32
		var kind, attrs string
		if err := rows.Scan(&oid, &kind, &elem, &attrs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgshard: listing user types: %w", err)
		}
		ut := userType{kind: kind[0], elem: elem}
		if attrs != "" {
			for _, a := range strings.Split(attrs, ",") {
				n, err := strconv.ParseUint(a, 10, 32)
				if err != nil {
					rows.Close()
					return nil, fmt.Errorf("pgshard: listing user types: attribute type %q: %w", a, err)
				}
				ut.attrs = append(ut.attrs, uint32(n))
			}
		}
		all[oid] = ut
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgshard: listing user types: %w", err)
	}
	st := &ServerTypes{user: carriableUserTypes(all), formats: pgx.QueryResultFormatsByOID{}}
	for oid, f := range canonicalTransport {
		st.formats[oid] = f
	}
	for oid := range st.user {
		st.formats[oid] = pgx.BinaryFormatCode
	}
	return st, nil
}

// carriableUserTypes returns the types of all that canonicalWriter can
// write: an enum; a domain whose base type, an array whose element type,
// a composite all of whose attribute types it can write (a built-in one,
// or one of these).
func carriableUserTypes(all map[uint32]userType) map[uint32]userType {
	ok := map[uint32]userType{}
	builtin := func(oid uint32) bool {
		_, arr := builtinArrayElems[oid]
		_, rng := builtinRanges[oid]
		_, multi := builtinMultiranges[oid]
		return carriableScalars[oid] || arr || rng || multi
	}
	known := func(oid uint32) bool {
		_, u := ok[oid]
		return u || builtin(oid)
	}
	// Each pass adds the types whose parts the passes before admitted; a
	// type nests at most maxCanonicalDepth deep.
	for changed := true; changed; {
		changed = false
		for oid, ut := range all {
			if _, done := ok[oid]; done {
				continue
			}
			fits := true
			switch ut.kind {
			case 'e':
			case 'd', 'a', 'r', 'm':
				fits = known(ut.elem)
			case 'c':
				for _, a := range ut.attrs {
					fits = fits && known(a)
				}
			default:
				fits = false
			}
			if fits {
				ok[oid] = ut
				changed = true
			}
		}
	}
	return ok
}

// canonical reports whether values of type oid, read in binary, are
// written as canonical text (canonicalColumn).
func (st *ServerTypes) canonical(oid uint32) bool {
	if canonicalBuiltinTypes[oid] {
		return true
	}
	_, ok := st.user[oid]
	return ok
}

// canonicalColumn replaces each value of col, of type oid in its binary
// format (a type st.canonical reports), by its canonical text.
func (st *ServerTypes) canonicalColumn(oid uint32, col [][]byte) error {
	w := canonicalWriter{st: st}
	var arena valueArena
	var buf []byte
	for i, raw := range col {
		if raw == nil {
			continue
		}
		var err error
		if buf, err = w.value(buf[:0], oid, raw, 0); err != nil {
			return err
		}
		col[i] = arena.copy(buf)
	}
	return nil
}

// appendCanonicalDate appends a date in its binary format (days since
// 2000-01-01) as ISO text, year first, which every DateStyle reads back.
func appendCanonicalDate(buf []byte, v []byte) ([]byte, error) {
	if len(v) != 4 {
		return nil, sqlerr.New(sqlerr.InternalError, "pgshard: malformed date from a server")
	}
	days := int32(binary.BigEndian.Uint32(v))
	switch days {
	case math.MaxInt32:
		return append(buf, "infinity"...), nil
	case math.MinInt32:
		return append(buf, "-infinity"...), nil
	}
	t := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(days))
	year := t.Year()
	bc := year <= 0
	if bc {
		year = 1 - year
	}
	buf = appendPadded(buf, year, 4)
	buf = append(buf, '-')
	buf = appendPadded(buf, int(t.Month()), 2)
	buf = append(buf, '-')
	buf = appendPadded(buf, t.Day(), 2)
	if bc {
		buf = append(buf, " BC"...)
	}
	return buf, nil
}

// appendCanonicalNumeric appends a numeric in its binary format (numeric_send:
// ndigits, weight, sign, dscale, base-10000 digits) as numeric_out prints it.
func appendCanonicalNumeric(buf []byte, v []byte) ([]byte, error) {
	bad := sqlerr.New(sqlerr.InternalError, "pgshard: malformed numeric from a server")
	if len(v) < 8 {
		return nil, bad
	}
	ndigits := int(binary.BigEndian.Uint16(v))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	dscale := int(binary.BigEndian.Uint16(v[6:]))
	if len(v) != 8+2*ndigits {
		return nil, bad
	}
	switch sign {
	case 0xC000:
		return append(buf, "NaN"...), nil
	case 0xD000:
		return append(buf, "Infinity"...), nil
	case 0xF000:
		return append(buf, "-Infinity"...), nil
	case 0x4000:
		buf = append(buf, '-')
	case 0x0000:
	default:
		return nil, bad
	}
	// group g is 10000^g's digit: digits[weight-g].
	group := func(g int) int {
		if i := weight - g; i >= 0 && i < ndigits {
			return int(binary.BigEndian.Uint16(v[8+2*i:]))
		}
		return 0
	}
	if weight < 0 {
		buf = append(buf, '0')
	} else {
		buf = strconv.AppendInt(buf, int64(group(weight)), 10)
		for g := weight - 1; g >= 0; g-- {
			buf = appendPadded(buf, group(g), 4)
		}
	}
	if dscale > 0 {
		buf = append(buf, '.')
		start := len(buf)
		for g := -1; len(buf)-start < dscale; g-- {
			buf = appendPadded(buf, group(g), 4)
		}
		buf = buf[:start+dscale]
	}
	return buf, nil
}
