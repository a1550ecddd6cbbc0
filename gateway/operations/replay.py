"""Audited replay, for operators: a parked event walks the whole path again (with today's
registry and rules); a sent, rejected or overdue message goes out again with the same MsgId, or,
when the operator asks for a new conversation, is rebuilt with a new one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.delivery.bus import Publisher, melding_out, receiver_queue_name
from gateway.domain.history import DEFAULT_WINDOW_DAYS
from gateway.domain.kartlegging import event_id_of, parse_event
from gateway.domain.registry import Register
from gateway.errors import GatewayError, Reason
from gateway.pipeline import PACKAGED, Folders, build_melding
from gateway.routing.route import route
from gateway.routing.rules import RuleSet
from gateway.store import SqlStore, Store
from gateway.store.events import stored_melding

REPLAYABLE_EVENTS = {"parked", "received", "routed"}
REPLAYABLE_MESSAGES = {"built", "sent", "rejected", "overdue"}


class ReplayError(GatewayError):
    """The target cannot be replayed; the message says why and what to do."""


@dataclass(frozen=True)
class ReplayPlan:
    kind: str  # "event" or "message"
    target: str
    action: str
    new_conversation: bool = False


def plan(store: Store, key: str, *, new_conversation: bool = False, force_same_receiver: bool = False) -> ReplayPlan:
    message = store.message(key)
    if message is not None:
        key = message["msg_id"]
        if message["status"] == "rejected" and not force_same_receiver:
            raise ReplayError(f"message {key} was rejected by {message['to_herid']}: sending it (or a copy) to the "
                              "same receiver again is rarely right. After a registry fix use 'gateway reroute "
                              f"{message['event_ref']} --dry-run'; if the receiver asked for it again, add "
                              "--force-same-receiver")
        allowed = message["status"] in REPLAYABLE_MESSAGES or (new_conversation and message["status"] != "superseded")
        if not allowed:
            raise ReplayError(f"message {key} is {message['status']}; only {', '.join(sorted(REPLAYABLE_MESSAGES))} "
                              "messages are re-sent (use --new-conversation to send an acknowledged one again)")
        action = (f"rebuild for {message['to_herid']} with a new MsgId" if new_conversation
                  else f"re-send to {receiver_queue_name(message['to_herid'])} with the same MsgId")
        return ReplayPlan("message", key, action, new_conversation)
    event = store.event(key)
    if event is None:
        raise ReplayError(f"no event or message {key}; find one with 'gateway messages list' or 'gateway events list'")
    if event["status"] not in REPLAYABLE_EVENTS:
        raise ReplayError(f"event {key} is {event['status']}: its messages are replayed one by one (by MsgId)")
    return ReplayPlan("event", str(event["id"]), f"publish event {event['event_id'] or event['id']} again "
                      f"(was {event['status']}{': ' + event['reason_code'] if event['reason_code'] else ''})")


def execute(p: ReplayPlan, store: Store, publisher: Publisher, register: Register | None, *, operator: str,
            reason: str, window_days: int = DEFAULT_WINDOW_DAYS, rules: RuleSet | None = None,
            folders: Folders = PACKAGED) -> str:
    """Carries the plan out and writes the audit trail; returns what was done."""
    if p.kind == "event":
        event = store.event(p.target)
        assert event is not None
        body = bytes(event["body"])
        publisher.publish_event(body, event_id_of(body) or str(event["id"]))
        store.audit(operator, "replay-event", p.target, reason, p.action)
        return p.action
    message = store.message(p.target)
    assert message is not None
    if not p.new_conversation:
        event_row = store.event(str(message["event_ref"]))
        publisher.publish_batch([melding_out(stored_melding(message, event_row["event_id"] if event_row else None))])
        store.add_resend(p.target, None, operator, reason)
        store.audit(operator, "replay-message", p.target, reason, p.action)
        return p.action
    original = store.event(str(message["event_ref"]))
    assert original is not None and register is not None, "a new conversation needs the event and the registry"
    kartlegging = parse_event(bytes(original["body"]))
    # the patient's history as the consumer sees it: the hospital contact point, the two-hospitals note
    chosen = route(kartlegging, register, rules, history=lambda fnr: store.kartlegginger([fnr])[fnr],
                   window_days=window_days)
    mottaker = next((m for m in chosen.receivers if m.herid == message["to_herid"]), None)
    if mottaker is None:
        raise ReplayError(f"{message['to_herid']} is no longer a receiver of this event with today's registry; "
                          "replay the event instead")
    fresh = build_melding(kartlegging, chosen, mottaker, str(uuid.uuid4()), datetime.now(UTC).astimezone(), folders)
    publisher.publish_batch([melding_out(fresh)])
    store.add_resend(p.target, fresh, operator, reason)
    store.audit(operator, "replay-message-new-conversation", p.target, reason, f"new MsgId {fresh.msg_id}")
    return f"{p.action}: {fresh.msg_id}"


ROUTING_REASONS = tuple(sorted(r.value for r in Reason if r.value.startswith("ROUTING_")))
SYSTEM = "system"


def retry_routing_parks(store: SqlStore, publisher: Publisher, version: str) -> int:
    """After a registry import (``GATEWAY_RETRY_PARKED_AFTER_IMPORT``): every event parked for a routing reason
    goes through the gateway again, audited as the system with the import it follows. Returns how many."""
    done = 0
    reason = f"automatic retry after registry {version}"
    for ref in store.parked_ids(ROUTING_REASONS):
        p = plan(store, str(ref))
        try:
            execute(p, store, publisher, None, operator=SYSTEM, reason=reason)
            done += 1
        except GatewayError as exc:
            store.audit(SYSTEM, "replay-event", p.target, reason, p.action, outcome=f"failed: {type(exc).__name__}")
    return done
