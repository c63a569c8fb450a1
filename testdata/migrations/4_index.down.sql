DROP INDEX events_payload_idx;
