"""Re-route (issue 15): route a stored event again with today's registry and rules, and act on the
difference. A receiver that is new today gets a new conversation (a new MsgId: the old one belongs to
whoever received it); a receiver that is gone has its open or rejected message marked ``superseded``; a
receiver that did not change is left alone, whatever the state of its message (a rejected message to an
unchanged receiver is a matter for that receiver, not for routing).

Why not ``replay``: replay re-sends what was built (same XML, same receiver), which is right after a
broker outage and wrong after a registry fix. A re-route is the repair for "the event went, or would go,
to the wrong place"."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from gateway.delivery.bus import Publisher, melding_out
from gateway.domain.history import DEFAULT_WINDOW_DAYS
from gateway.domain.kartlegging import Checks, Kartlegging, parse_event
from gateway.domain.registry import EDI2, Register
from gateway.errors import GatewayError, Parked
from gateway.messages.outbound import Melding
from gateway.pipeline import PACKAGED, Folders, build_melding
from gateway.routing.route import Mottaker, Route, route
from gateway.routing.rules import RuleSet
from gateway.store import SqlStore

# A gone receiver's message in one of these states is superseded; an acknowledged one stays as it is: it was
# read, and the history must keep saying so.
SUPERSEDABLE = {"built", "sent", "rejected", "overdue"}
REROUTABLE_EVENTS = {"parked", "routed", "sent"}


class RerouteError(GatewayError):
    """The event cannot be re-routed; the message says why and what to do instead."""


@dataclass(frozen=True)
class Change:
    """One receiver, then and today. ``kind``: ``new`` (a new conversation), ``gone`` (its message is superseded),
    ``kept-delivered`` (gone, but its message was acknowledged: left as history) or ``unchanged``."""

    kind: str
    herid: int
    role: str
    transport: str
    old_msg_id: str | None = None
    old_status: str | None = None
    why: str = ""


@dataclass
class ReroutePlan:
    ref: int
    event_id: str | None
    status_then: str
    reason_then: str | None
    changes: list[Change]
    parked_today: tuple[str, str] | None = None  # (code, reason) when today's routing parks it too
    kartlegging: Kartlegging | None = None
    chosen: Route | None = None
    receivers: dict[int, Mottaker] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(c.kind in ("new", "gone") for c in self.changes)

    def as_dict(self) -> dict[str, object]:
        return {"event": self.ref, "event_id": self.event_id, "status_then": self.status_then,
                "reason_then": self.reason_then,
                "parked_today": None if self.parked_today is None else
                {"reason_code": self.parked_today[0], "reason": self.parked_today[1]},
                "changes": [{"kind": c.kind, "herid": c.herid, "role": c.role, "transport": c.transport,
                             "old_msg_id": c.old_msg_id, "old_status": c.old_status, "why": c.why}
                            for c in self.changes]}


@dataclass(frozen=True)
class RerouteResult:
    sent: list[str]  # new MsgIds handed to AMQP
    waiting: list[str]  # new MsgIds the EDI 2.0 outbox sends
    superseded: list[str]

    def summary(self) -> str:
        return (f"{len(self.sent) + len(self.waiting)} new conversation(s) ({len(self.waiting)} via EDI 2.0 outbox), "
                f"{len(self.superseded)} superseded")


def plan_reroute(store: SqlStore, key: str, register: Register, rules: RuleSet | None, *,
                 window_days: int = DEFAULT_WINDOW_DAYS, checks: Checks | None = None) -> ReroutePlan:
    """What a re-route of the event (or of the event of the message) ``key`` would do; changes nothing."""
    event = store.event(key)
    if event is None:
        message = store.message(key)
        event = store.event(str(message["event_ref"])) if message is not None else None
    if event is None:
        raise RerouteError(f"no event or message {key}; find one with 'gateway events list' or 'gateway messages list'")
    if event["status"] not in REROUTABLE_EVENTS:
        raise RerouteError(f"event {event['id']} is {event['status']}: only parked, routed or sent events are "
                           "re-routed (a declined or not-shared event has no receivers to correct)")
    ref = int(event["id"])
    p = ReroutePlan(ref, event["event_id"], event["status"], event["reason_code"], [])
    old = [m for m in store.messages(ref) if m["status"] != "superseded"]
    try:
        # checked against the day it arrived, as the consumer did: a re-route weeks later is not a late event
        arrived = date.fromisoformat(str(event["received_at"])[:10])
        kartlegging = parse_event(bytes(event["body"]), checks or Checks(), today=arrived)
        chosen = route(kartlegging, register, rules, history=lambda fnr: store.kartlegginger([fnr])[fnr],
                       window_days=window_days)
    except Parked as parked:
        p.parked_today = (str(parked.code), parked.reason)
        return p
    p.kartlegging, p.chosen = kartlegging, chosen
    today = {m.herid: m for m in chosen.receivers}
    p.receivers = today
    by_herid = {int(m["to_herid"]): m for m in old}
    for herid, m in today.items():
        then = by_herid.get(herid)
        if then is None:
            p.changes.append(Change("new", herid, m.role, m.transport, why=m.why))
        else:
            p.changes.append(Change("unchanged", herid, m.role, m.transport, then["msg_id"], then["status"]))
    for herid, then in by_herid.items():
        if herid in today:
            continue
        kind = "gone" if then["status"] in SUPERSEDABLE else "kept-delivered"
        p.changes.append(Change(kind, herid, then["role"], then.get("transport") or "amqp", then["msg_id"],
                                then["status"], "no longer a receiver with today's registry and rules"))
    return p


def execute_reroute(p: ReroutePlan, store: SqlStore, publisher: Publisher, *, operator: str, reason: str,
                    folders: Folders = PACKAGED, clock: Callable[[], datetime] = lambda: datetime.now(UTC).astimezone()
                    ) -> RerouteResult:
    """Builds the new conversations, records them and the superseded messages in one transaction, hands the
    AMQP ones to the broker (the EDI 2.0 outbox sends the others: they are stored ``built`` with transport
    ``edi2``) and audits the outcome, a failure included."""
    target = str(p.ref)
    if p.parked_today is not None:
        store.audit(operator, "reroute", target, reason, f"still parked: {p.parked_today[0]}",
                    outcome=f"failed: {p.parked_today[0]}")
        raise RerouteError(f"event {p.ref} would be parked again today ({p.parked_today[0]}: {p.parked_today[1]}); "
                           "nothing changed")
    if not p.changed:
        store.audit(operator, "reroute", target, reason, "no change in receivers", outcome="done: nothing to do")
        return RerouteResult([], [], [])
    assert p.kartlegging is not None and p.chosen is not None
    now = clock()
    try:
        fresh: list[Melding] = [build_melding(p.kartlegging, p.chosen, p.receivers[c.herid], str(uuid.uuid4()), now,
                                              folders) for c in p.changes if c.kind == "new"]
    except Parked as parked:
        store.audit(operator, "reroute", target, reason, None, outcome=f"failed: {parked.code}")
        raise RerouteError(f"a new message cannot be built ({parked.code}: {parked.reason}); nothing changed") \
            from None
    replaced_by = ", ".join(m.msg_id for m in fresh) or "no new receiver"
    superseded = [(c.old_msg_id, f"re-routed: {c.why}; replaced by {replaced_by}")
                  for c in p.changes if c.kind == "gone" and c.old_msg_id]
    facts = None
    if p.status_then == "parked":
        k = p.kartlegging
        facts = {"samhandlingspunkt": k.samhandlingspunkt, "kommunenummer": k.patient.kommunenummer,
                 "patient_key": store.patient_key(k.patient.fnr), "sender_herid": k.sender.herid,
                 "performed_on": k.assessment.performed_on.isoformat()}
    store.record_reroute(p.ref, fresh, [(m, w) for m, w in superseded if m], facts,
                         f"re-routed by {operator}: {reason}")
    amqp = [m for m in fresh if m.transport != EDI2]
    try:
        if amqp:
            publisher.publish_batch([melding_out(m) for m in amqp])
    except GatewayError as exc:
        store.audit(operator, "reroute", target, reason, f"new MsgIds {replaced_by} stored, not sent",
                    outcome=f"failed: {type(exc).__name__}")
        raise RerouteError(f"the broker did not take the new messages ({exc}); they are stored as built: "
                           f"re-send them with 'gateway replay MSGID --reason …'") from exc
    store.mark_sent_many([(p.ref, [m.msg_id for m in amqp])])
    result = RerouteResult([m.msg_id for m in amqp], [m.msg_id for m in fresh if m.transport == EDI2],
                           [m for m, _ in superseded if m])
    store.audit(operator, "reroute", target, reason, f"new MsgIds {replaced_by}; superseded "
                f"{', '.join(result.superseded) or 'none'}", outcome="done")
    return result
