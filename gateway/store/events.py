"""The store's hot path: what the consumer records for every batch, and the receipts it tracks.

The consumer records an event here *before* it acks it on the bus, so a crash can never lose one.
States: events go received → parked | routed → sent | not_shared | declined; messages go
built → sent → acknowledged | rejected | overdue (| superseded by an operator's new conversation).
Every change is a row in ``transitions``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from gateway.domain.history import Tidligere
from gateway.domain.kartlegging import Contact
from gateway.messages.outbound import Melding
from gateway.store.db import Database, Tx

END_STATES = ("sent", "not_shared", "declined")  # a duplicate of an event in these is only noted


def patient_key(fnr: str) -> str:
    """How the store finds a patient's earlier events without another copy of the number in clear."""
    return hashlib.sha256(("pakkeforlop-hjem/" + fnr).encode()).hexdigest()


def dedupe_key(item: Incoming) -> str:
    """What makes two deliveries the same event: its event_id; for a body too broken to have one, the
    AMQP message_id, else the body's hash (so a redelivered broken event is not recorded twice)."""
    if item.event_id:
        return item.event_id
    if item.amqp_message_id:
        return f"amqp:{item.amqp_message_id}"
    return "sha256:" + hashlib.sha256(item.body).hexdigest()


# flags is a comma-separated list; this finds one whole flag in it (the argument is flag_pattern(flag))
FLAG_CLAUSE = "',' || flags || ',' LIKE ?"


def flag_pattern(flag: str | None) -> str | None:
    return None if flag is None else f"%,{flag},%"


HISTORY_DEPTH = 20  # a patient's newest SP1/SP2 kartlegginger that routing looks at; real patients have a few


def _contact(stored: str | None) -> Contact | None:
    """The contact person of an earlier event, for a message that names that hospital."""
    if not stored:
        return None
    c = json.loads(stored)
    return Contact(c["name"], c["role"], c["phone"])


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class StoredEvent:
    ref: int
    status: str
    attempts: int = 1


@dataclass(frozen=True)
class Incoming:
    """One delivery as it came off the bus: the bytes exactly as they arrived, the event_id found in them
    (None when unreadable) and the AMQP properties the store and the parked queue keep."""

    body: bytes
    event_id: str | None
    amqp_message_id: str | None
    content_type: str | None = None


@dataclass(frozen=True)
class EventOutcome:
    """What the path decided for one stored event: routed (with its messages), parked or not_shared."""

    ref: int
    status: str
    reason_code: str | None = None
    reason: str | None = None
    samhandlingspunkt: int | None = None
    kommunenummer: str | None = None
    meldinger: tuple[Melding, ...] = ()
    patient_key: str | None = None
    sender_herid: int | None = None
    performed_on: str | None = None
    flags: tuple[str, ...] = ()
    sender_contact: Contact | None = None



TRANSITION = "INSERT INTO transitions(entity, ref, status, at, reason_code, reason) VALUES (?,?,?,?,?,?)"


def transition(tx: Tx, entity: str, ref: object, status: str, code: str | None = None,
                reason: str | None = None) -> None:
    tx.execute(TRANSITION, (entity, str(ref), status, now_utc(), code, reason))


