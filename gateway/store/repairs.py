"""What an operator's repairs write (issue 15): a re-route's new conversations and the messages they
supersede, the registry version the running gateway reloads on, the parked events an automatic retry
picks up, and retention's purge. Kept out of ``events`` (the consumer's hot path) on purpose: these run
seldom, under an operator's hand, and must not slow or complicate the path every event takes."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import IO, Any

from gateway.messages.outbound import Melding
from gateway.store.db import Database, Tx
from gateway.store.events import now_utc, transition

# An event whose messages may still change (an AppRec may arrive, the outbox may send) is never purged.
RETAINABLE_EVENTS = ("sent", "not_shared", "declined", "parked")
OPEN_MESSAGES = ("built", "sent")


class RepairStore:
    """Mixed into ``SqlStore``."""

    db: Database

    def registry_version(self) -> int | None:
        """The number of the newest registry import (any kind): the running gateway reloads when it grows."""
        rows = self.db.query("SELECT max(id) AS n FROM registry_imports")
        return int(rows[0]["n"]) if rows and rows[0]["n"] is not None else None

    def parked_ids(self, reason_codes: Sequence[str]) -> list[int]:
        """Parked events with one of these reason codes, oldest first (the automatic retry's work list)."""
        if not reason_codes:
            return []
        marks = ",".join("?" * len(reason_codes))
        return [int(r["id"]) for r in self.db.query(
            f"SELECT id FROM events WHERE status = 'parked' AND reason_code IN ({marks}) ORDER BY id",
            list(reason_codes))]

    def record_reroute(self, ref: int, new: Sequence[Melding], superseded: Sequence[tuple[str, str]],
                       facts: dict[str, Any] | None, note: str) -> None:
        """One transaction: the new conversations (``built``; the transport marks them sent), the old messages
        they replace (``superseded``, with the MsgId that replaced them), and a parked event becoming routed
        with the facts it now has. ``note`` is the operator's line in the event's history (no patient data)."""

        def work(tx: Tx) -> None:
            now = now_utc()
            for m in new:
                tx.execute("INSERT INTO messages(msg_id, event_ref, msg_type, from_herid, to_herid, role, why, xml, "
                           "status, created_at, transport) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                           (m.msg_id, ref, m.msg_type, m.from_herid, m.to_herid, m.role, m.why, m.xml, "built", now,
                            m.transport))
                transition(tx, "message", m.msg_id, "built", "reroute", f"{m.why}; {note}")
            for msg_id, why in superseded:
                tx.execute("UPDATE messages SET status='superseded' WHERE msg_id=?", (msg_id,))
                transition(tx, "message", msg_id, "superseded", "reroute", why)
            if facts is not None:
                tx.execute("UPDATE events SET status='routed', reason_code=NULL, reason=NULL, samhandlingspunkt=?, "
                           "kommunenummer=?, patient_key=?, sender_herid=?, performed_on=? WHERE id=?",
                           (facts["samhandlingspunkt"], facts["kommunenummer"], facts["patient_key"],
                            facts["sender_herid"], facts["performed_on"], ref))
                transition(tx, "event", ref, "routed", "reroute", note)
            else:
                transition(tx, "event", ref, "rerouted", "reroute", note)  # history only: not a state

        self.db.transaction(work)

    def retention_candidates(self, before: str) -> dict[str, int]:
        """How many events (and their messages) received before ``before`` a purge would remove."""
        where, args = self._retention_where(before)
        events = self.db.query(f"SELECT count(*) AS n FROM events e WHERE {where}", args)[0]["n"]
        messages = self.db.query(
            f"SELECT count(*) AS n FROM messages WHERE event_ref IN (SELECT id FROM events e WHERE {where})",
            args)[0]["n"]
        return {"events": int(events), "messages": int(messages)}

    def purge(self, before: str, archive: IO[str] | None = None, batch: int = 1000) -> dict[str, int]:
        """Remove events received before ``before`` that are finished, with their messages, receipts and
        history, in batches (one transaction each, so a long purge never holds the consumer up for long).
        ``archive``: each event is first written there as one JSON line (body and XML base64)."""
        where, args = self._retention_where(before)
        done = {"events": 0, "messages": 0}
        while True:
            ids = [int(r["id"]) for r in self.db.query(
                f"SELECT id FROM events e WHERE {where} ORDER BY id LIMIT ?", (*args, batch))]
            if not ids:
                return done
            marks = ",".join("?" * len(ids))
            if archive is not None:
                for event in self.db.query(f"SELECT * FROM events WHERE id IN ({marks}) ORDER BY id", ids):
                    msgs = self.db.query("SELECT * FROM messages WHERE event_ref = ? ORDER BY created_at",
                                         (event["id"],))
                    archive.write(json.dumps({"event": _plain(event), "messages": [_plain(m) for m in msgs]},
                                             ensure_ascii=False) + "\n")

            def work(tx: Tx, ids: list[int] = ids, marks: str = marks) -> int:
                msg_ids = [r["msg_id"] for r in tx.all(f"SELECT msg_id FROM messages WHERE event_ref IN ({marks})",
                                                        ids)]
                for start in range(0, len(msg_ids), 500):
                    chunk = msg_ids[start:start + 500]
                    cm = ",".join("?" * len(chunk))
                    tx.execute(f"DELETE FROM transitions WHERE entity='message' AND ref IN ({cm})", chunk)
                    tx.execute(f"DELETE FROM apprecs WHERE original_msg_id IN ({cm})", chunk)
                tx.execute(f"DELETE FROM messages WHERE event_ref IN ({marks})", ids)
                tx.execute(f"DELETE FROM transitions WHERE entity='event' AND ref IN ({marks})",
                           [str(i) for i in ids])
                tx.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)
                return len(msg_ids)

            done["messages"] += self.db.transaction(work)
            done["events"] += len(ids)

    @staticmethod
    def _retention_where(before: str) -> tuple[str, list[Any]]:
        states = ",".join("?" * len(RETAINABLE_EVENTS))
        opened = ",".join("?" * len(OPEN_MESSAGES))
        return (f"e.received_at < ? AND e.status IN ({states}) AND NOT EXISTS (SELECT 1 FROM messages m WHERE "
                f"m.event_ref = e.id AND m.status IN ({opened}))", [before, *RETAINABLE_EVENTS, *OPEN_MESSAGES])


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON: bytes (a body, an XML) base64."""
    return {k: base64.b64encode(bytes(v)).decode("ascii") if isinstance(v, bytes | bytearray | memoryview) else v
            for k, v in row.items()}
