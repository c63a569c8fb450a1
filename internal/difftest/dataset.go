package difftest

import (
	"fmt"
	"math/rand"
	"time"
)

// Table is one table of a Dataset: its DDL, column names and rows. A nil
// value in a row is SQL NULL; the other values are int64, int32, string
// (text and numeric), float64, bool or time.Time.
type Table struct {
	Name    string
	DDL     string
	Columns []string
	// Key is the distribution column, or "" for a table that stays on the
	// metadata database.
	Key  string
	Rows [][]any
}

// Dataset is the data every layout and the oracle hold.
type Dataset struct {
	People, Visits, Depts *Table
}

// Tables returns the dataset's tables, distributed ones first.
func (d *Dataset) Tables() []*Table { return []*Table{d.People, d.Visits, d.Depts} }

// DDL of the tables. visits is co-located with people: distributed on
// person_id (bigint like people.id) with the same shard count and
// replication factor. depts is an ordinary table.
const (
	peopleDDL = `CREATE TABLE people (
	id bigint PRIMARY KEY,
	name text,
	dept text,
	salary numeric(12,2),
	age int,
	score float8,
	active bool,
	joined timestamptz)`
	visitsDDL = `CREATE TABLE visits (
	person_id bigint NOT NULL,
	visit_id int,
	amount numeric,
	at timestamptz,
	note text,
	UNIQUE (person_id, visit_id))`
	deptsDDL = `CREATE TABLE depts (dept text, budget numeric)`
)

var (
	firstNames = []string{
		"alice", "Alice", "ALICE", "bob", "Bob", "émile", "Émile", "Emile", "zoë", "Zoë", "Zoe",
		"josé", "José", "jose", "Jürgen", "jurgen", "Ñandú", "ñoño", "Nuñez", "Ünal", "ünal",
		"Çelik", "Åsa", "asa", "Øyvind", "Renée", "renee", "chloé", "Chloe", "zed", "Zed",
		"mary-jane", "O'Brien", "d'Arcy", "李", "Ωmega", "a", "A", "b", "aa", "Ab",
		// Characters that need quoting in arrays, records, CSV and COPY.
		`"Quoted"`, `back\slash`, "{brace}", "comma, here", "NULL", " spaced ", "tab\there", "new\nline",
	}
	lastNames = []string{
		"Müller", "muller", "Mueller", "García", "garcia", "Peña", "pena", "Dupré", "dupre",
		"Smith", "smith", "SMITH", "Ängström", "Zürich", "Łukasz", "van der Berg", "Van Der Berg",
		"Östlund", "Žižek", "", "jr.", "Ñ",
	}
	deptNames = []string{"eng", "Eng", "sales", "Sales", "marketing", "Über-ops", "ñandú", "R&D", "support", "élan"}
	notes     = []string{
		"ok", "OK", "late", "Late", "très bien", "über", "año nuevo", "naïve café", "", "follow-up",
		"Follow-up", "refund", "zzz", "Zürich", "ß", "ss", "e", "é", "E", "É",
		`say "hi"`, `C:\dir`, "{}", "a,b", "null", "  ",
	}
)

