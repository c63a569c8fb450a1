package difftest

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Query is one entry of the corpus.
type Query struct {
	// Name identifies the query in reports ("point_literal", "gen_017").
	Name string
	SQL  string
	// Args are the bind parameters ($1, $2, ...).
	Args []any
	// Ordered is true when the query fixes the order of its rows: answers
	// are then compared as ordered lists, otherwise as multisets.
	Ordered bool
}

// LoadCorpus reads a corpus file (see ParseCorpus).
func LoadCorpus(path string) ([]Query, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("difftest: %w", err)
	}
	qs, err := ParseCorpus(string(data))
	if err != nil {
		return nil, fmt.Errorf("difftest: %s: %w", path, err)
	}
	return qs, nil
}

// ParseCorpus parses a corpus: entries introduced by a line
// "-- name: <id>", followed by optional directive lines "-- ordered" and
// "-- args: v1, v2, ..." and then the SQL (up to the next entry; a trailing
// semicolon is dropped). Other "--" comment lines are ignored. Argument
// values are integers (int64), decimals (float64), 'quoted strings', true,
// false, NULL, ts:<RFC 3339 instant> and date:<YYYY-MM-DD> (a Go
// time.Time, the date at midnight UTC), or [a, b, ...] (a Go []int64, or
// []string unless every element is an integer; no commas inside elements).
func ParseCorpus(text string) ([]Query, error) {
	var out []Query
	var cur *Query
	var sqlLines []string
	seen := map[string]bool{}
	flush := func() error {
		if cur == nil {
			return nil
		}
		s := strings.TrimSpace(strings.Join(sqlLines, "\n"))
		s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
		if s == "" {
			return fmt.Errorf("query %s has no SQL", cur.Name)
		}
		cur.SQL = s
		out = append(out, *cur)
		cur, sqlLines = nil, nil
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "--") {
			d := strings.TrimSpace(strings.TrimPrefix(t, "--"))
			switch {
			case strings.HasPrefix(d, "name:"):
				if err := flush(); err != nil {
					return nil, err
				}
				name := strings.TrimSpace(strings.TrimPrefix(d, "name:"))
				if name == "" || seen[name] {
					return nil, fmt.Errorf("line %d: empty or duplicate name %q", line, name)
				}
				seen[name] = true
				cur = &Query{Name: name}
			case d == "ordered" && cur != nil && len(sqlLines) == 0:
				cur.Ordered = true
			case strings.HasPrefix(d, "args:") && cur != nil && len(sqlLines) == 0:
				args, err := parseArgs(strings.TrimSpace(strings.TrimPrefix(d, "args:")))
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", line, err)
				}
				cur.Args = args
			}
			continue
		}
		if cur == nil {
			if t != "" {
				return nil, fmt.Errorf("line %d: SQL outside an entry", line)
			}
			continue
		}
		sqlLines = append(sqlLines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseArgs splits a comma-separated list of argument values; commas inside
// quotes do not split.
func parseArgs(s string) ([]any, error) {
	var out []any
	for s != "" {
		var tok string
		if strings.HasPrefix(s, "[") {
			end := strings.Index(s, "]")
			if end < 0 {
				return nil, fmt.Errorf("unterminated array in args")
			}
			arr, err := parseArray(s[1:end])
			if err != nil {
				return nil, err
			}
			out = append(out, arr)
			s = strings.TrimSpace(s[end+1:])
		} else if strings.HasPrefix(s, "'") {
			end := 1
			var b strings.Builder
			for {
				if end >= len(s) {
					return nil, fmt.Errorf("unterminated string in args")
				}
				if s[end] == '\'' {
					if end+1 < len(s) && s[end+1] == '\'' {
						b.WriteByte('\'')
						end += 2
						continue
					}
					break
				}
				b.WriteByte(s[end])
				end++
			}
			out = append(out, b.String())
			s = strings.TrimSpace(s[end+1:])
		} else {
			tok, s, _ = strings.Cut(s, ",")
			tok = strings.TrimSpace(tok)
			v, err := parseArg(tok)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			s = strings.TrimSpace(s)
			continue
		}
		if s != "" {
			if !strings.HasPrefix(s, ",") {
				return nil, fmt.Errorf("expected a comma after a string argument, got %q", s)
			}
			s = strings.TrimSpace(s[1:])
		}
	}
	return out, nil
}

// parseArray parses the inside of [v1, v2, ...]: a Go []int64 when every
// element is an integer, else []string (elements may be 'quoted').
func parseArray(s string) (any, error) {
	var ints []int64
	var strs []string
	allInts := true
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if n, err := strconv.ParseInt(e, 10, 64); err == nil {
			ints = append(ints, n)
		} else {
			allInts = false
		}
		strs = append(strs, strings.Trim(e, "'"))
	}
	if allInts {
		if ints == nil {
			ints = []int64{}
		}
		return ints, nil
	}
	return strs, nil
}

func parseArg(tok string) (any, error) {
	switch strings.ToLower(tok) {
	case "null":
		return nil, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if n, err := strconv.ParseInt(tok, 10, 64); err == nil {
		return n, nil
	}
	if f, err := strconv.ParseFloat(tok, 64); err == nil {
		return f, nil
	}
	if v, ok := strings.CutPrefix(tok, "ts:"); ok {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, fmt.Errorf("bad argument %q: %w", tok, err)
		}
		return t, nil
	}
	if v, ok := strings.CutPrefix(tok, "date:"); ok {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return nil, fmt.Errorf("bad argument %q: %w", tok, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("bad argument %q (want an integer, a decimal, 'string', true, false, NULL, ts:<RFC 3339> or date:<YYYY-MM-DD>)", tok)
}
