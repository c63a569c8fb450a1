-- plans stays an ordinary table on the metadata database.
CREATE TABLE plans (name text PRIMARY KEY, quota int NOT NULL);
INSERT INTO plans VALUES ('free', 10), ('pro', 1000);
INSERT INTO events (tenant_id, id, payload) VALUES
    (1, 1, 'signup;free'), (1, 2, 'upgrade'), (2, 1, $$it's "quoted";$$),
    (3, 1, 'a'), (4, 1, 'b'), (5, 1, 'c'), (6, 1, 'd'), (7, 1, 'e'),
    (8, 1, 'f'), (9, 1, 'g'), (10, 1, 'h'), (11, 1, 'i'), (12, 1, 'j');
UPDATE events SET payload = payload || ' (seen)' WHERE id = 1;
