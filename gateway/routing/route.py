"""Who receives the result of a kartlegging, and in which message format: the routing rules in
``routes/`` (gateway.routing.rules) applied to the registry.

The first rule that matches the event (a kommune's own rules before the defaults) names the
receivers; each receiver is found by walking its fallback chain, and gets the first format of the
rule's preference that the registry says it accepts. Every step that did not find anybody is kept
with its reason, so ``gateway route explain`` can show why a message went where it went.
When the patient objects to sharing, nobody gets a copy; a non-health receiver (NAV) gets one only
with the patient's consent. When the patient declined the kartlegging, only a rule for declined
kartlegginger applies, and only if the patient consented to informing the kommune.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.domain import fodselsnummer
from gateway.domain.history import (
    DEFAULT_WINDOW_DAYS,
    TWO_HOSPITALS,
    Historikk,
    Tidligere,
    last_hospital,
    second_hospital,
)
from gateway.domain.kartlegging import Kartlegging
from gateway.domain.registry import AMQP, DIALOGMELDING, PLO, Address, Party, Register, address_of
from gateway.errors import Parked, Reason
from gateway.routing.rules import NON_HEALTH, Fakta, ReceiverRule, Rule, RuleSet, packaged_rules


@dataclass(frozen=True)
class Mottaker:
    """One receiver of one message, with the reason it was chosen (kept with the message)."""

    role: str
    address: Address
    why: str
    format: str = DIALOGMELDING
    target: str = ""  # what was found: a service type, fastlege or sykehus
    fallback: bool = False  # found by a later step of the rule's chain than the first
    relation: str | None = None  # for a GP: fastlege or vikar (from the GP register)
    transport: str = AMQP  # how the receiver reads, from the registry

    @property
    def herid(self) -> int:
        return self.address.herid

    @property
    def addressed_as(self) -> str:
        """The role the message names the receiver by: a substitute GP is "vikar" (9034: 15 Vikar for
        fastlege), not the patient's fastlege, though the same rule and texts apply."""
        return "vikar" if self.relation == "vikar" else self.role


@dataclass(frozen=True)
class Skipped:
    """A candidate that was looked for and not used, and why."""

    role: str
    target: str
    herid: int | None
    why: str


@dataclass(frozen=True, kw_only=True)
class Route:
    """Who receives one event and why: the receivers, the rule, what was skipped and the flags for operators."""

    sender: Address
    receivers: tuple[Mottaker, ...]
    why_none: str | None = None
    rule: str | None = None
    skipped: tuple[Skipped, ...] = ()
    additions: tuple[str, ...] = ()  # the additions that fired, "name (file:line)"
    flags: tuple[str, ...] = ()  # for operators, e.g. two-hospitals
    declined: bool = False
    age: int | None = None  # the patient's age on the day of the kartlegging
    second_hospital: Tidligere | None = None  # another hospital's kartlegging at the same point, in the window
    second_hospital_address: Address | None = None
    other_hospital: Address | None = None  # named by the sender (other_hospital_herid)
    template: str = "notat"  # the family of texts, from the rule that chose the route


def fakta(event: Kartlegging) -> Fakta:
    return Fakta(event.samhandlingspunkt, event.declined is not None, event.kreftkoordinator_wanted,
                 event.notify_koordinerende_enhet, fodselsnummer.age_on(event.patient.fnr,
                                                                        event.assessment.performed_on))


def _kommune_service(event: Kartlegging, register: Register, target: str,
                     skipped: list[Skipped], role: str) -> Party | None:
    kommunenummer = event.patient.kommunenummer
    if register.kommune(kommunenummer) is None:
        skipped.append(Skipped(role, target, None, f"kommune {kommunenummer} is not in the registry"))
        return None
    services = register.kommune_services(kommunenummer, target)
    for service in services:
        if service.active:
            return service
        skipped.append(Skipped(role, target, service.herid, "inactive in the registry"))
    if not services:
        skipped.append(Skipped(role, target, None, f"kommune {kommunenummer} has no {target} in the registry"))
    return None


def _active_person(register: Register, herid: int) -> Party | None:
    party = register.party(herid)
    return party if party is not None and party.kind == "person" and party.active else None


