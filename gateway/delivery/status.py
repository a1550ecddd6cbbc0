"""Status events back to the publishing hospital (``kartlegging.status/1``), published from the store.

Every state change of an event or a message is a row in ``transitions``, written in the same transaction as
the change itself. ``StatusPublisher.publish_pending`` reads the rows after the offset it last reached,
builds one status per change a hospital hears about (``gateway.oversikt.status``), publishes them in one
broker transaction on the ``kartlegging`` exchange (routing key ``kartlegging.status.<state>``, AMQP
``message_id`` = the status id) and only then advances the offset. So a crash never loses a status; a crash
between the publish and the offset makes the next run publish the same statuses again, byte for byte and
with the same ids (the rows never change), which a hospital drops by ``message_id``. A transition into the
state the entity already had (a duplicate event noted again) is no change and tells nothing.

The status never carries patient data: it is built from HER-ids, states, reason codes and the registry's
names and phone numbers; an event without an ``event_id`` (unreadable) gets none, as its publisher could not
correlate it anyway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from gateway.delivery.bus import Outgoing, Publisher
from gateway.delivery.policy import More
from gateway.domain.registry import Register
from gateway.errors import PublishFailed, StoreUnavailable
from gateway.logs import log
from gateway.oversikt.status import (
    EXCHANGE,
    AppRecError,
    AppRecResult,
    ContactPoint,
    EventChange,
    EventState,
    MessageChange,
    MessageState,
    Receiver,
    StatusError,
    build_status,
    routing_key,
)
from gateway.store.status import StatusFacts

# The receivers whose name and number a patient is given at routing: the kommune's contact points.
NOT_KOMMUNE_ROLES = {"fastlege", "sykehus", "nav", "hospital"}
_REPLACED_BY = re.compile(r"replaced by ([0-9a-fA-F-]{36})")


class StatusSource(Protocol):
    def tell_statuses(self, tell: Callable[[list[dict[str, Any]], StatusFacts], None], limit: int = 500) -> int: ...


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _errors(stored: str | None) -> tuple[AppRecError, ...]:
    if not stored:
        return ()
    out = []
    for e in json.loads(stored):
        code = str(e.get("code") or "X99")
        out.append(AppRecError(code=code if re.fullmatch(r"[A-Z][A-Z0-9]{1,9}", code) else "X99",
                               system=e.get("system") if isinstance(e.get("system"), str) else None))
    return tuple(out)


class StatusPublisher:
    """Tells hospitals what became of their events; run ``publish_pending`` periodically."""

    def __init__(self, store: StatusSource, publisher: Publisher, register: Register, *, batch: int = 100) -> None:
        self.store = store
        self.publisher = publisher
        self.register = register
        self.batch = batch

    def contact_point(self, messages: list[dict[str, Any]]) -> ContactPoint | None:
        """The kommune contact point of a routed event: its first kommune receiver, with the registry's
        phone and opening hours where known."""
        for m in messages:
            if m["role"] in NOT_KOMMUNE_ROLES:
                continue
            party = self.register.party(m["to_herid"])
            if party is None:
                continue
            return ContactPoint(herid=party.herid, name=party.name, role=m["role"], phone=party.phone,
                                opening_hours=party.opening_hours)
        return None

    def build(self, changes: list[dict[str, Any]], facts: StatusFacts) -> list[dict[str, Any]]:
        """The statuses for a list of transitions; a repeat of the state the entity already had tells nothing."""
        out: list[dict[str, Any]] = []
        for c in changes:
            if c["status"] == c["previous"]:
                continue
            try:
                status = self._one(c, facts)
            except StatusError as exc:  # e.g. an event_id that is no UUID: its publisher broke the contract
                log.warning("status.skipped", entity=c["entity"], state=c["status"], error=str(exc)[:200])
                continue
            if status is not None:
                out.append(status)
        return out

    def _one(self, c: dict[str, Any], facts: StatusFacts) -> dict[str, Any] | None:
        """One transition as a status, or None when its publisher could not correlate it (no event_id)."""
        seq = int(c["earlier"]) + 1
        if c["entity"] == "event":
            e = facts.events.get(int(c["ref"]))
            if e is None or not e["event_id"]:
                return None
            state = EventState(c["status"])
            return build_status(EventChange(
                event_id=e["event_id"], state=state, at=_at(c["at"]), seq=seq, sender_herid=e["sender_herid"],
                reason_code=c["reason_code"] if state is EventState.PARKED else None,
                contact_point=self.contact_point(facts.receivers.get(int(c["ref"]), []))
                if state is EventState.ROUTED else None))
        m = facts.messages.get(c["ref"])
        if m is None or not m["event_id"]:
            return None
        mstate = MessageState(c["status"])
        party = self.register.party(m["to_herid"])
        apprec = None
        if mstate in (MessageState.ACKNOWLEDGED, MessageState.REJECTED) and m["apprec_status"]:
            apprec = AppRecResult(status=str(m["apprec_status"]), errors=_errors(m["apprec_errors"]))
        replaced = _REPLACED_BY.search(c.get("reason") or "") if mstate is MessageState.SUPERSEDED else None
        return build_status(MessageChange(
            event_id=m["event_id"], msg_id=m["msg_id"],
            receiver=Receiver(herid=m["to_herid"], name=party.name if party else str(m["to_herid"]), role=m["role"]),
            state=mstate, at=_at(c["at"]), seq=seq, sender_herid=m["sender_herid"], apprec=apprec,
            superseded_by=replaced.group(1).lower() if replaced else None))

    def publish_pending(self) -> int:
        """One pass: publish what changed and is not yet told, then mark it told (one database transaction
        around one broker transaction). Returns how many statuses were published; a store or broker outage
        leaves everything untold for the next pass."""
        published: list[dict[str, Any]] = []

        def tell(changes: list[dict[str, Any]], facts: StatusFacts) -> None:
            statuses = self.build(changes, facts)
            if statuses:
                self.publisher.publish_batch([status_out(s) for s in statuses])
            published.extend(statuses)

        try:
            looked = self.store.tell_statuses(tell, self.batch)
        except (StoreUnavailable, PublishFailed) as exc:
            log.warning("status.deferred", error_type=type(exc).__name__, error=str(exc)[:200])
            return 0
        for s in published:
            log.info("status.published", event_id=s["event_id"], state=s["state"], status_id=s["status_id"])
        # A full pass means more is waiting: the loop runs the next one soon (``More``), between its batches.
        # Passes are small (100 changes, ~8 ms here) so none holds the events up for long (issue 18: one
        # 500-change pass every 0.5 s both held events up ~40 ms and kept statuses minutes behind a drain).
        return More(len(published)) if looked >= self.batch else len(published)


def status_out(status: dict[str, Any]) -> Outgoing:
    body = json.dumps(status, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return Outgoing(routing_key(status["state"]), body, {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "message_id": status["status_id"],
        "correlation_id": status["event_id"],
        "type": "kartlegging.status/1",
    }, exchange=EXCHANGE)