class EventStore:
    """The consumer's and the receipt tracker's view of the store."""

    db: Database

    def record_events(self, items: Sequence[Incoming]) -> list[StoredEvent]:
        """Record a batch of deliveries in one transaction, before any of them is acked."""

        def work(tx: Tx) -> list[StoredEvent]:
            keys = [dedupe_key(item) for item in items]
            marks = ",".join("?" * len(keys))
            known = {r["dedupe_key"] for r in tx.all(f"SELECT dedupe_key FROM events WHERE dedupe_key IN ({marks})",
                                                     keys)}
            now, out = now_utc(), []
            transitions: list[tuple[object, ...]] = []
            for item, key in zip(items, keys, strict=True):
                if key in known:  # seen before, or earlier in this batch: the careful path, one by one
                    tx.many(TRANSITION, transitions)
                    transitions = []
                    out.append(self._record_again(tx, item, key))
                    continue
                row = tx.execute("INSERT INTO events(event_id, dedupe_key, amqp_message_id, received_at, body, status) "
                    "VALUES (?,?,?,?,?,?) RETURNING id",
                    (item.event_id, key, item.amqp_message_id, now, item.body, "received")).fetchone()
                known.add(key)
                transitions.append(("event", str(row["id"]), "received", now, None, None))
                out.append(StoredEvent(row["id"], "received", 1))
            tx.many(TRANSITION, transitions)
            return out

        return self.db.transaction(work)

    def _record_again(self, tx: Tx, item: Incoming, key: str) -> StoredEvent:
        """An event the store already has: a duplicate, a redelivery after a crash, or a replay."""
        row = tx.execute("SELECT id, status, attempts FROM events WHERE dedupe_key = ?", (key,)).fetchone()
        if row["status"] in END_STATES:
            transition(tx, "event", row["id"], row["status"], None, "received again: duplicate")
            return StoredEvent(row["id"], row["status"], row["attempts"])
        if row["status"] == "routed":
            # Built and perhaps published before a crash: the stored messages go out again, byte
            # for byte, so a receiver sees an identical re-send, never a second version.
            tx.execute("UPDATE events SET attempts = attempts + 1 WHERE id = ?", (row["id"],))
            transition(tx, "event", row["id"], "routed", None, "delivered again: re-send")
            return StoredEvent(row["id"], "routed", row["attempts"] + 1)
        # A parked event published again is a replay and starts afresh; any other state is a
        # redelivery after a crash, which counts towards MAX_ATTEMPTS.
        replay = row["status"] == "parked"
        attempts = 1 if replay else row["attempts"] + 1
        tx.execute("UPDATE events SET body = ?, status = 'received', attempts = ? WHERE id = ?",
                      (item.body, attempts, row["id"]))
        transition(tx, "event", row["id"], "received", None,
                         "replay of a parked event" if replay else f"delivered again after '{row['status']}'")
        return StoredEvent(row["id"], "received", attempts)

    def record_outcomes(self, outcomes: Sequence[EventOutcome]) -> None:
        def work(tx: Tx) -> None:
            now = now_utc()
            tx.many("UPDATE events SET status=?, reason_code=?, reason=?, samhandlingspunkt=COALESCE(?, "
                "samhandlingspunkt), kommunenummer=COALESCE(?, kommunenummer), patient_key=COALESCE(?, "
                "patient_key), sender_herid=COALESCE(?, sender_herid), performed_on=COALESCE(?, performed_on), "
                "flags=?, sender_contact=COALESCE(?, sender_contact) WHERE id=?",
                [(o.status, o.reason_code, o.reason, o.samhandlingspunkt, o.kommunenummer, o.patient_key,
                  o.sender_herid, o.performed_on, ",".join(o.flags) or None,
                  json.dumps(asdict(o.sender_contact), ensure_ascii=False) if o.sender_contact else None, o.ref)
                 for o in outcomes])
            tx.many(TRANSITION, [
                ("event", str(o.ref), o.status, now, o.reason_code,
                 o.reason if o.status != "routed" else f"{len(o.meldinger)} receiver(s)") for o in outcomes])
            meldinger = [(o.ref, m) for o in outcomes for m in o.meldinger]
            tx.many("INSERT INTO messages(msg_id, event_ref, msg_type, from_herid, to_herid, role, why, xml, "
                    "status, created_at, transport) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(msg_id) DO UPDATE SET xml=excluded.xml, why=excluded.why",
                    [(m.msg_id, ref, m.msg_type, m.from_herid, m.to_herid, m.role, m.why, m.xml, "built", now,
                      m.transport) for ref, m in meldinger])
            tx.many(TRANSITION,
                               [("message", m.msg_id, "built", now, None, m.why) for _, m in meldinger])

        self.db.transaction(work)

    def mark_sent_many(self, sent: Sequence[tuple[int, Sequence[str]]]) -> list[int]:
        """After a transport took them (the broker's commit-ok, the Meldingstjener's answer): the messages are
        sent, and an event is sent once none of its messages waits for a transport any more. Returns the
        events that became sent."""

        def work(tx: Tx) -> list[int]:
            now = now_utc()
            msg_ids = [msg_id for _, ids in sent for msg_id in ids]
            tx.many("UPDATE messages SET status='sent', sent_at=? WHERE msg_id=? AND status='built'",
                    [(now, msg_id) for msg_id in msg_ids])
            tx.many(TRANSITION, [("message", msg_id, "sent", now, None, None) for msg_id in msg_ids])
            refs = sorted({ref for ref, _ in sent})
            if not refs:
                return []
            marks = ",".join("?" * len(refs))
            waiting = {r["event_ref"] for r in tx.all(
                f"SELECT DISTINCT event_ref FROM messages WHERE event_ref IN ({marks}) AND status='built'", refs)}
            done = [ref for ref in refs if ref not in waiting]
            tx.many("UPDATE events SET status='sent' WHERE id=? AND status<>'sent'", [(ref,) for ref in done])
            tx.many(TRANSITION, [("event", str(ref), "sent", now, None, None) for ref in done])
            return done

        return self.db.transaction(work)

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

    def record_apprec(self, apprec_id: str, original_msg_id: str, status: str, errors: list[dict[str, Any]],
                      sender_herids: Sequence[str] = (), receiver_herids: Sequence[str] = ()) -> str | None:
        """Correlate a receipt with the message it answers and record it, once. Returns what happened:

        - ``acknowledged`` / ``rejected``: the message was ``sent`` or ``overdue`` and takes the final status;
        - ``late``: the message already has a final status (acknowledged, rejected, superseded): the receipt
          goes into its history but does not flip it (rejected → acknowledged would wipe the errors);
        - ``duplicate``: a receipt with this AppRec Id was recorded before; nothing changes;
        - ``wrong_party``: the receipt's Sender is not the receiver the message went to, or its Receiver not
          the message's sender (one receiver must not mark another's message); the caller parks it;
        - None: no message of ours has that MsgId; the caller parks it.

        ``OriginalMsgId`` matches case-insensitively: our MsgIds are lower-case UUIDs, and receivers echo
        them as they like (the helsenorge sample uses upper case). ``sender_herids`` / ``receiver_herids``
        are every HER-id in the receipt's Sender / Receiver (institution, department, person)."""
        msg_id = original_msg_id.strip().lower()
        errors_json = json.dumps(errors, ensure_ascii=False)

        def work(tx: Tx) -> str | None:
            def record(outcome: str | None, matched: bool) -> None:
                tx.execute("INSERT INTO apprecs(apprec_id, original_msg_id, status, errors, received_at, matched, "
                           "outcome, sender_herids, receiver_herids) VALUES (?,?,?,?,?,?,?,?,?)",
                           (apprec_id, original_msg_id, status, errors_json, now_utc(), 1 if matched else 0,
                            outcome or "unknown_original", ",".join(sender_herids), ",".join(receiver_herids)))

            if apprec_id and tx.one("SELECT 1 AS x FROM apprecs WHERE apprec_id = ? AND outcome IS NOT NULL",
                                    (apprec_id,)):
                transition(tx, "message", msg_id, "duplicate", f"apprec {status}", f"AppRec {apprec_id} again")
                return "duplicate"
            row = tx.one("SELECT status, from_herid, to_herid FROM messages WHERE msg_id = ?", (msg_id,))
            if row is None:
                record(None, False)
                return None
            if str(row["to_herid"]) not in sender_herids or str(row["from_herid"]) not in receiver_herids:
                record("wrong_party", False)
                return "wrong_party"
            if row["status"] not in ("sent", "overdue"):
                record("late", True)
                codes = ", ".join(f"{e['code']} {e['text']}" for e in errors)
                transition(tx, "message", msg_id, row["status"], f"apprec {status}",
                           f"late receipt {apprec_id} not applied: already {row['status']}"
                           + (f" ({codes})" if codes else ""))
                return "late"
            new_status = "rejected" if status == "2" else "acknowledged"
            record(new_status, True)
            tx.execute("UPDATE messages SET status=?, apprec_status=?, apprec_errors=?, answered_at=? "
                       "WHERE msg_id=?", (new_status, status, errors_json, now_utc(), msg_id))
            transition(tx, "message", msg_id, new_status, f"apprec {status}",
                       ", ".join(f"{e['code']} {e['text']}" for e in errors) or None)
            return new_status

        return self.db.transaction(work)

    def mark_overdue(self, sent_before: datetime) -> list[dict[str, Any]]:
        """Sent messages without a receipt since before the deadline become overdue, once each."""
        cutoff = sent_before.astimezone(UTC).isoformat(timespec="milliseconds")

        def work(tx: Tx) -> list[dict[str, Any]]:
            rows = tx.all("SELECT msg_id, event_ref, to_herid, sent_at FROM messages "
                          "WHERE status='sent' AND sent_at < ?", (cutoff,))
            now = now_utc()
            for r in rows:
                tx.execute("UPDATE messages SET status='overdue', overdue_at=? WHERE msg_id=?",
                              (now, r["msg_id"]))
                transition(tx, "message", r["msg_id"], "overdue", None, f"no AppRec since {r['sent_at']}")
            return rows

        return self.db.transaction(work)

    def kartlegginger(self, fnrs: Iterable[str]) -> dict[str, list[Tidligere]]:
        """Each patient's newest SP1/SP2 kartlegginger that reached their receivers (at most
        HISTORY_DEPTH), newest first: all routing asks of the past. One query for a whole batch."""
        keys = {patient_key(fnr): fnr for fnr in fnrs}
        found: dict[str, list[Tidligere]] = {fnr: [] for fnr in keys.values()}
        if not keys:
            return found
        marks = ",".join("?" * len(keys))
        rows = self.db.query(
            "SELECT patient_key, event_id, samhandlingspunkt, sender_herid, performed_on, sender_contact FROM ("
            "SELECT *, ROW_NUMBER() OVER (PARTITION BY patient_key ORDER BY id DESC) AS n FROM events "
            f"WHERE patient_key IN ({marks}) AND samhandlingspunkt IN (1, 2) AND status IN ('sent', 'routed')"
            ") newest WHERE n <= ? ORDER BY patient_key, n", (*keys, HISTORY_DEPTH))
        for r in rows:
            found[keys[r["patient_key"]]].append(Tidligere(
                r["event_id"] or "", r["samhandlingspunkt"], r["sender_herid"],
                date.fromisoformat(r["performed_on"]) if r["performed_on"] else None, _contact(r["sender_contact"])))
        return found


def stored_melding(row: dict[str, Any], event_id: str | None) -> Melding:
    """A message as the store kept it, to be sent again unchanged."""
    return Melding(msg_id=row["msg_id"], event_id=event_id or "", msg_type=row["msg_type"],
                   from_herid=row["from_herid"], to_herid=row["to_herid"], role=row["role"], why=row["why"],
                   generated_at=row["created_at"], xml=bytes(row["xml"]), transport=row.get("transport") or "amqp")
