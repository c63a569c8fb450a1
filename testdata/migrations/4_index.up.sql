CREATE INDEX events_payload_idx ON events (payload);
