"""The message store: every event as received and every message built from it, with the
history of their states.

The consumer records an event here *before* it acks it on the bus, so a crash can never
lose one. ``Store`` is the small interface the rest of the gateway sees; ``SqliteStore`` is
the embedded default.

States: events go received → parked | routed → sent | not_shared; messages go built → sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from gateway.historikk import Tidligere
from gateway.kartlegging import Contact
from gateway.melding import Melding

# Migrations, applied in order and recorded in schema_version. Written once for both backends:
# {ID} and {BLOB} are the only words that differ.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE events (
        id {ID},
        event_id TEXT UNIQUE,
        amqp_message_id TEXT,
        received_at TEXT NOT NULL,
        body {BLOB} NOT NULL,
        status TEXT NOT NULL,
        reason_code TEXT,
        reason TEXT,
        samhandlingspunkt INTEGER,
        kommunenummer TEXT
    );
    CREATE TABLE messages (
        msg_id TEXT PRIMARY KEY,
        event_ref BIGINT NOT NULL REFERENCES events(id),
        msg_type TEXT NOT NULL,
        from_herid BIGINT NOT NULL,
        to_herid BIGINT NOT NULL,
        role TEXT NOT NULL,
        why TEXT NOT NULL,
        xml {BLOB} NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX messages_event ON messages(event_ref);
    CREATE TABLE transitions (
        id {ID},
        entity TEXT NOT NULL,
        ref TEXT NOT NULL,
        status TEXT NOT NULL,
        at TEXT NOT NULL,
        reason_code TEXT,
        reason TEXT
    );
    CREATE INDEX transitions_ref ON transitions(entity, ref);
    """,
    """
    ALTER TABLE events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE messages ADD COLUMN apprec_status TEXT;
    ALTER TABLE messages ADD COLUMN apprec_errors TEXT;
    ALTER TABLE messages ADD COLUMN answered_at TEXT;
    ALTER TABLE messages ADD COLUMN overdue_at TEXT;
    CREATE INDEX messages_status ON messages(status, sent_at);
    CREATE TABLE apprecs (
        id {ID},
        apprec_id TEXT NOT NULL,
        original_msg_id TEXT NOT NULL,
        status TEXT NOT NULL,
        errors TEXT NOT NULL,
        received_at TEXT NOT NULL,
        matched INTEGER NOT NULL
    );
    CREATE TABLE audit (
        id {ID},
        at TEXT NOT NULL,
        operator TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT
    );
    """,
    """
    ALTER TABLE events ADD COLUMN dedupe_key TEXT;
    UPDATE events SET dedupe_key = event_id WHERE event_id IS NOT NULL;
    CREATE UNIQUE INDEX events_dedupe ON events(dedupe_key);
    """,
    """
    CREATE TABLE parties (
        herid BIGINT PRIMARY KEY,
        parent_herid BIGINT,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        active INTEGER NOT NULL,
        kommunenummer TEXT,
        service_type TEXT,
        formats TEXT NOT NULL,
        given_name TEXT,
        family_name TEXT,
        hpr TEXT
    );
    CREATE INDEX parties_kommune ON parties(kommunenummer);
    CREATE INDEX parties_parent ON parties(parent_herid);
    CREATE TABLE gp_assignments (
        fnr TEXT NOT NULL,
        gp_herid BIGINT NOT NULL,
        valid_from TEXT NOT NULL,
        valid_to TEXT,
        relation TEXT NOT NULL
    );
    CREATE INDEX gp_assignments_fnr ON gp_assignments(fnr);
    CREATE TABLE registry_imports (
        id {ID},
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        rows BIGINT NOT NULL,
        imported_at TEXT NOT NULL
    );
    """,
    """
    ALTER TABLE events ADD COLUMN patient_key TEXT;
    ALTER TABLE events ADD COLUMN sender_herid BIGINT;
    CREATE INDEX events_patient ON events(patient_key, samhandlingspunkt);
    """,
    """
    ALTER TABLE events ADD COLUMN performed_on TEXT;
    ALTER TABLE events ADD COLUMN flags TEXT;
    ALTER TABLE events ADD COLUMN sender_contact TEXT;
    """,
]

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


