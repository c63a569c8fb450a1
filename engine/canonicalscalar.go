package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"time"
)

// pgEpochSeconds is 2000-01-01 00:00 UTC, PostgreSQL's timestamp epoch, in
// seconds since the Unix epoch.
const pgEpochSeconds = 946684800

// appendCanonicalScalar appends the canonical text of v, a value of oid (one
// of carriableScalars) in its binary format: text its input function reads
// back as the same value under any DateStyle, TimeZone, IntervalStyle,
// extra_float_digits or bytea_output. A v whose length or content does
// not fit the type gives an error.
func appendCanonicalScalar(buf []byte, oid uint32, v []byte) ([]byte, error) {
	switch oid {
	case 1184, 1114: // timestamptz, timestamp: microseconds since 2000-01-01
		if len(v) != 8 {
			return nil, errMalformed("timestamp")
		}
		return appendCanonicalInstant(buf, int64(binary.BigEndian.Uint64(v)), oid == 1184), nil
	case 1082:
		if len(v) != 4 {
			return nil, errMalformed("date")
		}
		return appendCanonicalDate(buf, v)
	case 1083: // time: microseconds since midnight
		if len(v) != 8 {
			return nil, errMalformed("time")
		}
		return appendTimeOfDay(buf, int64(binary.BigEndian.Uint64(v)))
	case 1266: // timetz: microseconds since midnight, then seconds west of UTC
		if len(v) != 12 {
			return nil, errMalformed("timetz")
		}
		buf, err := appendTimeOfDay(buf, int64(binary.BigEndian.Uint64(v)))
		if err != nil {
			return nil, err
		}
		return appendOffset(buf, -int64(int32(binary.BigEndian.Uint32(v[8:])))), nil
	case 1186:
		if len(v) != 16 {
			return nil, errMalformed("interval")
		}
		return appendCanonicalInterval(buf, int64(binary.BigEndian.Uint64(v)), int32(binary.BigEndian.Uint32(v[8:])), int32(binary.BigEndian.Uint32(v[12:]))), nil
	case 700:
		if len(v) != 4 {
			return nil, errMalformed("float4")
		}
		return appendFloat(buf, float64(math.Float32frombits(binary.BigEndian.Uint32(v))), 32), nil
	case 701:
		if len(v) != 8 {
			return nil, errMalformed("float8")
		}
		return appendFloat(buf, math.Float64frombits(binary.BigEndian.Uint64(v)), 64), nil
	case 1700:
		return appendCanonicalNumeric(buf, v)
	case 16:
		if len(v) != 1 || v[0] > 1 {
			return nil, errMalformed("bool")
		}
		return append(buf, "ft"[v[0]]), nil
	case 21:
		if len(v) != 2 {
			return nil, errMalformed("int2")
		}
		return strconv.AppendInt(buf, int64(int16(binary.BigEndian.Uint16(v))), 10), nil
	case 23:
		if len(v) != 4 {
			return nil, errMalformed("int4")
		}
		return strconv.AppendInt(buf, int64(int32(binary.BigEndian.Uint32(v))), 10), nil
	case 20:
		if len(v) != 8 {
			return nil, errMalformed("int8")
		}
		return strconv.AppendInt(buf, int64(binary.BigEndian.Uint64(v)), 10), nil
	case 17: // bytea in hex, which bytea_in reads under either bytea_output
		buf = append(buf, `\x`...)
		return hex.AppendEncode(buf, v), nil
	case 2950:
		if len(v) != 16 {
			return nil, errMalformed("uuid")
		}
		for i, c := range v {
			if i == 4 || i == 6 || i == 8 || i == 10 {
				buf = append(buf, '-')
			}
			buf = hex.AppendEncode(buf, []byte{c})
		}
		return buf, nil
	case 3802: // jsonb: a version byte, then its text
		if len(v) < 1 || v[0] != 1 {
			return nil, errMalformed("jsonb version")
		}
		return append(buf, v[1:]...), nil
	case 25, 1043, 1042, 114, 19, 142: // text, varchar, bpchar, json, name, xml: their text
		return append(buf, v...), nil
	case 26: // oid
		if len(v) != 4 {
			return nil, errMalformed("oid")
		}
		return strconv.AppendUint(buf, uint64(binary.BigEndian.Uint32(v)), 10), nil
	case 18: // "char": one byte; charin reads \ooo as a byte, "" as 0
		if len(v) != 1 {
			return nil, errMalformed(`"char"`)
		}
		switch c := v[0]; {
		case c == 0:
			return buf, nil
		case c >= 0x80:
			return append(buf, '\\', '0'+c>>6, '0'+c>>3&7, '0'+c&7), nil
		default:
			return append(buf, c), nil
		}
	case 1560, 1562: // bit, varbit: the bit count, then the bits
		return appendCanonicalBits(buf, v)
	case 3614:
		return appendCanonicalTsvector(buf, v)
	case 869, 650: // inet, cidr
		return appendCanonicalInet(buf, v)
	case 829:
		return appendCanonicalMacaddr(buf, v, 6)
	case 774:
		return appendCanonicalMacaddr(buf, v, 8)
	case 600, 601, 602, 603, 604, 628, 718:
		return appendCanonicalGeometry(buf, oid, v)
	}
	return nil, errMalformed("no canonical text for type " + strconv.FormatUint(uint64(oid), 10))
}

