package plan

import (
	"github.com/pgshard/pgshard/catalog"
	"github.com/pgshard/pgshard/internal/sqlerr"
)

// ShardIndex returns the index, in t.Shards, of the shard that holds key
// value v: the accessor of a table's shards by key that the planner and
// the primitives both need.
func ShardIndex(t *catalog.Table, v any) (int, error) {
	h, err := catalog.Hash(t.KeyType, v)
	if err != nil {
		return 0, err
	}
	i := t.ShardForHash(h)
	if i < 0 {
		return 0, sqlerr.New(sqlerr.ObjectNotInPrereq, "no shard of distributed table \"%s\" covers hash value %d", t.Name, h)
	}
	return i, nil
}
