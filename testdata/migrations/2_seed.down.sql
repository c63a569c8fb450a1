DELETE FROM events;
DROP TABLE plans;
