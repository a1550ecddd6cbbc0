-- 0010 (issue 13): receipts checked against the parties, duplicates found by AppRec Id; what arrives on the
-- served parties' queues and is not a receipt. Written once for SQLite and PostgreSQL.
ALTER TABLE apprecs ADD COLUMN outcome TEXT;
ALTER TABLE apprecs ADD COLUMN sender_herids TEXT;
ALTER TABLE apprecs ADD COLUMN receiver_herids TEXT;
CREATE INDEX apprecs_apprec_id ON apprecs(apprec_id);
CREATE TABLE inbound (
    id {ID},
    received_at TEXT NOT NULL,
    queue TEXT NOT NULL,
    amqp_message_id TEXT,
    msg_type TEXT,
    msg_id TEXT,
    from_herid TEXT,
    to_herid TEXT,
    status TEXT NOT NULL,
    reason_code TEXT,
    reason TEXT,
    body {BLOB} NOT NULL
);
CREATE INDEX inbound_status ON inbound(status, received_at);
