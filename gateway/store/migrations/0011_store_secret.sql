-- 0011: written once for SQLite and PostgreSQL; {ID} and {BLOB} are the only words that differ.
-- The fingerprint of the installation secret that keys events.patient_key (the secret itself is never here).
CREATE TABLE store_secret (
    fingerprint TEXT NOT NULL,
    since TEXT NOT NULL
);
