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
	// metadata database (or a reference table).
	Key string
	// Reference is true for a reference table: copied whole to every
	// worker (master_create_reference_table).
	Reference bool
	Rows      [][]any
	// Literals are rows written as SQL literals, one parenthesized tuple
	// per row in Columns order ("('2024-01-01 00:00', 100001, ...)"): Run
	// inserts them after Rows, one INSERT each, in the session of the
	// oracle or layout it loads, so that their values are read under that
	// session's TimeZone and DateStyle on the server (a zone-less
	// timestamptz, '03/04/2024'), as a client's literals are.
	Literals []string
}

// Dataset is the data every layout and the oracle hold.
type Dataset struct {
	People, Visits, Depts *Table
	// Events, Days and Stamps are distributed by a timestamptz, a date and
	// a timestamp: keys whose value depends on the session's TimeZone and
	// DateStyle when written as literals.
	Events, Days, Stamps *Table
	// Ranks is a reference table: per department, a floor, a head and a
	// salary band, joined with the distributed tables shard by shard.
	Ranks *Table
}

// Tables returns the dataset's tables, distributed ones first.
func (d *Dataset) Tables() []*Table {
	return []*Table{d.People, d.Visits, d.Events, d.Days, d.Stamps, d.Ranks, d.Depts}
}

// Rows is the number of rows of every table, literal rows included.
func (d *Dataset) Rows() int {
	n := 0
	for _, t := range d.Tables() {
		n += len(t.Rows) + len(t.Literals)
	}
	return n
}

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
	// ranks is a reference table (one copy on every worker).
	ranksDDL = `CREATE TABLE ranks (dept text, floor int, head text, band_low numeric(12,2), band_high numeric(12,2))`
	// events, days and stamps have a unique (key, id): id orders them
	// totally.
	eventsDDL = `CREATE TABLE events (
	at timestamptz NOT NULL,
	id int NOT NULL,
	local timestamp,
	day date,
	label text,
	PRIMARY KEY (at, id))`
	daysDDL = `CREATE TABLE days (
	day date NOT NULL,
	id int NOT NULL,
	stamp timestamp,
	label text,
	UNIQUE (day, id))`
	stampsDDL = `CREATE TABLE stamps (
	stamp timestamp NOT NULL,
	id int NOT NULL,
	at timestamptz,
	label text,
	UNIQUE (stamp, id))`
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
	// labels order differently bytewise (C), under glibc's en_US.UTF-8
	// (case and accents second, punctuation ignored at first) and under ICU
	// en-US (punctuation and spaces first, then letters, case last).
	labels = []string{
		"apple", "Apple", "APPLE", "äpple", "Äpple", "apple pie", "apple-pie", "applepie", "apple_pie", "apple.pie",
		"banana", "Banana", "bänana", "co-op", "coop", "Co-op", "cote", "coté", "côte", "côté", "Côte",
		"résumé", "resume", "Resume", "RÉSUMÉ", "zebra", "Zebra", "Ångström", "angstrom", "Ωmega", "omega",
		"1st", "10th", "2nd", "_under", "-dash", " space", "'quote", "#hash", "", "straße", "strasse", "Strasse",
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
	ds := &Dataset{People: people, Visits: visits, Depts: depts}
	generateTimeTables(rand.New(rand.NewSource(seed^0x7173)), ds)
	ds.Ranks = generateRanks()
	return ds
}

// generateRanks makes the reference table ranks: most departments once,
// "eng" twice (two bands), one department no person has, one with a NULL
// name, some departments missing.
func generateRanks() *Table {
	t := &Table{Name: "ranks", DDL: ranksDDL, Reference: true,
		Columns: []string{"dept", "floor", "head", "band_low", "band_high"}}
	for i, d := range deptNames[:len(deptNames)-2] {
		t.Rows = append(t.Rows, []any{d, int32(i % 4), "head of " + d, fmt.Sprintf("%d.00", 1000*i), fmt.Sprintf("%d.50", 1000*i+60000)})
	}
	t.Rows = append(t.Rows,
		[]any{"eng", int32(9), "second head of eng", "80000.00", "200000.00"},
		[]any{"legal", int32(2), nil, "0.00", "1.00"},
		[]any{nil, nil, "nobody", nil, nil})
	return t
}

