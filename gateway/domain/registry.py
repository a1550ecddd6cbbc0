"""The contact-point registry: communication parties with HER-ids, modelled on NHN's
Adresseregisteret, and the patient → fastlege assignments of Fastlegeregisteret.

Routing asks ``Register`` questions; where the answers come from (a JSON file today, the
store later) is behind that small interface.

The file (``GATEWAY_REGISTRY``) is JSON::

    {"version": 1,
     "parties": [{"herid": 8100001, "name": "Bergen kommune", "kind": "organisation", "kommunenummer": "4601"},
                 {"herid": 8100002, "name": "Tildelingskontoret", "kind": "service", "parent_herid": 8100001,
                  "service_type": "forvaltningsenhet", "formats": ["dialogmelding-1.1"], "active": true},
                 {"herid": 8100050, "name": "Rita Lin", "kind": "person", "parent_herid": 8100040,
                  "given_name": "Rita", "family_name": "Lin", "hpr": "9144889"}],
     "fastlegeregister": [{"fnr": "…", "gp_herid": 8100050, "valid_from": "2015-01-01", "valid_to": null,
                           "relation": "fastlege"}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from gateway.domain import fodselsnummer
from gateway.errors import GatewayError

PartyKind = Literal["organisation", "department", "service", "person"]

# The message formats a party can accept, by the names the registry and the routing rules use.
DIALOGMELDING = "dialogmelding-1.1"
PLO = "plo-1.6"
FORMAT_NAMES = (DIALOGMELDING, PLO)

# How a party receives. AMQP: a queue {herid}_async on the gateway's RabbitMQ (NHN's tjenestebuss naming).
# EDI 2.0: the party has an EDI address in the Adresseregister (an EDI mailbox, or the Meldingstjener's own
# address when the party is itself an API user); the gateway hands the message to NHN's Meldingstjener API,
# which looks the receiver up and does the ebXML envelope, signing, encryption and transport receipts.
AMQP = "amqp"
EDI2 = "edi2"
TRANSPORTS = (AMQP, EDI2)

SERVICE_TYPES: dict[str, str] = {
    "forvaltningsenhet": "Forvaltningsenhet/tildelingsenhet",
    "koordinerende_enhet": "Koordinerende enhet",
    "kreftkoordinator": "Kreftkoordinator",
    "barnekoordinator": "Barnekoordinator (for children with serious illness and their families)",
    "saksbehandling": "Saksbehandling",
    "nav": "NAV-kontor (not a health service: only with the patient's consent)",
}


@dataclass(frozen=True)
class Party:
    """One communication party (kommunikasjonspart) on the Norwegian health network."""

    herid: int
    name: str
    kind: PartyKind
    parent_herid: int | None = None
    active: bool = True
    kommunenummer: str | None = None
    service_type: str | None = None
    formats: tuple[str, ...] = ()
    # persons only
    given_name: str | None = None
    family_name: str | None = None
    hpr: str | None = None
    # the Adresseregister's EDI address (e.g. "mottak@testedi.nhn.no"); None: the party reads AMQP
    edi_address: str | None = None
    # what a patient is told to call: a kommune service's phone and opening hours, where known
    phone: str | None = None
    opening_hours: str | None = None

    @property
    def transport(self) -> str:
        """How a message to this party travels: EDI 2.0 when it has an EDI address, else AMQP."""
        return EDI2 if self.edi_address else AMQP


@dataclass(frozen=True)
class GpAssignment:
    """A patient's GP on a period: the regular fastlege or a substitute (vikar)."""

    fnr: str
    gp_herid: int
    valid_from: date
    valid_to: date | None = None
    relation: Literal["fastlege", "vikar"] = "fastlege"


class Register(Protocol):
    def party(self, herid: int) -> Party | None: ...

    def kommune(self, kommunenummer: str) -> Party | None: ...

    def kommune_services(self, kommunenummer: str, service_type: str) -> list[Party]: ...

    def fastlege(self, fnr: str, on: date) -> GpAssignment | None: ...


class RegisterError(GatewayError, ValueError):
    """The registry file is wrong; the message names the entry and what to fix."""


@dataclass
class MemoryRegister:
    """A register held in memory; ``load_register`` fills it from the documented JSON file."""

    parties: dict[int, Party] = field(default_factory=dict)
    assignments: dict[str, list[GpAssignment]] = field(default_factory=dict)

    def party(self, herid: int) -> Party | None:
        return self.parties.get(herid)

    def kommune(self, kommunenummer: str) -> Party | None:
        return next((p for p in self.parties.values()
                     if p.kind == "organisation" and p.kommunenummer == kommunenummer), None)

    def kommune_services(self, kommunenummer: str, service_type: str) -> list[Party]:
        kommune = self.kommune(kommunenummer)
        if kommune is None:
            return []
        return sorted((p for p in self.parties.values()
                       if p.parent_herid == kommune.herid and p.kind == "service" and p.service_type == service_type),
                      key=lambda p: p.herid)

    def assignments_for(self, fnr: str) -> list[GpAssignment]:
        return self.assignments.get(fnr, [])

    def fastlege(self, fnr: str, on: date) -> GpAssignment | None:
        valid = [a for a in self.assignments_for(fnr)
                 if a.valid_from <= on and (a.valid_to is None or on <= a.valid_to)]
        # A substitute period overrides the regular GP for its duration.
        valid.sort(key=lambda a: (a.relation != "vikar", -a.valid_from.toordinal()))
        return valid[0] if valid else None


