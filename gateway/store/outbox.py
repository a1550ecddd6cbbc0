"""The store's side of the transports other than the consumer's own broker transaction (EDI 2.0): the
messages waiting for their outbox, the API's id once posted, and a message a transport refused for good."""

from __future__ import annotations

from typing import Any

from gateway.store.db import Database, Tx
from gateway.store.events import now_utc, transition


class OutboxStore:
    db: Database

    def pending(self, transport: str, limit: int = 100) -> list[dict[str, Any]]:
        """Messages stored and waiting for a transport other than the consumer's own (EDI 2.0): the outbox.
        Oldest first, so a backlog drains in order."""
        return self.db.query(
            "SELECT m.msg_id, m.event_ref, e.event_id, m.msg_type, m.from_herid, m.to_herid, m.role, m.why, "
            "m.created_at, m.xml, m.transport, m.api_id FROM messages m JOIN events e ON e.id = m.event_ref "
            "WHERE m.transport = ? AND m.status = 'built' ORDER BY m.created_at, m.msg_id LIMIT ?",
            (transport, limit))

    def record_posted(self, msg_id: str, api_id: str) -> None:
        """The Meldingstjener took the message and gave it ``api_id``; kept before anything else, so a
        crash after this never posts it again (the sender asks the API about ``api_id`` instead)."""

        def work(tx: Tx) -> None:
            tx.execute("UPDATE messages SET api_id=?, posted_at=? WHERE msg_id=?", (api_id, now_utc(), msg_id))

        self.db.transaction(work)

    def park_message(self, msg_id: str, code: str, reason: str) -> None:
        """A transport refused the message for good (an EDI 2.0 4xx): the operator sees the code and the
        API's text, fixes the cause and replays it."""

        def work(tx: Tx) -> None:
            tx.execute("UPDATE messages SET status='parked', reason_code=?, reason=? WHERE msg_id=?",
                       (code, reason, msg_id))
            transition(tx, "message", msg_id, "parked", code, reason)

        self.db.transaction(work)
