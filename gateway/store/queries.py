"""What operators ask of the store: find and show events and messages, their history, the audit trail,
and the bookkeeping of an operator's re-send."""

from __future__ import annotations

from typing import Any

from gateway.messages.outbound import Melding
from gateway.store.db import Database, Tx
from gateway.store.events import FLAG_CLAUSE, flag_pattern, now_utc, transition


class OperatorQueries:
    """Reads for the CLI and the console; writes only what an operator's action records."""

    db: Database

    def find_messages(self, *, status: str | None = None, receiver: int | None = None, kommune: str | None = None,
                      samhandlingspunkt: int | None = None, since: str | None = None, until: str | None = None,
                      flag: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        where, args = ["1=1"], []
        for clause, value in (("m.status = ?", status), ("m.to_herid = ?", receiver), ("e.kommunenummer = ?", kommune),
                              ("e.samhandlingspunkt = ?", samhandlingspunkt), ("m.created_at >= ?", since),
                              ("m.created_at < ?", until),
                              (FLAG_CLAUSE.replace("flags", "e.flags"), flag_pattern(flag))):
            if value is not None:
                where.append(clause)
                args.append(value)
        return self.db.query(
            "SELECT m.msg_id, m.event_ref, e.event_id, m.msg_type, m.from_herid, m.to_herid, m.role, m.status, "
            "m.created_at, m.sent_at, m.apprec_status, m.apprec_errors, e.samhandlingspunkt, e.kommunenummer, "
            "e.flags "
            f"FROM messages m JOIN events e ON e.id = m.event_ref WHERE {' AND '.join(where)} "
            "ORDER BY m.created_at, m.msg_id LIMIT ?", (*args, limit))

    def find_events(self, *, status: str | None = None, reason_code: str | None = None, since: str | None = None,
                    until: str | None = None, flag: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        where, args = ["1=1"], []
        for clause, value in (("status = ?", status), ("reason_code = ?", reason_code), ("received_at >= ?", since),
                              ("received_at < ?", until), (FLAG_CLAUSE, flag_pattern(flag))):
            if value is not None:
                where.append(clause)
                args.append(value)
        return self.db.query(
            "SELECT id, event_id, received_at, status, reason_code, reason, samhandlingspunkt, kommunenummer, "
            f"attempts, flags FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", (*args, limit))

    def event(self, key: str) -> dict[str, Any] | None:
        """By event_id or by the store's own number."""
        rows = self.db.query("SELECT * FROM events WHERE event_id = ?", (key.lower(),))
        if not rows and key.isascii() and key.isdigit() and len(key) <= 18:  # a store number fits 64 bits
            rows = self.db.query("SELECT * FROM events WHERE id = ?", (int(key),))
        return rows[0] if rows else None

    def message(self, msg_id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM messages WHERE msg_id = ?", (msg_id,))
        return rows[0] if rows else None

    def add_resend(self, original_msg_id: str, melding: Melding | None, operator: str, reason: str) -> None:
        """Record an operator's re-send: the same MsgId again, or (``melding``) a new conversation."""

        def work(tx: Tx) -> None:
            now = now_utc()
            if melding is None:
                tx.execute("UPDATE messages SET status='sent', sent_at=? WHERE msg_id=?", (now, original_msg_id))
                transition(tx, "message", original_msg_id, "sent", "replay", f"re-sent by {operator}: {reason}")
                return
            ref = tx.execute("SELECT event_ref FROM messages WHERE msg_id=?", (original_msg_id,)).fetchone()
            tx.execute(
                "INSERT INTO messages(msg_id, event_ref, msg_type, from_herid, to_herid, role, why, xml, status, "
                "created_at, sent_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (melding.msg_id, ref["event_ref"], melding.msg_type, melding.from_herid, melding.to_herid, melding.role,
                 melding.why, melding.xml, "sent", now, now))
            transition(tx, "message", melding.msg_id, "sent", "replay",
                             f"new conversation replacing {original_msg_id}, by {operator}: {reason}")
            transition(tx, "message", original_msg_id, "superseded", "replay", f"replaced by {melding.msg_id}")
            tx.execute("UPDATE messages SET status='superseded' WHERE msg_id=?", (original_msg_id,))

        self.db.transaction(work)

    def audit(self, operator: str, action: str, target: str, reason: str, detail: str | None = None) -> None:
        def work(tx: Tx) -> None:
            tx.execute("INSERT INTO audit(at, operator, action, target, reason, detail) VALUES (?,?,?,?,?,?)",
                          (now_utc(), operator, action, target, reason, detail))

        self.db.transaction(work)

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.db.query("SELECT at, operator, action, target, reason, detail FROM audit ORDER BY id DESC LIMIT ?",
                           (limit,))

    def events(self) -> list[dict[str, Any]]:
        return self.db.query(
            "SELECT id, event_id, received_at, status, reason_code, reason, samhandlingspunkt, kommunenummer "
            "FROM events ORDER BY id"
        )

    def messages(self, ref: int | None = None) -> list[dict[str, Any]]:
        query = ("SELECT msg_id, event_ref, msg_type, from_herid, to_herid, role, why, status, created_at, "
                 "sent_at, xml FROM messages")
        if ref is None:
            return self.db.query(query + " ORDER BY event_ref, to_herid")
        return self.db.query(query + " WHERE event_ref = ? ORDER BY to_herid", (ref,))

    def history(self, entity: str, ref: str) -> list[dict[str, Any]]:
        return self.db.query(
            "SELECT status, at, reason_code, reason FROM transitions WHERE entity=? AND ref=? ORDER BY id",
            (entity, str(ref)),
        )

