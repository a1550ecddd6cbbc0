"""Status events ``kartlegging.status/1``: what happened to a kartlegging event and to each of its messages,
told back to the system that published it.

Hospitals today send a kartlegging and hear nothing back; the patient must be told whom to contact in
the kommune. The gateway sees every state change and every AppRec, so it tells them: one status event per
state change, on the ``kartlegging`` exchange with routing key ``kartlegging.status.<state>``.

What a status event never carries: the patient's name, fødselsnummer, diagnosis or any note text. The
hospital correlates by ``event_id``, which it chose itself. The builders take no patient fields at all, and
the free text that *could* quote a patient — an AppRec's error text and detail, written by the receiver —
is replaced by the standard text of the error code (kodeverk 8221). As a last guard, a run of exactly 11
digits (the shape of a fødselsnummer or D-nummer) in a name or opening-hours text is masked.

``status_id`` is a uuid5 of the event, the entity (the event or one message), the state and a sequence
number, so a status published again after a crash has the same id and a consumer can drop the copy.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.oversikt.oslo import oslo_isoformat

SCHEMA = "kartlegging.status/1"
EXCHANGE = "kartlegging"
ROUTING_KEY_PREFIX = "kartlegging.status."

# Fixed for ever: changing it would give every re-published status a new id.
STATUS_NAMESPACE = uuid.UUID("3d0c6a3e-5f0b-4f57-8a3c-2b7e9a41c6d2")

APPREC_CODE_SYSTEM = "2.16.578.1.12.4.1.1.8221"
# Kodeverk 8221 (feil i applikasjonskvittering): the texts published instead of the receiver's own.
APPREC_ERROR_TEXT: dict[str, str] = {
    "E10": "Ugyldig meldingsidentifikator",
    "E20": "Lege finnes ikke",
    "E21": "Mottaker finnes ikke",
    "E35": "Pasienten finnes ikke i mottakersystemet",
    "E36": "Pasientopplysninger er utilstrekkelige",
    "T01": "Ikke XML / ikke 'well formed' / uleselig",
    "T02": "XML validerer ikke",
    "T10": "Støtter ikke meldingsformatet",
    "T99": "Annen feil på format",
    "X99": "Annen feil",
}
UNKNOWN_CODE_TEXT = "Ukjent feilkode (se mottakerens kvittering)"

_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
_OID = re.compile(r"^[0-2](\.[0-9]+)+$")
_REASON_CODE = re.compile(r"^[A-Z][A-Z0-9_]{2,63}$")
_ELEVEN_DIGITS = re.compile(r"(?<![0-9])[0-9]{6} ?[0-9]{5}(?![0-9])")


class StatusError(ValueError):
    """A state change that cannot be told as a valid ``kartlegging.status/1`` event (a bug in the caller)."""


class EventState(StrEnum):
    """States of a kartlegging event that the publisher hears about."""

    ROUTED = "routed"  # receivers chosen, messages built; carries the kommune contact point
    SENT = "sent"  # every message handed to the transport
    PARKED = "parked"  # cannot go on without an operator; carries the reason code
    NOT_SHARED = "not_shared"  # the patient objects to sharing: nothing is sent
    DECLINED = "declined"  # the patient declined the kartlegging and nothing is sent


class MessageState(StrEnum):
    """States of one message (one receiver) of a kartlegging event."""

    ACKNOWLEDGED = "acknowledged"  # AppRec OK (1) or OK with errors in a part (3)
    REJECTED = "rejected"  # AppRec Avvist (2), with codes and texts
    OVERDUE = "overdue"  # no AppRec by the deadline
    SUPERSEDED = "superseded"  # replaced by a new message (an operator's replay)


STATES: tuple[str, ...] = tuple(s.value for s in EventState) + tuple(s.value for s in MessageState)


@dataclass(frozen=True)
class Receiver:
    """The receiver of a message, as the routing chose it (``role`` is the route's role, e.g. kommune, fastlege)."""

    herid: int
    name: str
    role: str


@dataclass(frozen=True)
class ContactPoint:
    """The kommune contact point the patient should be given; phone and opening hours where the registry has them."""

    herid: int
    name: str
    role: str
    phone: str | None = None
    opening_hours: str | None = None


@dataclass(frozen=True)
class AppRecError:
    """One error of an AppRec as received. ``text`` and ``detail`` are the receiver's free text and never published."""

    code: str
    text: str | None = None
    system: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class AppRecResult:
    """An AppRec's status (kodeverk 8258: ``1`` OK, ``2`` Avvist, ``3`` OK med feil i delmelding) and errors."""

    status: str
    errors: tuple[AppRecError, ...] = ()


@dataclass(frozen=True)
class EventChange:
    """A state change of a kartlegging event. ``seq`` counts how often the event entered this state (1, 2, …):
    an event parked, replayed and parked again gets two parked statuses with different ids."""

    event_id: str
    state: EventState
    at: datetime
    seq: int = 1
    sender_herid: int | None = None
    reason_code: str | None = None
    contact_point: ContactPoint | None = None


@dataclass(frozen=True)
class MessageChange:
    """A state change of one message of a kartlegging event."""

    event_id: str
    msg_id: str
    receiver: Receiver
    state: MessageState
    at: datetime
    seq: int = 1
    sender_herid: int | None = None
    apprec: AppRecResult | None = None
    superseded_by: str | None = None


def status_id(event_id: str, entity: str, state: str, seq: int) -> str:
    """The stable id of one state change: the same inputs always give the same uuid5.

    ``entity`` is ``event`` for the event itself and ``message/<MsgId>`` for one of its messages."""
    return str(uuid.uuid5(STATUS_NAMESPACE, f"{event_id}|{entity}|{state}|{seq}"))


def routing_key(state: str) -> str:
    """``kartlegging.status.<state>``: a hospital binds the states it wants (``kartlegging.status.#`` for all)."""
    if state not in STATES:
        raise StatusError(f"unknown status state {state!r}; one of {', '.join(STATES)}")
    return ROUTING_KEY_PREFIX + state


def _mask(text: str) -> str:
    """Mask fødselsnummer-shaped digit runs: registry text is not ours, and a status leaves the care relation."""
    return _ELEVEN_DIGITS.sub(lambda m: "*" * len(m.group(0)), text)


def _text(value: str, what: str, max_length: int = 200) -> str:
    value = _mask(value.strip())
    if not value:
        raise StatusError(f"{what} is empty")
    return value[:max_length]


def _herid(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StatusError(f"{what} must be a positive HER-id, got {value!r}")
    return value


def _uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise StatusError(f"{what} must be a UUID, got {value!r}") from None


def _common(event_id: str, entity: str, state: str, at: datetime, seq: int, sender_herid: int | None
            ) -> dict[str, Any]:
    event_id = _uuid(event_id, "event_id")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise StatusError(f"seq must be a positive integer, got {seq!r}")
    try:
        when = oslo_isoformat(at)
    except ValueError as exc:
        raise StatusError(f"at: {exc}") from None
    status: dict[str, Any] = {
        "schema": SCHEMA,
        "status_id": status_id(event_id, entity, state, seq),
        "event_id": event_id,
        "state": state,
        "at": when,
    }
    if sender_herid is not None:
        status["sender_herid"] = _herid(sender_herid, "sender_herid")
    return status


def _contact_point(cp: ContactPoint) -> dict[str, Any]:
    return {
        "herid": _herid(cp.herid, "contact_point.herid"),
        "name": _text(cp.name, "contact_point.name"),
        "role": _text(cp.role, "contact_point.role", 100),
        "phone": _text(cp.phone, "contact_point.phone", 40) if cp.phone and cp.phone.strip() else None,
        "opening_hours": (_text(cp.opening_hours, "contact_point.opening_hours", 500)
                          if cp.opening_hours and cp.opening_hours.strip() else None),
    }


def _apprec(result: AppRecResult, state: MessageState) -> dict[str, Any]:
    allowed = {"2"} if state is MessageState.REJECTED else {"1", "3"}
    if result.status not in allowed:
        raise StatusError(f"a {state} message needs AppRec status {' or '.join(sorted(allowed))}, "
                          f"got {result.status!r}")
    errors = []
    for error in result.errors:
        code = error.code.strip().upper()
        if not _CODE.match(code):
            code = "X99"  # an unreadable code is told as 'other error', never passed on as free text
        system = error.system.strip() if error.system else ""
        if not _OID.match(system):
            system = APPREC_CODE_SYSTEM
        text = APPREC_ERROR_TEXT.get(code, UNKNOWN_CODE_TEXT) if system == APPREC_CODE_SYSTEM else UNKNOWN_CODE_TEXT
        errors.append({"code": code, "text": text, "system": system})
    return {"status": result.status, "errors": errors}


def build_event_status(change: EventChange) -> dict[str, Any]:
    """The status event for a state change of a kartlegging event.

    ``parked`` must carry a reason code (the stable code, never the reason text, which may name the
    kommune's missing contact point but is written for operators). ``routed`` carries the kommune contact
    point when the route has one (``null`` when it has none, e.g. SP3–SP5 sent by the kommune itself)."""
    state = EventState(change.state)
    status = _common(change.event_id, "event", state.value, change.at, change.seq, change.sender_herid)
    if state is EventState.PARKED:
        if not change.reason_code or not _REASON_CODE.match(change.reason_code):
            raise StatusError(f"parked needs a reason code like ROUTING_NO_FASTLEGE, got {change.reason_code!r}")
        status["reason_code"] = change.reason_code
    elif change.reason_code is not None:
        raise StatusError(f"reason_code is only for parked, not {state}")
    if state is EventState.ROUTED:
        status["contact_point"] = _contact_point(change.contact_point) if change.contact_point else None
    elif change.contact_point is not None:
        raise StatusError(f"contact_point is only for routed, not {state}")
    return status


def build_message_status(change: MessageChange) -> dict[str, Any]:
    """The status event for a state change of one message: its MsgId and receiver, and the AppRec where
    the receiver answered (required for ``acknowledged`` and ``rejected``)."""
    state = MessageState(change.state)
    msg_id = _text(change.msg_id, "msg_id", 100)
    status = _common(change.event_id, f"message/{msg_id}", state.value, change.at, change.seq, change.sender_herid)
    status["message"] = {
        "msg_id": msg_id,
        "receiver": {
            "herid": _herid(change.receiver.herid, "receiver.herid"),
            "name": _text(change.receiver.name, "receiver.name"),
            "role": _text(change.receiver.role, "receiver.role", 100),
        },
    }
    if state in (MessageState.ACKNOWLEDGED, MessageState.REJECTED):
        if change.apprec is None:
            raise StatusError(f"{state} needs the AppRec")
        status["apprec"] = _apprec(change.apprec, state)
    elif change.apprec is not None:
        raise StatusError(f"apprec is only for acknowledged and rejected, not {state}")
    if state is MessageState.SUPERSEDED:
        if change.superseded_by is not None:
            status["superseded_by"] = _text(change.superseded_by, "superseded_by", 100)
    elif change.superseded_by is not None:
        raise StatusError(f"superseded_by is only for superseded, not {state}")
    return status


def build_status(change: EventChange | MessageChange) -> dict[str, Any]:
    """One status event (a JSON-ready dict valid against ``schemas/kartlegging.status-1.schema.json``)."""
    if isinstance(change, MessageChange):
        return build_message_status(change)
    return build_event_status(change)