# flags is a comma-separated list; this finds one whole flag in it (the argument is _flag_pattern(flag))
_FLAG_CLAUSE = "',' || flags || ',' LIKE ?"


def _flag_pattern(flag: str | None) -> str | None:
    return None if flag is None else f"%,{flag},%"


HISTORY_DEPTH = 20  # a patient's newest SP1/SP2 kartlegginger that routing looks at; real patients have a few


def _contact(stored: str | None) -> Contact | None:
    """The contact person of an earlier event, for a message that names that hospital."""
    if not stored:
        return None
    c = json.loads(stored)
    return Contact(c["name"], c["role"], c["phone"])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class StoredEvent:
    ref: int
    status: str
    attempts: int = 1


@dataclass(frozen=True)
class Incoming:
    """One delivery as it came off the bus."""

    body: bytes
    event_id: str | None
    amqp_message_id: str | None


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


class StoreUnavailable(Exception):
    """The store cannot be written now; the event stays unacked on the bus and is retried."""


class Store(Protocol):
    def record_events(self, items: Sequence[Incoming]) -> list[StoredEvent]: ...

    def record_outcomes(self, outcomes: Sequence[EventOutcome]) -> None: ...

    def mark_sent_many(self, sent: Sequence[tuple[int, Sequence[str]]]) -> None: ...

    def record_event(self, body: bytes, event_id: str | None, amqp_message_id: str | None) -> StoredEvent: ...

    def park_event(self, ref: int, code: str, reason: str) -> None: ...

    def record_route(
        self, ref: int, samhandlingspunkt: int, kommunenummer: str, meldinger: Sequence[Melding]
    ) -> None: ...

    def mark_sent(self, ref: int, msg_ids: Iterable[str]) -> None: ...

    def mark_not_shared(self, ref: int, why: str) -> None: ...

    def record_apprec(self, apprec_id: str, original_msg_id: str, status: str, errors: list[dict[str, Any]]
                      ) -> str | None: ...

    def mark_overdue(self, sent_before: datetime) -> list[dict[str, Any]]: ...

    def kartlegginger(self, fnrs: Iterable[str]) -> dict[str, list[Tidligere]]: ...

    def find_messages(self, *, status: str | None = None, receiver: int | None = None, kommune: str | None = None,
                      samhandlingspunkt: int | None = None, since: str | None = None, until: str | None = None,
                      limit: int = 1000) -> list[dict[str, Any]]: ...

    def find_events(self, *, status: str | None = None, reason_code: str | None = None, since: str | None = None,
                    until: str | None = None, limit: int = 1000) -> list[dict[str, Any]]: ...

    def event(self, key: str) -> dict[str, Any] | None: ...

    def message(self, msg_id: str) -> dict[str, Any] | None: ...

    def add_resend(self, original_msg_id: str, melding: Melding | None, operator: str, reason: str) -> None: ...

    def audit(self, operator: str, action: str, target: str, reason: str, detail: str | None = None) -> None: ...

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]: ...

    def events(self) -> list[dict[str, Any]]: ...

    def messages(self, ref: int | None = None) -> list[dict[str, Any]]: ...

    def history(self, entity: str, ref: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class _Backend(Protocol):
    """The few things SQLite and PostgreSQL do differently."""

    name: str
    words: dict[str, str]
    errors: tuple[type[Exception], ...]

    def connect(self) -> Any: ...

    def begin(self, db: Any) -> None: ...

    def lock_migrations(self, db: Any) -> None: ...


class _Sqlite:
    name = "sqlite"
    words: ClassVar[dict[str, str]] = {"{ID}": "INTEGER PRIMARY KEY", "{BLOB}": "BLOB"}
    errors: tuple[type[Exception], ...] = (sqlite3.OperationalError,)

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=5000")
        # Switching a new file to WAL needs it to itself and does not wait for the busy timeout:
        # replicas starting together on a new file take turns here.
        for attempt in range(100):
            try:
                db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)
        db.execute("PRAGMA synchronous=FULL")  # a committed event survives a power cut
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def begin(self, db: Any) -> None:
        db.execute("BEGIN IMMEDIATE")

    def lock_migrations(self, db: Any) -> None:
        """BEGIN IMMEDIATE already holds the file's write lock."""


