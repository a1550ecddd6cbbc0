"""What arrives on the served parties' queues and is not a receipt: replies, "Tilbakemelding om feil i
mottatt melding", messages from other parties, and what cannot be read at all.

The gateway is the messaging system for the HER-ids it serves, so whatever NHN's network delivers to them
is the gateway's to keep: each arrival is recorded here before it is acked, with what could be read of its
envelope (never its content), then handed on to the hospital system or parked. Operators list them with
``gateway inbound list``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.store.db import Database, Tx
from gateway.store.events import now_utc, transition


@dataclass(frozen=True)
class InboundRecord:
    """One arrival: the bytes as they came, the queue, and what the envelope said (None when unreadable)."""

    queue: str
    body: bytes
    status: str  # handed_on | parked
    amqp_message_id: str | None = None
    msg_type: str | None = None
    msg_id: str | None = None
    from_herid: str | None = None
    to_herid: str | None = None
    reason_code: str | None = None
    reason: str | None = None


_COLUMNS = "id, received_at, queue, amqp_message_id, msg_type, msg_id, from_herid, to_herid, status, reason_code, " \
    "reason"


class InboundStore:
    db: Database

    def record_inbound(self, item: InboundRecord) -> int:
        """Record one arrival and its fate in one transaction; returns its reference."""

        def work(tx: Tx) -> int:
            row = tx.execute(
                "INSERT INTO inbound(received_at, queue, amqp_message_id, msg_type, msg_id, from_herid, to_herid, "
                "status, reason_code, reason, body) VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                (now_utc(), item.queue, item.amqp_message_id, item.msg_type, item.msg_id, item.from_herid,
                 item.to_herid, item.status, item.reason_code, item.reason, item.body)).fetchone()
            transition(tx, "inbound", row["id"], item.status, item.reason_code, item.reason)
            return int(row["id"])

        return self.db.transaction(work)

    def inbound(self, *, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Newest first, without the bodies."""
        if status is None:
            return self.db.query(f"SELECT {_COLUMNS} FROM inbound ORDER BY id DESC LIMIT ?", (limit,))
        return self.db.query(f"SELECT {_COLUMNS} FROM inbound WHERE status = ? ORDER BY id DESC LIMIT ?",
                             (status, limit))

    def inbound_item(self, ref: int) -> dict[str, Any] | None:
        rows = self.db.query(f"SELECT {_COLUMNS}, body FROM inbound WHERE id = ?", (ref,))
        return rows[0] if rows else None
