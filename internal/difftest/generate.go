package difftest

import (
	"fmt"
	"math/rand"
	"strings"
)

// GenerateQueries draws n single-table SELECTs over people and visits from a
// small grammar: filters on every column (and sometimes key pins, IN lists
// and ANY), plain rows, aggregates of every type, GROUP BY with HAVING,
// DISTINCT, ORDER BY with LIMIT/OFFSET. The same seed gives the same
// queries. Every ORDER BY it writes is total (it ends with a unique key or
// every grouping expression), so ordered answers are deterministic.
func GenerateQueries(seed int64, n int) []Query {
	g := &gen{r: rand.New(rand.NewSource(seed ^ 0x5eed))}
	out := make([]Query, 0, n)
	for i := 0; i < n; i++ {
		q := g.query()
		q.Name = fmt.Sprintf("gen_%03d", i)
		out = append(out, q)
	}
	return out
}

type gen struct {
	r    *rand.Rand
	args []any
}

func (g *gen) pick(s ...string) string { return s[g.r.Intn(len(s))] }
func (g *gen) chance(p float64) bool   { return g.r.Float64() < p }

// tableSpec describes one table for the grammar.
type tableSpec struct {
	name   string
	key    string
	unique []string // ORDER BY suffix that makes any order total
	cols   []string
	exprs  []string // row expressions for the target list
	groups []string // grouping expressions
	aggs   []string // aggregates (no GROUP BY needed)
	preds  func(g *gen) string
}

