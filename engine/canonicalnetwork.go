package engine

import (
	"encoding/hex"
	"strconv"
)

// The network types' text depends on no setting; pgshard writes it from
// their binary form so that a composite or array holding one beside a
// value whose text does (a timestamptz, a float) is written whole.

// The address families of inet_send's first byte (utils/inet.h).
const (
	pgsqlAFInet  = 2
	pgsqlAFInet6 = 3
)

// appendCanonicalInet appends the canonical text of v, an inet or cidr in
// inet_send's layout (family, prefix length, is-cidr flag, address size,
// address): the whole address (IPv4 dotted, IPv6 as eight hex groups)
// and its prefix length, which inet_in and cidr_in read back as the same
// value.
func appendCanonicalInet(buf []byte, v []byte) ([]byte, error) {
	if len(v) < 4 {
		return nil, errMalformed("inet")
	}
	family, bits, nb := v[0], int(v[1]), int(v[3])
	addr := v[4:]
	switch {
	case family == pgsqlAFInet && nb == 4 && len(addr) == 4 && bits <= 32:
		for i, b := range addr {
			if i > 0 {
				buf = append(buf, '.')
			}
			buf = strconv.AppendInt(buf, int64(b), 10)
		}
	case family == pgsqlAFInet6 && nb == 16 && len(addr) == 16 && bits <= 128:
		for i := 0; i < 16; i += 2 {
			if i > 0 {
				buf = append(buf, ':')
			}
			buf = strconv.AppendUint(buf, uint64(addr[i])<<8|uint64(addr[i+1]), 16)
		}
	default:
		return nil, errMalformed("inet")
	}
	buf = append(buf, '/')
	return strconv.AppendInt(buf, int64(bits), 10), nil
}

// appendCanonicalMacaddr appends v, a macaddr (6 bytes) or macaddr8 (8),
// as colon-separated hex pairs.
func appendCanonicalMacaddr(buf []byte, v []byte, size int) ([]byte, error) {
	if len(v) != size {
		return nil, errMalformed("macaddr")
	}
	for i := range v {
		if i > 0 {
			buf = append(buf, ':')
		}
		buf = hex.AppendEncode(buf, v[i:i+1])
	}
	return buf, nil
}
