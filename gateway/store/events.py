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
from gateway.errors import ConfigurationError
from gateway.messages.outbound import Melding
from gateway.store.db import Database, Tx
from gateway.store.secret import fingerprint, keyed_hash

END_STATES = ("sent", "not_shared", "declined")  # a duplicate of an event in these is only noted


def oversized_stub(body: bytes) -> bytes:
    """What the store and gateway.parked keep of a body over the size limit (docs/limits.md): its size and
    SHA-256, by which the sender finds the original. Keeping the body itself would let one publisher fill the
    store and the broker (issue 12: ten 40 MB events took 460 MB of store)."""
    return json.dumps({"gateway": "body not kept: larger than the limit (docs/limits.md)", "bytes": len(body),
                       "sha256": hashlib.sha256(body).hexdigest()}).encode()


def same_content(a: bytes, b: bytes) -> bool:
    """Whether two bodies with one event_id say the same: equal bytes, or equal JSON (a sender that serialises
    the same event again with other spacing or key order sends the same event)."""
    if a == b:
        return True
    try:
        return bool(json.loads(a) == json.loads(b))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False


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
    """``conflict_with``: this delivery reused the event_id of stored event ``conflict_with`` with another
    body; it is stored as its own event (so the operator sees both) and parked with EVENT_ID_CONFLICT."""

    ref: int
    status: str
    attempts: int = 1
    conflict_with: int | None = None
    reason_code: str | None = None  # for a parked event delivered again: why it was parked
    reason: str | None = None