var peopleSpec = tableSpec{
	name: "people", key: "id", unique: []string{"id"},
	cols: []string{"id", "name", "dept", "salary", "age", "score", "active", "joined"},
	exprs: []string{
		"upper(name)", "lower(dept)", "salary * 2", "age + 1", "round(score::numeric, 3)", "joined::date",
		"date_trunc('month', joined)", "coalesce(dept, '?')", "CASE WHEN age > 40 THEN 'old' ELSE 'young' END",
		"name || '/' || dept", "id % 10", "length(name)", "extract(year FROM joined)", "salary IS NULL",
		"NOT active", "abs(score)", "substr(name, 1, 3)", "age * 1.5",
	},
	groups: []string{
		"dept", "active", "age", "age / 10", "extract(year FROM joined)", "lower(name)", "(salary > 100000)",
		"coalesce(dept, 'none')", "date_trunc('year', joined)", "length(name)", "upper(dept)", "id % 7",
	},
	aggs: []string{
		"count(*)", "count(name)", "count(dept)", "count(salary)", "count(age)", "count(score)", "count(active)", "count(joined)",
		"count(DISTINCT dept)", "count(DISTINCT age)", "count(DISTINCT name)", "count(DISTINCT active)",
		"sum(age)", "sum(salary)", "sum(score)", "sum(id)", "min(age)", "max(age)", "min(salary)", "max(salary)",
		"min(score)", "max(score)", "min(joined)", "max(joined)", "min(name)", "max(name)", "min(dept)", "max(dept)",
		"min(id)", "max(id)", "avg(age)", "avg(salary)", "avg(score)", "bool_and(active)", "bool_or(active)",
		"round(avg(salary), 2)", "sum(salary) / count(*)", "coalesce(max(age), 0)", "max(age) - min(age)",
		"count(*) FILTER (WHERE active)", "sum(age) FILTER (WHERE dept = 'eng')", "count(DISTINCT lower(name))",
		"max(joined) - min(joined)", "sum(salary * 2)", "avg(age)::numeric(10,2)", "every(age > 20)",
	},
	preds: func(g *gen) string {
		switch g.r.Intn(26) {
		case 0:
			return fmt.Sprintf("age > %d", 18+g.r.Intn(60))
		case 1:
			a := 18 + g.r.Intn(50)
			return fmt.Sprintf("age BETWEEN %d AND %d", a, a+g.r.Intn(15))
		case 2:
			return g.pick("age IS NULL", "age IS NOT NULL", "salary IS NULL", "score IS NULL", "joined IS NULL", "name IS NULL", "dept IS NULL", "active IS NULL")
		case 3:
			return fmt.Sprintf("salary > %d.%02d", 20000+g.r.Intn(200000), g.r.Intn(100))
		case 4:
			return fmt.Sprintf("score < %d.%d", g.r.Intn(1000), g.r.Intn(10))
		case 5:
			return g.pick("active", "NOT active", "active IS NOT TRUE", "active IS FALSE")
		case 6:
			return fmt.Sprintf("dept = '%s'", g.pick(deptNames...))
		case 7:
			return fmt.Sprintf("dept IN ('%s', '%s')", g.pick(deptNames...), g.pick(deptNames...))
		case 8:
			return fmt.Sprintf("name LIKE '%s%%'", g.pick("A", "a", "É", "é", "Z", "Ñ", "j"))
		case 9:
			return fmt.Sprintf("name ILIKE '%%%s%%'", g.pick("é", "ü", "ñ", "smith", "MÜLLER", "o''"))
		case 10:
			return g.pick("name = ''", "name <> ''", "dept = ''", "coalesce(name, '') = ''")
		case 11:
			return fmt.Sprintf("joined > '%d-%02d-01'", 2015+g.r.Intn(11), 1+g.r.Intn(12))
		case 12:
			return fmt.Sprintf("joined < '%d-%02d-15 12:30:00+00'", 2015+g.r.Intn(11), 1+g.r.Intn(12))
		case 13:
			return fmt.Sprintf("extract(year FROM joined) = %d", 2015+g.r.Intn(11))
		case 14:
			return fmt.Sprintf("id = %d", g.id())
		case 15:
			return fmt.Sprintf("id IN (%d, %d, %d)", g.id(), g.id(), g.id())
		case 16:
			return fmt.Sprintf("id = ANY('{%d,%d,%d,%d}')", g.id(), g.id(), g.id(), g.id())
		case 17:
			return fmt.Sprintf("(id = %d OR id = %d)", g.id(), g.id())
		case 18:
			a := g.r.Intn(15000)
			return fmt.Sprintf("id BETWEEN %d AND %d", a, a+g.r.Intn(3000))
		case 19:
			return fmt.Sprintf("id %% %d = %d", 3+g.r.Intn(20), g.r.Intn(3))
		case 20:
			return fmt.Sprintf("lower(name) LIKE '%%%s%%'", g.pick("e", "é", "ü", "an", "ø"))
		case 21:
			return fmt.Sprintf("coalesce(age, 0) > %d", 20+g.r.Intn(50))
		case 22:
			return fmt.Sprintf("length(name) > %d", 3+g.r.Intn(12))
		case 23:
			g.args = append(g.args, g.id())
			return fmt.Sprintf("id = $%d", len(g.args))
		case 24:
			return fmt.Sprintf("(age < %d OR dept = '%s')", 20+g.r.Intn(20), g.pick(deptNames...))
		default:
			return fmt.Sprintf("salary BETWEEN %d AND %d", 30000+g.r.Intn(50000), 80000+g.r.Intn(150000))
		}
	},
}

