package difftest

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// String renders the report: counts per layout and overall, the corpus bugs,
// every wrong and error query with both answers (truncated), and the most
// frequent refusal reasons.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "differential oracle: %d queries (%d from the corpus, %d generated), people=%d visits=%d seed=%d\n",
		r.CorpusQueries+r.GeneratedQueries, r.CorpusQueries, r.GeneratedQueries, r.People, r.Visits, r.Seed)
	fmt.Fprintf(&b, "values compared in their text form (sql.NullString); float8 columns with relative tolerance %g, float4 %g\n", FloatTolerance, Float4Tolerance)
	fmt.Fprintf(&b, "(shards may add partial sums in another order); unordered answers compared as multisets.\n")
	fmt.Fprintf(&b, "refused = SQLSTATE 0A000 raised by pgshard itself (never a pass); error = any other error\n")
	fmt.Fprintf(&b, "(a server's own 0A000 included) where the oracle answered; wrong = answers differ.\n")
	if r.TxEvery > 0 {
		fmt.Fprintf(&b, "every %s query runs inside a transaction. ", ordinal(r.TxEvery))
	}
	fmt.Fprintf(&b, "/simple: pgx's simple protocol; /tz+0545: session time zone Asia/Kathmandu\n")
	fmt.Fprintf(&b, "(the oracle is read with the same options). storage:<table> checks the rows stored in the shards\n")
	fmt.Fprintf(&b, "and the template table, read directly, against the oracle's (one per distributed table).\n\n")
	fmt.Fprintf(&b, "%-22s %7s %7s %7s %7s %7s %9s %9s\n", "layout", "queries", "equal", "refused", "error", "wrong", "load", "queries")
	for _, l := range r.Layouts {
		fmt.Fprintf(&b, "%-22s %7d %7d %7d %7d %7d %9s %9s\n", l.Layout, len(l.Findings),
			l.Counts[Equal], l.Counts[Refused], l.Counts[Error], l.Counts[Wrong], dur(l.Load), dur(l.Queries))
	}
	c := r.Counts()
	n := 0
	for _, x := range c {
		n += x
	}
	fmt.Fprintf(&b, "%-22s %7d %7d %7d %7d %7d\n", "total", n, c[Equal], c[Refused], c[Error], c[Wrong])
	fmt.Fprintf(&b, "oracle setup %s, total %s\n", dur(r.Oracle), dur(r.Total))

	if len(r.CorpusBugs) > 0 {
		fmt.Fprintf(&b, "\nCORPUS BUGS (the oracle rejected these queries; fix the corpus): %d\n", len(r.CorpusBugs))
		for _, cb := range r.CorpusBugs {
			fmt.Fprintf(&b, "  %s: %s\n    %s\n", cb.Query.Name, cb.Err, oneLine(cb.Query.SQL, 300))
		}
	}

	// Wrong and error findings, grouped by query: the first layout in full,
	// the other layouts by name.
	type group struct {
		first   Finding
		layouts []string
	}
	var order []string
	groups := map[string]*group{}
	for _, l := range r.Layouts {
		for _, f := range l.Findings {
			if f.Outcome != Wrong && f.Outcome != Error {
				continue
			}
			key := f.Outcome.String() + "\x00" + f.Query.Name
			g := groups[key]
			if g == nil {
				g = &group{first: f}
				groups[key] = g
				order = append(order, key)
			}
			g.layouts = append(g.layouts, f.Layout.String())
		}
	}
	if len(order) > 0 {
		fmt.Fprintf(&b, "\nWRONG AND ERROR QUERIES: %d\n", len(order))
	}
	for _, key := range order {
		g := groups[key]
		f := g.first
		fmt.Fprintf(&b, "\n- %s %s in layouts %s\n", strings.ToUpper(f.Outcome.String()), f.Query.Name, strings.Join(g.layouts, ", "))
		fmt.Fprintf(&b, "    sql:     %s\n", oneLine(f.Query.SQL, 400))
		if len(f.Query.Args) > 0 {
			fmt.Fprintf(&b, "    args:    %v\n", f.Query.Args)
		}
		if f.Query.Ordered {
			fmt.Fprintf(&b, "    (ordered)\n")
		}
		if f.InTx {
			fmt.Fprintf(&b, "    (run inside a transaction)\n")
		}
		fmt.Fprintf(&b, "    layout %s: %s\n", f.Layout, cut(controlChars.Replace(f.Why), 400))
		fmt.Fprintf(&b, "    oracle:  %s\n", f.Oracle.Show(6))
		if f.Got != nil {
			fmt.Fprintf(&b, "    pgshard: %s\n", f.Got.Show(6))
		} else {
			fmt.Fprintf(&b, "    pgshard: error %s\n", f.Code)
		}
	}

	// Why pgshard refused, most frequent first (one count per query and
	// layout).
	reasons := map[string]int{}
	for _, l := range r.Layouts {
		for _, f := range l.Findings {
			if f.Outcome == Refused {
				reasons[normalizeReason(f.Why)]++
			}
		}
	}
	if len(reasons) > 0 {
		type rc struct {
			reason string
			n      int
		}
		var list []rc
		for k, v := range reasons {
			list = append(list, rc{k, v})
		}
		sort.Slice(list, func(i, j int) bool {
			if list[i].n != list[j].n {
				return list[i].n > list[j].n
			}
			return list[i].reason < list[j].reason
		})
		fmt.Fprintf(&b, "\nrefusal reasons (query × layout):\n")
		for i, x := range list {
			if i == 30 {
				fmt.Fprintf(&b, "  ... %d more reasons\n", len(list)-30)
				break
			}
			fmt.Fprintf(&b, "  %5d  %s\n", x.n, oneLine(x.reason, 200))
		}
	}
	return b.String()
}

var sqlstateSuffix = regexp.MustCompile(`\s*\(SQLSTATE \w+\)$`)

func normalizeReason(s string) string {
	s = strings.TrimPrefix(s, "ERROR: ")
	return sqlstateSuffix.ReplaceAllString(s, "")
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "single"
	case 2:
		return "2nd"
	case 3:
		return "3rd"
	}
	return fmt.Sprintf("%dth", n)
}

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(100 * time.Millisecond).String()
}

// Outcomes lists every query's outcome in each layout, one line per query:
// its name, then one letter per layout (= equal, R refused, E error,
// W wrong, - not run), for a quick look at what pgshard answers today.
func (r *Report) Outcomes() string {
	var b strings.Builder
	letters := [...]string{Equal: "=", Refused: "R", Error: "E", Wrong: "W"}
	byName := map[string][]string{}
	var names []string
	for li, l := range r.Layouts {
		for _, f := range l.Findings {
			if byName[f.Query.Name] == nil {
				byName[f.Query.Name] = make([]string, len(r.Layouts))
				for i := range byName[f.Query.Name] {
					byName[f.Query.Name][i] = "-"
				}
				names = append(names, f.Query.Name)
			}
			byName[f.Query.Name][li] = letters[f.Outcome]
		}
	}
	fmt.Fprintf(&b, "outcome per layout (")
	for i, l := range r.Layouts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Layout.String())
	}
	b.WriteString("): = equal, R refused, E error, W wrong\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s  %s\n", strings.Join(byName[n], ""), n)
	}
	return b.String()
}
