package engine

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/internal/sqlerr"
)

// SessionColumn is how CopyCursor.SessionRows returns one column of its
// rows.
type SessionColumn int8

const (
	// SessionText is the session's text of the value, as a string: exact
	// only for types whose text no session setting changes.
	SessionText SessionColumn = iota
	// SessionDecoded is the value read in binary and decoded by pgx to a
	// Go value (time.Time, int64, ...; infinity as its text).
	SessionDecoded
	// SessionRaw is the value read in binary, its bytes as they came
	// ([]byte), for pgshard to write the canonical text of.
	SessionRaw
)

// copyDefaults is how the columns a COPY FROM leaves out to pgshard
// (Plan.Copy.DefaultsSQL) travel from the session to the shards, exactly
// as the values of an INSERT ... SELECT do (exactTransport): a type pgx
// knows is read in binary and encoded again by pgx; a type it does not
// know (a user composite, array, domain or enum; a built-in array of
// timestamptz ...) is read in binary and written as pgshard's canonical
// text (canonicalWriter), which reads back as the same value under any
// settings; any other type as the session's text, refused (0A000) where
// that text would not read back as the same value (checkTextTransport).
// It is decided once per CopyWriter, on its first rows.
type copyDefaults struct {
	formats []SessionColumn
	// types are the columns' types, for the canonical text of SessionRaw
	// columns.
	types []uint32
	w     canonicalWriter
}

// newCopyDefaults decides how each of types (the columns left out) travels,
// asking the session's metadata connection for the descriptions of the
// types pgx does not know and for its user types.
func newCopyDefaults(ctx context.Context, vc Cursor, known func(uint32) bool, types []uint32) (*copyDefaults, error) {
	d := &copyDefaults{formats: make([]SessionColumn, len(types)), types: types, w: canonicalWriter{st: builtinTypes}}
	var refs []TypeRef
	var at []int
	for j, typ := range types {
		if known(typ) {
			d.formats[j] = SessionDecoded
			continue
		}
		refs = append(refs, TypeRef{OID: typ, Typmod: -1})
		at = append(at, j)
	}
	if len(refs) == 0 {
		return d, nil
	}
	err := vc.OnSession(ctx, func(conn *pgx.Conn) error {
		infos, err := vc.ResultTypes().Infos(ctx, conn, refs)
		if err != nil {
			return err
		}
		exact := make([]bool, len(refs))
		for k, ref := range refs {
			if infos[k].Send == "" {
				continue // a binary output pgshard does not know
			}
			switch {
			case canonicalBuiltinTypes[ref.OID] || carriableScalars[ref.OID] || builtinArrayElems[ref.OID] != 0:
				exact[k] = true
			case ref.OID >= firstNormalOID:
				if d.w.st == builtinTypes {
					if d.w.st, err = serverTypesOf(ctx, conn); err != nil {
						return err
					}
				}
				exact[k] = d.w.st.canonical(ref.OID)
			}
			if exact[k] {
				d.formats[at[k]] = SessionRaw
			}
		}
		return checkTextTransport(ctx, conn, infos, exact)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// canonicalize replaces, in row (the values of the columns left out, in
// order), each SessionRaw value by its canonical text.
func (d *copyDefaults) canonicalize(row []any) error {
	for j, f := range d.formats {
		if f != SessionRaw || row[j] == nil {
			continue
		}
		raw, ok := row[j].([]byte)
		if !ok {
			return sqlerr.New(sqlerr.InternalError, "computing column defaults: a binary value came as a %T", row[j])
		}
		text, err := d.w.value(nil, d.types[j], raw, 0)
		if err != nil {
			return err
		}
		row[j] = string(text)
	}
	return nil
}
