package difftest

import (
	"fmt"
	"math/rand"
	"strings"
)

// GenerateSetQueries draws n set operations (UNION, INTERSECT, EXCEPT, ALL
// or not) over people, visits and the ordinary table depts from a seeded
// generator: two or three arms of one column shape, at the top level with
// or without ORDER BY over every column (a total order) and LIMIT/OFFSET,
// or inside a FROM subquery, an IN subquery or a CTE. Arms sometimes
// select the co-located tables' keys in the same column (which pgshard
// runs shard by shard), sometimes not (each arm then runs first).
func GenerateSetQueries(seed int64, n int) []Query {
	g := &gen{r: rand.New(rand.NewSource(seed ^ 0x5e70b5))}
	out := make([]Query, 0, n)
	for i := 0; i < n; i++ {
		q := g.setQuery()
		q.Name = fmt.Sprintf("gen_set_%03d", i)
		out = append(out, q)
	}
	return out
}

// setArm is one arm of a set operation: its select list over a table.
type setArm struct {
	spec *tableSpec // nil for depts, which has no predicates
	from string
	cols string
}

// setShapes are arms with the same column types, by shape.
var setShapes = [][]setArm{
	{ // bigint, text
		{&peopleSpec, "people", "id, name"},
		{&peopleSpec, "people", "id, dept"},
		{&peopleSpec, "people", "age, dept"},
		{&visitsSpec, "visits", "person_id, note"},
		{&visitsSpec, "visits", "visit_id, note"},
	},
	{ // timestamptz, numeric
		{&peopleSpec, "people", "joined, salary"},
		{&visitsSpec, "visits", "at, amount"},
		{&peopleSpec, "people", "date_trunc('day', joined), round(salary, -3)"},
	},
	{ // text
		{&peopleSpec, "people", "dept"},
		{&visitsSpec, "visits", "note"},
		{&peopleSpec, "people", "lower(name)"},
		{nil, "depts", "dept"},
	},
	{ // bigint
		{&peopleSpec, "people", "id"},
		{&visitsSpec, "visits", "person_id"},
		{&peopleSpec, "people", "age"},
	},
}

func (g *gen) setQuery() Query {
	g.args = nil
	shape := g.r.Intn(len(setShapes))
	arms := setShapes[shape]
	width := strings.Count(arms[0].cols, ",") + 1 // the first arm's list has no nested commas
	var b strings.Builder
	for i := 0; i < 2+g.r.Intn(2); i++ {
		if i > 0 {
			b.WriteString(g.pick(" UNION ", " UNION ALL ", " INTERSECT ", " INTERSECT ALL ", " EXCEPT ", " EXCEPT ALL "))
		}
		a := arms[g.r.Intn(len(arms))]
		fmt.Fprintf(&b, "SELECT %s FROM %s", a.cols, a.from)
		if a.spec != nil {
			b.WriteString(g.where(a.spec))
		}
	}
	setop := b.String()
	switch k := g.r.Intn(10); {
	case k < 5: // top level
		if !g.chance(0.5) {
			return Query{SQL: setop, Args: g.args}
		}
		var keys []string
		for i := 1; i <= width; i++ {
			keys = append(keys, fmt.Sprintf("%d%s", i, g.dir()))
		}
		return Query{SQL: setop + " ORDER BY " + strings.Join(keys, ", ") + g.limit(), Args: g.args, Ordered: true}
	case k < 7: // FROM subquery
		return Query{SQL: fmt.Sprintf("SELECT count(*), count(DISTINCT s.*), count(s.c1) FROM (%s) s(c1)", setop), Args: g.args}
	case k < 9 && shape == 3: // IN subquery
		return Query{SQL: fmt.Sprintf("SELECT id, name FROM people WHERE id %s (%s)", g.pick("IN", "NOT IN"), setop), Args: g.args}
	default: // CTE
		return Query{SQL: fmt.Sprintf("WITH s AS (%s) SELECT count(*), count(DISTINCT s) FROM s", setop), Args: g.args}
	}
}
