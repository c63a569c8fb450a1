-- events is distributed by tenant_id: 4 shards, 2 replicas each.
CREATE TABLE events (
    tenant_id bigint NOT NULL,
    id bigint NOT NULL,
    payload text,
    PRIMARY KEY (tenant_id, id)
);
SELECT master_create_distributed_table('events', 'tenant_id');
SELECT master_create_worker_shards('events', 4, 2);