_KINDS = ("organisation", "department", "service", "person")


def _short_text(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 200 or any(ord(c) < 32 for c in value):
        raise RegisterError(f"{where}: {key} must be a line of text (at most 200 characters)")
    return value


def _edi_address(raw: dict[str, Any], where: str) -> str | None:
    value = raw.get("edi_address")
    if value is None:
        return None
    if not isinstance(value, str) or value.count("@") != 1 or len(value) > 200 or any(c.isspace() for c in value):
        raise RegisterError(f"{where}: edi_address must be an address like mottak@edi.nhn.no")
    return value


def _party(i: int, raw: dict[str, Any]) -> Party:
    where = f"parties[{i}] (herid {raw.get('herid', '?')})"
    try:
        kind = raw["kind"]
        if kind not in _KINDS:
            raise RegisterError(f"{where}: kind {kind!r} is not one of {', '.join(_KINDS)}")
        service_type = raw.get("service_type")
        if kind == "service" and service_type not in SERVICE_TYPES:
            raise RegisterError(f"{where}: service_type {service_type!r} is not one of {', '.join(SERVICE_TYPES)}")
        return Party(
            herid=int(raw["herid"]), name=str(raw["name"]), kind=cast(PartyKind, kind),
            parent_herid=raw.get("parent_herid"), active=bool(raw.get("active", True)),
            kommunenummer=raw.get("kommunenummer"), service_type=service_type,
            formats=tuple(raw.get("formats", ())), given_name=raw.get("given_name"),
            family_name=raw.get("family_name"), hpr=raw.get("hpr"), edi_address=_edi_address(raw, where),
            phone=_short_text(raw, "phone", where), opening_hours=_short_text(raw, "opening_hours", where),
        )
    except KeyError as exc:
        raise RegisterError(f"{where}: the field {exc.args[0]!r} is missing") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, RegisterError):
            raise
        raise RegisterError(f"{where}: {exc}") from None


def load_register(path: Path) -> MemoryRegister:
    """Read and check the whole file; a broken file changes nothing and says which entry is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise RegisterError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise RegisterError(f"{path}: expected an object with \"version\": 1")
    register = MemoryRegister()
    for i, raw in enumerate(data.get("parties", [])):
        party = _party(i, raw)
        if party.herid in register.parties:
            raise RegisterError(f"parties[{i}] (herid {party.herid}): the HER-id appears twice")
        register.parties[party.herid] = party
    for party in register.parties.values():
        if party.parent_herid is not None and party.parent_herid not in register.parties:
            raise RegisterError(f"party {party.herid}: parent_herid {party.parent_herid} is not in the file")
        if party.kind != "organisation" and party.parent_herid is None:
            raise RegisterError(f"party {party.herid}: a {party.kind} needs a parent_herid")
    for i, raw in enumerate(data.get("fastlegeregister", [])):
        where = f"fastlegeregister[{i}] (gp_herid {raw.get('gp_herid', '?')})"
        try:
            assignment = GpAssignment(
                fnr=str(raw["fnr"]), gp_herid=int(raw["gp_herid"]),
                valid_from=date.fromisoformat(raw["valid_from"]),
                valid_to=date.fromisoformat(raw["valid_to"]) if raw.get("valid_to") else None,
                relation=raw.get("relation", "fastlege"),
            )
        except KeyError as exc:
            raise RegisterError(f"{where}: the field {exc.args[0]!r} is missing") from None
        except (TypeError, ValueError) as exc:
            raise RegisterError(f"{where}: {exc}") from None
        if not fodselsnummer.is_valid(assignment.fnr):
            raise RegisterError(f"{where}: fnr is not a valid fødselsnummer or D-nummer")
        gp = register.parties.get(assignment.gp_herid)
        if gp is None or gp.kind != "person":
            raise RegisterError(f"{where}: gp_herid is not a person in parties")
        if assignment.relation not in ("fastlege", "vikar"):
            raise RegisterError(f"{where}: relation must be fastlege or vikar")
        register.assignments.setdefault(assignment.fnr, []).append(assignment)
    return register


@dataclass(frozen=True)
class Address:
    """A HER-id address as MsgHead wants it ("tjenestebasert adressering"): the top
    organisation, and below it the service, department or person that handles the message.
    The unit's HER-id names the receiver's queue; ``unit`` is None when the organisation
    itself is addressed."""

    organisation: Party
    unit: Party | None = None

    @property
    def herid(self) -> int:
        return (self.unit or self.organisation).herid

    @property
    def name(self) -> str:
        """How a message names the address to a person: "unit, organisation"."""
        return f"{self.unit.name}, {self.organisation.name}" if self.unit else self.organisation.name


def address_of(register: Register, herid: int) -> Address | None:
    """The address of a party: its nearest organisation ancestor plus the party itself."""
    party = register.party(herid)
    if party is None:
        return None
    if party.kind == "organisation":
        return Address(organisation=party)
    parent = register.party(party.parent_herid) if party.parent_herid else None
    while parent is not None and parent.kind != "organisation":
        parent = register.party(parent.parent_herid) if parent.parent_herid else None
    if parent is None:
        return None
    return Address(organisation=parent, unit=party)
