package catalog

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
)

// layout is what decides whether two tables can share a co-location group:
// the key type, and per shard (in range order) the range and the nodes that
// hold a placement of it, whatever its state.
type layout struct {
	relid        uint32
	colocationID int64 // 0: none recorded
	keyType      uint32
	shards       []shardLayout
}

type shardLayout struct {
	min, max int32
	nodes    []string // "name:port", sorted
}

// sameAs reports whether rows with equal keys of l's and m's tables would
// live in the same shard index on the same nodes.
func (l *layout) sameAs(m *layout) bool {
	if l.keyType != m.keyType || len(l.shards) != len(m.shards) || len(l.shards) == 0 {
		return false
	}
	for i := range l.shards {
		a, b := &l.shards[i], &m.shards[i]
		if a.min != b.min || a.max != b.max || !slices.Equal(a.nodes, b.nodes) {
			return false
		}
	}
	return true
}

// readLayouts reads the layout of every distributed table that has shards,
// ordered by co-location id (tables without one last), then relation id.
func readLayouts(ctx context.Context, q Querier) ([]*layout, error) {
	rows, err := q.Query(ctx, `
		SELECT p.relation_id, coalesce(c.colocation_id, 0), a.atttypid, s.min_value, s.max_value,
		       coalesce(array_agg(pl.node_name || ':' || pl.node_port ORDER BY pl.node_name, pl.node_port)
		                FILTER (WHERE pl.id IS NOT NULL), '{}')
		FROM pgs_distribution_metadata.partition p
		JOIN pg_attribute a ON a.attrelid = p.relation_id AND a.attname = p.key AND a.attnum > 0 AND NOT a.attisdropped
		JOIN pgs_distribution_metadata.shard s ON s.relation_id = p.relation_id
		LEFT JOIN pgs_distribution_metadata.shard_placement pl ON pl.shard_id = s.id
		LEFT JOIN pgs_distribution_metadata.colocation c ON c.relation_id = p.relation_id
		GROUP BY p.relation_id, c.colocation_id, a.atttypid, s.id, s.min_value, s.max_value`)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading table layouts: %w", err)
	}
	defer rows.Close()
	byRel := map[uint32]*layout{}
	// Tables with a shard whose range is not a pair of integers join no
	// group (statements on them fail, see Table.Invalid); they do not stop
	// the others from finding theirs.
	invalid := map[uint32]bool{}
	for rows.Next() {
		var l layout
		var minText, maxText string
		var nodes []string
		if err := rows.Scan(&l.relid, &l.colocationID, &l.keyType, &minText, &maxText, &nodes); err != nil {
			return nil, fmt.Errorf("catalog: reading table layouts: %w", err)
		}
		lo, err1 := strconv.ParseInt(minText, 10, 32)
		hi, err2 := strconv.ParseInt(maxText, 10, 32)
		if err1 != nil || err2 != nil {
			invalid[l.relid] = true
			continue
		}
		t := byRel[l.relid]
		if t == nil {
			t = &layout{relid: l.relid, colocationID: l.colocationID, keyType: l.keyType}
			byRel[l.relid] = t
		}
		t.shards = append(t.shards, shardLayout{min: int32(lo), max: int32(hi), nodes: nodes})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: reading table layouts: %w", err)
	}
	out := make([]*layout, 0, len(byRel))
	for _, l := range byRel {
		if invalid[l.relid] {
			continue
		}
		sort.Slice(l.shards, func(i, j int) bool { return l.shards[i].min < l.shards[j].min })
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.colocationID == 0) != (b.colocationID == 0) {
			return b.colocationID == 0
		}
		if a.colocationID != b.colocationID {
			return a.colocationID < b.colocationID
		}
		return a.relid < b.relid
	})
	return out, nil
}

// assignColocation records the co-location group of table l.relid: the
// group of the first table (lowest group id) with the same layout, or a new
// group. A matching table without a recorded group joins the new group too.
// It returns the group id.
func assignColocation(ctx context.Context, q Querier, l *layout, tables []*layout) (int64, error) {
	var match *layout
	for _, m := range tables {
		if m.relid != l.relid && m.sameAs(l) {
			match = m
			break
		}
	}
	id := int64(0)
	if match != nil && match.colocationID != 0 {
		id = match.colocationID
	} else {
		if err := q.QueryRow(ctx, `SELECT nextval('pgs_distribution_metadata.colocation_id_sequence')`).Scan(&id); err != nil {
			return 0, fmt.Errorf("catalog: allocating a co-location group: %w", err)
		}
		if match != nil {
			if err := recordColocation(ctx, q, match.relid, id); err != nil {
				return 0, err
			}
			match.colocationID = id
		}
	}
	if err := recordColocation(ctx, q, l.relid, id); err != nil {
		return 0, err
	}
	l.colocationID = id
	return id, nil
}

func recordColocation(ctx context.Context, q Querier, relid uint32, id int64) error {
	if _, err := q.Exec(ctx, `INSERT INTO pgs_distribution_metadata.colocation (relation_id, colocation_id) VALUES ($1, $2)
		ON CONFLICT (relation_id) DO UPDATE SET colocation_id = excluded.colocation_id`, relid, id); err != nil {
		return fmt.Errorf("catalog: recording co-location group of relation %d: %w", relid, err)
	}
	return nil
}

// BackfillColocation records a co-location group for every distributed
// table that has shards but none recorded (its shards were created by a
// pgshard that did not record groups): the group of a table with the same
// key type, shard ranges and placement nodes, or a new one — what
// master_create_worker_shards would have chosen. EnsureSchema runs it when it
// upgrades an older schema, holding the schema lock; run it in one
// transaction.
func BackfillColocation(ctx context.Context, q Querier) error {
	tables, err := readLayouts(ctx, q)
	if err != nil {
		return err
	}
	for _, l := range tables {
		if l.colocationID != 0 {
			continue
		}
		// Tables already recorded come first in tables, so l joins an
		// existing group when one matches.
		if _, err := assignColocation(ctx, q, l, tables); err != nil {
			return err
		}
	}
	return nil
}

// ColocationGroup returns the relation ids of the tables in relid's
// co-location group, relid included, ordered; just relid when it has none.
func ColocationGroup(ctx context.Context, q Querier, relid uint32) ([]uint32, error) {
	rows, err := q.Query(ctx, `
		SELECT c2.relation_id FROM pgs_distribution_metadata.colocation c1
		JOIN pgs_distribution_metadata.colocation c2 ON c2.colocation_id = c1.colocation_id
		JOIN pgs_distribution_metadata.partition p ON p.relation_id = c2.relation_id
		WHERE c1.relation_id = $1 ORDER BY c2.relation_id`, relid)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading co-location group of relation %d: %w", relid, err)
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var r uint32
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("catalog: reading co-location group of relation %d: %w", relid, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: reading co-location group of relation %d: %w", relid, err)
	}
	if !slices.Contains(out, relid) {
		out = append(out, relid)
		slices.Sort(out)
	}
	return out, nil
}
