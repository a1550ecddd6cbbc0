-- 0007: how each receiver reads (AMQP or EDI 2.0), and the EDI 2.0 bookkeeping of a message: the id the
-- Meldingstjener API gave it and the hash of the exact bytes posted (a repeat must be the same bytes).
ALTER TABLE parties ADD COLUMN edi_address TEXT;
ALTER TABLE messages ADD COLUMN transport TEXT NOT NULL DEFAULT 'amqp';
ALTER TABLE messages ADD COLUMN api_id TEXT;
ALTER TABLE messages ADD COLUMN posted_at TEXT;
ALTER TABLE messages ADD COLUMN reason_code TEXT;
ALTER TABLE messages ADD COLUMN reason TEXT;
CREATE INDEX messages_transport ON messages(transport, status);
