CREATE TABLE plans (name text PRIMARY KEY, quota int NOT NULL);
CREATE TABLE events (
    tenant_id bigint NOT NULL,
    id bigint NOT NULL,
    payload text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX events_payload_idx ON events (payload);
SELECT master_create_distributed_table('events', 'tenant_id');
SELECT master_create_worker_shards('events', 4, 2);
