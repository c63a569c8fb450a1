package engine

import (
	"encoding/binary"
	"math"
)

// The geometric types (point, lseg, box, path, polygon, line, circle) are
// made of float8s, which PostgreSQL prints with as many digits as
// extra_float_digits asks: below 1, fewer than the value needs, so their
// text does not read back as the same value. pgshard writes them from
// their binary form (the float8s in order, after a path's closed flag and
// a path's or polygon's point count) with the shortest digits that read
// back as the same bits (appendFloat), in the form their input functions
// read.

// appendCanonicalGeometry appends the canonical text of v, a value of the
// geometric type oid in its binary format.
func appendCanonicalGeometry(buf []byte, oid uint32, v []byte) ([]byte, error) {
	switch oid {
	case 600: // point: x, y
		if len(v) != 16 {
			return nil, errMalformed("point")
		}
		return appendPoint(buf, v), nil
	case 601: // lseg: two points
		if len(v) != 32 {
			return nil, errMalformed("lseg")
		}
		buf = append(buf, '[')
		buf = appendPoints(buf, v)
		return append(buf, ']'), nil
	case 603: // box: its high corner, then its low corner
		if len(v) != 32 {
			return nil, errMalformed("box")
		}
		return appendPoints(buf, v), nil
	case 602: // path: closed flag, point count, points
		if len(v) < 5 || v[0] > 1 {
			return nil, errMalformed("path")
		}
		pts, err := geometryPoints(v[1:], "path")
		if err != nil {
			return nil, err
		}
		open, closing := byte('['), byte(']')
		if v[0] == 1 {
			open, closing = '(', ')'
		}
		buf = append(buf, open)
		buf = appendPoints(buf, pts)
		return append(buf, closing), nil
	case 604: // polygon: point count, points (its bounding box is derived)
		pts, err := geometryPoints(v, "polygon")
		if err != nil {
			return nil, err
		}
		buf = append(buf, '(')
		buf = appendPoints(buf, pts)
		return append(buf, ')'), nil
	case 628: // line: A, B, C of Ax + By + C = 0
		if len(v) != 24 {
			return nil, errMalformed("line")
		}
		buf = append(buf, '{')
		buf = appendFloat8At(buf, v, 0)
		buf = append(buf, ',')
		buf = appendFloat8At(buf, v, 8)
		buf = append(buf, ',')
		buf = appendFloat8At(buf, v, 16)
		return append(buf, '}'), nil
	case 718: // circle: center, radius
		if len(v) != 24 {
			return nil, errMalformed("circle")
		}
		buf = append(buf, '<')
		buf = appendPoint(buf, v[:16])
		buf = append(buf, ',')
		buf = appendFloat8At(buf, v, 16)
		return append(buf, '>'), nil
	}
	return nil, errMalformed("not a geometric type")
}

// geometryPoints returns the points of v, a point count then that many
// points (path_send's and poly_send's layout after path's flag); there is
// at least one, as their input functions require.
func geometryPoints(v []byte, what string) ([]byte, error) {
	if len(v) < 4 {
		return nil, errMalformed(what)
	}
	n := binary.BigEndian.Uint32(v)
	if n < 1 || uint64(len(v)-4) != 16*uint64(n) {
		return nil, errMalformed(what)
	}
	return v[4:], nil
}

// appendPoints appends pts, points of 16 bytes each, as (x,y),(x,y)...
func appendPoints(buf []byte, pts []byte) []byte {
	for i := 0; i+16 <= len(pts); i += 16 {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendPoint(buf, pts[i:i+16])
	}
	return buf
}

// appendPoint appends p, a point's 16 bytes, as (x,y).
func appendPoint(buf []byte, p []byte) []byte {
	buf = append(buf, '(')
	buf = appendFloat8At(buf, p, 0)
	buf = append(buf, ',')
	buf = appendFloat8At(buf, p, 8)
	return append(buf, ')')
}

// appendFloat8At appends the float8 at v[i:i+8].
func appendFloat8At(buf []byte, v []byte, i int) []byte {
	return appendFloat(buf, math.Float64frombits(binary.BigEndian.Uint64(v[i:])), 64)
}
