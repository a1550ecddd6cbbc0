-- 0001: written once for SQLite and PostgreSQL; {ID} and {BLOB} are the only words that differ.
CREATE TABLE events (
    id {ID},
    event_id TEXT UNIQUE,
    amqp_message_id TEXT,
    received_at TEXT NOT NULL,
    body {BLOB} NOT NULL,
    status TEXT NOT NULL,
    reason_code TEXT,
    reason TEXT,
    samhandlingspunkt INTEGER,
    kommunenummer TEXT
);
CREATE TABLE messages (
    msg_id TEXT PRIMARY KEY,
    event_ref BIGINT NOT NULL REFERENCES events(id),
    msg_type TEXT NOT NULL,
    from_herid BIGINT NOT NULL,
    to_herid BIGINT NOT NULL,
    role TEXT NOT NULL,
    why TEXT NOT NULL,
    xml {BLOB} NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX messages_event ON messages(event_ref);
CREATE TABLE transitions (
    id {ID},
    entity TEXT NOT NULL,
    ref TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL,
    reason_code TEXT,
    reason TEXT
);
CREATE INDEX transitions_ref ON transitions(entity, ref);
