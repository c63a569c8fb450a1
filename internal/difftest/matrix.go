package difftest

import (
	"fmt"
	"strings"
	"time"
)

// Cell is one cell of the settings matrix: a cluster whose servers are
// initialized with InitDB and configured with Server, and one layout whose
// sessions (the oracle's and pgshard's) carry the layout's DSN options and
// the Session statements, with the dataset in Schema when set.
//
// The four described settings say their value and where it is set:
// "server" (initdb or postgresql.conf), "DSN" (a runtime parameter of the
// DSN, sent at connection start) or "SET" (a statement on each session).
type Cell struct {
	Name                                       string
	Collation, TimeZone, DateStyle, SearchPath string
	InitDB                                     []string          // extra initdb arguments (pgtest.Options.InitDB)
	Server                                     map[string]string // postgresql.conf settings (pgtest.Options.Settings)
	Layout                                     Layout
	Session                                    []string // Config.Session
	Schema                                     string   // Config.Schema
}

// The dataset and generated queries of every cell: smaller than
// TestDifferential's, so that nine cells fit in CI's budget (a few minutes
// under -race on two cores).
const (
	MatrixPeople    = 4000
	MatrixVisits    = 6000
	MatrixGenerated = 100
)

// MatrixSchema is the schema of the search_path cells: a space and a
// capital, so that it must be quoted wherever it is named.
const MatrixSchema = "Sch ema"

// Settings of MatrixCells, as DSN options, SET statements, initdb
// arguments and postgresql.conf lines.
const (
	dsnNewYork      = "timezone=America/New_York"
	dsnKolkata      = "timezone=Asia/Kolkata"
	dsnUTC          = "timezone=UTC"
	dsnDMY          = "datestyle=SQL,%20DMY"
	dsnSearchPath   = "search_path=%22Sch%20ema%22,public"
	setNewYork      = "SET TimeZone = 'America/New_York'"
	setKolkata      = "SET TimeZone = 'Asia/Kolkata'"
	setUTC          = "SET TimeZone = 'UTC'"
	setDMY          = "SET DateStyle = 'SQL, DMY'"
	setSearchPath   = `SET search_path = "Sch ema", public`
	collationC      = "C"
	collationLibc   = "libc en_US.UTF-8"
	collationICU    = "ICU en-US"
	serverSetting   = " (server)"
	dsnSetting      = " (DSN)"
	sessionSetting  = " (SET)"
	defaultDateISO  = "ISO, MDY"
	defaultSearchPt = "default"
)

var (
	initdbC    = []string{"--locale=C"}
	initdbLibc = []string{"--locale=en_US.UTF-8"}
	initdbICU  = []string{"--locale-provider=icu", "--icu-locale=en-US"}
)

