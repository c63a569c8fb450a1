-- Runs once ALTER TABLE on distributed tables lands (issue 12 point 1);
-- refused with 0A000 today.
ALTER TABLE events ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
UPDATE events SET created_at = '2024-01-01' WHERE tenant_id = 1;
