package planner

import (
	"strconv"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Scanning literal INSERTs: a bulk loader's statement, INSERT INTO t [(cols)]
// VALUES (row), (row), ... of plain constants, is read by a small scanner
// rather than parsed: it finds where each row starts and ends and the
// shard key's constant in each row, and the rows then reach their shards
// as the application wrote them (planLiteralInsert). Parsing and deparsing
// such a statement through pg_query took most of a bulk load's time.
//
// The scanner accepts a strict subset of PostgreSQL's syntax and declines
// (returns ok false) anything outside it, which is then parsed as any
// statement is:
//
//	statement := ws INSERT ws INTO ws name [ '.' name ] ws [ '(' name { ',' name } ')' ]
//	             ws VALUES ws row { ws ',' ws row } ws [ ';' ws ]
//	row       := '(' ws item { ws ',' ws item } ws ')'
//	item      := constant { ws '::' type }  |  '-' number
//	constant  := number | string | NULL | TRUE | FALSE   (keywords in any case)
//	number    := digits [ '.' [ digits ] ] [ exponent ]  |  '.' digits [ exponent ]
//	string    := "'" { any byte but "'" and '\', or "''" } "'"
//	type      := words, '.', and parenthesised or bracketed digits (a type
//	             name such as numeric(4,2), timestamp with time zone, int[])
//	ws        := { ' ' | '\t' | '\n' | '\r' | '\f' }
//	name      := an unquoted identifier or a "quoted" one without U&
//
// Declined: comments, E'', B'', X'', U&'' and dollar-quoted strings, a
// backslash in a string (its meaning depends on standard_conforming_strings),
// a string continued on the next line, PostgreSQL 16's 0x10 and 1_000,
// parameters, DEFAULT, function calls, operators (but a leading minus),
// subqueries, ON CONFLICT, RETURNING, WITH, several statements, text that
// is not valid UTF-8. A type suffix is checked by pg_query itself, once per
// distinct suffix: it must parse as nothing but casts (see castChain).

// scannedInsert is what the scanner found in an INSERT's text.
type scannedInsert struct {
	// rowsStart is the offset of the first row's '(' and rowsEnd the one
	// just past the last row's ')'.
	rowsStart, rowsEnd int
	// first is the first row (scanInsertHead).
	first rowSpan
	// rows holds where each row is (scanRows).
	rows []rowSpan
	// width is the number of items in every row.
	width int
	// schema (empty when not written) and table are the target's names,
	// as PostgreSQL reads them (identifier).
	schema, table string
}

// rowSpan is where a row is in the statement's text: sql[start:end].
type rowSpan struct{ start, end int }

// literal kinds of scanned items.
const (
	litNumber = iota + 1
	litNegative
	litString
	litNull
	litTrue
	litFalse
)

// scannedItem is one item of a row: a constant of kind (lit*) whose text
// is sql[start:end], followed by the cast suffix sql[end:castEnd] (empty
// when none).
type scannedItem struct {
	kind              int
	start, end        int
	castEnd           int
	hasCast, escapedQ bool // escapedQ: a string holding ''
}

// cast returns the item's cast suffix as written ("::int"), or "".
func (it scannedItem) cast(sql string) string { return sql[it.end:it.castEnd] }

// scanInsertHead scans sql as an INSERT of literal rows (the grammar
// above) up to the end of its first row, which it checks; ok is false
// when sql is not of that form so far. scanRows scans the rows.
func scanInsertHead(sql string) (s scannedInsert, ok bool) {
	i := skipWS(sql, 0)
	var good bool
	if i, good = scanKeyword(sql, i, "insert"); !good {
		return s, false
	}
	if i, good = scanKeyword(sql, skipWS(sql, i), "into"); !good {
		return s, false
	}
	start := skipWS(sql, i)
	if i, good = scanName(sql, start); !good {
		return s, false
	}
	s.table = identifier(sql[start:i])
	if i < len(sql) && sql[i] == '.' {
		start = i + 1
		if i, good = scanName(sql, start); !good {
			return s, false
		}
		s.schema, s.table = s.table, identifier(sql[start:i])
	}
	i = skipWS(sql, i)
	if i < len(sql) && sql[i] == '(' {
		for {
			if i, good = scanName(sql, skipWS(sql, i+1)); !good {
				return s, false
			}
			i = skipWS(sql, i)
			if i < len(sql) && sql[i] == ',' {
				continue
			}
			if i >= len(sql) || sql[i] != ')' {
				return s, false
			}
			i = skipWS(sql, i+1)
			break
		}
	}
	if i, good = scanKeyword(sql, i, "values"); !good {
		return s, false
	}
	if !utf8.ValidString(sql) {
		return s, false
	}
	s.rowsStart = skipWS(sql, i)
	end, width, ok := scanRow(sql, s.rowsStart, nil)
	if !ok {
		return s, false
	}
	s.first, s.width = rowSpan{s.rowsStart, end}, width
	return s, true
}

// scanRows scans every row of a statement scanInsertHead accepted, and
// what follows them, calling item for each item of each row (row numbers
// from 0); it stops and reports false when the text leaves the grammar,
// a row's width differs from the first's, or item returns false.
func (s *scannedInsert) scanRows(sql string, item func(row, col int, it scannedItem) bool) bool {
	i := s.rowsStart
	s.rows = make([]rowSpan, 0, s.estimatedRows(sql))
	for {
		row := len(s.rows)
		end, width, ok := scanRow(sql, i, func(col int, it scannedItem) bool { return item(row, col, it) })
		if !ok || width != s.width {
			return false
		}
		s.rows = append(s.rows, rowSpan{i, end})
		s.rowsEnd = end
		i = skipWS(sql, end)
		if i < len(sql) && sql[i] == ',' {
			i = skipWS(sql, i+1)
			continue
		}
		break
	}
	if i < len(sql) && sql[i] == ';' {
		i = skipWS(sql, i+1)
	}
	return i == len(sql)
}

// estimatedRows estimates the number of rows from the first's length.
func (s *scannedInsert) estimatedRows(sql string) int {
	return (len(sql)-s.rowsStart)/(s.first.end-s.first.start+1) + 1
}

// scanRow scans the row whose '(' is at i, calling item (when not nil) for
// each of its items; end is the offset past its ')'.
func scanRow(sql string, i int, item func(col int, it scannedItem) bool) (end, width int, ok bool) {
	if i >= len(sql) || sql[i] != '(' {
		return 0, 0, false
	}
	for next, col := i+1, 0; ; col++ {
		var it scannedItem
		if it, next, ok = scanRowItem(sql, next); !ok {
			return 0, 0, false
		}
		if item != nil && !item(col, it) {
			return 0, 0, false
		}
		if sql[next] == ')' {
			return next + 1, col + 1, true
		}
		next++ // past the ','
	}
}

// scanRowItem scans the item that starts after whitespace at i, inside a
// row, and the whitespace after it; next is the offset of the ',' or ')'
// that ends it.
func scanRowItem(sql string, i int) (it scannedItem, next int, ok bool) {
	i = skipWS(sql, i)
	if i >= len(sql) {
		return it, 0, false
	}
	it.start = i
	switch c := sql[i]; {
	case c == '\'':
		it.kind = litString
		for i++; ; i++ {
			if i >= len(sql) {
				return it, 0, false
			}
			switch sql[i] {
			case '\\', 0:
				return it, 0, false
			case '\'':
				if i+1 < len(sql) && sql[i+1] == '\'' {
					it.escapedQ = true
					i++
					continue
				}
			default:
				continue
			}
			break
		}
		i++
	case c == '-':
		if i+1 >= len(sql) || !(isDigitByte(sql[i+1]) || sql[i+1] == '.') {
			return it, 0, false // "--" (a comment) among others
		}
		it.kind = litNegative
		if i, ok = scanNumber(sql, i+1); !ok {
			return it, 0, false
		}
	case isDigitByte(c) || c == '.':
		it.kind = litNumber
		if i, ok = scanNumber(sql, i); !ok {
			return it, 0, false
		}
	case isIdentStart(c):
		j := i
		for j < len(sql) && isIdentByte(sql[j]) {
			j++
		}
		switch w := sql[i:j]; {
		case strings.EqualFold(w, "null"):
			it.kind = litNull
		case strings.EqualFold(w, "true"):
			it.kind = litTrue
		case strings.EqualFold(w, "false"):
			it.kind = litFalse
		default:
			return it, 0, false
		}
		i = j
	default:
		return it, 0, false
	}
	it.end = i
	i = skipWS(sql, i)
	for i+1 < len(sql) && sql[i] == ':' && sql[i+1] == ':' {
		if it.kind == litNegative {
			return it, 0, false // -5::int is -(5::int)
		}
		if i, ok = scanTypeName(sql, skipWS(sql, i+2)); !ok {
			return it, 0, false
		}
		it.hasCast = true
		it.castEnd = i
		i = skipWS(sql, i)
	}
	if !it.hasCast {
		it.castEnd = it.end
	}
	if i >= len(sql) || (sql[i] != ',' && sql[i] != ')') {
		return it, 0, false
	}
	return it, i, true
}

// scanNumber scans an unsigned numeric constant at i: digits, a decimal
// point, an exponent; it must not run into a letter, digit, '.' or '_'
// (PostgreSQL reads those as errors or as other tokens).
func scanNumber(sql string, i int) (int, bool) {
	digits := 0
	for i < len(sql) && isDigitByte(sql[i]) {
		i++
		digits++
	}
	if i < len(sql) && sql[i] == '.' {
		if i+1 < len(sql) && sql[i+1] == '.' {
			return 0, false // 1..2
		}
		i++
		for i < len(sql) && isDigitByte(sql[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(sql) && (sql[i] == 'e' || sql[i] == 'E') {
		i++
		if i < len(sql) && (sql[i] == '+' || sql[i] == '-') {
			i++
		}
		exp := i
		for i < len(sql) && isDigitByte(sql[i]) {
			i++
		}
		if i == exp {
			return 0, false
		}
	}
	if i < len(sql) && (isIdentByte(sql[i]) || sql[i] == '.') {
		return 0, false
	}
	return i, true
}

// scanTypeName scans a type name after "::": words (unquoted identifiers)
// separated by whitespace or '.', each optionally followed by a
// parenthesised list of integers, then optional [] or [n] array bounds. It
// stops before the ',', ')' or "::" that follows. Which words make a type
// (double precision, timestamp with time zone) pg_query decides: every
// suffix is checked by castChain.
func scanTypeName(sql string, i int) (int, bool) {
	words := 0
	for {
		if i >= len(sql) || !isIdentStart(sql[i]) {
			return 0, false
		}
		for i < len(sql) && isIdentByte(sql[i]) {
			i++
		}
		words++
		j := skipWS(sql, i)
		if j < len(sql) && sql[j] == '(' {
			j = skipWS(sql, j+1)
			for {
				k := j
				for j < len(sql) && isDigitByte(sql[j]) {
					j++
				}
				if j == k {
					return 0, false
				}
				j = skipWS(sql, j)
				if j < len(sql) && sql[j] == ',' {
					j = skipWS(sql, j+1)
					continue
				}
				if j >= len(sql) || sql[j] != ')' {
					return 0, false
				}
				j++
				break
			}
			i = j
			j = skipWS(sql, i)
		}
		switch {
		case j < len(sql) && sql[j] == '.':
			i = skipWS(sql, j+1)
			continue
		case j < len(sql) && isIdentStart(sql[j]) && words < 4:
			i = j
			continue
		}
		break
	}
	for {
		j := skipWS(sql, i)
		if j >= len(sql) || sql[j] != '[' {
			return i, true
		}
		j = skipWS(sql, j+1)
		for j < len(sql) && isDigitByte(sql[j]) {
			j++
		}
		j = skipWS(sql, j)
		if j >= len(sql) || sql[j] != ']' {
			return 0, false
		}
		i = j + 1
	}
}

// scanKeyword scans the keyword kw (lower case) at i, in any case, not
// followed by an identifier byte.
func scanKeyword(sql string, i int, kw string) (int, bool) {
	end := i + len(kw)
	if end > len(sql) || !strings.EqualFold(sql[i:end], kw) || (end < len(sql) && isIdentByte(sql[end])) {
		return 0, false
	}
	return end, true
}

// scanName scans an identifier at i: unquoted, or double-quoted with ""
// for a quote.
func scanName(sql string, i int) (int, bool) {
	if i >= len(sql) {
		return 0, false
	}
	if sql[i] == '"' {
		for i++; i < len(sql); i++ {
			if sql[i] == 0 {
				return 0, false
			}
			if sql[i] == '"' {
				if i+1 < len(sql) && sql[i+1] == '"' {
					i++
					continue
				}
				return i + 1, true
			}
		}
		return 0, false
	}
	if !isIdentStart(sql[i]) {
		return 0, false
	}
	for i < len(sql) && isIdentByte(sql[i]) {
		i++
	}
	if i < len(sql) && (sql[i] == '\'' || sql[i] == '&' || sql[i] == '"') {
		return 0, false
	}
	return i, true
}

// identifier returns the name an identifier scanName accepted denotes: a
// quoted one without its quotes, an unquoted one with its ASCII letters
// in lower case (as PostgreSQL folds them in a multibyte encoding). It
// does not truncate names to 63 bytes as PostgreSQL does: callers only use
// it to look a name up, and a name they do not find is planned the
// ordinary way.
func identifier(text string) string {
	if strings.HasPrefix(text, `"`) {
		return strings.ReplaceAll(text[1:len(text)-1], `""`, `"`)
	}
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, text)
}

// skipWS skips PostgreSQL 15's white space (not \v, which PostgreSQL 16
// added). Comments are not skipped: the grammar declines them.
func skipWS(sql string, i int) int {
	for i < len(sql) {
		switch sql[i] {
		case ' ', '\t', '\n', '\r', '\f':
			i++
		default:
			return i
		}
	}
	return i
}

func isDigitByte(c byte) bool { return '0' <= c && c <= '9' }

// isIdentStart reports whether c starts an unquoted identifier.
func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c >= 0x80
}

// isIdentByte reports whether c continues an unquoted identifier.
func isIdentByte(c byte) bool { return isIdentStart(c) || isDigitByte(c) || c == '$' }

// constScratch holds the nodes constNode fills, made once for all the
// rows of a statement: constValue only reads them.
type constScratch struct {
	n       *pg_query.Node
	c       *pg_query.A_Const
	ival    *pg_query.A_Const_Ival
	fval    *pg_query.A_Const_Fval
	sval    *pg_query.A_Const_Sval
	boolval *pg_query.A_Const_Boolval
}

// node returns the node pg_query's parser makes of the scanned constant
// it (without its casts), valid until the next call: PostgreSQL's lexer
// makes an integer that fits in int4 an Integer, any other number a Float
// of its text, and its grammar folds a leading minus into the constant
// (doNegate).
func (sc *constScratch) node(sql string, it scannedItem) *pg_query.Node {
	if sc.n == nil {
		sc.c = &pg_query.A_Const{}
		sc.n = &pg_query.Node{Node: &pg_query.Node_AConst{AConst: sc.c}}
		sc.ival = &pg_query.A_Const_Ival{Ival: &pg_query.Integer{}}
		sc.fval = &pg_query.A_Const_Fval{Fval: &pg_query.Float{}}
		sc.sval = &pg_query.A_Const_Sval{Sval: &pg_query.String{}}
		sc.boolval = &pg_query.A_Const_Boolval{Boolval: &pg_query.Boolean{}}
	}
	text := sql[it.start:it.end]
	c := sc.c
	c.Isnull, c.Val = false, nil
	switch it.kind {
	case litNull:
		c.Isnull = true
	case litTrue, litFalse:
		sc.boolval.Boolval.Boolval = it.kind == litTrue
		c.Val = sc.boolval
	case litString:
		s := text[1 : len(text)-1]
		if it.escapedQ {
			s = strings.ReplaceAll(s, "''", "'")
		}
		sc.sval.Sval.Sval = s
		c.Val = sc.sval
	case litNumber, litNegative:
		neg := it.kind == litNegative
		if neg {
			text = text[1:]
		}
		if n, err := strconv.ParseInt(text, 10, 32); err == nil {
			if neg {
				n = -n
			}
			sc.ival.Ival.Ival = int32(n)
			c.Val = sc.ival
		} else {
			if neg {
				text = "-" + text
			}
			sc.fval.Fval.Fval = text
			c.Val = sc.fval
		}
	}
	return sc.n
}