// Generate builds the dataset deterministically from seed: people with
// nPeople rows, visits with nVisits rows (co-located with people by
// person_id), and the small ordinary table depts.
//
// people.id is mostly 1..nPeople, with every 50th id negated and every 97th
// moved above 10^12, so keys spread over int8's hash space; visits.visit_id is
// a permutation of 1..nVisits, overlapping people.id on purpose (joins on it
// are not co-located). Every non-key column has NULLs; text columns have
// mixed case, accents, empty strings and characters that need quoting.
// visit_id is NULL only on visits of people that do not exist, whose
// person_ids are all distinct: (person_id, visit_id) orders visits totally.
func Generate(seed int64, nPeople, nVisits int) *Dataset {
	r := rand.New(rand.NewSource(seed))
	maybe := func(p float64) bool { return r.Float64() < p }
	pick := func(s []string) string { return s[r.Intn(len(s))] }
	base2015 := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	base2020 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

	people := &Table{Name: "people", DDL: peopleDDL, Key: "id",
		Columns: []string{"id", "name", "dept", "salary", "age", "score", "active", "joined"}}
	ids := make([]int64, 0, nPeople)
	for i := 1; i <= nPeople; i++ {
		id := int64(i)
		switch {
		case i%50 == 0:
			id = -int64(i)
		case i%97 == 0:
			id = 1_000_000_000_000 + int64(i)
		}
		ids = append(ids, id)
	}
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, id := range ids {
		row := make([]any, 8)
		row[0] = id
		switch {
		case maybe(0.04):
		case maybe(0.03):
			row[1] = ""
		case maybe(0.3):
			row[1] = pick(firstNames)
		default:
			row[1] = pick(firstNames) + " " + pick(lastNames)
		}
		switch {
		case maybe(0.05):
		case maybe(0.01):
			row[2] = ""
		default:
			row[2] = pick(deptNames)
		}
		if !maybe(0.06) {
			cents := 2_000_000 + r.Int63n(23_000_000)
			if maybe(0.1) {
				cents -= cents % 100 // whole amounts: "51234.00"
			}
			if maybe(0.005) {
				cents = 0
			}
			row[3] = fmt.Sprintf("%d.%02d", cents/100, cents%100)
		}
		if !maybe(0.06) {
			row[4] = int32(18 + r.Intn(62))
		}
		if !maybe(0.08) {
			switch {
			case maybe(0.05):
				row[5] = float64(r.Intn(100)) // integral floats
			case maybe(0.05):
				row[5] = -r.Float64() * 100
			default:
				row[5] = r.Float64() * 1000
			}
		}
		if !maybe(0.1) {
			row[6] = maybe(0.5)
		}
		if !maybe(0.07) {
			sec := base2015 + r.Int63n(11*365*86400)
			usec := int64(0)
			if maybe(0.5) {
				usec = r.Int63n(1_000_000)
			}
			row[7] = time.Unix(sec, usec*1000).UTC()
		}
		people.Rows = append(people.Rows, row)
	}

	visits := &Table{Name: "visits", DDL: visitsDDL, Key: "person_id",
		Columns: []string{"person_id", "visit_id", "amount", "at", "note"}}
	visitIDs := r.Perm(nVisits)
	orphans := map[int64]bool{}
	for _, v := range visitIDs {
		row := make([]any, 5)
		row[1] = int32(v + 1)
		if maybe(0.92) {
			row[0] = ids[r.Intn(len(ids))]
		} else {
			id := 5_000_000 + r.Int63n(1_000_000) // no such person
			for orphans[id] {
				id = 5_000_000 + r.Int63n(1_000_000)
			}
			orphans[id] = true
			row[0] = id
			if maybe(0.25) {
				row[1] = nil
			}
		}
		if !maybe(0.1) {
			units := r.Int63n(100_000)
			switch scale := r.Intn(5); scale {
			case 0:
				row[2] = fmt.Sprintf("%d", units/100)
			default:
				div := int64(1)
				for i := 0; i < scale; i++ {
					div *= 10
				}
				row[2] = fmt.Sprintf("%d.%0*d", units/div, scale, units%div)
			}
			if maybe(0.03) {
				row[2] = "-" + row[2].(string)
			}
		}
		if !maybe(0.05) {
			row[3] = time.Unix(base2020+r.Int63n(6*365*86400), r.Int63n(1_000_000)*1000).UTC()
		}
		if !maybe(0.2) {
			row[4] = pick(notes)
		}
		visits.Rows = append(visits.Rows, row)
	}

	depts := &Table{Name: "depts", DDL: deptsDDL, Columns: []string{"dept", "budget"}}
	for i, d := range append(append([]string{}, deptNames...), "legal", "") {
		depts.Rows = append(depts.Rows, []any{d, fmt.Sprintf("%d.%d", 10_000*(i+1)+r.Intn(1000), r.Intn(10))})
	}
	depts.Rows = append(depts.Rows, []any{nil, "1.5"})
	return &Dataset{People: people, Visits: visits, Depts: depts}
}