// appendCanonicalInstant appends us, microseconds since 2000-01-01 (UTC for
// a timestamptz, zone set), in ISO form: year first, which no DateStyle
// field order changes, with a numeric offset (+00) for a timestamptz, BC
// after, and the infinities by name.
func appendCanonicalInstant(buf []byte, us int64, zone bool) []byte {
	switch us {
	case math.MaxInt64:
		return append(buf, "infinity"...)
	case math.MinInt64:
		return append(buf, "-infinity"...)
	}
	secs, micros := us/1000000, us%1000000
	if micros < 0 {
		secs, micros = secs-1, micros+1000000
	}
	t := time.Unix(secs+pgEpochSeconds, micros*1000).UTC()
	year := t.Year()
	bc := year <= 0
	if bc {
		year = 1 - year // Go's year 0 is 1 BC
	}
	buf = appendPadded(buf, year, 4)
	buf = append(buf, '-')
	buf = appendPadded(buf, int(t.Month()), 2)
	buf = append(buf, '-')
	buf = appendPadded(buf, t.Day(), 2)
	buf = append(buf, ' ')
	buf = appendPadded(buf, t.Hour(), 2)
	buf = append(buf, ':')
	buf = appendPadded(buf, t.Minute(), 2)
	buf = append(buf, ':')
	buf = appendPadded(buf, t.Second(), 2)
	buf = append(buf, '.')
	buf = appendPadded(buf, t.Nanosecond()/1000, 6)
	if zone {
		buf = append(buf, "+00"...)
	}
	if bc {
		buf = append(buf, " BC"...)
	}
	return buf
}

// appendTimeOfDay appends us, microseconds since midnight (24:00:00 at
// most), as hh:mm:ss.ffffff.
func appendTimeOfDay(buf []byte, us int64) ([]byte, error) {
	if us < 0 || us > 24*3600*1000000 {
		return nil, errMalformed("time of day")
	}
	buf = appendPadded(buf, int(us/3600000000), 2)
	buf = append(buf, ':')
	buf = appendPadded(buf, int(us/60000000%60), 2)
	buf = append(buf, ':')
	buf = appendPadded(buf, int(us/1000000%60), 2)
	buf = append(buf, '.')
	return appendPadded(buf, int(us%1000000), 6), nil
}

// appendOffset appends a UTC offset of east seconds as ±hh:mm:ss.
func appendOffset(buf []byte, east int64) []byte {
	if east < 0 {
		buf, east = append(buf, '-'), -east
	} else {
		buf = append(buf, '+')
	}
	buf = appendPadded(buf, int(east/3600), 2)
	buf = append(buf, ':')
	buf = appendPadded(buf, int(east/60%60), 2)
	buf = append(buf, ':')
	return appendPadded(buf, int(east%60), 2)
}

