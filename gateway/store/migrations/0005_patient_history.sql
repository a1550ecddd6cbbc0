-- 0005: written once for SQLite and PostgreSQL; {ID} and {BLOB} are the only words that differ.
ALTER TABLE events ADD COLUMN patient_key TEXT;
ALTER TABLE events ADD COLUMN sender_herid BIGINT;
CREATE INDEX events_patient ON events(patient_key, samhandlingspunkt);
