-- 0012 (issue 15): the outcome of every audited action (a failed replay must not look like a successful one),
-- and an index for every filter of the operators' lists, so they stay under a second at a million messages.
ALTER TABLE audit ADD COLUMN outcome TEXT;
CREATE INDEX events_received ON events(received_at);
CREATE INDEX events_status_received ON events(status, received_at);
CREATE INDEX events_kommune_received ON events(kommunenummer, received_at);
CREATE INDEX events_reason_received ON events(reason_code, received_at);
CREATE INDEX events_sp_received ON events(samhandlingspunkt, received_at);
CREATE INDEX messages_created ON messages(created_at);
CREATE INDEX messages_status_created ON messages(status, created_at);
CREATE INDEX messages_receiver_created ON messages(to_herid, created_at);
CREATE INDEX audit_action ON audit(action, at);
