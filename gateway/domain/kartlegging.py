"""The kartlegging event (contract ``kartlegging.completed/1``) as plain data.

A hospital (or kommune) publishes one event when a behovskartlegging is done at a
samhandlingspunkt. ``parse_event`` turns the raw AMQP body into a ``Kartlegging`` or
raises ``Parked`` with a stable reason code; everything after it trusts the types.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

import fastjsonschema
import jsonschema

from gateway.domain import fodselsnummer
from gateway.domain.envelope import UUID_PATTERN, _DuplicateKey, _no_duplicates, event_id_of  # noqa: F401
from gateway.errors import Parked, Reason
from gateway.settings import packaged

SCHEMA_ID = "kartlegging.completed/1"
# The contract is part of the gateway's version, so it always comes from the package, never an override.
CONTRACT_PATH = packaged("schemas", "kartlegging.completed-1.schema.json")
# A reason names the field path and the rule broken, never a value (issue 12, point 11): reasons go to AMQP
# headers, the store and logs, and a value in an unexpected place (a fødselsnummer in a list, a name in the
# diagnosis) is patient data whatever field it sits in.

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


@dataclass(frozen=True)
class Checks:
    """The plausibility rules a schema cannot say, with their limits (settings, docs/limits.md).

    A number can have valid check digits and still be wrong for this event: a birth date after the kartlegging
    (age −14 went to the barnekoordinator as "barn: -14 år"), a patient of 130, a kartlegging dated years
    away from when it arrives. Each is parked for a person to look at rather than routed on a guess.
    ``accept_synthetic`` is False in production: a synthetic test number there is a test event published to
    the wrong broker, and its messages would reach real receivers."""

    accept_synthetic: bool = True
    max_age_years: int = 120
    max_past_days: int = 1095  # 0: no check (the demo's fixture world has fixed dates)
    future_days: int = 1  # 0: no check


DEFAULT_CHECKS = Checks()


@lru_cache(maxsize=1)
def _contract_names() -> frozenset[str]:
    """Every property name the contract defines: the only keys a reason may name."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                names.update(props)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(_contract())
    return frozenset(names)


def field_path(parts: Any) -> str:
    """A path a reason may show: contract field names and list positions; any other key (it came from the
    sender, and could be a number or a name) is shown as ``?``."""
    names = _contract_names()
    shown = [str(p) if isinstance(p, int) or p in names else "?" for p in parts]
    return ".".join(shown) or "(event)"


def contract_errors(data: Any) -> str | None:
    """The first contract violation, readable and free of patient data; None when the event is valid."""
    try:
        _fast_check()(data)
        return None
    except fastjsonschema.JsonSchemaException:
        error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
        return _describe(error) if error is not None else "the event does not match the contract"


def _rule(error: jsonschema.ValidationError) -> str:
    """The rule broken, in words taken from the contract only (never from ``error.message``, which quotes the
    value)."""
    kind, wanted = error.validator, cast(Any, error.validator_value)
    if kind == "required":
        have = error.instance if isinstance(error.instance, dict) else {}
        missing = [name for name in wanted if name not in have]
        return f"missing {', '.join(repr(m) for m in missing)}"
    if kind == "type":
        return f"must be of type {wanted}"
    if kind == "const":
        return f"must be {wanted!r}"
    if kind == "enum":
        listed = ", ".join(repr(v) for v in wanted)
        return f"must be one of {listed if len(listed) <= 200 else 'the values the contract lists'}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
                "minItems", "maxItems", "pattern", "format", "multipleOf", "uniqueItems"):
        return f"{kind} {wanted!r} not met"
    if kind == "additionalProperties":
        return "has fields the contract does not allow"
    return f"does not match the contract ({kind})"


def _describe(error: jsonschema.ValidationError) -> str:
    return f"{field_path(error.absolute_path)}: {_rule(error)}"


_SCHEMA_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,40}/[0-9]{1,3}")


