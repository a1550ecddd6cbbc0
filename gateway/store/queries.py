"""What operators ask of the store: find and show events and messages, their history, the audit trail,
and the bookkeeping of an operator's re-send."""

from __future__ import annotations

import json
from typing import Any

from gateway.messages.outbound import Melding
from gateway.store.db import Database, Tx
from gateway.store.events import FLAG_CLAUSE, flag_pattern, now_utc, transition


class OperatorQueries:
    """Reads for the CLI and the console; writes only what an operator's action records."""

    db: Database

    def patient_key(self, fnr: str) -> str:
        """The keyed patient hash; ``EventStore`` provides it in ``SqlStore``."""
        raise NotImplementedError

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
            "m.created_at, m.sent_at, m.apprec_status, m.apprec_errors, m.transport, e.samhandlingspunkt, "
            "e.kommunenummer, e.flags "
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
        """By MsgId as typed, or in lower case (MsgIds are UUIDs; a copy from a receiver's system may be upper)."""
        rows = self.db.query("SELECT * FROM messages WHERE msg_id = ?", (msg_id.strip(),))
        if not rows and msg_id.strip() != msg_id.strip().lower():
            rows = self.db.query("SELECT * FROM messages WHERE msg_id = ?", (msg_id.strip().lower(),))
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

    def audit(self, operator: str, action: str, target: str, reason: str, detail: str | None = None,
              outcome: str = "done") -> None:
        """``outcome``: ``done``, ``dry-run`` or ``failed: …`` (issue 15: a failed action must not look done)."""

        def work(tx: Tx) -> None:
            tx.execute("INSERT INTO audit(at, operator, action, target, reason, detail, outcome) "
                       "VALUES (?,?,?,?,?,?,?)", (now_utc(), operator, action, target, reason, detail, outcome))

        self.db.transaction(work)

    def last_audit(self, action: str) -> dict[str, Any] | None:
        """The newest audit row of ``action`` (e.g. the settings recorded at the last start)."""
        rows = self.db.query("SELECT at, operator, action, target, reason, detail, outcome FROM audit "
                             "WHERE action = ? ORDER BY id DESC LIMIT 1", (action,))
        return rows[0] if rows else None

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.db.query("SELECT at, operator, action, target, reason, detail, outcome FROM audit "
                             "ORDER BY id DESC LIMIT ?", (limit,))

    def events(self) -> list[dict[str, Any]]:
        return self.db.query(
            "SELECT id, event_id, received_at, status, reason_code, reason, samhandlingspunkt, kommunenummer "
            "FROM events ORDER BY id"
        )

    def messages(self, ref: int | None = None) -> list[dict[str, Any]]:
        query = ("SELECT msg_id, event_ref, msg_type, from_herid, to_herid, role, why, status, created_at, "
                 "sent_at, xml, transport FROM messages")
        if ref is None:
            return self.db.query(query + " ORDER BY event_ref, to_herid")
        return self.db.query(query + " WHERE event_ref = ? ORDER BY to_herid", (ref,))

    def history(self, entity: str, ref: str) -> list[dict[str, Any]]:
        return self.db.query(
            "SELECT status, at, reason_code, reason FROM transitions WHERE entity=? AND ref=? ORDER BY id",
            (entity, str(ref)),
        )


    # --- for the web console (issue 16); new methods only, the ones above keep their signatures ---

    def state_counts(self, since: str) -> dict[str, dict[str, int]]:
        """Events by state (received since ``since``) and messages by state (built since ``since``): the
        Oversikt's "last hour/day/week" columns."""
        events = self.db.query("SELECT status, count(*) AS n FROM events WHERE received_at >= ? GROUP BY status",
                               (since,))
        messages = self.db.query("SELECT status, count(*) AS n FROM messages WHERE created_at >= ? GROUP BY status",
                                 (since,))
        return {"events": {r["status"]: int(r["n"]) for r in events},
                "messages": {r["status"]: int(r["n"]) for r in messages}}

    def message_state_totals(self) -> dict[str, int]:
        """Every message by its state now (a metric: what is overdue or rejected is a number, not a rate)."""
        return {r["status"]: int(r["n"])
                for r in self.db.query("SELECT status, count(*) AS n FROM messages GROUP BY status")}

    def parked_by_reason(self) -> list[dict[str, Any]]:
        """Events parked now, by reason code, most first."""
        return self.db.query("SELECT reason_code, count(*) AS n, max(received_at) AS newest FROM events "
                             "WHERE status = 'parked' GROUP BY reason_code ORDER BY n DESC, reason_code")

    def apprec_problems(self, limit: int = 20) -> list[dict[str, Any]]:
        """Messages that need an operator: overdue (no AppRec by the deadline) or rejected, newest first."""
        return self.db.query(
            "SELECT m.msg_id, m.status, m.to_herid, m.role, m.sent_at, m.apprec_status, m.apprec_errors, "
            "m.overdue_at, m.answered_at, e.id AS event_ref, e.kommunenummer, e.samhandlingspunkt "
            "FROM messages m JOIN events e ON e.id = m.event_ref WHERE m.status IN ('overdue', 'rejected') "
            "ORDER BY COALESCE(m.answered_at, m.overdue_at, m.sent_at) DESC LIMIT ?", (limit,))

    def last_times(self) -> dict[str, str | None]:
        """When the last event came in and the last message went out: a quiet gateway shows here first."""
        received = self.db.query("SELECT max(received_at) AS t FROM events")
        sent = self.db.query("SELECT max(sent_at) AS t FROM messages")
        return {"event_received": received[0]["t"] if received else None,
                "message_sent": sent[0]["t"] if sent else None}

    def registry_imported_at(self) -> str | None:
        """When the registry in the store was last imported (None when it never was)."""
        rows = self.db.query("SELECT max(imported_at) AS t FROM registry_imports")
        return rows[0]["t"] if rows else None

    def recent_receivers(self, since: str, limit: int = 20) -> list[int]:
        """The HER-ids messages went to since ``since``: whose queues the Oversikt shows."""
        return [int(r["to_herid"]) for r in self.db.query(
            "SELECT to_herid, count(*) AS n FROM messages WHERE created_at >= ? GROUP BY to_herid "
            "ORDER BY n DESC, to_herid LIMIT ?", (since, limit))]

    def answered_since(self, since: str) -> list[dict[str, Any]]:
        """Messages answered by an AppRec at or after ``since``, with when they were sent: the AppRec
        latency metric is taken from the store, so it is right whichever replica tracked the receipt."""
        return self.db.query("SELECT msg_id, to_herid, status, apprec_status, sent_at, answered_at FROM messages "
                             "WHERE answered_at >= ? ORDER BY answered_at", (since,))

    def search_events(self, *, status: str | None = None, kommune: str | None = None,
                      samhandlingspunkt: int | None = None, receiver: int | None = None, since: str | None = None,
                      until: str | None = None, key: str | None = None, patient: str | None = None,
                      reason_code: str | None = None, limit: int = 50, offset: int = 0, flag: str | None = None
                      ) -> tuple[list[dict[str, Any]], int]:
        """One page of events, newest first, and how many match in all. ``key`` is an event_id, the store's
        number or a MsgId of one of the event's messages; ``patient`` is a ``patient_key`` (never the number).

        An event parked before it was understood has no kommunenummer or patient_key column: for a kommune or
        patient search those are matched on their body, so a parked event is found by its kommune or patient."""
        where, args = ["1=1"], []
        for clause, value in (("status = ?", status), ("samhandlingspunkt = ?", samhandlingspunkt),
                              ("reason_code = ?", reason_code), ("received_at >= ?", since),
                              ("received_at < ?", until), (FLAG_CLAUSE, flag_pattern(flag)),
                              ("EXISTS (SELECT 1 FROM messages m WHERE m.event_ref = events.id AND m.to_herid = ?)",
                               receiver)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if key:
            where.append("(event_id = ? OR id = ? OR EXISTS (SELECT 1 FROM messages m WHERE m.event_ref = events.id "
                         "AND m.msg_id = ?))")
            args += [key.strip().lower(), int(key) if key.strip().isdigit() and len(key.strip()) <= 18 else -1,
                     key.strip().lower()]
        columns = ("id, event_id, received_at, status, reason_code, reason, samhandlingspunkt, kommunenummer, "
                   "attempts, flags, body")
        if kommune is None and patient is None:
            total = self.db.query(f"SELECT count(*) AS n FROM events WHERE {' AND '.join(where)}", args)[0]["n"]
            rows = self.db.query(f"SELECT {columns} FROM events WHERE {' AND '.join(where)} ORDER BY id DESC "
                                 "LIMIT ? OFFSET ?", (*args, limit, offset))
            return rows, int(total)
        # An event parked before it was understood has neither column: its body is read instead.
        for column, value in (("kommunenummer", kommune), ("patient_key", patient)):
            if value is not None:
                where.append(f"({column} = ? OR {column} IS NULL)")
                args.append(value)
        candidates = self.db.query(
            "SELECT id, kommunenummer, patient_key, CASE WHEN kommunenummer IS NULL OR patient_key IS NULL "
            f"THEN body END AS body FROM events WHERE {' AND '.join(where)} ORDER BY id DESC", args)
        ids = []
        for r in candidates:
            facts = _body_patient(r["body"]) if r["body"] is not None else {}
            if kommune is not None and (r["kommunenummer"] or facts.get("kommunenummer")) != kommune:
                continue
            if patient is not None and (r["patient_key"] or (self.patient_key(facts["fnr"]) if facts.get("fnr")
                                                               else None)) != patient:
                continue
            ids.append(r["id"])
        page = ids[offset:offset + limit]
        if not page:
            return [], len(ids)
        marks = ",".join("?" * len(page))
        rows = self.db.query(f"SELECT {columns} FROM events WHERE id IN ({marks}) ORDER BY id DESC", page)
        return rows, len(ids)

    def search_messages(self, *, status: str | None = None, kommune: str | None = None,
                        samhandlingspunkt: int | None = None, receiver: int | None = None, since: str | None = None,
                        until: str | None = None, key: str | None = None, patient: str | None = None,
                        limit: int = 50, offset: int = 0, flag: str | None = None
                        ) -> tuple[list[dict[str, Any]], int]:
        """One page of messages, newest first, and how many match. ``key`` is a MsgId or an event_id."""
        where, args = ["1=1"], []
        for clause, value in (("m.status = ?", status), ("e.kommunenummer = ?", kommune),
                              ("e.samhandlingspunkt = ?", samhandlingspunkt), ("m.to_herid = ?", receiver),
                              ("m.created_at >= ?", since), ("m.created_at < ?", until),
                              ("e.patient_key = ?", patient),
                              (FLAG_CLAUSE.replace("flags", "e.flags"), flag_pattern(flag))):
            if value is not None:
                where.append(clause)
                args.append(value)
        if key:
            where.append("(m.msg_id = ? OR m.msg_id = ? OR e.event_id = ?)")
            args += [key.strip(), key.strip().lower(), key.strip().lower()]
        joined = f"FROM messages m JOIN events e ON e.id = m.event_ref WHERE {' AND '.join(where)}"
        total = self.db.query(f"SELECT count(*) AS n {joined}", args)[0]["n"]
        rows = self.db.query(
            "SELECT m.msg_id, m.event_ref, e.event_id, m.msg_type, m.to_herid, m.role, m.status, m.created_at, "
            f"m.sent_at, m.apprec_status, m.apprec_errors, m.transport, m.from_herid, e.samhandlingspunkt, "
            f"e.kommunenummer, e.flags {joined} "
            "ORDER BY m.created_at DESC, m.msg_id LIMIT ? OFFSET ?", (*args, limit, offset))
        return rows, int(total)

    def audit_search(self, *, operator: str | None = None, action: str | None = None, target: str | None = None,
                     since: str | None = None, until: str | None = None, limit: int = 50, offset: int = 0
                     ) -> tuple[list[dict[str, Any]], int]:
        """One page of the audit trail, newest first, and how many entries match. ``operator`` matches
        part of the name, so 'kari' finds 'kari (konsoll)'."""
        where, args = ["1=1"], []
        for clause, value in (("lower(operator) LIKE ?", f"%{operator.lower()}%" if operator else None),
                              ("action = ?", action), ("target = ?", target), ("at >= ?", since), ("at < ?", until)):
            if value is not None:
                where.append(clause)
                args.append(value)
        condition = " AND ".join(where)
        total = self.db.query(f"SELECT count(*) AS n FROM audit WHERE {condition}", args)[0]["n"]
        rows = self.db.query("SELECT id, at, operator, action, target, reason, detail, outcome FROM audit "
                             f"WHERE {condition} ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset))
        return rows, int(total)

    def audit_actions(self) -> list[str]:
        return [r["action"] for r in self.db.query("SELECT DISTINCT action FROM audit ORDER BY action")]


def body_facts(body: bytes | None) -> dict[str, Any]:
    """The kommunenummer and samhandlingspunkt of an event that was parked before the gateway understood it,
    read from the body as sent, for the operator's list (issue 15); never the patient's number or name."""
    facts: dict[str, Any] = {}
    found = _body_patient(body)
    if "kommunenummer" in found:
        facts["kommunenummer"] = found["kommunenummer"]
    try:
        parsed = json.loads(bytes(body)) if body else None
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("samhandlingspunkt"), int):
        facts["samhandlingspunkt"] = parsed["samhandlingspunkt"]
    return facts


def patient_part(body: bytes | None) -> dict[str, str]:
    """The patient part of a stored event body as the hospital system sent it (text and number values as text),
    or nothing for a body that has none; for the console's detail page and for matching a search."""
    if not body:
        return {}
    try:
        parsed = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError):
        return {}
    patient = parsed.get("patient") if isinstance(parsed, dict) else None
    if not isinstance(patient, dict):
        return {}
    return {k: str(v) for k, v in patient.items() if isinstance(v, str | int)}


def _body_patient(body: bytes | None) -> dict[str, str]:
    """The patient's kommunenummer and fødselsnummer from a body the gateway could not route (used only to match
    a search, never returned or logged)."""
    found = patient_part(body)
    return {k: found[k] for k in ("kommunenummer", "fnr") if k in found}