// Instants the time tables hold typed rows at: the instants of the
// zone-less literals '2024-01-01 00:00' and '2024-02-29 23:30' under UTC,
// America/New_York, Asia/Kolkata and Asia/Kathmandu (TestDifferential's
// +05:45), of '2024-03-10 02:30' (a gap in New York, read as 03:30 EDT), of
// '2024-11-03 01:30' (twice in New York: 01:30 EDT and EST) and of
// '2025-02-28 18:15' in Kolkata and Kathmandu. A zone-less key hashed in
// the wrong zone then misses rows that the right shard holds.
var specialInstants = []time.Time{
	time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2024, 1, 1, 5, 0, 0, 0, time.UTC),
	time.Date(2023, 12, 31, 18, 30, 0, 0, time.UTC),
	time.Date(2023, 12, 31, 18, 15, 0, 0, time.UTC),
	time.Date(2024, 2, 29, 23, 30, 0, 0, time.UTC),
	time.Date(2024, 3, 1, 4, 30, 0, 0, time.UTC),
	time.Date(2024, 2, 29, 18, 0, 0, 0, time.UTC),
	time.Date(2024, 2, 29, 17, 45, 0, 0, time.UTC),
	time.Date(2024, 3, 10, 2, 30, 0, 0, time.UTC),
	time.Date(2024, 3, 10, 7, 30, 0, 0, time.UTC),
	time.Date(2024, 11, 3, 5, 30, 0, 0, time.UTC),
	time.Date(2024, 11, 3, 6, 30, 0, 0, time.UTC),
	time.Date(2025, 2, 28, 12, 45, 0, 0, time.UTC),
	time.Date(2025, 2, 28, 12, 30, 0, 0, time.UTC),
}

// Literal rows of the time tables (ids above 100000). Their keys use only
// forms pgshard hashes today (ISO dates, optional 'T', optional zone);
// zone-less timestamptz keys are read in the session's TimeZone, and the
// non-key columns hold day-first/month-first ambiguous dates ('03/04/2024'
// is 4 March under DateStyle MDY and 3 April under DMY).
var (
	eventsLiterals = []string{
		`('2024-01-01 00:00', 100001, '2024-01-01 00:00', '2024-01-01', 'zone-less midnight')`,
		`('2024-01-01T00:00', 100002, '01/02/2024 00:00', '01/02/2024', 'Zone-less with T')`,
		`('2024-03-10 02:30', 100003, '03/10/2024 02:30', '03/10/2024', 'gap in New York')`,
		`('2024-11-03 01:30', 100004, '11/03/2024 01:30', '11/03/2024', 'twice in New York')`,
		`('2024-06-15 12:00:00.123456', 100005, '2024-06-15 12:00:00.123456', '2024-06-15', 'résumé')`,
		`('2023-12-31 23:59:59.999999', 100006, '12/11/2023 23:59:59.999999', '2023-12-31', 'last µs')`,
		`('2025-02-28 18:15', 100007, '03/04/2024 10:00', '03/04/2024', 'Kolkata evening')`,
		`('2024-01-01 00:00+00', 100008, '2024-01-01 00:00', '2024-01-01', 'explicit UTC')`,
		`('2024-07-04 09:00-04', 100009, '07/04/2024 09:00', '07/04/2024', 'explicit -04')`,
		`('2024-02-29 23:30 UTC', 100010, '02/09/2024 23:30', '2024-02-29', 'leap night UTC')`,
		`('2024-02-29 23:30', 100011, '2024-02-29 23:30', '2024-02-29', 'leap night zone-less')`,
		`('2024-01-01 00:00', 100012, '05/06/2024 07:08', '05/06/2024', 'Zone-less midnight, again')`,
	}
	daysLiterals = []string{
		`('2024-02-29', 100001, '2024-02-29 23:59:59', 'leap day')`,
		`('2024-04-03', 100002, '03/04/2024 10:00', '3 April, ISO')`,
		`('2024-03-04', 100003, '04/03/2024 10:00', '4 March, ISO')`,
		`('2024-01-01', 100004, '01/02/2024 03:04:05', 'New Year')`,
		`('2023-12-31', 100005, '12/11/2023 23:59', 'Old Year')`,
	}
	stampsLiterals = []string{
		`('2024-03-10 02:30', 100001, '2024-03-10 02:30', 'gap')`,
		`('2024-01-01 00:00+05:30', 100002, '2024-01-01 00:00+05:30', 'zone ignored')`,
		`('2024-11-03T01:30', 100003, '2024-11-03 01:30', 'twice')`,
		`('2024-04-03 10:00', 100004, '03/04/2024 10:00', 'ambiguous at')`,
	}
)

