package pgshard_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// reopen returns a new *sql.DB on the test database, whose catalog is read
// when it first connects: it sees metadata changed by hand at once.
func (e *env) reopen() *sql.DB {
	e.t.Helper()
	db, err := sql.Open("pgshard", e.DSN)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

// placementOf returns the placement of shard shardID on node host:port
// among ps, or a zero placement.
func placementOf(ps []placement, shardID int64, host string, port int) placement {
	for _, p := range ps {
		if p.ShardID == shardID && p.Host == host && p.Port == port {
			return p
		}
	}
	return placement{}
}

// setupColocatedPair creates a (k text, v int) and b (k text, w int), both
// with shards x replicas, so b joins a's co-location group.
func setupColocatedPair(t *testing.T, shards, replicas int) *env {
	e := newEnv(t)
	for _, ddl := range []string{
		`CREATE TABLE a (k text NOT NULL, v int)`,
		`CREATE TABLE b (k text NOT NULL, w int)`,
	} {
		e.exec(ddl)
	}
	for _, tb := range []string{"a", "b"} {
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, tb)
		e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', %d, %d)`, tb, shards, replicas))
	}
	return e
}

// TestColocatedJoinReadsWhereEveryTableIsFinalized: a statement joining
// co-located tables runs on a node only where every table's placement of
// the shard is finalized. b's placement on a's first node is inactive and
// holds a row the others lack: a join sent there would count it.
func TestColocatedJoinReadsWhereEveryTableIsFinalized(t *testing.T) {
	ctx := context.Background()
	e := setupColocatedPair(t, 2, 2)
	e.exec(`INSERT INTO a VALUES ('k1', 1)`)
	e.exec(`INSERT INTO b VALUES ('k1', 10), ('k1', 20)`)

	aShard, bShard := e.shardOfText("a", "k1"), e.shardOfText("b", "k1")
	var aFirst placement
	for _, p := range e.placements("a") {
		if p.ShardID == aShard {
			aFirst = p // the lowest id: the one reads go to first
			break
		}
	}
	stale := placementOf(e.placements("b"), bShard, aFirst.Host, aFirst.Port)
	if stale.ID == 0 {
		t.Fatalf("b's shard %d has no placement on %s:%d: a and b are not co-located", bShard, aFirst.Host, aFirst.Port)
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, stale.ID)
	if _, err := e.workerAt(stale.Host, stale.Port).Exec(ctx, fmt.Sprintf(`INSERT INTO b_%d VALUES ('k1', 1000)`, bShard)); err != nil {
		t.Fatal(err)
	}
	db := e.reopen()

	reads := []struct {
		name, sql string
		want      int64
	}{
		{"router join", `SELECT sum(w) FROM a JOIN b ON a.k = b.k WHERE a.k = 'k1'`, 30},
		{"router join b first", `SELECT sum(w) FROM b JOIN a ON a.k = b.k WHERE b.k = 'k1'`, 30},
		{"scatter join", `SELECT sum(w) FROM a JOIN b USING (k)`, 30},
		{"correlated subquery", `SELECT count(*) FROM a WHERE EXISTS (SELECT FROM b WHERE b.k = a.k AND b.w = 1000)`, 0},
		{"b alone", `SELECT sum(w) FROM b WHERE k = 'k1'`, 30},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			var got int64
			if err := db.QueryRow(r.sql).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != r.want {
				t.Fatalf("got %d, want %d", got, r.want)
			}
		})
	}
	t.Run("explain", func(t *testing.T) {
		rows, err := db.Query(`EXPLAIN SELECT sum(w) FROM a JOIN b ON a.k = b.k WHERE a.k = 'k1'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var plan []string
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, l)
		}
		text := strings.Join(plan, "\n")
		stalePlace := fmt.Sprintf("%s:%d", stale.Host, stale.Port)
		i := strings.Index(text, "every co-located shard finalized on: ")
		if i < 0 {
			t.Fatalf("EXPLAIN does not say where the join can read:\n%s", text)
		}
		usable := text[i:]
		usable = usable[:strings.IndexByte(usable+"\n", '\n')]
		if strings.Contains(usable, stalePlace) || strings.HasSuffix(usable, "none") {
			t.Fatalf("EXPLAIN lists %s (b inactive there) or nothing as usable: %s", stalePlace, usable)
		}
	})
	t.Run("transaction", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var got int64
		if err := tx.QueryRow(`SELECT sum(w) FROM a JOIN b ON a.k = b.k WHERE a.k = 'k1'`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != 30 {
			t.Fatalf("got %d, want 30", got)
		}
	})

	// Writes that read b would read the stale placement on a's first node:
	// refused. Writes of a alone, and writes of b, go on.
	refused := []string{
		`UPDATE a SET v = b.w FROM b WHERE a.k = b.k AND a.k = 'k1' AND b.w = 20`,
		`DELETE FROM a USING b WHERE a.k = b.k AND a.k = 'k1' AND b.w = 1000`,
		`UPDATE a SET v = b.w FROM b WHERE a.k = b.k AND b.w = 20`,
		`INSERT INTO a VALUES ('k1', (SELECT max(w) FROM b WHERE k = 'k1'))`,
		// The statement runs on b's placements (b comes first), but writes
		// a, which has one more: that one would miss the write.
		`WITH x AS (SELECT k FROM b WHERE k = 'k1') UPDATE a SET v = 7 WHERE k = 'k1' AND k IN (SELECT k FROM x)`,
		// The statement runs on a's placements and writes b, inactive on one.
		`WITH x AS (SELECT k FROM a WHERE k = 'k1') UPDATE b SET w = 7 WHERE k = 'k1' AND k IN (SELECT k FROM x)`,
	}
	for _, q := range refused {
		t.Run("refused "+q, func(t *testing.T) {
			_, err := db.Exec(q)
			expectError(t, err, "55000", "cannot run the write")
		})
	}
	var v int64
	if err := db.QueryRow(`SELECT sum(v) FROM a`).Scan(&v); err != nil || v != 1 {
		t.Fatalf("a changed by a refused write: sum(v) = %d, %v", v, err)
	}
	if _, err := db.Exec(`UPDATE a SET v = 2 WHERE k = 'k1'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE b SET w = w + 1 WHERE k = 'k1'`); err != nil {
		t.Fatal(err)
	}
	// A write of b reading a: b's own placements are what it writes; a is
	// finalized wherever b is written.
	if _, err := db.Exec(`UPDATE b SET w = a.v FROM a WHERE a.k = b.k AND b.k = 'k1' AND b.w = 11`); err != nil {
		t.Fatal(err)
	}
	var got int64
	if err := db.QueryRow(`SELECT sum(w) FROM a JOIN b ON a.k = b.k WHERE a.k = 'k1'`).Scan(&got); err != nil || got != 23 {
		t.Fatalf("after writes: sum(w) = %d, %v; want 23", got, err)
	}

	// Now a's placement on the other node is inactive too: no node has both
	// finalized. The join is refused; each table alone still answers.
	other := placement{}
	for _, p := range e.placements("a") {
		if p.ShardID == aShard && p.ID != aFirst.ID {
			other = p
		}
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, other.ID)
	db = e.reopen()
	_, err := db.Exec(`SELECT sum(w) FROM a JOIN b ON a.k = b.k WHERE a.k = 'k1'`)
	expectError(t, err, "55000", "no node holds a finalized placement")
	if err := db.QueryRow(`SELECT sum(w) FROM b WHERE k = 'k1'`).Scan(&got); err != nil || got != 23 {
		t.Fatalf("b alone: %d, %v", got, err)
	}
	if err := db.QueryRow(`SELECT sum(v) FROM a WHERE k = 'k1'`).Scan(&got); err != nil || got != 2 {
		t.Fatalf("a alone: %d, %v", got, err)
	}
}

// colocationGroups returns each distributed table's recorded co-location
// group id (0: none).
func (e *env) colocationGroups() map[string]int64 {
	e.t.Helper()
	rows, err := e.DB.Query(`SELECT p.relation_id::regclass::text, coalesce(c.colocation_id, 0)
		FROM pgs_distribution_metadata.partition p
		LEFT JOIN pgs_distribution_metadata.colocation c USING (relation_id)`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var id int64
		if err := rows.Scan(&name, &id); err != nil {
			e.t.Fatal(err)
		}
		out[name] = id
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// colocationTables are tables of several layouts: those with the same key
// type, shard count and replication factor (hence ranges and nodes) share a
// group.
var colocationTables = []struct {
	name, keyType  string
	shards, copies int
	group          string // tables with the same label share a group
}{
	{"t_text_4x2", "text", 4, 2, "A"},
	{"t_text_4x2_b", "text", 4, 2, "A"},
	{"t_text_8x2", "text", 8, 2, "B"},
	{"t_text_4x1", "text", 4, 1, "C"},
	{"t_int_4x2", "int", 4, 2, "D"},
	{"t_bigint_4x2", "bigint", 4, 2, "E"},
	{"t_varchar_4x2", "varchar", 4, 2, "F"},
	{"t_text_4x2_c", "text", 4, 2, "A"},
	{"t_int_4x2_b", "int", 4, 2, "D"},
	{"t_text_8x2_b", "text", 8, 2, "B"},
}

func checkGroups(t *testing.T, got map[string]int64) {
	t.Helper()
	ids := map[string]int64{}
	labels := map[int64]string{}
	for _, c := range colocationTables {
		id := got[c.name]
		if id == 0 {
			t.Fatalf("%s has no co-location group: %v", c.name, got)
		}
		if want, ok := ids[c.group]; ok && want != id {
			t.Errorf("%s is in group %d, want %d (that of the other tables labelled %s)", c.name, id, want, c.group)
		}
		if l, ok := labels[id]; ok && l != c.group {
			t.Errorf("%s (label %s) shares group %d with tables labelled %s", c.name, c.group, id, l)
		}
		ids[c.group], labels[id] = id, c.group
	}
}

func createColocationTables(e *env) {
	for _, c := range colocationTables {
		e.exec(fmt.Sprintf(`CREATE TABLE %s (k %s NOT NULL, v int)`, c.name, c.keyType))
		e.exec(`SELECT master_create_distributed_table($1, 'k')`, c.name)
		e.exec(fmt.Sprintf(`SELECT master_create_worker_shards('%s', %d, %d)`, c.name, c.shards, c.copies))
	}
}

// TestColocationGroupsAreRecorded: master_create_worker_shards puts a table
// into the group of a table with the same key type, shard ranges and
// placement nodes, else into a new group; the planner joins tables of one
// group shard by shard, and the others by reading one side first
// (Broadcast).
func TestColocationGroupsAreRecorded(t *testing.T) {
	e := newEnv(t)
	createColocationTables(e)
	checkGroups(t, e.colocationGroups())

	for _, c := range colocationTables {
		e.exec(fmt.Sprintf(`INSERT INTO %s VALUES ('1', 1), ('2', 2), ('3', 3)`, c.name))
	}
	// A new process loads the groups from the metadata.
	db := e.reopen()
	for _, a := range colocationTables {
		for _, b := range colocationTables {
			q := fmt.Sprintf(`SELECT count(*) FROM %s x JOIN %s y ON x.k = y.k`, a.name, b.name)
			var n int
			err := db.QueryRow(q).Scan(&n)
			if a.group == b.group {
				if err != nil || n != 3 {
					t.Errorf("%s: %d, %v; want 3", q, n, err)
				}
				continue
			}
			if a.keyType != b.keyType {
				// Keys of different types are never co-located. Where
				// PostgreSQL compares them (int = bigint, text = varchar)
				// one side is read first, with the same answer; where it
				// does not (int = text), PostgreSQL's error.
				if err != nil {
					expectError(t, err, "42883", "")
					continue
				}
				if n != 3 {
					t.Errorf("%s: %d; want 3", q, n)
				}
				expectBroadcast(t, db, q)
				continue
			}
			// Not co-located: the same answer, by reading one side first.
			if err != nil || n != 3 {
				t.Errorf("%s: %d, %v; want 3", q, n, err)
			}
			expectBroadcast(t, db, q)
		}
	}
}

// TestColocationBackfill: metadata written by a pgshard that recorded no
// groups (no colocation table) gets them when a process first opens it.
func TestColocationBackfill(t *testing.T) {
	e := newEnv(t)
	createColocationTables(e)
	before := e.colocationGroups()
	e.exec(`DROP TABLE pgs_distribution_metadata.colocation`)
	e.exec(`DROP SEQUENCE pgs_distribution_metadata.colocation_id_sequence`)
	db := e.reopen()
	// Opening it upgrades the schema; the groups are the same partition of
	// the tables as master_create_worker_shards made.
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t_text_4x2 x JOIN t_text_4x2_c y ON x.k = y.k`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	after := e.colocationGroups()
	checkGroups(t, after)
	for a := range before {
		for b := range before {
			if (before[a] == before[b]) != (after[a] == after[b]) {
				t.Errorf("%s and %s: groups %d, %d before; %d, %d after", a, b, before[a], before[b], after[a], after[b])
			}
		}
	}
	// A table created now joins the backfilled groups.
	e.exec(`CREATE TABLE t_text_4x2_d (k text NOT NULL, v int)`)
	e.exec(`SELECT master_create_distributed_table('t_text_4x2_d', 'k')`)
	if _, err := db.Exec(`SELECT master_create_worker_shards('t_text_4x2_d', 4, 2)`); err != nil {
		t.Fatal(err)
	}
	if g := e.colocationGroups(); g["t_text_4x2_d"] != g["t_text_4x2"] {
		t.Fatalf("t_text_4x2_d in group %d, t_text_4x2 in %d", g["t_text_4x2_d"], g["t_text_4x2"])
	}
	// Rows removed by hand: the table is co-located with no other. The
	// change bumps the metadata version, as every metadata change does.
	version := e.queryInt(`SELECT version FROM pgs_distribution_metadata.metadata_version`)
	e.exec(`DELETE FROM pgs_distribution_metadata.colocation WHERE relation_id = 't_text_4x2_b'::regclass`)
	if v := e.queryInt(`SELECT version FROM pgs_distribution_metadata.metadata_version`); v <= version {
		t.Fatalf("metadata version %d after changing colocation, %d before", v, version)
	}
	// A new process no longer joins it shard by shard: it reads one side
	// first, with the same answer.
	db = e.reopen()
	for _, table := range []string{"t_text_4x2", "t_text_4x2_b"} {
		if _, err := db.Exec(fmt.Sprintf(`INSERT INTO %s VALUES ('1', 1), ('2', 2), ('3', 3)`, table)); err != nil {
			t.Fatal(err)
		}
	}
	q := `SELECT count(*) FROM t_text_4x2 x JOIN t_text_4x2_b y ON x.k = y.k`
	var got int
	if err := db.QueryRow(q).Scan(&got); err != nil || got != 3 {
		t.Fatalf("%s: %d, %v; want 3", q, got, err)
	}
	expectBroadcast(t, db, q)
}

// expectBroadcast fails t unless EXPLAIN shows that q reads one of its
// tables first instead of joining shard by shard.
func expectBroadcast(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	rows, err := db.Query("EXPLAIN " + q)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", q, err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if !strings.Contains(plan.String(), "Broadcast: distributed table") {
		t.Errorf("EXPLAIN %s does not show a broadcast:\n%s", q, plan.String())
	}
}

// TestMoveShardPlacementMovesColocatedShards: moving a shard moves the
// shard with the same range of every table in its co-location group, so the
// group stays co-located; tables of other groups stay where they are.
func TestMoveShardPlacementMovesColocatedShards(t *testing.T) {
	ctx := context.Background()
	e := setupColocatedPair(t, 4, 2)
	e.exec(`CREATE TABLE c (k text NOT NULL, w int)`)
	e.exec(`SELECT master_create_distributed_table('c', 'k')`)
	e.exec(`SELECT master_create_worker_shards('c', 8, 2)`)
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("key-%d", i)
		e.exec(`INSERT INTO a VALUES ($1, $2)`, k, i)
		e.exec(`INSERT INTO b VALUES ($1, $2), ($1, $3)`, k, i, -i)
		e.exec(`INSERT INTO c VALUES ($1, $2)`, k, i)
	}
	groups := e.colocationGroups()
	cBefore := e.placements("c")

	// nodesOf returns the nodes holding each shard of table, by range.
	type shardNodes map[string]string // "min" -> "host:port/state,..." sorted
	nodesOf := func(table string) shardNodes {
		rows, err := e.DB.Query(`SELECT s.min_value, string_agg(p.node_name || ':' || p.node_port || '/' || p.shard_state, ',' ORDER BY p.node_name, p.node_port)
			FROM pgs_distribution_metadata.shard s JOIN pgs_distribution_metadata.shard_placement p ON p.shard_id = s.id
			WHERE s.relation_id = $1::regclass GROUP BY s.min_value`, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := shardNodes{}
		for rows.Next() {
			var min, nodes string
			if err := rows.Scan(&min, &nodes); err != nil {
				t.Fatal(err)
			}
			out[min] = nodes
		}
		return out
	}
	if fmt.Sprint(nodesOf("a")) != fmt.Sprint(nodesOf("b")) {
		t.Fatalf("a and b placed differently: %v vs %v", nodesOf("a"), nodesOf("b"))
	}

	// Move a's first shard off its first node to a node without it.
	ps := e.placements("a")
	moved := ps[0]
	dest := e.nodeWithout("a", moved.ShardID)
	var bShard int64
	for _, p := range e.placements("b") {
		if p.Host == moved.Host && p.Port == moved.Port {
			var same bool
			if err := e.DB.QueryRow(`SELECT (SELECT min_value FROM pgs_distribution_metadata.shard WHERE id = $1) =
				(SELECT min_value FROM pgs_distribution_metadata.shard WHERE id = $2)`, p.ShardID, moved.ShardID).Scan(&same); err != nil {
				t.Fatal(err)
			}
			if same {
				bShard = p.ShardID
			}
		}
	}
	if bShard == 0 {
		t.Fatalf("b has no shard co-located with a's shard %d on %s:%d", moved.ShardID, moved.Host, moved.Port)
	}

	// The co-located shard of b must be finalized on the source: refused
	// otherwise, and nothing changes.
	bStale := placementOf(e.placements("b"), bShard, moved.Host, moved.Port)
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 3 WHERE id = $1`, bStale.ID)
	aNodes, bNodes := nodesOf("a"), nodesOf("b")
	_, err := e.DB.Exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, moved.ShardID, moved.Host, moved.Port, dest.Host, dest.Port)
	expectError(t, err, "55000", "has no finalized placement")
	if fmt.Sprint(nodesOf("a")) != fmt.Sprint(aNodes) || fmt.Sprint(nodesOf("b")) != fmt.Sprint(bNodes) {
		t.Fatalf("a refused move changed placements: a %v -> %v, b %v -> %v", aNodes, nodesOf("a"), bNodes, nodesOf("b"))
	}
	e.exec(`UPDATE pgs_distribution_metadata.shard_placement SET shard_state = 1 WHERE id = $1`, bStale.ID)

	e.exec(`SELECT master_move_shard_placement($1, $2, $3, $4, $5)`, moved.ShardID, moved.Host, moved.Port, dest.Host, dest.Port)

	aAfter, bAfter := nodesOf("a"), nodesOf("b")
	if fmt.Sprint(aAfter) != fmt.Sprint(bAfter) {
		t.Fatalf("after the move a and b are placed differently: %v vs %v", aAfter, bAfter)
	}
	if fmt.Sprint(aAfter) == fmt.Sprint(aNodes) {
		t.Fatalf("nothing moved: %v", aAfter)
	}
	for _, tb := range []string{"a", "b"} {
		for _, p := range e.placements(tb) {
			if p.ShardID == moved.ShardID || p.ShardID == bShard {
				if p.Host == moved.Host && p.Port == moved.Port {
					t.Errorf("%s's shard %d is still on %s:%d", tb, p.ShardID, p.Host, p.Port)
				}
			}
		}
		e.assertReplicasIdentical(tb)
	}
	for _, id := range []int64{moved.ShardID, bShard} {
		table := "a"
		if id == bShard {
			table = "b"
		}
		var exists bool
		if err := e.workerAt(moved.Host, moved.Port).QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, fmt.Sprintf("%s_%d", table, id)).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("%s_%d is still on the source %s:%d", table, id, moved.Host, moved.Port)
		}
	}
	if fmt.Sprint(e.placements("c")) != fmt.Sprint(cBefore) {
		t.Errorf("c, in another group, changed: %v -> %v", cBefore, e.placements("c"))
	}
	if fmt.Sprint(e.colocationGroups()) != fmt.Sprint(groups) {
		t.Errorf("groups changed: %v -> %v", groups, e.colocationGroups())
	}
	// The group still joins, with every row, from a new process too.
	for _, db := range []*sql.DB{e.DB, e.reopen()} {
		var n, s int64
		if err := db.QueryRow(`SELECT count(*), sum(a.v + b.w) FROM a JOIN b USING (k)`).Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		if n != 400 || s != 39800 {
			t.Fatalf("join after the move: count %d, sum %d; want 400, 39800", n, s)
		}
	}
}