class _Postgres:
    name = "postgresql"
    words: ClassVar[dict[str, str]] = {"{ID}": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "{BLOB}": "BYTEA"}

    def __init__(self, url: str) -> None:
        import psycopg

        self.psycopg = psycopg
        self.url = url
        self.errors = (psycopg.OperationalError, psycopg.InterfaceError)

    def connect(self) -> Any:
        from psycopg.rows import dict_row

        return self.psycopg.connect(self.url, autocommit=True, row_factory=dict_row)

    def begin(self, db: Any) -> None:
        db.execute("BEGIN")

    def lock_migrations(self, db: Any) -> None:
        """Gateways starting together on a new database take turns: the first migrates, the rest see it done."""
        db.execute("SELECT pg_advisory_xact_lock(7243010)")


class SqlStore:
    """The store on SQLite or PostgreSQL. SQL is written once with ``?`` placeholders."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        try:
            self._db = backend.connect()
        except backend.errors as exc:
            raise StoreUnavailable(f"cannot open the {backend.name} store: {exc}") from exc
        self._migrate()

    def _sql(self, query: str) -> str:
        return query if self._backend.name == "sqlite" else query.replace("?", "%s")

    def _execute(self, db: Any, query: str, args: tuple[object, ...] = ()) -> Any:
        return db.execute(self._sql(query), args)

    def _migrate(self) -> None:
        def work(db: Any) -> None:
            self._backend.lock_migrations(db)
            self._execute(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._execute(db, "SELECT max(version) AS v FROM schema_version").fetchone()
            current = (row["v"] if row else None) or 0
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for word, replacement in self._backend.words.items():
                    script = script.replace(word, replacement)
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                self._execute(db, "INSERT INTO schema_version(version) VALUES (?)", (version,))

        self._tx(work)

    def _connection(self) -> Any:
        """The connection, opened again after a failure (a restarted database, a dropped link)."""
        if self._db is None:
            self._db = self._backend.connect()
        return self._db

    def _drop(self) -> None:
        with contextlib.suppress(Exception):
            self._db.close()
        self._db = None

    def _tx(self, work: Any) -> Any:
        with self._lock:
            try:
                self._connection()
                self._backend.begin(self._db)
                try:
                    result = work(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result
            except self._backend.errors as exc:
                if self._backend.name != "sqlite":  # a locked SQLite file is no broken connection
                    self._drop()
                raise StoreUnavailable(str(exc)) from exc

    def _query(self, query: str, args: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                rows = self._execute(self._connection(), query, args).fetchall()
            except self._backend.errors as exc:
                if self._backend.name != "sqlite":
                    self._drop()
                raise StoreUnavailable(str(exc)) from exc
        return [{k: bytes(v) if isinstance(v, memoryview) else v for k, v in dict(r).items()} for r in rows]

    def _execute_many(self, db: Any, query: str, rows: Sequence[tuple[object, ...]]) -> None:
        """One statement for many rows: a batch's bookkeeping in a few round trips, not one per row."""
        if rows:
            db.cursor().executemany(self._sql(query), rows)

    _TRANSITION = "INSERT INTO transitions(entity, ref, status, at, reason_code, reason) VALUES (?,?,?,?,?,?)"

    def _transition(self, db: Any, entity: str, ref: object, status: str, code: str | None = None,
                    reason: str | None = None) -> None:
        self._execute(db, self._TRANSITION, (entity, str(ref), status, _now(), code, reason))

    def record_events(self, items: Sequence[Incoming]) -> list[StoredEvent]:
        """Record a batch of deliveries in one transaction, before any of them is acked."""

        def work(db: Any) -> list[StoredEvent]:
            keys = [dedupe_key(item) for item in items]
            marks = ",".join("?" * len(keys))
            known = {r["dedupe_key"] for r in self._execute(
                db, f"SELECT dedupe_key FROM events WHERE dedupe_key IN ({marks})", tuple(keys)).fetchall()}
            now, out, transitions = _now(), [], []
            for item, key in zip(items, keys, strict=True):
                if key in known:  # seen before, or earlier in this batch: the careful path, one by one
                    self._execute_many(db, self._TRANSITION, transitions)
                    transitions = []
                    out.append(self._record_again(db, item, key))
                    continue
                row = self._execute(
                    db, "INSERT INTO events(event_id, dedupe_key, amqp_message_id, received_at, body, status) "
                    "VALUES (?,?,?,?,?,?) RETURNING id",
                    (item.event_id, key, item.amqp_message_id, now, item.body, "received")).fetchone()
                known.add(key)
                transitions.append(("event", str(row["id"]), "received", now, None, None))
                out.append(StoredEvent(row["id"], "received", 1))
            self._execute_many(db, self._TRANSITION, transitions)
            return out

        return self._tx(work)

    def _record_again(self, db: Any, item: Incoming, key: str) -> StoredEvent:
        """An event the store already has: a duplicate, a redelivery after a crash, or a replay."""
        row = self._execute(db, "SELECT id, status, attempts FROM events WHERE dedupe_key = ?", (key,)).fetchone()
        if row["status"] in END_STATES:
            self._transition(db, "event", row["id"], row["status"], None, "received again: duplicate")
            return StoredEvent(row["id"], row["status"], row["attempts"])
        if row["status"] == "routed":
            # Built and perhaps published before a crash: the stored messages go out again, byte
            # for byte, so a receiver sees an identical re-send, never a second version.
            self._execute(db, "UPDATE events SET attempts = attempts + 1 WHERE id = ?", (row["id"],))
            self._transition(db, "event", row["id"], "routed", None, "delivered again: re-send")
            return StoredEvent(row["id"], "routed", row["attempts"] + 1)
        # A parked event published again is a replay and starts afresh; any other state is a
        # redelivery after a crash, which counts towards MAX_ATTEMPTS.
        replay = row["status"] == "parked"
        attempts = 1 if replay else row["attempts"] + 1
        self._execute(db, "UPDATE events SET body = ?, status = 'received', attempts = ? WHERE id = ?",
                      (item.body, attempts, row["id"]))
        self._transition(db, "event", row["id"], "received", None,
                         "replay of a parked event" if replay else f"delivered again after '{row['status']}'")
        return StoredEvent(row["id"], "received", attempts)

    def record_outcomes(self, outcomes: Sequence[EventOutcome]) -> None:
        def work(db: Any) -> None:
            now = _now()
            self._execute_many(
                db, "UPDATE events SET status=?, reason_code=?, reason=?, samhandlingspunkt=COALESCE(?, "
                "samhandlingspunkt), kommunenummer=COALESCE(?, kommunenummer), patient_key=COALESCE(?, "
                "patient_key), sender_herid=COALESCE(?, sender_herid), performed_on=COALESCE(?, performed_on), "
                "flags=?, sender_contact=COALESCE(?, sender_contact) WHERE id=?",
                [(o.status, o.reason_code, o.reason, o.samhandlingspunkt, o.kommunenummer, o.patient_key,
                  o.sender_herid, o.performed_on, ",".join(o.flags) or None,
                  json.dumps(asdict(o.sender_contact), ensure_ascii=False) if o.sender_contact else None, o.ref)
                 for o in outcomes])
            self._execute_many(db, self._TRANSITION, [
                ("event", str(o.ref), o.status, now, o.reason_code,
                 o.reason if o.status != "routed" else f"{len(o.meldinger)} receiver(s)") for o in outcomes])
            meldinger = [(o.ref, m) for o in outcomes for m in o.meldinger]
            self._execute_many(
                db,
                "INSERT INTO messages(msg_id, event_ref, msg_type, from_herid, to_herid, role, why, xml, "
                "status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(msg_id) DO UPDATE SET xml=excluded.xml, why=excluded.why",
                [(m.msg_id, ref, m.msg_type, m.from_herid, m.to_herid, m.role, m.why, m.xml, "built", now)
                 for ref, m in meldinger])
            self._execute_many(db, self._TRANSITION,
                               [("message", m.msg_id, "built", now, None, m.why) for _, m in meldinger])

        self._tx(work)

    def mark_sent_many(self, sent: Sequence[tuple[int, Sequence[str]]]) -> None:
        """After the broker confirmed them: the messages are sent, and so are their events."""

        def work(db: Any) -> None:
            now = _now()
            msg_ids = [msg_id for _, ids in sent for msg_id in ids]
            self._execute_many(db, "UPDATE messages SET status='sent', sent_at=? WHERE msg_id=?",
                               [(now, msg_id) for msg_id in msg_ids])
            self._execute_many(db, self._TRANSITION, [("message", msg_id, "sent", now, None, None)
                                                      for msg_id in msg_ids])
            self._execute_many(db, "UPDATE events SET status='sent' WHERE id=?", [(ref,) for ref, _ in sent])
            self._execute_many(db, self._TRANSITION, [("event", str(ref), "sent", now, None, None)
                                                      for ref, _ in sent])

        self._tx(work)

    # One-event forms of the batch calls, for tools and tests.
    def record_event(self, body: bytes, event_id: str | None, amqp_message_id: str | None) -> StoredEvent:
        return self.record_events([Incoming(body, event_id, amqp_message_id)])[0]

    def park_event(self, ref: int, code: str, reason: str) -> None:
        self.record_outcomes([EventOutcome(ref, "parked", code, reason)])

    def record_route(
        self, ref: int, samhandlingspunkt: int, kommunenummer: str, meldinger: Sequence[Melding]
    ) -> None:
        self.record_outcomes([EventOutcome(ref, "routed", None, None, samhandlingspunkt, kommunenummer,
                                           tuple(meldinger))])

    def mark_sent(self, ref: int, msg_ids: Iterable[str]) -> None:
        self.mark_sent_many([(ref, list(msg_ids))])

    def mark_not_shared(self, ref: int, why: str) -> None:
        self.record_outcomes([EventOutcome(ref, "not_shared", None, why)])

    def record_apprec(self, apprec_id: str, original_msg_id: str, status: str, errors: list[dict[str, Any]]
                      ) -> str | None:
        """Correlate a receipt by OriginalMsgId. Returns the message's new status, or None when no
        message of ours has that MsgId (the caller parks the receipt)."""
        new_status = "rejected" if status == "2" else "acknowledged"
        errors_json = json.dumps(errors, ensure_ascii=False)

        def work(db: Any) -> str | None:
            row = self._execute(db, "SELECT status FROM messages WHERE msg_id = ?", (original_msg_id,)).fetchone()
            self._execute(db, "INSERT INTO apprecs(apprec_id, original_msg_id, status, errors, received_at, matched) "
                          "VALUES (?,?,?,?,?,?)", (apprec_id, original_msg_id, status, errors_json, _now(),
                                                  1 if row else 0))
            if row is None:
                return None
            self._execute(db, "UPDATE messages SET status=?, apprec_status=?, apprec_errors=?, answered_at=? "
                          "WHERE msg_id=?", (new_status, status, errors_json, _now(), original_msg_id))
            codes = ", ".join(f"{e['code']} {e['text']}" for e in errors) or None
            self._transition(db, "message", original_msg_id, new_status, f"apprec {status}", codes)
            return new_status

        return self._tx(work)

    def mark_overdue(self, sent_before: datetime) -> list[dict[str, Any]]:
        """Sent messages without a receipt since before the deadline become overdue, once each."""
        cutoff = sent_before.astimezone(UTC).isoformat(timespec="milliseconds")

        def work(db: Any) -> list[dict[str, Any]]:
            rows = [dict(r) for r in self._execute(
                db, "SELECT msg_id, event_ref, to_herid, sent_at FROM messages WHERE status='sent' AND sent_at < ?",
                (cutoff,)).fetchall()]
            now = _now()
            for r in rows:
                self._execute(db, "UPDATE messages SET status='overdue', overdue_at=? WHERE msg_id=?",
                              (now, r["msg_id"]))
                self._transition(db, "message", r["msg_id"], "overdue", None, f"no AppRec since {r['sent_at']}")
            return rows

        return self._tx(work)

    def kartlegginger(self, fnrs: Iterable[str]) -> dict[str, list[Tidligere]]:
        """Each patient's newest SP1/SP2 kartlegginger that reached their receivers (at most
        HISTORY_DEPTH), newest first: all routing asks of the past. One query for a whole batch."""
        keys = {patient_key(fnr): fnr for fnr in fnrs}
        found: dict[str, list[Tidligere]] = {fnr: [] for fnr in keys.values()}
        if not keys:
            return found
        marks = ",".join("?" * len(keys))
        rows = self._query(
            "SELECT patient_key, event_id, samhandlingspunkt, sender_herid, performed_on, sender_contact FROM ("
            "SELECT *, ROW_NUMBER() OVER (PARTITION BY patient_key ORDER BY id DESC) AS n FROM events "
            f"WHERE patient_key IN ({marks}) AND samhandlingspunkt IN (1, 2) AND status IN ('sent', 'routed')"
            ") newest WHERE n <= ? ORDER BY patient_key, n", (*keys, HISTORY_DEPTH))
        for r in rows:
            found[keys[r["patient_key"]]].append(Tidligere(
                r["event_id"] or "", r["samhandlingspunkt"], r["sender_herid"],
                date.fromisoformat(r["performed_on"]) if r["performed_on"] else None, _contact(r["sender_contact"])))
        return found

    def find_messages(self, *, status: str | None = None, receiver: int | None = None, kommune: str | None = None,
                      samhandlingspunkt: int | None = None, since: str | None = None, until: str | None = None,
                      flag: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        where, args = ["1=1"], []
        for clause, value in (("m.status = ?", status), ("m.to_herid = ?", receiver), ("e.kommunenummer = ?", kommune),
                              ("e.samhandlingspunkt = ?", samhandlingspunkt), ("m.created_at >= ?", since),
                              ("m.created_at < ?", until),
                              (_FLAG_CLAUSE.replace("flags", "e.flags"), _flag_pattern(flag))):
            if value is not None:
                where.append(clause)
                args.append(value)
        return self._query(
            "SELECT m.msg_id, m.event_ref, e.event_id, m.msg_type, m.from_herid, m.to_herid, m.role, m.status, "
            "m.created_at, m.sent_at, m.apprec_status, m.apprec_errors, e.samhandlingspunkt, e.kommunenummer, "
            "e.flags "
            f"FROM messages m JOIN events e ON e.id = m.event_ref WHERE {' AND '.join(where)} "
            "ORDER BY m.created_at, m.msg_id LIMIT ?", (*args, limit))

    def find_events(self, *, status: str | None = None, reason_code: str | None = None, since: str | None = None,
                    until: str | None = None, flag: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        where, args = ["1=1"], []
        for clause, value in (("status = ?", status), ("reason_code = ?", reason_code), ("received_at >= ?", since),
                              ("received_at < ?", until), (_FLAG_CLAUSE, _flag_pattern(flag))):
            if value is not None:
                where.append(clause)
                args.append(value)
        return self._query(
            "SELECT id, event_id, received_at, status, reason_code, reason, samhandlingspunkt, kommunenummer, "
            f"attempts, flags FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", (*args, limit))

    def event(self, key: str) -> dict[str, Any] | None:
        """By event_id or by the store's own number."""
        rows = self._query("SELECT * FROM events WHERE event_id = ?", (key.lower(),))
        if not rows and key.isdigit():
            rows = self._query("SELECT * FROM events WHERE id = ?", (int(key),))
        return rows[0] if rows else None

    def message(self, msg_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM messages WHERE msg_id = ?", (msg_id,))
        return rows[0] if rows else None

    def add_resend(self, original_msg_id: str, melding: Melding | None, operator: str, reason: str) -> None:
        """Record an operator's re-send: the same MsgId again, or (``melding``) a new conversation."""

        def work(db: Any) -> None:
            now = _now()
            if melding is None:
                self._execute(db, "UPDATE messages SET status='sent', sent_at=? WHERE msg_id=?", (now, original_msg_id))
                self._transition(db, "message", original_msg_id, "sent", "replay", f"re-sent by {operator}: {reason}")
                return
            ref = self._execute(db, "SELECT event_ref FROM messages WHERE msg_id=?", (original_msg_id,)).fetchone()
            self._execute(
                db, "INSERT INTO messages(msg_id, event_ref, msg_type, from_herid, to_herid, role, why, xml, status, "
                "created_at, sent_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (melding.msg_id, ref["event_ref"], melding.msg_type, melding.from_herid, melding.to_herid, melding.role,
                 melding.why, melding.xml, "sent", now, now))
            self._transition(db, "message", melding.msg_id, "sent", "replay",
                             f"new conversation replacing {original_msg_id}, by {operator}: {reason}")
            self._transition(db, "message", original_msg_id, "superseded", "replay", f"replaced by {melding.msg_id}")
            self._execute(db, "UPDATE messages SET status='superseded' WHERE msg_id=?", (original_msg_id,))

        self._tx(work)

    def audit(self, operator: str, action: str, target: str, reason: str, detail: str | None = None) -> None:
        def work(db: Any) -> None:
            self._execute(db, "INSERT INTO audit(at, operator, action, target, reason, detail) VALUES (?,?,?,?,?,?)",
                          (_now(), operator, action, target, reason, detail))

        self._tx(work)

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._query("SELECT at, operator, action, target, reason, detail FROM audit ORDER BY id DESC LIMIT ?",
                           (limit,))

    def events(self) -> list[dict[str, Any]]:
        return self._query(
            "SELECT id, event_id, received_at, status, reason_code, reason, samhandlingspunkt, kommunenummer "
            "FROM events ORDER BY id"
        )

    def messages(self, ref: int | None = None) -> list[dict[str, Any]]:
        query = ("SELECT msg_id, event_ref, msg_type, from_herid, to_herid, role, why, status, created_at, "
                 "sent_at, xml FROM messages")
        if ref is None:
            return self._query(query + " ORDER BY event_ref, to_herid")
        return self._query(query + " WHERE event_ref = ? ORDER BY to_herid", (ref,))

    def history(self, entity: str, ref: str) -> list[dict[str, Any]]:
        return self._query(
            "SELECT status, at, reason_code, reason FROM transitions WHERE entity=? AND ref=? ORDER BY id",
            (entity, str(ref)),
        )

    def close(self) -> None:
        with self._lock:
            self._drop()


def open_store(url: str) -> Store:
    """``sqlite:///relative/path``, ``sqlite:////absolute/path`` or ``postgresql://user@host/db``."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        return SqlStore(_Sqlite(Path(url[len(prefix):])))
    if url.startswith(("postgresql://", "postgres://")):
        return SqlStore(_Postgres(url))
    raise ValueError(
        f"unsupported GATEWAY_STORE_URL {url.split(':', 1)[0]}://…; use sqlite:///path/to/file.sqlite3 "
        "or postgresql://user@host/database"
    )
