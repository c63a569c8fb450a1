package pgshard_test

import "testing"

// TestReplicatedWriteReadingSystemColumn: through the driver, a write to a
// replicated table that reads xmin or ctid is refused with 0A000 and changes
// nothing; the same reads in a SELECT or RETURNING work, and the replicas
// stay identical.
func TestReplicatedWriteReadingSystemColumn(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE kv (k bigint PRIMARY KEY, v text)`)
	e.exec(`SELECT master_create_distributed_table('kv', 'k')`)
	e.exec(`SELECT master_create_worker_shards('kv', 4, 2)`)
	e.exec(`INSERT INTO kv VALUES (1, 'a'), (2, 'b')`)
	for _, q := range []string{
		`UPDATE kv SET v = xmin::text WHERE k = 1`,
		`UPDATE kv SET v = 'x' WHERE k = 1 AND ctid = '(0,1)'`,
		`DELETE FROM kv WHERE ctid = '(0,1)'`,
	} {
		_, err := e.DB.Exec(q)
		expectError(t, err, "0A000", "system column")
	}
	var ctid, xmin string
	if err := e.DB.QueryRow(`SELECT ctid::text, xmin::text FROM kv WHERE k = 1`).Scan(&ctid, &xmin); err != nil {
		t.Fatal(err)
	}
	if err := e.DB.QueryRow(`UPDATE kv SET v = 'c' WHERE k = 1 RETURNING ctid::text`).Scan(&ctid); err != nil {
		t.Fatal(err)
	}
	if n := e.queryInt(`SELECT count(*) FROM kv WHERE v IN ('a', 'b', 'c')`); n != 2 {
		t.Fatalf("%d rows keep their values, want 2", n)
	}
	e.assertReplicasIdentical("kv")
}