def _fastlege(event: Kartlegging, register: Register, skipped: list[Skipped], role: str
              ) -> tuple[Party, str, str] | None:
    """(the GP, how found, relation); a GP named in the event is taken as the fastlege."""
    named = event.patient.fastlege_herid
    if named is not None:
        person = _active_person(register, named)
        if person is not None:
            return person, "named in the event", "fastlege"
        skipped.append(Skipped(role, "fastlege", named, "named in the event, but not an active GP in the registry"))
    on = event.assessment.performed_on
    assignment = register.fastlege(event.patient.fnr, on)
    if assignment is None:
        skipped.append(Skipped(role, "fastlege", None, f"no GP in the GP register on {on.isoformat()}"))
        return None
    person = _active_person(register, assignment.gp_herid)
    if person is None:
        skipped.append(Skipped(role, "fastlege", assignment.gp_herid, "inactive in the registry"))
        return None
    return person, f"{assignment.relation} in the GP register on {on.isoformat()}", assignment.relation


def _sykehus(event: Kartlegging, register: Register, earlier: Sequence[Tidligere],
             skipped: list[Skipped], role: str) -> tuple[Party, str] | None:
    for herid, how in ((event.hospital_contact_herid, "named in the event"),
                       (last_hospital(earlier), "sender of the patient's last SP1/SP2 event")):
        if herid is None:
            continue
        party = register.party(herid)
        if party is not None and party.active:
            return party, how
        skipped.append(Skipped(role, "sykehus", herid, f"{how}, but not active in the registry"))
    skipped.append(Skipped(role, "sykehus", None, "no hospital contact point known for the patient"))
    return None


def _missing_code(event: Kartlegging, register: Register, wanted: ReceiverRule) -> Reason:
    if wanted.find == ("fastlege",):
        return Reason.NO_FASTLEGE
    if wanted.find == ("sykehus",):
        return Reason.NO_HOSPITAL_CONTACT
    if register.kommune(event.patient.kommunenummer) is None:
        return Reason.UNKNOWN_KOMMUNE
    return Reason.NO_KOMMUNE_CONTACT_POINT


def _receiver(event: Kartlegging, register: Register, rule: Rule, wanted: ReceiverRule,
              earlier: Sequence[Tidligere], skipped: list[Skipped]) -> Mottaker | None:
    if set(wanted.find) & NON_HEALTH:
        # NAV is not health personnel: even with consent it must not get the clinical note (diagnosis, needs,
        # distress) that every message here carries, and NAV reads other message types (navikt/padm2).
        why = ("consent: the patient has not consented to sharing with NAV" if not event.consent.share_with_nav
               else "NAV gets no copy: the messages carry the clinical note, which is not for a non-health receiver")
        skipped.append(Skipped(wanted.role, "/".join(wanted.find), None, why))
        return None
    # PLO Helseopplysninger belong to an inpatient stay: without one, PLO is not a format to offer.
    formats = [f for f in wanted.formats if f != PLO or event.inpatient_stay is not None]
    for step, target in enumerate(wanted.find, start=1):
        relation: str | None = None
        found: tuple[Party, str] | None
        if target == "fastlege":
            gp = _fastlege(event, register, skipped, wanted.role)
            found = (gp[0], gp[1]) if gp else None
            relation = gp[2] if gp else None
        elif target == "sykehus":
            found = _sykehus(event, register, earlier, skipped, wanted.role)
        else:
            service = _kommune_service(event, register, target, skipped, wanted.role)
            found = (service, f"kommune {event.patient.kommunenummer}") if service else None
        if found is None:
            continue
        party, how = found
        address = address_of(register, party.herid)
        if address is None:
            skipped.append(Skipped(wanted.role, target, party.herid, "has no parent organisation in the registry"))
            continue
        fmt = next((f for f in formats if f in party.formats), None)
        if fmt is None:
            no_stay = " (PLO only for an inpatient stay)" if PLO in wanted.formats and PLO not in formats else ""
            if wanted.optional:
                skipped.append(Skipped(wanted.role, target, party.herid,
                                       f"accepts none of {', '.join(formats) or 'the formats left'}{no_stay}"))
                return None
            raise Parked(Reason.NO_ACCEPTED_FORMAT, f"{wanted.role} {party.herid} accepts none of "
                         f"{', '.join(formats) or 'the formats left'} "
                         f"(registry: {', '.join(party.formats) or 'nothing'}){no_stay}")
        chain = f" (fallback step {step} of {len(wanted.find)})" if len(wanted.find) > 1 else ""
        return Mottaker(wanted.role, address, f"rule {rule.name} ({rule.source}): {wanted.role} = {target} "
                        f"{party.herid}{chain}, {how}; {fmt} by {party.transport}", fmt, target, step > 1, relation,
                        party.transport)
    if wanted.optional:
        return None
    reasons = "; ".join(s.why for s in skipped if s.role == wanted.role)
    raise Parked(_missing_code(event, register, wanted),
                 f"rule {rule.name}: no {wanted.role} found ({' → '.join(wanted.find)}): {reasons}")