var visitsSpec = tableSpec{
	name: "visits", key: "person_id", unique: []string{"person_id", "visit_id"},
	cols:   []string{"person_id", "visit_id", "amount", "at", "note"},
	exprs:  []string{"amount * 3", "round(amount, 1)", "at::date", "upper(note)", "coalesce(note, '-')", "visit_id % 100", "extract(dow FROM at)", "amount IS NULL"},
	groups: []string{"note", "extract(year FROM at)", "visit_id % 5", "lower(note)", "(amount > 500)", "date_trunc('month', at)"},
	aggs: []string{
		"count(*)", "count(amount)", "count(at)", "count(note)", "count(DISTINCT note)", "count(DISTINCT person_id)",
		"sum(amount)", "sum(visit_id)", "min(amount)", "max(amount)", "min(at)", "max(at)", "min(note)", "max(note)",
		"avg(amount)", "round(avg(amount), 3)", "sum(amount) / count(*)", "coalesce(max(amount), 0)", "min(visit_id)",
		"max(visit_id)", "min(person_id)", "max(person_id)", "sum(person_id)", "count(*) FILTER (WHERE note IS NULL)",
	},
	preds: func(g *gen) string {
		switch g.r.Intn(14) {
		case 0:
			return fmt.Sprintf("amount > %d", g.r.Intn(1000))
		case 1:
			return g.pick("amount IS NULL", "at IS NULL", "note IS NULL", "note IS NOT NULL")
		case 2:
			return fmt.Sprintf("note = '%s'", strings.ReplaceAll(g.pick(notes...), "'", "''"))
		case 3:
			return fmt.Sprintf("at >= '%d-%02d-01'", 2020+g.r.Intn(6), 1+g.r.Intn(12))
		case 4:
			return fmt.Sprintf("visit_id < %d", g.r.Intn(30000))
		case 5:
			return fmt.Sprintf("person_id = %d", g.id())
		case 6:
			return fmt.Sprintf("person_id IN (%d, %d)", g.id(), g.id())
		case 7:
			return fmt.Sprintf("note ILIKE '%%%s%%'", g.pick("é", "ü", "late", "follow"))
		case 8:
			return fmt.Sprintf("visit_id %% %d = 0", 2+g.r.Intn(9))
		case 9:
			return fmt.Sprintf("amount BETWEEN %d AND %d", g.r.Intn(300), 300+g.r.Intn(700))
		case 10:
			return fmt.Sprintf("person_id > %d", 5_000_000+g.r.Intn(1_000_000))
		case 11:
			g.args = append(g.args, g.id())
			return fmt.Sprintf("person_id = $%d", len(g.args))
		case 12:
			return fmt.Sprintf("extract(month FROM at) = %d", 1+g.r.Intn(12))
		default:
			return "amount < 0"
		}
	},
}

// id returns a people id that usually exists.
func (g *gen) id() int64 {
	switch g.r.Intn(8) {
	case 0:
		return -50 * int64(1+g.r.Intn(300))
	case 1:
		return 1_000_000_000_000 + 97*int64(1+g.r.Intn(150))
	case 2:
		return int64(25000 + g.r.Intn(1000)) // no such id
	default:
		return int64(1 + g.r.Intn(15000))
	}
}

func (g *gen) where(t *tableSpec) string {
	n := g.r.Intn(3)
	if n == 0 && g.chance(0.5) {
		return ""
	}
	parts := make([]string, n+1)
	for i := range parts {
		parts[i] = t.preds(g)
	}
	op := " AND "
	if g.chance(0.15) {
		op = " OR "
	}
	return " WHERE " + strings.Join(parts, op)
}

func (g *gen) dir() string {
	d := g.pick("", " ASC", " DESC")
	return d + g.pick("", "", " NULLS FIRST", " NULLS LAST")
}

func (g *gen) limit() string {
	if !g.chance(0.6) {
		return ""
	}
	s := " LIMIT " + g.maybeParam(g.pick("1", "5", "10", "50"))
	if g.chance(0.4) {
		s += " OFFSET " + g.maybeParam(g.pick("3", "17", "100"))
	}
	return s
}

// maybeParam returns the integer literal lit, or sometimes a parameter
// bound to it.
func (g *gen) maybeParam(lit string) string {
	if !g.chance(0.25) {
		return lit
	}
	var n int64
	fmt.Sscan(lit, &n)
	g.args = append(g.args, n)
	return fmt.Sprintf("$%d", len(g.args))
}

// textColumns are the columns an ORDER BY may sort with another collation.
var textColumns = map[string]bool{"name": true, "dept": true, "note": true}

