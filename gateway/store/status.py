"""The store's side of the status events told back to hospitals.

Every state change is already a row in ``transitions``, written in the same transaction as the change.
``tell_statuses`` takes the rows not yet told, in order, lets the caller build and publish the statuses,
and marks the rows told in the same database transaction. A crash before the mark leaves them untold, so
the next run publishes the same statuses again (the rows never change: same ids, same bytes), and no change
is ever lost. On PostgreSQL the rows are claimed with ``FOR UPDATE SKIP LOCKED``, so two replicas never tell
the same change at the same time; on SQLite the write lock does the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.store.db import Database, Tx

EVENT_STATES = ("routed", "sent", "parked", "not_shared", "declined")
MESSAGE_STATES = ("acknowledged", "rejected", "overdue", "superseded")


@dataclass
class StatusFacts:
    """What the status builder needs besides the transitions, read in the same transaction."""

    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    receivers: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def _marks(n: int) -> str:
    return ",".join("?" * n)


class StatusChanges:
    db: Database

    def tell_statuses(self, tell: Callable[[list[dict[str, Any]], StatusFacts], None], limit: int = 500) -> int:
        """Hands the next untold changes (with ``previous``: the entity's state before, and ``earlier``: how often
        it entered this state before) to ``tell``; marks them told when ``tell`` returns. Returns how many
        rows were looked at (0: nothing to tell)."""
        lock = " FOR UPDATE OF t SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        # Events are recorded without an fsync (EventStore.record_events): a status is told only of rows that
        # are durable, so a power cut cannot take back a row whose status a hospital already has.
        self.db.barrier()

        def work(tx: Tx) -> int:
            rows = tx.all(
                "SELECT t.id, t.entity, t.ref, t.status, t.at, t.reason_code, t.reason, "
                "(SELECT p.status FROM transitions p WHERE p.entity = t.entity AND p.ref = t.ref AND p.id < t.id "
                " ORDER BY p.id DESC LIMIT 1) AS previous, "
                "(SELECT count(*) FROM transitions s WHERE s.entity = t.entity AND s.ref = t.ref "
                " AND s.status = t.status AND s.id < t.id) AS earlier "
                f"FROM transitions t WHERE t.told IS NULL ORDER BY t.id LIMIT ?{lock}", (limit,))
            if not rows:
                return 0
            changes = [r for r in rows if (r["entity"] == "event" and r["status"] in EVENT_STATES)
                       or (r["entity"] == "message" and r["status"] in MESSAGE_STATES)]
            if changes:
                tell(changes, self._facts(tx, changes))
            tx.many("UPDATE transitions SET told = 1 WHERE id = ?", [(r["id"],) for r in rows])
            return len(rows)

        return self.db.transaction(work)

    @staticmethod
    def _facts(tx: Tx, changes: list[dict[str, Any]]) -> StatusFacts:
        facts = StatusFacts()
        refs = sorted({int(c["ref"]) for c in changes if c["entity"] == "event"})
        if refs:
            facts.events = {r["id"]: r for r in tx.all(
                f"SELECT id, event_id, sender_herid FROM events WHERE id IN ({_marks(len(refs))})", refs)}
            for r in tx.all(f"SELECT event_ref, msg_id, to_herid, role FROM messages WHERE event_ref IN "
                            f"({_marks(len(refs))}) ORDER BY to_herid", refs):
                facts.receivers.setdefault(r["event_ref"], []).append(r)
        msg_ids = sorted({c["ref"] for c in changes if c["entity"] == "message"})
        if msg_ids:
            facts.messages = {r["msg_id"]: r for r in tx.all(
                "SELECT m.msg_id, m.event_ref, m.to_herid, m.role, m.apprec_status, m.apprec_errors, e.event_id, "
                f"e.sender_herid FROM messages m JOIN events e ON e.id = m.event_ref WHERE m.msg_id IN "
                f"({_marks(len(msg_ids))})", msg_ids)}
        return facts
