package catalog

import (
	"context"
	"fmt"
	"strconv"
)

// Load reads the whole distribution metadata into a new Snapshot, in one
// REPEATABLE READ snapshot of the metadata database when q is a transaction
// (the caller's choice; Cache.Refresh does so).
func Load(ctx context.Context, q Querier) (*Snapshot, error) {
	version, err := CurrentVersion(ctx, q)
	if err != nil {
		return nil, err
	}
	var searchPath []string
	if err := q.QueryRow(ctx, `SELECT current_schemas(false)::text[]`).Scan(&searchPath); err != nil {
		return nil, fmt.Errorf("catalog: reading search_path: %w", err)
	}

	nodes, err := loadNodes(ctx, q)
	if err != nil {
		return nil, err
	}

	tables := map[uint32]*Table{}
	rows, err := q.Query(ctx, `
		SELECT p.relation_id, n.nspname, c.relname, p.partition_method::text, p.key
		FROM pgs_distribution_metadata.partition p
		JOIN pg_class c ON c.oid = p.relation_id
		JOIN pg_namespace n ON n.oid = c.relnamespace`)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading partitions: %w", err)
	}
	for rows.Next() {
		t := &Table{KeyIndex: -1}
		var method string
		if err := rows.Scan(&t.RelationID, &t.Schema, &t.Name, &method, &t.KeyColumn); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: reading partitions: %w", err)
		}
		if method != "" {
			t.Method = method[0]
		}
		tables[t.RelationID] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: reading partitions: %w", err)
	}

	rows, err = q.Query(ctx, `
		SELECT a.attrelid, a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod), a.attnotnull,
		       coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity <> ''
		FROM pg_attribute a
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid IN (SELECT relation_id FROM pgs_distribution_metadata.partition)
		  AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attrelid, a.attnum`)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading columns: %w", err)
	}
	for rows.Next() {
		var relid uint32
		var col Column
		var identity bool
		if err := rows.Scan(&relid, &col.Name, &col.TypeOID, &col.TypeName, &col.NotNull, &col.Default, &identity); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: reading columns: %w", err)
		}
		col.SequenceDefault = identity || containsNextval(col.Default)
		if identity && col.Default == "" {
			col.Default = "identity"
		}
		if t := tables[relid]; t != nil {
			if col.Name == t.KeyColumn {
				t.KeyIndex = len(t.Columns)
				t.KeyType = col.TypeOID
			}
			t.Columns = append(t.Columns, col)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: reading columns: %w", err)
	}

	rows, err = q.Query(ctx, `
		SELECT i.indrelid, a.attname
		FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indisprimary AND i.indrelid IN (SELECT relation_id FROM pgs_distribution_metadata.partition)`)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading primary keys: %w", err)
	}
	for rows.Next() {
		var relid uint32
		var col string
		if err := rows.Scan(&relid, &col); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: reading primary keys: %w", err)
		}
		if t := tables[relid]; t != nil {
			t.PrimaryKey = append(t.PrimaryKey, col)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: reading primary keys: %w", err)
	}

	rows, err = q.Query(ctx, `SELECT relation_id, colocation_id FROM pgs_distribution_metadata.colocation`)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading co-location groups: %w", err)
	}
	for rows.Next() {
		var relid uint32
		var id int64
		if err := rows.Scan(&relid, &id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: reading co-location groups: %w", err)
		}
		if t := tables[relid]; t != nil {
			t.ColocationID = id
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: reading co-location groups: %w", err)
	}

	shards := map[int64]*Table{}
	shardIndex := map[int64]int{}
	rows, err = q.Query(ctx, `SELECT id, relation_id, min_value, max_value FROM pgs_distribution_metadata.shard ORDER BY relation_id, id`)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading shards: %w", err)
	}
	for rows.Next() {
		var s Shard
		var minText, maxText string
		if err := rows.Scan(&s.ID, &s.RelationID, &minText, &maxText); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: reading shards: %w", err)
		}
		t := tables[s.RelationID]
		if t == nil {
			continue // a shard of a table that was dropped
		}
		lo, err1 := strconv.ParseInt(minText, 10, 32)
		hi, err2 := strconv.ParseInt(maxText, 10, 32)
		if err1 != nil || err2 != nil {
			// The table is unusable until the row is corrected; the
			// others are not (NewSnapshot makes it Invalid).
			t.invalidRows = append(t.invalidRows, fmt.Sprintf("shard %d has a range that is not a pair of int32 values: [%q, %q]", s.ID, minText, maxText))
			continue
		}
		s.Min, s.Max = int32(lo), int32(hi)
		shardIndex[s.ID] = len(t.Shards)
		shards[s.ID] = t
		t.Shards = append(t.Shards, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: reading shards: %w", err)
	}

	rows, err = q.Query(ctx, `SELECT id, shard_id, shard_state, node_name, node_port FROM pgs_distribution_metadata.shard_placement ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading placements: %w", err)
	}
	for rows.Next() {
		var p Placement
		var state int32
		if err := rows.Scan(&p.ID, &p.ShardID, &state, &p.Node.Name, &p.Node.Port); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: reading placements: %w", err)
		}
		p.State = ShardState(state)
		if t := shards[p.ShardID]; t != nil {
			s := &t.Shards[shardIndex[p.ShardID]]
			s.Placements = append(s.Placements, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: reading placements: %w", err)
	}

	if err := loadLegacyNames(ctx, q, shards); err != nil {
		return nil, err
	}

	// Resolve unqualified names of distributed tables as PostgreSQL would:
	// the first schema on the search path holding a relation of that name.
	names := map[string]string{}
	list := make([]*Table, 0, len(tables))
	for _, t := range tables {
		list = append(list, t)
		names[t.Name] = ""
	}
	if len(names) > 0 {
		wanted := make([]string, 0, len(names))
		for n := range names {
			wanted = append(wanted, n)
		}
		rows, err = q.Query(ctx, `
			SELECT DISTINCT ON (c.relname) c.relname, n.nspname
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relname = ANY($1) AND n.nspname = ANY(current_schemas(false))
			ORDER BY c.relname, array_position(current_schemas(false), n.nspname)`, wanted)
		if err != nil {
			return nil, fmt.Errorf("catalog: resolving table names: %w", err)
		}
		for rows.Next() {
			var rel, nsp string
			if err := rows.Scan(&rel, &nsp); err != nil {
				rows.Close()
				return nil, fmt.Errorf("catalog: resolving table names: %w", err)
			}
			names[rel] = nsp
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("catalog: resolving table names: %w", err)
		}
		for n, sch := range names {
			if sch == "" {
				delete(names, n)
			}
		}
	}
	snap, err := NewSnapshot(version, nodes, searchPath, list, names)
	if err != nil {
		return nil, err
	}
	if snap.ordinary, err = loadOrdinary(ctx, q, tables); err != nil {
		return nil, err
	}
	if snap.schemasOf, err = loadSchemasOf(ctx, q); err != nil {
		return nil, err
	}
	return snap, nil
}

// loadSchemasOf maps the name of every user relation (distributed or not)
// to every schema, system ones included, holding a relation of that name
// (table, view, index, sequence...): what WithSearchPath needs to resolve
// an unqualified name under another search_path. Temporary schemas are left
// out: their relations belong to one session each.
func loadSchemasOf(ctx context.Context, q Querier) (map[string][]string, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname::text, array_agg(n.nspname::text ORDER BY n.nspname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast%'
		  AND c.relname IN (SELECT c2.relname FROM pg_class c2 JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
		                    WHERE n2.nspname NOT IN ('pg_catalog', 'information_schema', 'pgs_distribution_metadata', 'pgshard')
		                      AND n2.nspname NOT LIKE 'pg\_%')
		GROUP BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing relation names: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var rel string
		var schemas []string
		if err := rows.Scan(&rel, &schemas); err != nil {
			return nil, fmt.Errorf("catalog: listing relation names: %w", err)
		}
		out[rel] = schemas
	}
	return out, rows.Err()
}

// loadOrdinary lists the user relations of the metadata database that are
// not distributed (not in system or pgshard schemas).
func loadOrdinary(ctx context.Context, q Querier, distributed map[uint32]*Table) (map[string]bool, error) {
	rows, err := q.Query(ctx, `
		SELECT c.oid, n.nspname, c.relname, n.nspname = ANY(current_schemas(false))
		       AND NOT EXISTS (SELECT FROM pg_class c2 JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
		                       WHERE c2.relname = c.relname AND n2.nspname = ANY(current_schemas(false))
		                         AND array_position(current_schemas(false), n2.nspname) < array_position(current_schemas(false), n.nspname))
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgs_distribution_metadata', 'pgshard')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'`)
	if err != nil {
		return nil, fmt.Errorf("catalog: listing ordinary tables: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var oid uint32
		var nsp, rel string
		var visible bool
		if err := rows.Scan(&oid, &nsp, &rel, &visible); err != nil {
			return nil, fmt.Errorf("catalog: listing ordinary tables: %w", err)
		}
		if distributed[oid] != nil {
			continue
		}
		out[nsp+"."+rel] = true
		if visible {
			out[rel] = true
		}
	}
	return out, rows.Err()
}

func loadNodes(ctx context.Context, q Querier) ([]Node, error) {
	rows, err := q.Query(ctx, `SELECT node_name, node_port FROM pgs_distribution_metadata.node ORDER BY node_name, node_port`)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading nodes: %w", err)
	}
	defer rows.Close()
	var nodes []Node
	for rows.Next() {
		var n Node
		if err := rows.Scan(&n.Name, &n.Port); err != nil {
			return nil, fmt.Errorf("catalog: reading nodes: %w", err)
		}
		nodes = append(nodes, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: reading nodes: %w", err)
	}
	return nodes, nil
}

func containsNextval(expr string) bool {
	for i := 0; i+8 <= len(expr); i++ {
		if expr[i:i+8] == "nextval(" {
			return true
		}
	}
	return false
}

// loadLegacyNames records, in their tables, the names of the shard tables
// an older pgshard created with names PostgreSQL truncated (see
// ShardName). shards maps shard ids to their tables.
func loadLegacyNames(ctx context.Context, q Querier, shards map[int64]*Table) error {
	rows, err := q.Query(ctx, `SELECT shard_id, table_name FROM pgs_distribution_metadata.shard_table_name`)
	if err != nil {
		return fmt.Errorf("catalog: reading shard table names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("catalog: reading shard table names: %w", err)
		}
		if t := shards[id]; t != nil {
			if t.legacyNames == nil {
				t.legacyNames = map[int64]string{}
			}
			t.legacyNames[id] = name
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog: reading shard table names: %w", err)
	}
	return nil
}