// orderKey is column c of table t as an ORDER BY key: sometimes qualified,
// sometimes (text) under the ICU root collation, with a random direction.
func (g *gen) orderKey(t *tableSpec, c string) string {
	k := c
	if g.chance(0.5) {
		k = t.name + "." + c // an output column may have the same name
	}
	if textColumns[c] && g.chance(0.3) {
		k += ` COLLATE "und-x-icu"`
	}
	return k + g.dir()
}

func (g *gen) sample(from []string, n int) []string {
	idx := g.r.Perm(len(from))[:n]
	out := make([]string, n)
	for i, j := range idx {
		out[i] = from[j]
	}
	return out
}

func (g *gen) query() Query {
	g.args = nil
	t := &peopleSpec
	if g.chance(0.25) {
		t = &visitsSpec
	}
	var sql string
	ordered := false
	switch k := g.r.Intn(10); {
	case k < 3: // plain rows
		var sel []string
		if g.chance(0.1) {
			sel = []string{"*"}
		} else {
			sel = g.sample(t.cols, 1+g.r.Intn(3))
			for i := 0; i < g.r.Intn(3); i++ {
				sel = append(sel, t.exprs[g.r.Intn(len(t.exprs))])
			}
		}
		sql = fmt.Sprintf("SELECT %s FROM %s%s", strings.Join(sel, ", "), t.name, g.where(t))
		if g.chance(0.5) {
			var keys []string
			for _, c := range g.sample(t.cols, g.r.Intn(3)) {
				keys = append(keys, g.orderKey(t, c))
			}
			for _, u := range t.unique {
				keys = append(keys, t.name+"."+u+g.pick("", " DESC"))
			}
			sql += " ORDER BY " + strings.Join(keys, ", ") + g.limit()
			ordered = true
		}
	case k < 6: // aggregates without GROUP BY
		aggs := g.sample(t.aggs, 1+g.r.Intn(3))
		sql = fmt.Sprintf("SELECT %s FROM %s%s", strings.Join(aggs, ", "), t.name, g.where(t))
	case k < 9: // GROUP BY
		groups := g.sample(t.groups, 1+g.r.Intn(2))
		aggs := g.sample(t.aggs, 1+g.r.Intn(3))
		sql = fmt.Sprintf("SELECT %s, %s FROM %s%s GROUP BY %s", strings.Join(groups, ", "), strings.Join(aggs, ", "),
			t.name, g.where(t), strings.Join(groups, ", "))
		if g.chance(0.3) {
			sql += " HAVING count(*) > " + g.maybeParam(fmt.Sprint(g.r.Intn(50)))
		}
		if g.chance(0.5) {
			var keys []string
			if g.chance(0.3) && !strings.Contains(aggs[0], "score") {
				// An aggregate first (not a float one: its last bits may
				// differ), then every grouping expression.
				keys = append(keys, fmt.Sprintf("%d DESC", len(groups)+1))
			}
			for i := range groups {
				if g.chance(0.5) {
					keys = append(keys, fmt.Sprintf("%d%s", i+1, g.dir()))
				} else {
					keys = append(keys, groups[i]+g.dir())
				}
			}
			sql += " ORDER BY " + strings.Join(keys, ", ") + g.limit()
			ordered = true
		}
	default: // DISTINCT
		cols := g.sample(append(append([]string{}, t.groups...), t.cols[1:]...), 1+g.r.Intn(2))
		sql = fmt.Sprintf("SELECT DISTINCT %s FROM %s%s", strings.Join(cols, ", "), t.name, g.where(t))
		if g.chance(0.5) {
			var keys []string
			for i := range cols {
				keys = append(keys, fmt.Sprintf("%d%s", i+1, g.dir()))
			}
			sql += " ORDER BY " + strings.Join(keys, ", ") + g.limit()
			ordered = true
		}
	}
	return Query{SQL: sql, Args: g.args, Ordered: ordered}
}
