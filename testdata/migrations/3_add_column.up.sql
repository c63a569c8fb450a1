-- ALTER TABLE on a distributed table: the template and every placement;
-- now() is evaluated once, so every row and replica gets the same value.
ALTER TABLE events ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
UPDATE events SET created_at = '2024-01-01' WHERE tenant_id = 1;