def _add(found: Mottaker, sender: Address, receivers: list[Mottaker], skipped: list[Skipped]) -> None:
    if found.herid == sender.herid:
        skipped.append(Skipped(found.role, "-", found.herid, "the sender itself"))
    elif any(r.herid == found.herid for r in receivers):
        skipped.append(Skipped(found.role, "-", found.herid, "already a receiver of this event"))
    else:
        receivers.append(found)


def _organisation_of(register: Register) -> Callable[[int], int | None]:
    def organisation(herid: int) -> int | None:
        address = address_of(register, herid)
        return address.organisation.herid if address else None
    return organisation


def route(event: Kartlegging, register: Register, rules: RuleSet | None = None,
          history: Historikk | None = None, window_days: int = DEFAULT_WINDOW_DAYS) -> Route:
    sender = address_of(register, event.sender.herid)
    if sender is None:
        raise Parked(Reason.UNKNOWN_SENDER, f"sender HER-id {event.sender.herid} is not in the registry")
    if event.consent.objects_to_sharing:
        return Route(sender=sender, receivers=(), why_none="the patient objects to sharing: no copy is sent",
                     rule="built in: the patient objects to sharing")
    facts = fakta(event)
    if event.declined is not None and not event.declined.consent_to_inform_kommune:
        return Route(sender=sender, receivers=(),
                     why_none="the patient declined the kartlegging and did not consent to informing the kommune: "
                     "nothing is sent", rule="built in: declined without consent to inform the kommune",
                     declined=True, age=facts.age)
    ruleset = rules or packaged_rules()
    kommune = event.patient.kommunenummer
    rule = next((r for r in ruleset.rules_for(kommune) if r.when.matches(facts)), None)
    if rule is None and facts.declined:
        return Route(sender=sender, receivers=(),
                     why_none=f"the patient declined the kartlegging; no rule sends a notice at samhandlingspunkt "
                     f"{event.samhandlingspunkt}", declined=True, age=facts.age)
    if rule is None:
        raise Parked(Reason.NO_MATCHING_RULE, f"no routing rule for samhandlingspunkt {event.samhandlingspunkt}")
    earlier = history(event.patient.fnr) if history else ()
    skipped: list[Skipped] = []
    receivers: list[Mottaker] = []
    for wanted in rule.receivers:
        found = _receiver(event, register, rule, wanted, earlier, skipped)
        if found is not None:
            _add(found, sender, receivers, skipped)
    fired: list[str] = []
    for addition in ruleset.additions_for(kommune):
        if not addition.when.matches(facts):
            continue
        fired.append(f"{addition.name} ({addition.source})")
        for wanted in addition.receivers:
            found = _receiver(event, register, addition, wanted, earlier, skipped)
            if found is not None:
                _add(found, sender, receivers, skipped)
    second = second_hospital(event, earlier, _organisation_of(register), window_days)
    other = address_of(register, event.other_hospital_herid) if event.other_hospital_herid else None
    return Route(sender=sender, receivers=tuple(receivers),
                 why_none=None if receivers else "the sender is the only receiver",
                 rule=f"{rule.name} ({rule.source})", skipped=tuple(skipped), additions=tuple(fired),
                 flags=(TWO_HOSPITALS,) if second else (), declined=facts.declined, age=facts.age,
                 second_hospital=second,
                 second_hospital_address=address_of(register, second.sender_herid) if second else None,
                 other_hospital=other, template=rule.template)
