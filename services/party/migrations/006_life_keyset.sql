-- An organisation's life pages by keyset, newest period first (period, at, event_id); the counts
-- of meetings held and periods missed beside each page are read from the same index.
DROP INDEX org_life_log_org;
CREATE INDEX org_life_log_keyset ON org_life_log (org_id, period, at, event_id) INCLUDE (held);
