-- 0002: written once for SQLite and PostgreSQL; {ID} and {BLOB} are the only words that differ.
ALTER TABLE events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE messages ADD COLUMN apprec_status TEXT;
ALTER TABLE messages ADD COLUMN apprec_errors TEXT;
ALTER TABLE messages ADD COLUMN answered_at TEXT;
ALTER TABLE messages ADD COLUMN overdue_at TEXT;
CREATE INDEX messages_status ON messages(status, sent_at);
CREATE TABLE apprecs (
    id {ID},
    apprec_id TEXT NOT NULL,
    original_msg_id TEXT NOT NULL,
    status TEXT NOT NULL,
    errors TEXT NOT NULL,
    received_at TEXT NOT NULL,
    matched INTEGER NOT NULL
);
CREATE TABLE audit (
    id {ID},
    at TEXT NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT
);