@dataclass(frozen=True)
class Incoming:
    """One delivery as it came off the bus: the bytes exactly as they arrived, the event_id found in them
    (None when unreadable) and the AMQP properties the store and the parked queue keep."""

    body: bytes
    event_id: str | None
    amqp_message_id: str | None
    content_type: str | None = None
    original_size: int | None = None  # set when the body was over the limit and ``body`` is its stub
    redelivered: bool = False  # the broker delivers it again (a crash before the ack), not a new publish


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
    secret: bytes

    def patient_key(self, fnr: str) -> str:
        """How the store finds a patient's earlier events without another copy of the number in clear: an HMAC
        keyed with the installation's secret (gateway.store.secret), not reversible by trying every number."""
        return keyed_hash(self.secret, fnr)

    def bind_secret(self, secret: bytes) -> int:
        """Use the installation's secret. The store keeps its fingerprint: another secret is refused (it would
        silently lose every patient's history); a store without one (new, or keyed before issue 12 with a plain
        hash) has every patient_key computed again from the stored bodies. Returns how many were re-keyed."""
        mark = fingerprint(secret)

        def work(tx: Tx) -> int:
            row = tx.one("SELECT fingerprint FROM store_secret")
            if row is not None:
                if row["fingerprint"] != mark:
                    raise ConfigurationError(
                        "GATEWAY_SECRET_FILE holds another secret than the one this store was keyed with; use the "
                        "installation's secret file (every replica needs the same copy)")
                return 0
            rekeyed = 0
            for r in tx.all("SELECT id, body FROM events WHERE patient_key IS NOT NULL"):
                fnr = _fnr_of(bytes(r["body"]))
                tx.execute("UPDATE events SET patient_key = ? WHERE id = ?",
                           (keyed_hash(secret, fnr) if fnr else None, r["id"]))
                rekeyed += 1
            tx.execute("INSERT INTO store_secret(fingerprint, since) VALUES (?, ?)", (mark, now_utc()))
            return rekeyed

        rekeyed = self.db.transaction(work)
        self.secret = secret
        return rekeyed

    def record_events(self, items: Sequence[Incoming]) -> list[StoredEvent]:
        """Record a batch of deliveries in one transaction, before any of them is acked.

        The commit is not fsynced (``durable=False``): it must survive the gateway's own crash, which it does
        (counting the attempts of an event that crashes the process is what it is for), and nothing is acked
        or published on its strength alone. Every batch with a new or unfinished event commits durably after
        it (``record_outcomes`` before publishing, ``mark_sent_many`` before acking), and that fsync of the
        one sequential log makes this commit durable too; a power cut before then leaves the batch unacked, so
        the broker delivers it again. A batch of duplicates of finished events only is acked after this
        commit alone: what a power cut could take back is the note that they came again, never an event.
        Status events are only built from durable rows (``tell_statuses`` starts with a barrier)."""

        def work(tx: Tx) -> list[StoredEvent]:
            keys = [dedupe_key(item) for item in items]
            if not keys:
                return []
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

        return self.db.transaction(work, durable=False)

    def _record_again(self, tx: Tx, item: Incoming, key: str) -> StoredEvent:
        """An event the store already has: a duplicate, a redelivery after a crash, or a replay."""
        row = tx.execute("SELECT id, status, attempts, body, reason_code, reason FROM events WHERE dedupe_key = ?",
                         (key,)).fetchone()
        has_messages = tx.one("SELECT 1 AS x FROM messages WHERE event_ref = ? LIMIT 1", (row["id"],)) is not None
        if item.event_id and not same_content(bytes(row["body"]), item.body) and (
                has_messages or row["status"] != "parked"):
            # One event_id, two bodies: a receiver must never see one MsgId with two contents, and the first
            # body must not be lost either. The new body becomes an event of its own, parked, so the operator
            # sees both; its key is the body's hash, so the same conflicting delivery is recorded once.
            return self._record_conflict(tx, item, row["id"], row["status"])
        if row["status"] in END_STATES:
            transition(tx, "event", row["id"], row["status"], None, "received again: duplicate")
            return StoredEvent(row["id"], row["status"], row["attempts"])
        if row["status"] == "parked" and item.redelivered:
            # The same AMQP message again after a crash before its ack (not a replay, which publishes anew): it
            # stays parked, once; the consumer puts its copy on gateway.parked again, as the crash may have
            # come before that publish.
            transition(tx, "event", row["id"], "parked", row["reason_code"], "delivered again after a crash")
            return StoredEvent(row["id"], "parked", row["attempts"], reason_code=row["reason_code"],
                               reason=row["reason"])
        if row["status"] == "routed":
            # Built and perhaps published before a crash: the stored messages go out again, byte
            # for byte, so a receiver sees an identical re-send, never a second version.
            tx.execute("UPDATE events SET attempts = attempts + 1 WHERE id = ?", (row["id"],))
            transition(tx, "event", row["id"], "routed", None, "delivered again: re-send")
            return StoredEvent(row["id"], "routed", row["attempts"] + 1)
        if row["status"] == "parked" and has_messages:
            # Parked after its messages were built (retries exhausted): a replay re-sends those, byte for byte;
            # building them again would give their MsgIds a second content.
            tx.execute("UPDATE events SET status = 'routed', attempts = 1 WHERE id = ?", (row["id"],))
            transition(tx, "event", row["id"], "routed", None, "replay of a parked event: re-send")
            return StoredEvent(row["id"], "routed", 1)
        # A parked event published again is a replay (or the sender's correction: nothing of it was sent) and
        # starts afresh; any other state is a redelivery after a crash, which counts towards MAX_ATTEMPTS.
        replay = row["status"] == "parked"
        attempts = 1 if replay else row["attempts"] + 1
        tx.execute("UPDATE events SET body = ?, status = 'received', attempts = ? WHERE id = ?",
                      (item.body, attempts, row["id"]))
        transition(tx, "event", row["id"], "received", None,
                         "replay of a parked event" if replay else f"delivered again after '{row['status']}'")
        return StoredEvent(row["id"], "received", attempts)

    def _record_conflict(self, tx: Tx, item: Incoming, original: int, original_status: str) -> StoredEvent:
        key = f"conflict:{item.event_id}:{hashlib.sha256(item.body).hexdigest()}"
        row = tx.one("SELECT id, status, attempts FROM events WHERE dedupe_key = ?", (key,))
        if row is not None:
            tx.execute("UPDATE events SET status = 'received', attempts = attempts + 1 WHERE id = ?", (row["id"],))
            transition(tx, "event", row["id"], "received", None, "conflicting version delivered again")
            return StoredEvent(row["id"], "received", row["attempts"] + 1, conflict_with=original)
        new = tx.execute("INSERT INTO events(event_id, dedupe_key, amqp_message_id, received_at, body, status) "
                         "VALUES (?,?,?,?,?,?) RETURNING id",
                         (None, key, item.amqp_message_id, now_utc(), item.body, "received")).fetchone()
        transition(tx, "event", new["id"], "received", None, f"another version of event {original}")
        transition(tx, "event", original, original_status, "EVENT_ID_CONFLICT",
                   f"event {new['id']} reuses this event_id with another body (parked)")
        return StoredEvent(new["id"], "received", 1, conflict_with=original)

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

    def kartlegginger(self, fnrs: Iterable[str]) -> dict[str, list[Tidligere]]:
        """Each patient's newest SP1/SP2 kartlegginger that reached their receivers (at most
        HISTORY_DEPTH), newest first: all routing asks of the past. One query for a whole batch."""
        keys = {self.patient_key(fnr): fnr for fnr in fnrs}
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


def _fnr_of(body: bytes) -> str | None:
    """The patient's number in a stored event body, to key it again; None for a body that has none."""
    try:
        data = json.loads(body)
        fnr = data["patient"]["fnr"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, RecursionError):
        return None
    return fnr if isinstance(fnr, str) else None