def parse_event(body: bytes, checks: Checks = DEFAULT_CHECKS, *, today: date | None = None) -> Kartlegging:
    """Validate a raw event against contract version 1 and the rules a schema cannot say. ``today`` (the
    consumer's clock) turns on the checks of the kartlegging's date against the day it arrives."""
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _DuplicateKey as dup:
        name = repr(dup.key) if dup.key in _contract_names() else "a key"
        raise Parked(Reason.SCHEMA, f"(event): an object has {name} twice") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Parked(Reason.NOT_JSON, "the body is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise Parked(Reason.NOT_JSON, "the body is JSON but not an object")
    schema = data.get("schema")
    if isinstance(schema, str) and schema != SCHEMA_ID:
        shown = repr(schema) if _SCHEMA_NAME.fullmatch(schema) else "this schema"
        raise Parked(Reason.UNSUPPORTED_SCHEMA, f"schema: {shown} is not supported; expected {SCHEMA_ID!r}")
    problem = contract_errors(data)
    if problem is not None:
        raise Parked(Reason.SCHEMA, problem)
    try:
        event = _to_event(data)
    except ValueError as exc:
        raise Parked(Reason.SCHEMA, str(exc)) from None
    _check_identity(event, checks, today)
    if event.samhandlingspunkt in (1, 2) and event.declined is None and event.assessment.procedure_code != "WMFG10":
        raise Parked(Reason.WMFG10_MISSING,
                     f"assessment.procedure_code must be WMFG10 at samhandlingspunkt {event.samhandlingspunkt}")
    return event


def _check_identity(event: Kartlegging, checks: Checks, today: date | None) -> None:
    """The patient's number and the dates must make sense together (see ``Checks``)."""
    fnr = event.patient.fnr
    if not fodselsnummer.is_valid(fnr):
        raise Parked(Reason.BAD_FNR, "patient.fnr: not a valid fødselsnummer or D-nummer (check digits or date)")
    if fodselsnummer.is_h_nummer(fnr):
        raise Parked(Reason.H_NUMMER, "patient.fnr: an H-nummer (a hospital's internal number, month + 40) is not a "
                                      "national identity; send the fødselsnummer or D-nummer")
    if fodselsnummer.is_synthetic(fnr) and not checks.accept_synthetic:
        raise Parked(Reason.SYNTHETIC_FNR, "patient.fnr: a synthetic test number (month + 80); this gateway "
                                           "refuses test data (GATEWAY_SYNTHETIC_FNR=refuse)")
    performed = event.assessment.performed_on
    if fodselsnummer.birth_date(fnr) > performed:
        raise Parked(Reason.IMPLAUSIBLE_DATE, "patient.fnr: the birth date is after assessment.performed_on")
    if fodselsnummer.age_on(fnr, performed) > checks.max_age_years:
        raise Parked(Reason.IMPLAUSIBLE_DATE, f"patient.fnr: the patient would be over {checks.max_age_years} years "
                                              "old on assessment.performed_on")
    if today is None:
        return
    latest = today + timedelta(days=checks.future_days)
    if checks.future_days and performed > latest:
        raise Parked(Reason.IMPLAUSIBLE_DATE, f"assessment.performed_on: more than {checks.future_days} day(s) "
                                              "after the day the event arrived")
    if checks.future_days and event.occurred_at.date() > latest:
        raise Parked(Reason.IMPLAUSIBLE_DATE, f"occurred_at: more than {checks.future_days} day(s) after the day "
                                              "the event arrived")
    if checks.max_past_days and performed < today - timedelta(days=checks.max_past_days):
        raise Parked(Reason.IMPLAUSIBLE_DATE, f"assessment.performed_on: more than {checks.max_past_days} days "
                                              "before the day the event arrived (GATEWAY_MAX_PAST_DAYS)")


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: not a date (YYYY-MM-DD)") from None


def _to_event(d: dict[str, Any]) -> Kartlegging:
    try:
        occurred_at = datetime.fromisoformat(d["occurred_at"].replace("z", "Z"))
    except ValueError:
        raise ValueError("occurred_at: not an RFC 3339 date-time") from None
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
