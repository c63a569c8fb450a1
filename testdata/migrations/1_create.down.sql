-- Refused today (DROP TABLE on a distributed table, 0A000).
DROP TABLE events;
