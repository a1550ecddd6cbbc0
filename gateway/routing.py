"""Who receives the result of a kartlegging, and in which message format.

The route is fixed for now (rules as data come later, behind this same function):
at samhandlingspunkt 1 and 2 the hospital's result goes to the kommune's
forvaltningsenhet/tildelingsenhet and to the patient's fastlege, and a PLO copy to the
kommune's saksbehandling service where it has one; at 3–5 the kommune's result goes to the
fastlege. When the patient objects to sharing, nobody gets a copy.

A receiver gets the first format of the role's preference that the registry says it accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.adresseregister import Address, Party, Register, address_of
from gateway.kartlegging import Kartlegging
from gateway.reasons import Parked, Reason

DIALOGMELDING = "dialogmelding-1.1"
PLO = "plo-1.6"
# Formats a role prefers, best first.
PREFERENCES: dict[str, tuple[str, ...]] = {
    "forvaltningsenhet": (DIALOGMELDING, PLO),
    "saksbehandling": (PLO,),
    "fastlege": (DIALOGMELDING,),
}


@dataclass(frozen=True)
class Mottaker:
    """One receiver of one message, with the reason it was chosen (kept with the message)."""

    role: str
    address: Address
    why: str
    format: str = DIALOGMELDING

    @property
    def herid(self) -> int:
        return self.address.herid


@dataclass(frozen=True)
class Route:
    sender: Address
    receivers: tuple[Mottaker, ...]
    why_none: str | None = None


def _forvaltningsenhet(event: Kartlegging, register: Register) -> Mottaker:
    kommunenummer = event.patient.kommunenummer
    kommune = register.kommune(kommunenummer)
    if kommune is None:
        raise Parked(Reason.UNKNOWN_KOMMUNE, f"kommune {kommunenummer} is not in the contact-point registry")
    services = [s for s in register.kommune_services(kommunenummer, "forvaltningsenhet") if s.active]
    if not services:
        raise Parked(
            Reason.NO_KOMMUNE_CONTACT_POINT,
            f"kommune {kommunenummer} has no active forvaltningsenhet/tildelingsenhet in the registry",
        )
    service = services[0]
    address = address_of(register, service.herid)
    if address is None:
        raise Parked(Reason.NO_KOMMUNE_CONTACT_POINT, f"service {service.herid} has no parent organisation")
    return _with_format(Mottaker("forvaltningsenhet", address, f"SP{event.samhandlingspunkt}: kommune "
                                 f"{kommunenummer} forvaltningsenhet {service.herid}"))


def _with_format(m: Mottaker) -> Mottaker:
    party = m.address.unit or m.address.organisation
    for wanted in PREFERENCES[m.role]:
        if wanted in party.formats:
            return replace(m, format=wanted, why=f"{m.why}; {wanted}")
    raise Parked(Reason.NO_ACCEPTED_FORMAT, f"{m.role} {party.herid} accepts none of "
                 f"{', '.join(PREFERENCES[m.role])} (registry: {', '.join(party.formats) or 'nothing'})")


def _saksbehandling(event: Kartlegging, register: Register) -> list[Mottaker]:
    """The optional PLO copy: only a kommune with an active saksbehandling service that reads PLO."""
    kommunenummer = event.patient.kommunenummer
    for service in register.kommune_services(kommunenummer, "saksbehandling"):
        address = address_of(register, service.herid)
        if service.active and PLO in service.formats and address is not None:
            return [Mottaker("saksbehandling", address, f"SP{event.samhandlingspunkt}: kommune {kommunenummer} "
                             f"saksbehandling {service.herid}; {PLO}", PLO)]
    return []


def _active_person(register: Register, herid: int) -> Party | None:
    party = register.party(herid)
    return party if party is not None and party.kind == "person" and party.active else None


def _fastlege(event: Kartlegging, register: Register) -> Mottaker:
    on = event.assessment.performed_on
    named = event.patient.fastlege_herid
    if named is not None and _active_person(register, named) is not None:
        herid, why = named, f"fastlege {named} named in the event"
    else:
        assignment = register.fastlege(event.patient.fnr, on)
        if assignment is None or _active_person(register, assignment.gp_herid) is None:
            raise Parked(Reason.NO_FASTLEGE, f"no active fastlege registered for the patient on {on.isoformat()}")
        herid = assignment.gp_herid
        why = f"{assignment.relation} {herid} from the GP register, valid on {on.isoformat()}"
    address = address_of(register, herid)
    if address is None:
        raise Parked(Reason.NO_FASTLEGE, f"fastlege {herid} has no legekontor in the registry")
    return _with_format(Mottaker("fastlege", address, why))


def route(event: Kartlegging, register: Register) -> Route:
    sender = address_of(register, event.sender.herid)
    if sender is None:
        raise Parked(Reason.UNKNOWN_SENDER, f"sender HER-id {event.sender.herid} is not in the registry")
    if event.consent.objects_to_sharing:
        return Route(sender, (), why_none="the patient objects to sharing: no copy is sent")
    if event.samhandlingspunkt in (1, 2):
        candidates = [_forvaltningsenhet(event, register), *_saksbehandling(event, register),
                      _fastlege(event, register)]
    else:
        candidates = [_fastlege(event, register)]
    # A kommune that assessed the patient as the fastlege does not send to itself.
    receivers = tuple(m for m in candidates if m.herid != sender.herid)
    return Route(sender, receivers, why_none=None if receivers else "the sender is the only receiver")
