"""The path one event walks, as a plain function: bytes in, messages out (or ``Parked``).

No I/O happens here: the register is passed in and the caller stores and publishes, so the
whole path is testable without a broker or a database.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.history import DEFAULT_WINDOW_DAYS, Historikk
from gateway.domain.kartlegging import Kartlegging, parse_event
from gateway.domain.registry import Register
from gateway.errors import Parked, Reason
from gateway.messages.formats import FORMATS
from gateway.messages.msghead import serialize
from gateway.messages.note import render_note
from gateway.messages.outbound import Melding, msg_id_for
from gateway.messages.validation import MessageInvalid, validate_tree
from gateway.routing.route import Mottaker, Route, route
from gateway.routing.rules import RuleSet
from gateway.settings import PACKAGED_SCHEMAS, PACKAGED_TEMPLATES


@dataclass(frozen=True)
class Routed:
    """What the path made of one event: the route (who and why) and the validated messages. The consumer
    records it as an ``EventOutcome`` in the store and reports it as ``Handled``."""

    event: Kartlegging
    route: Route
    meldinger: tuple[Melding, ...]


@dataclass(frozen=True)
class Folders:
    """Where the note templates and the XSDs are read from: the packaged ones unless the operator's settings
    name others. Strings, because they are cache keys on the hot path."""

    templates: str = str(PACKAGED_TEMPLATES)
    schemas: str = str(PACKAGED_SCHEMAS)


PACKAGED = Folders()


def build_melding(event: Kartlegging, chosen: Route, mottaker: Mottaker, msg_id: str, now: datetime,
                  folders: Folders = PACKAGED) -> Melding:
    """One validated message; an invalid one parks the event, never leaves."""
    text = render_note(event, mottaker.role, chosen.template, route=chosen, m=mottaker, template_dir=folders.templates)
    fmt = FORMATS[mottaker.format]
    root = fmt.tree(event, chosen.sender, mottaker.address, mottaker.addressed_as, msg_id, now, text)
    try:
        validate_tree(root, folders.schemas)  # the tree that is serialized next, so what leaves is what was validated
    except MessageInvalid as exc:
        # Only the code and the schema path: the validator's own text may quote patient data.
        raise Parked(Reason.MESSAGE_INVALID, f"built message fails {exc.code} at {exc.path}") from None
    return Melding(
        msg_id=msg_id,
        event_id=event.event_id,
        msg_type=fmt.msg_type,
        from_herid=chosen.sender.herid,
        to_herid=mottaker.herid,
        role=mottaker.role,
        why=mottaker.why,
        generated_at=now.isoformat(timespec="seconds"),
        xml=serialize(root),
        transport=mottaker.transport,
    )


def build_meldinger(event: Kartlegging, chosen: Route, now: datetime, folders: Folders = PACKAGED
                    ) -> tuple[Melding, ...]:
    """One message per receiver, each with the MsgId derived from (event, receiver)."""
    return tuple(build_melding(event, chosen, m, msg_id_for(event.event_id, m.herid), now, folders)
                 for m in chosen.receivers)


def check_served(event: Kartlegging, served: Collection[int] | None) -> None:
    """The gateway sends as the HER-ids it is the messaging system for, and no other: receipts and replies
    to any other sender would go to a queue nobody here reads, and a publisher on the bus must not be able
    to send in the name of any party it likes. ``None`` means no list (library use and unit tests)."""
    if served is not None and event.sender.herid not in served:
        raise Parked(Reason.SENDER_NOT_SERVED, f"sender HER-id {event.sender.herid} is not one the gateway serves "
                     "(GATEWAY_SERVED_HERIDS)")


def process_event(event: Kartlegging, register: Register, now: datetime, rules: RuleSet | None = None,
                  history: Historikk | None = None, window_days: int = DEFAULT_WINDOW_DAYS,
                  folders: Folders = PACKAGED, served: Collection[int] | None = None) -> Routed:
    check_served(event, served)
    chosen = route(event, register, rules, history, window_days)
    return Routed(event, chosen, build_meldinger(event, chosen, now, folders))


def process(body: bytes, register: Register, now: datetime, rules: RuleSet | None = None,
            history: Historikk | None = None, window_days: int = DEFAULT_WINDOW_DAYS,
            folders: Folders = PACKAGED) -> Routed:
    return process_event(parse_event(body), register, now, rules, history, window_days, folders)
