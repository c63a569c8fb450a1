-- Statement 2 of 3 fails (duplicate key): nothing of this file stays.
INSERT INTO events (tenant_id, id, payload) VALUES (20, 1, 'x'), (21, 1, 'y'), (22, 1, 'z');
INSERT INTO events (tenant_id, id, payload) VALUES (1, 1, 'duplicate');
DELETE FROM plans;