// appendCanonicalInterval appends an interval (microseconds, days and
// months, interval_send's fields) in ISO 8601 form with designators,
// each field with its own sign (P1Y-2M3DT-4H-5M-6.5S): interval_in reads
// this form the same under every IntervalStyle (sql_standard's sign
// rule applies to its own form only), and each field back exactly.
func appendCanonicalInterval(buf []byte, us int64, days, months int32) []byte {
	buf = append(buf, 'P')
	buf = strconv.AppendInt(buf, int64(months/12), 10)
	buf = append(buf, 'Y')
	buf = strconv.AppendInt(buf, int64(months%12), 10)
	buf = append(buf, 'M')
	buf = strconv.AppendInt(buf, int64(days), 10)
	buf = append(buf, "DT"...)
	buf = strconv.AppendInt(buf, us/3600000000, 10)
	buf = append(buf, 'H')
	buf = strconv.AppendInt(buf, us/60000000%60, 10)
	buf = append(buf, 'M')
	rest := us % 60000000
	if rest < 0 {
		buf, rest = append(buf, '-'), -rest
	}
	buf = strconv.AppendInt(buf, rest/1000000, 10)
	buf = append(buf, '.')
	buf = appendPadded(buf, int(rest%1000000), 6)
	return append(buf, 'S')
}

// appendFloat appends f as float4in/float8in read it back bit for bit.
func appendFloat(buf []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(f, -1):
		return append(buf, "-Infinity"...)
	}
	return strconv.AppendFloat(buf, f, 'g', -1, bits)
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(buf []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		buf = append(buf, '0')
	}
	return append(buf, s...)
}

// appendCanonicalBits appends v, a bit or varbit in bit_send's layout (the
// number of bits, then the bits, first one highest, padded with zeros to
// a whole byte), as its 0s and 1s.
func appendCanonicalBits(buf []byte, v []byte) ([]byte, error) {
	if len(v) < 4 {
		return nil, errMalformed("bit string")
	}
	n := int32(binary.BigEndian.Uint32(v))
	bits := v[4:]
	if n < 0 || int64(len(bits)) != (int64(n)+7)/8 {
		return nil, errMalformed("bit string")
	}
	for i := 0; i < int(n); i++ {
		buf = append(buf, '0'+bits[i/8]>>(7-i%8)&1)
	}
	return buf, nil
}

// appendCanonicalTsvector appends v, a tsvector in tsvectorsend's layout
// (the number of lexemes; each lexeme's text ended by a zero byte, its
// number of positions and each position, weight in the top two bits), as
// tsvectorout prints it: each lexeme quoted, quotes doubled and
// backslashes escaped, then its positions and weights (A, B, C; D is
// none).
func appendCanonicalTsvector(buf []byte, v []byte) ([]byte, error) {
	if len(v) < 4 {
		return nil, errMalformed("tsvector")
	}
	n := int32(binary.BigEndian.Uint32(v))
	rest := v[4:]
	if n < 0 || int(n) > len(rest)/3 {
		return nil, errMalformed("tsvector")
	}
	for i := 0; i < int(n); i++ {
		if i > 0 {
			buf = append(buf, ' ')
		}
		end := bytes.IndexByte(rest, 0)
		if end < 0 || len(rest) < end+3 {
			return nil, errMalformed("tsvector lexeme")
		}
		buf = append(buf, '\'')
		for _, c := range rest[:end] {
			switch c {
			case '\'':
				buf = append(buf, '\'')
			case '\\':
				buf = append(buf, '\\')
			}
			buf = append(buf, c)
		}
		buf = append(buf, '\'')
		npos := int(binary.BigEndian.Uint16(rest[end+1:]))
		rest = rest[end+3:]
		if len(rest) < 2*npos {
			return nil, errMalformed("tsvector positions")
		}
		for j := 0; j < npos; j++ {
			wep := binary.BigEndian.Uint16(rest[2*j:])
			if j == 0 {
				buf = append(buf, ':')
			} else {
				buf = append(buf, ',')
			}
			buf = strconv.AppendUint(buf, uint64(wep&0x3fff), 10)
			if w := wep >> 14; w > 0 {
				buf = append(buf, "DCBA"[w])
			}
		}
		rest = rest[2*npos:]
	}
	if len(rest) != 0 {
		return nil, errMalformed("trailing bytes")
	}
	return buf, nil
}
