DELETE FROM events WHERE tenant_id IN (20, 21, 22);
