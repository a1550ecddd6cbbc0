"""The overview use-cases: each patient's pathway and who is due next, the coverage of contact points per
kommune, and the national WMFG10 indicator, read from the store and the registry.

The store keeps each event's facts in columns (samhandlingspunkt, kommune, sender, date, status) and its body;
what the columns do not hold (declined, ask again after, the procedure code) is read from the body here, in
memory, and never printed: a pathway is keyed by the store's pseudonymous patient key.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.domain.registry import Register
from gateway.errors import Reason
from gateway.oversikt.coverage import CoverageRow, ReceiverCounts, coverage
from gateway.oversikt.indicator import PointCountRow, Wmfg10Row, point_counts, wmfg10_share
from gateway.oversikt.pathway import (
    MESSAGE_STATES,
    KartleggingRecord,
    MessageRecord,
    Pathway,
    RecordError,
    Worklists,
    build_pathways,
    worklists,
)
from gateway.routing.rules import PERSON_TARGETS, RuleSet
from gateway.store import SqlStore

# the routing rules' service types, as the coverage report names the roles
WANTED_FROM_TARGETS = {"forvaltningsenhet", "koordinerende_enhet", "kreftkoordinator", "barnekoordinator",
                       "saksbehandling"}
COUNTED_STATES = ("sent", "routed", "declined", "not_shared")  # events that tell something about the pathway


def _body_facts(body: bytes) -> tuple[bool, date | None, bool]:
    """(declined, ask again after, WMFG10) from a stored event body; an unreadable body says none of them."""
    try:
        data = json.loads(body)
    except ValueError:
        return False, None, False
    declined = data.get("declined") if isinstance(data, dict) else None
    again = declined.get("ask_again_after") if isinstance(declined, dict) else None
    try:
        again_on = date.fromisoformat(again) if isinstance(again, str) else None
    except ValueError:
        again_on = None
    assessment = data.get("assessment") if isinstance(data, dict) else None
    code = assessment.get("procedure_code") if isinstance(assessment, dict) else None
    return isinstance(declined, dict), again_on, code == "WMFG10"


def records(store: SqlStore, register: Register, *, patient_key: str | None = None,
            kommune: str | None = None) -> list[KartleggingRecord]:
    """Every kartlegging the pathway counts (sent, routed, declined, not shared), as plain records."""
    where = [f"status IN ({','.join('?' * len(COUNTED_STATES))})", "patient_key IS NOT NULL",
             "performed_on IS NOT NULL"]
    args: list[Any] = list(COUNTED_STATES)
    if patient_key is not None:
        where.append("patient_key = ?")
        args.append(patient_key)
    if kommune is not None:
        where.append("kommunenummer = ?")
        args.append(kommune)
    rows = store.db.query(
        "SELECT id, event_id, patient_key, samhandlingspunkt, performed_on, sender_herid, kommunenummer, status, "
        f"body FROM events WHERE {' AND '.join(where)} ORDER BY id", args)
    messages: dict[int, list[MessageRecord]] = defaultdict(list)
    if rows:
        for m in store.db.query("SELECT msg_id, event_ref, to_herid, role, status FROM messages"):
            if m["status"] in MESSAGE_STATES:
                party = register.party(m["to_herid"])
                messages[m["event_ref"]].append(MessageRecord(m["msg_id"], m["to_herid"],
                                                              party.name if party else "?", m["role"], m["status"]))
    out = []
    for r in rows:
        declined, again, wmfg10 = _body_facts(bytes(r["body"]))
        sender = register.party(r["sender_herid"])
        out.append(KartleggingRecord(
            event_id=r["event_id"] or str(r["id"]), patient_key=r["patient_key"],
            samhandlingspunkt=r["samhandlingspunkt"], performed_on=date.fromisoformat(r["performed_on"]),
            sender_herid=r["sender_herid"], sender_name=sender.name if sender else "?",
            kommunenummer=r["kommunenummer"], status=r["status"], declined=declined or r["status"] == "declined",
            ask_again_after=again, wmfg10=wmfg10, messages=tuple(messages.get(r["id"], ()))))
    return out


def pathways(store: SqlStore, register: Register, rules: RuleSet, *, patient_key: str | None = None,
             kommune: str | None = None) -> list[Pathway]:
    return build_pathways(records(store, register, patient_key=patient_key, kommune=kommune), rules.due_windows)


def due(store: SqlStore, register: Register, rules: RuleSet, today: date, soon_days: int = 30,
        kommune: str | None = None) -> Worklists:
    return worklists(pathways(store, register, rules, kommune=kommune), today, soon_days)


def wanted_roles(rules: RuleSet, kommuner: Iterable[str]) -> dict[str, set[str]]:
    """kommunenummer → the contact roles the routing rules look for there (rules and additions, every step of
    each fallback chain; persons such as the fastlege are not kommune contact points)."""
    wanted: dict[str, set[str]] = {}
    for kommune in kommuner:
        roles: set[str] = set()
        for rule in rules.rules_for(kommune) + rules.additions_for(kommune):
            for receiver in rule.receivers:
                roles |= {t for t in receiver.find if t not in PERSON_TARGETS and t in WANTED_FROM_TARGETS}
        wanted[kommune] = roles
    return wanted


def coverage_report(store: SqlStore, register: Register, rules: RuleSet) -> list[CoverageRow]:
    """Which roles each kommune's rules want, which the registry has, and how their receivers answer."""
    parties = list(getattr(register, "parties", {}).values())
    kommuner = {p.herid: p.kommunenummer for p in parties if p.kind == "organisation" and p.kommunenummer}
    present: dict[str, dict[str, list[tuple[int, str, bool]]]] = {k: {} for k in kommuner.values()}
    for p in parties:
        if p.kind == "service" and p.parent_herid in kommuner and p.service_type:
            present[kommuner[p.parent_herid]].setdefault(p.service_type, []).append((p.herid, p.name, p.active))
    counts: dict[int, ReceiverCounts] = {}
    for r in store.db.query("SELECT to_herid, status, count(*) AS n FROM messages GROUP BY to_herid, status"):
        c = counts.setdefault(r["to_herid"], ReceiverCounts())
        n = int(r["n"])
        sent = n if r["status"] in ("sent", "acknowledged", "rejected", "overdue") else 0
        counts[r["to_herid"]] = ReceiverCounts(
            sent=c.sent + sent, acknowledged=c.acknowledged + (n if r["status"] == "acknowledged" else 0),
            rejected=c.rejected + (n if r["status"] == "rejected" else 0),
            overdue=c.overdue + (n if r["status"] == "overdue" else 0))
    return coverage(wanted_roles(rules, present), present, counts)