// generateTimeTables adds events (a few hundred rows keyed by timestamptz),
// days (keyed by date) and stamps (keyed by timestamp) to ds, with typed
// rows at random and special instants, several rows per key, NULLs in
// every non-key column, and the literal rows above.
func generateTimeTables(r *rand.Rand, ds *Dataset) {
	maybe := func(p float64) bool { return r.Float64() < p }
	label := func() any {
		if maybe(0.06) {
			return nil
		}
		return labels[r.Intn(len(labels))]
	}
	base := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	randomInstant := func() time.Time {
		usec := int64(0)
		if maybe(0.5) {
			usec = r.Int63n(1_000_000)
		}
		return time.Unix(base+r.Int63n(3*365*86400), usec*1000).UTC()
	}
	// instant is the i-th row's key instant: the special ones three times
	// over, then random ones, one in ten an earlier row's again.
	var earlier []time.Time
	instant := func(i int) time.Time {
		t := randomInstant()
		switch {
		case i < 3*len(specialInstants):
			t = specialInstants[i%len(specialInstants)]
		case maybe(0.1):
			t = earlier[r.Intn(len(earlier))]
		}
		earlier = append(earlier, t)
		return t
	}
	orNull := func(v any) any {
		if maybe(0.05) {
			return nil
		}
		return v
	}
	dateOf := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }

	events := &Table{Name: "events", DDL: eventsDDL, Key: "at",
		Columns: []string{"at", "id", "local", "day", "label"}, Literals: eventsLiterals}
	for i := 0; i < 600; i++ {
		at := instant(i)
		local := at.Add(time.Duration(r.Intn(48)-24) * time.Hour)
		events.Rows = append(events.Rows, []any{at, int32(i + 1), orNull(local), orNull(dateOf(at)), label()})
	}
	days := &Table{Name: "days", DDL: daysDDL, Key: "day",
		Columns: []string{"day", "id", "stamp", "label"}, Literals: daysLiterals}
	for i := 0; i < 400; i++ {
		day := dateOf(instant(i))
		stamp := day.Add(time.Duration(r.Int63n(86400)) * time.Second)
		days.Rows = append(days.Rows, []any{day, int32(i + 1), orNull(stamp), label()})
	}
	stamps := &Table{Name: "stamps", DDL: stampsDDL, Key: "stamp",
		Columns: []string{"stamp", "id", "at", "label"}, Literals: stampsLiterals}
	for i := 0; i < 400; i++ {
		stamp := instant(i)
		stamps.Rows = append(stamps.Rows, []any{stamp, int32(i + 1), orNull(randomInstant()), label()})
	}
	ds.Events, ds.Days, ds.Stamps = events, days, stamps
}
