"""The kartlegging event (contract ``kartlegging.completed/1``) as plain data.

A hospital (or kommune) publishes one event when a behovskartlegging is done at a
samhandlingspunkt. ``parse_event`` turns the raw AMQP body into a ``Kartlegging`` or
raises ``Parked`` with a stable reason code; everything after it trusts the types.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import fastjsonschema
import jsonschema

from gateway.domain import fodselsnummer
from gateway.errors import Parked, Reason
from gateway.settings import packaged

SCHEMA_ID = "kartlegging.completed/1"
# The contract is part of the gateway's version, so it always comes from the package, never an override.
CONTRACT_PATH = packaged("schemas", "kartlegging.completed-1.schema.json")
# Fields whose values must never be echoed in a reason (reasons go to AMQP headers and logs).
_PRIVATE_FIELDS = {"fnr", "given_name", "family_name", "guardian"}

# The 13 topic areas of the municipal form (seed 004). Codes are stable API; the Norwegian
# label is what receivers read.
TOPICS: dict[str, str] = {
    "familie_nettverk": "Familiesituasjon og nettverk",
    "jobb_skole": "Jobb/skole/utdanning",
    "okonomi_bolig": "Økonomi og boforhold",
    "hjelp_hjemme": "Hjelp og tilrettelegging i hjemmet",
    "rehabilitering": "Rehabilitering",
    "fysisk_funksjon": "Fysisk aktivitet og fysisk funksjon",
    "ernaering": "Ernæring/mat/måltider",
    "egen_helse": "Ivaretakelse av egen helse",
    "mestring": "Egne ressurser / læring og mestring",
    "fritid_sosialt": "Fritid/sosiale aktiviteter",
    "psykisk_helse": "Psykisk helse",
    "seksuell_helse": "Seksuell helse",
    "oral_helse": "Oral helse",
}


@dataclass(frozen=True)
class Contact:
    """Who the receiver should call about this patient."""

    name: str
    role: str
    phone: str
    hpr: str | None = None  # HPR number (added compatibly): the receiver can identify the person


@dataclass(frozen=True)
class Sender:
    herid: int
    name: str
    contact: Contact


@dataclass(frozen=True)
class Guardian:
    """A child's parent or guardian, whom the kommune should contact."""

    name: str
    relation: str
    phone: str


@dataclass(frozen=True)
class Patient:
    fnr: str
    given_name: str
    family_name: str
    kommunenummer: str
    fastlege_herid: int | None = None
    guardian: Guardian | None = None


@dataclass(frozen=True)
class Diagnosis:
    icd10: str
    text: str
    diagnosed_on: date


@dataclass(frozen=True)
class Topic:
    topic: str
    need: bool
    note: str | None = None

    @property
    def label(self) -> str:
        return TOPICS[self.topic]


@dataclass(frozen=True)
class Performer:
    name: str
    profession: str


@dataclass(frozen=True)
class Assessment:
    procedure_code: str | None
    performed_on: date
    performed_by: Performer
    distress_score: int | None
    topics: tuple[Topic, ...]
    what_matters: str | None
    follow_up: str | None


@dataclass(frozen=True)
class Consent:
    objects_to_sharing: bool
    share_with_nav: bool


@dataclass(frozen=True)
class IndividuellPlan:
    """A need for an individual plan and koordinator; the koordinerende enhet is told only with consent."""

    needed: bool
    consent_to_notify: bool


@dataclass(frozen=True)
class Declined:
    """The patient declined the kartlegging; the kommune is told only with consent."""

    consent_to_inform_kommune: bool
    ask_again_after: date | None = None


@dataclass(frozen=True)
class InpatientStay:
    """The patient is admitted (added compatibly): only then may the kommune get PLO Helseopplysninger,
    which belong to the innlagt → utskrivningsklar process. The hospital system owns the stay, so it says
    which earlier event opened the PLO conversation about it (``first_event_id``; None: this one does) and
    which came last (``previous_event_id``); the gateway derives the MsgIds to refer to from them."""

    admitted_on: date
    first_event_id: str | None = None
    previous_event_id: str | None = None
    discharge_ready_on: date | None = None  # expected date the patient is ready for discharge (an estimate)


@dataclass(frozen=True)
class Kartlegging:
    event_id: str
    occurred_at: datetime
    samhandlingspunkt: int
    sender: Sender
    patient: Patient
    diagnosis: Diagnosis
    assessment: Assessment
    consent: Consent
    hospital_contact_herid: int | None = None
    kreftkoordinator_wanted: bool = False
    individuell_plan: IndividuellPlan | None = None
    declined: Declined | None = None
    other_hospital_herid: int | None = None
    inpatient_stay: InpatientStay | None = None

    @property
    def notify_koordinerende_enhet(self) -> bool:
        return self.individuell_plan is not None and self.individuell_plan.needed \
            and self.individuell_plan.consent_to_notify


UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@lru_cache(maxsize=1)
def _contract() -> dict[str, Any]:
    return json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Any:
    """jsonschema: the reference, and the one that explains an error (slow: ~300 µs an event)."""
    cls = jsonschema.validators.validator_for(_contract())
    cls.check_schema(_contract())
    return cls(_contract(), format_checker=jsonschema.FormatChecker())


