-- Drops the distributed table: its shards, placements and metadata go too.
DROP TABLE events;
