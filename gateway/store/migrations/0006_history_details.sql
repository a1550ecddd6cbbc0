-- 0006: written once for SQLite and PostgreSQL; {ID} and {BLOB} are the only words that differ.
ALTER TABLE events ADD COLUMN performed_on TEXT;
ALTER TABLE events ADD COLUMN flags TEXT;
ALTER TABLE events ADD COLUMN sender_contact TEXT;