// MatrixCells cover every pair of values of the four settings: collation
// (C, libc en_US.UTF-8, ICU en-US) × TimeZone (UTC, America/New_York,
// Asia/Kolkata) × DateStyle ('ISO, MDY', 'SQL, DMY') × search_path
// (default, "Sch ema" first with a distributed table of each name there and
// an ordinary one in public) — nine cells, the fewest that pair each
// collation with each time zone. The time zone and DateStyle are set on
// the server in some cells and per session in others (DSN or SET), the
// search_path per session (DSN or SET); one cell runs pgx's simple protocol
// (never with DateStyle SQL, whose dates pgx cannot read in text). Shard
// counts and replication vary between cells.
var MatrixCells = []Cell{
	{Name: "c-utc-dmy-sp", Collation: collationC, TimeZone: "UTC" + serverSetting, DateStyle: "SQL, DMY" + sessionSetting, SearchPath: `"Sch ema"` + sessionSetting,
		InitDB: initdbC, Server: map[string]string{"timezone": "'UTC'"},
		Layout: Layout{16, 2, ""}, Session: []string{setDMY, setSearchPath}, Schema: MatrixSchema},
	{Name: "c-ny-iso", Collation: collationC, TimeZone: "America/New_York" + dsnSetting, DateStyle: defaultDateISO, SearchPath: defaultSearchPt,
		InitDB: initdbC, Layout: Layout{3, 2, dsnNewYork + "&" + SimpleProtocol}},
	{Name: "c-kol-dmy-sp", Collation: collationC, TimeZone: "Asia/Kolkata" + serverSetting, DateStyle: "SQL, DMY" + serverSetting, SearchPath: `"Sch ema"` + dsnSetting,
		InitDB: initdbC, Server: map[string]string{"timezone": "'Asia/Kolkata'", "datestyle": "'SQL, DMY'"},
		Layout: Layout{16, 1, dsnSearchPath}, Schema: MatrixSchema},
	{Name: "libc-utc-iso-sp", Collation: collationLibc, TimeZone: "UTC (SET over Kolkata)", DateStyle: defaultDateISO, SearchPath: `"Sch ema"` + dsnSetting,
		InitDB: initdbLibc, Server: map[string]string{"timezone": "'Asia/Kolkata'"},
		Layout: Layout{16, 2, dsnSearchPath}, Session: []string{setUTC}, Schema: MatrixSchema},
	{Name: "libc-ny-dmy", Collation: collationLibc, TimeZone: "America/New_York" + serverSetting, DateStyle: "SQL, DMY" + dsnSetting, SearchPath: defaultSearchPt,
		InitDB: initdbLibc, Server: map[string]string{"timezone": "'America/New_York'"},
		Layout: Layout{32, 1, dsnDMY}},
	{Name: "libc-kol-dmy", Collation: collationLibc, TimeZone: "Asia/Kolkata" + sessionSetting, DateStyle: "SQL, DMY" + serverSetting, SearchPath: defaultSearchPt,
		InitDB: initdbLibc, Server: map[string]string{"datestyle": "'SQL, DMY'"},
		Layout: Layout{16, 2, ""}, Session: []string{setKolkata}},
	{Name: "icu-utc-dmy", Collation: collationICU, TimeZone: "UTC (DSN over New_York)", DateStyle: "SQL, DMY" + serverSetting, SearchPath: defaultSearchPt,
		InitDB: initdbICU, Server: map[string]string{"timezone": "'America/New_York'", "datestyle": "'SQL, DMY'"},
		Layout: Layout{16, 2, dsnUTC}},
	{Name: "icu-ny-dmy-sp", Collation: collationICU, TimeZone: "America/New_York" + sessionSetting, DateStyle: "SQL, DMY" + sessionSetting, SearchPath: `"Sch ema"` + sessionSetting,
		InitDB: initdbICU, Layout: Layout{16, 2, ""}, Session: []string{setNewYork, setDMY, setSearchPath}, Schema: MatrixSchema},
	{Name: "icu-kol-iso-sp", Collation: collationICU, TimeZone: "Asia/Kolkata" + dsnSetting, DateStyle: defaultDateISO, SearchPath: `"Sch ema"` + dsnSetting,
		InitDB: initdbICU, Layout: Layout{3, 1, dsnKolkata + "&" + dsnSearchPath}, Schema: MatrixSchema},
}

// CellResult is one cell's report, or the error that kept it from running.
type CellResult struct {
	Cell   Cell
	Report *Report
	Err    error
	Time   time.Duration
}

// MatrixTable renders the outcome counts of every cell, one line each, in
// a compact table for a test log or a closing note.
func MatrixTable(results []CellResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %-16s %-24s %-17s %-18s %-6s %7s %7s %7s %7s %7s %8s\n",
		"cell", "collation", "TimeZone", "DateStyle", "search_path", "layout", "queries", "equal", "refused", "error", "wrong", "time")
	var total [numOutcomes]int
	var n int
	for _, r := range results {
		c := r.Cell
		layout := fmt.Sprintf("%dx%d", c.Layout.Shards, c.Layout.Replicas)
		if strings.Contains(c.Layout.Options, SimpleProtocol) {
			layout += "s"
		}
		fmt.Fprintf(&b, "%-16s %-16s %-24s %-17s %-18s %-6s ", c.Name, c.Collation, c.TimeZone, c.DateStyle, c.SearchPath, layout)
		if r.Report == nil || len(r.Report.Layouts) == 0 {
			fmt.Fprintf(&b, "did not run: %s\n", oneLine(fmt.Sprint(r.Err), 200))
			continue
		}
		lr := r.Report.Layouts[0]
		fmt.Fprintf(&b, "%7d %7d %7d %7d %7d %8s", len(lr.Findings), lr.Counts[Equal], lr.Counts[Refused], lr.Counts[Error], lr.Counts[Wrong], dur(r.Time))
		if len(r.Report.CorpusBugs) > 0 {
			fmt.Fprintf(&b, "  (%d corpus bugs)", len(r.Report.CorpusBugs))
		}
		b.WriteByte('\n')
		n += len(lr.Findings)
		for i, x := range lr.Counts {
			total[i] += x
		}
	}
	fmt.Fprintf(&b, "%-16s %-16s %-24s %-17s %-18s %-6s %7d %7d %7d %7d %7d\n", "total", "", "", "", "", "", n,
		total[Equal], total[Refused], total[Error], total[Wrong])
	b.WriteString("(server): initdb or postgresql.conf; (DSN): a runtime parameter of the DSN; (SET): a statement on each session;\n")
	b.WriteString("\"over X\": the server's own setting is X. queries include one storage check per distributed table.\n")
	b.WriteString("layout SHARDSxREPLICAS, s: pgx's simple protocol. The oracle runs on the cell's metadata server with the same settings.\n")
	return b.String()
}
