package repair

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgshard/pgshard/catalog"
)

// The resolver drops a recorded fence only when its repair or move is
// over (no placement of its shard filling), only while the trigger carries
// the recorded version (never a later repair's fence), and not at all
// while its worker cannot be reached; a record whose node no longer holds
// a placement of the shard is deleted without touching the worker; a
// fence whose table is gone loses its record.
func TestDropFinishedFences(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := setup(t, ctx)
	if err := catalog.EnsureFenceRecords(ctx, f.meta); err != nil {
		t.Fatal(err)
	}
	table := f.ddl.ShardTableIdentifier(shardID)
	for _, tc := range []struct {
		name string
		// installed: the version of the trigger on the source (0: none);
		// recorded: the version of the record.
		installed, recorded int64
		// targetState: the target placement's state (5: a repair still
		// filling it); sourceGone: the source's placement row is deleted
		// (a move switched away from it).
		targetState int
		sourceGone  bool
		// unreachable: the resolver has no connection to the source.
		unreachable bool
		// dropTable: the source's shard table is gone.
		dropTable                 bool
		wantDropped, wantTriggers int
		wantRecords               int
	}{
		{name: "repair over", installed: 7, recorded: 7, targetState: 1, wantDropped: 1, wantTriggers: 0, wantRecords: 0},
		{name: "repair reverted", installed: 7, recorded: 7, targetState: 3, wantDropped: 1, wantTriggers: 0, wantRecords: 0},
		{name: "repair still filling", installed: 7, recorded: 7, targetState: 5, wantDropped: 0, wantTriggers: 1, wantRecords: 1},
		{name: "source unreachable", installed: 7, recorded: 7, targetState: 1, unreachable: true, wantDropped: 0, wantTriggers: 1, wantRecords: 1},
		{name: "a later repair's fence", installed: 9, recorded: 7, targetState: 1, wantDropped: 0, wantTriggers: 1, wantRecords: 0},
		{name: "fence already dropped", installed: 0, recorded: 7, targetState: 1, wantDropped: 0, wantTriggers: 0, wantRecords: 0},
		{name: "moved away from the node", installed: 7, recorded: 7, targetState: 1, sourceGone: true, wantDropped: 0, wantTriggers: 1, wantRecords: 0},
		{name: "table gone", installed: 7, recorded: 7, targetState: 1, dropTable: true, wantDropped: 0, wantTriggers: 0, wantRecords: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustExec(t, ctx, f.meta, `DELETE FROM `+catalog.FenceRecordTable,
				`DELETE FROM pgs_distribution_metadata.shard_placement`,
				`INSERT INTO pgs_distribution_metadata.shard_placement VALUES (1, 10000, 1, '`+f.source.Name+`', `+itoa(f.source.Port)+`), (2, 10000, `+itoa(tc.targetState)+`, '`+f.target.Name+`', `+itoa(f.target.Port)+`)`)
			mustExec(t, ctx, f.src, `DROP TRIGGER IF EXISTS `+fenceTrigger+` ON `+table)
			if tc.installed != 0 {
				if err := installFence(ctx, connectNode, f.source, f.ddl, shardID, tc.installed); err != nil {
					t.Fatal(err)
				}
			}
			if err := catalog.RecordFence(ctx, f.meta, catalog.FenceRecord{ShardID: shardID, Node: f.source, Table: table, Version: tc.recorded}); err != nil {
				t.Fatal(err)
			}
			if tc.sourceGone {
				mustExec(t, ctx, f.meta, `DELETE FROM pgs_distribution_metadata.shard_placement WHERE id = 1`)
			}
			if tc.dropTable {
				mustExec(t, ctx, f.src, `ALTER TABLE `+table+` RENAME TO gone`)
				defer mustExec(t, ctx, f.src, `ALTER TABLE "App".gone RENAME TO "Docs_10000"`)
			}
			conns := map[catalog.Node]*pgx.Conn{f.source: f.src, f.target: f.tgt}
			if tc.unreachable {
				delete(conns, f.source)
			}
			dropped, err := catalog.DropFinishedFences(ctx, f.meta, func(n catalog.Node) *pgx.Conn { return conns[n] })
			if err != nil {
				t.Fatal(err)
			}
			var triggers, records int
			if err := f.src.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname = $1 AND tgrelid = to_regclass($2)`, fenceTrigger, table).Scan(&triggers); err != nil {
				t.Fatal(err)
			}
			if tc.dropTable {
				triggers = 0 // the renamed table keeps its trigger; nothing looked for it
			}
			if err := f.meta.QueryRow(ctx, `SELECT count(*) FROM `+catalog.FenceRecordTable).Scan(&records); err != nil {
				t.Fatal(err)
			}
			if dropped != tc.wantDropped || triggers != tc.wantTriggers || records != tc.wantRecords {
				t.Errorf("dropped %d, fences left %d, records left %d; want %d, %d, %d", dropped, triggers, records, tc.wantDropped, tc.wantTriggers, tc.wantRecords)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
