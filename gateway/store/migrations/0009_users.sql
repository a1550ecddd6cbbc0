-- 0007: written once for SQLite and PostgreSQL; {ID} and {BLOB} are the only words that differ.
-- Users of the web console. Only argon2 hashes are kept; role is 'lesetilgang' (read) or 'drift' (may act).
-- failed_sign_ins and locked_until live here, not in a process, so a lockout holds across console replicas.
CREATE TABLE users (
    id {ID},
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    last_sign_in_at TEXT,
    failed_sign_ins INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT
);
CREATE INDEX audit_at ON audit(at);
