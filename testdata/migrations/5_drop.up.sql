DROP TABLE plans;
DROP TABLE events;