@dataclass(frozen=True)
class Indicator:
    wmfg10: list[Wmfg10Row]
    points: list[PointCountRow]


def parked_without_wmfg10(store: SqlStore, register: Register) -> list[KartleggingRecord]:
    """SP1/SP2 events parked because they lack WMFG10: the indicator counts them as kartlegginger without it
    (that is what it is for). They were parked before their facts were stored, so the facts come from the body."""
    out = []
    for r in store.db.query("SELECT id, event_id, body FROM events WHERE status = 'parked' AND reason_code = ?",
                            (Reason.WMFG10_MISSING.value,)):
        try:
            data = json.loads(bytes(r["body"]))
            sender = register.party(int(data["sender"]["herid"]))
            out.append(KartleggingRecord(
                event_id=r["event_id"] or str(r["id"]), patient_key=store.patient_key(str(data["patient"]["fnr"])),
                samhandlingspunkt=int(data["samhandlingspunkt"]),
                performed_on=date.fromisoformat(data["assessment"]["performed_on"]),
                sender_herid=int(data["sender"]["herid"]), sender_name=sender.name if sender else "?",
                kommunenummer=str(data["patient"]["kommunenummer"]), status="parked"))
        except (ValueError, KeyError, TypeError, RecordError):
            continue  # a body too broken to say when and where: it is in the parked list, not the indicator
    return out


def indicator(store: SqlStore, register: Register) -> Indicator:
    found = records(store, register)
    return Indicator(wmfg10_share(found + parked_without_wmfg10(store, register)), point_counts(found))