@lru_cache(maxsize=1)
def _fast_check() -> Any:
    """fastjsonschema compiles the same contract to Python (~20 µs an event): the gate for valid events.
    A test keeps the two validators in agreement."""
    return fastjsonschema.compile(_contract(), formats={"uuid": UUID_PATTERN})


def contract_errors(data: Any) -> str | None:
    """The first contract violation, readable and free of patient data; None when the event is valid."""
    try:
        _fast_check()(data)
        return None
    except fastjsonschema.JsonSchemaException:
        error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
        return _describe(error) if error is not None else "the event does not match the contract"


def _describe(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "(event)"
    if _PRIVATE_FIELDS & {str(p) for p in error.absolute_path}:
        return f"{path}: invalid value ({error.validator} {error.validator_value!r} not met)"
    if error.validator == "required":
        return f"{path}: {error.message}"
    message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
    return f"{path}: {message}"


def event_id_of(body: bytes) -> str | None:
    """The event_id of a raw body, if it has a usable one; for bookkeeping of bad events too."""
    match = re.search(rb'"event_id"\s*:\s*"([0-9A-Fa-f-]{36})"', body[:65536])
    return match.group(1).decode().lower() if match else None


def parse_event(body: bytes) -> Kartlegging:
    """Validate a raw event against contract version 1 and the rules a schema cannot say."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Parked(Reason.NOT_JSON, "the body is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise Parked(Reason.NOT_JSON, "the body is JSON but not an object")
    schema = data.get("schema")
    if isinstance(schema, str) and schema != SCHEMA_ID:
        raise Parked(Reason.UNSUPPORTED_SCHEMA, f"schema {schema[:60]!r} is not supported; expected {SCHEMA_ID!r}")
    problem = contract_errors(data)
    if problem is not None:
        raise Parked(Reason.SCHEMA, problem)
    try:
        event = _to_event(data)
    except ValueError as exc:
        raise Parked(Reason.SCHEMA, str(exc)) from None
    if not fodselsnummer.is_valid(event.patient.fnr):
        raise Parked(Reason.BAD_FNR, "patient.fnr: not a valid fødselsnummer or D-nummer (check digits or date)")
    if event.samhandlingspunkt in (1, 2) and event.declined is None and event.assessment.procedure_code != "WMFG10":
        raise Parked(Reason.WMFG10_MISSING,
                     f"assessment.procedure_code must be WMFG10 at samhandlingspunkt {event.samhandlingspunkt}")
    return event


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not a date (YYYY-MM-DD)") from None


def _to_event(d: dict[str, Any]) -> Kartlegging:
    try:
        occurred_at = datetime.fromisoformat(d["occurred_at"].replace("z", "Z"))
    except ValueError:
        raise ValueError(f"occurred_at: {d['occurred_at']!r} is not an RFC 3339 date-time") from None
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at: the offset is missing")
    s, p, dg, a, c = d["sender"], d["patient"], d["diagnosis"], d["assessment"], d["consent"]
    contact, guardian, plan, declined = s["contact"], p.get("guardian"), d.get("individuell_plan"), d.get("declined")
    return Kartlegging(
        event_id=d["event_id"].lower(),
        occurred_at=occurred_at,
        samhandlingspunkt=d["samhandlingspunkt"],
        sender=Sender(s["herid"], s["name"], Contact(contact["name"], contact["role"], contact["phone"],
                                                    contact.get("hpr"))),
        patient=Patient(p["fnr"], p["given_name"], p["family_name"], p["kommunenummer"], p.get("fastlege_herid"),
                        Guardian(guardian["name"], guardian["relation"], guardian["phone"]) if guardian else None),
        diagnosis=Diagnosis(dg["icd10"], dg["text"], _date(dg["diagnosed_on"], "diagnosis.diagnosed_on")),
        assessment=Assessment(
            procedure_code=a.get("procedure_code"),
            performed_on=_date(a["performed_on"], "assessment.performed_on"),
            performed_by=Performer(a["performed_by"]["name"], a["performed_by"]["profession"]),
            distress_score=a.get("distress_score"),
            topics=tuple(Topic(t["topic"], t["need"], t.get("note")) for t in a["topics"]),
            what_matters=a.get("what_matters"),
            follow_up=a.get("follow_up"),
        ),
        consent=Consent(c["objects_to_sharing"], c["share_with_nav"]),
        hospital_contact_herid=d.get("hospital_contact_herid"),
        kreftkoordinator_wanted=d.get("kreftkoordinator_wanted", False),
        individuell_plan=IndividuellPlan(plan["needed"], plan["consent_to_notify"]) if plan else None,
        declined=Declined(declined["consent_to_inform_kommune"],
                          _date(declined["ask_again_after"], "declined.ask_again_after")
                          if declined.get("ask_again_after") else None) if declined else None,
        other_hospital_herid=d.get("other_hospital_herid"),
        inpatient_stay=_stay(d.get("inpatient_stay")),
    )


def _stay(s: dict[str, Any] | None) -> InpatientStay | None:
    """The optional inpatient stay (issue 13); kept apart from ``_to_event`` so the two change separately."""
    if not s:
        return None
    ready = s.get("discharge_ready_on")
    return InpatientStay(_date(s["admitted_on"], "inpatient_stay.admitted_on"),
                         s["first_event_id"].lower() if s.get("first_event_id") else None,
                         s["previous_event_id"].lower() if s.get("previous_event_id") else None,
                         _date(ready, "inpatient_stay.discharge_ready_on") if ready else None)
