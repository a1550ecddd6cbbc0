-- 0003: written once for SQLite and PostgreSQL; {ID} and {BLOB} are the only words that differ.
ALTER TABLE events ADD COLUMN dedupe_key TEXT;
UPDATE events SET dedupe_key = event_id WHERE event_id IS NOT NULL;
CREATE UNIQUE INDEX events_dedupe ON events(dedupe_key);
