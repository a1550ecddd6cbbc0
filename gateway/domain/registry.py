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
# The deepest chain of parents a walk up the tree follows (organisation → department → … → person). Real
# registries are four or five deep; a longer chain is a mistake, and a cycle would make every walk endless.
MAX_DEPTH = 16


def _edi_address(raw: dict[str, Any], where: str) -> str | None:
    value = raw.get("edi_address")
    if value is None:
        return None
    if not isinstance(value, str) or value.count("@") != 1 or len(value) > 200 or any(c.isspace() for c in value):
        raise RegisterError(f"{where}: edi_address must be an address like mottak@edi.nhn.no")
    return value


def _where(section: str, i: int, raw: Any, key: str) -> str:
    """``parties[3] (herid 8100001)``: the HER-id only when it is a whole number (a shifted file could put a
    fødselsnummer or a name there, and errors never echo a value)."""
    value = raw.get(key) if isinstance(raw, dict) else None
    shown = f" ({key} {value})" if isinstance(value, int) and not isinstance(value, bool) and value < 10**9 else ""
    return f"{section}[{i}]{shown}"


def _herid(value: Any, where: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**9:
        raise RegisterError(f"{where}: {field} must be a HER-id (a whole number below 1000000000)")
    return value


def _text(value: Any, where: str, field: str, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > 200:
        raise RegisterError(f"{where}: {field} must be {'a non-empty' if required else 'a'} text of at most 200 "
                            "characters")
    return value


def _party(i: int, raw: Any) -> Party:
    where = _where("parties", i, raw, "herid")
    if not isinstance(raw, dict):
        raise RegisterError(f"{where}: a party must be an object")
    for key in ("herid", "name", "kind"):
        if key not in raw:
            raise RegisterError(f"{where}: the field {key!r} is missing")
    kind = raw["kind"]
    if kind not in _KINDS:
        raise RegisterError(f"{where}: kind must be one of {', '.join(_KINDS)}")
    service_type = raw.get("service_type")
    if kind == "service" and service_type not in SERVICE_TYPES:
        raise RegisterError(f"{where}: service_type must be one of {', '.join(SERVICE_TYPES)}")
    if service_type is not None and service_type not in SERVICE_TYPES:
        raise RegisterError(f"{where}: service_type must be one of {', '.join(SERVICE_TYPES)}")
    formats = raw.get("formats", [])
    if not isinstance(formats, list) or any(f not in FORMAT_NAMES for f in formats):
        raise RegisterError(f"{where}: formats must be a list of {', '.join(FORMAT_NAMES)}")
    kommunenummer = raw.get("kommunenummer")
    if kommunenummer is not None and not (isinstance(kommunenummer, str) and len(kommunenummer) == 4
                                          and kommunenummer.isascii() and kommunenummer.isdigit()):
        raise RegisterError(f"{where}: kommunenummer must be four digits in a string, e.g. \"4601\"")
    active = raw.get("active", True)
    if not isinstance(active, bool):
        raise RegisterError(f"{where}: active must be true or false")
    parent = raw.get("parent_herid")
    hpr = raw.get("hpr")
    if hpr is not None and not (isinstance(hpr, str) and hpr.isascii() and hpr.isdigit() and len(hpr) <= 9):
        raise RegisterError(f"{where}: hpr must be an HPR number (digits in a string)")
    return Party(
        herid=_herid(raw["herid"], where, "herid"), name=cast(str, _text(raw["name"], where, "name", True)),
        kind=cast(PartyKind, kind), parent_herid=None if parent is None else _herid(parent, where, "parent_herid"),
        active=active, kommunenummer=kommunenummer, service_type=service_type, formats=tuple(formats),
        given_name=_text(raw.get("given_name"), where, "given_name"),
        family_name=_text(raw.get("family_name"), where, "family_name"), hpr=hpr,
        edi_address=_edi_address(raw, where), phone=_text(raw.get("phone"), where, "phone"),
        opening_hours=_text(raw.get("opening_hours"), where, "opening_hours"),
    )


def read_json_file(path: Path) -> Any:
    """A JSON file from an operator: invalid UTF-8 or JSON is an error naming the file and line, never a
    traceback and never the bytes it found."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise RegisterError(f"{path}, line {line}: not valid UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegisterError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise RegisterError(f"{path}: nested too deeply to be a registry") from None


def check_tree(parties: dict[int, Party]) -> None:
    """Every parent exists, every chain up the tree ends at an organisation within MAX_DEPTH steps, and no
    chain loops: two departments that were each other's parent made ``address_of`` loop for ever (issue 12)."""
    for party in parties.values():
        if party.parent_herid is not None and party.parent_herid not in parties:
            raise RegisterError(f"party {party.herid}: parent_herid {party.parent_herid} is not in the file")
        if party.kind != "organisation" and party.parent_herid is None:
            raise RegisterError(f"party {party.herid}: a {party.kind} needs a parent_herid")
    for party in parties.values():
        chain = [party.herid]
        current = party
        while current.parent_herid is not None:
            if current.parent_herid in chain:
                loop = [*chain[chain.index(current.parent_herid):], current.parent_herid]
                raise RegisterError("parent_herid forms a cycle: " + " → ".join(str(h) for h in loop))
            if len(chain) > MAX_DEPTH:
                raise RegisterError(f"party {party.herid}: more than {MAX_DEPTH} levels of parents")
            chain.append(current.parent_herid)
            current = parties[current.parent_herid]


def load_register(path: Path) -> MemoryRegister:
    """Read and check the whole file; a broken file changes nothing and says which entry is wrong. A file
    without parties is refused: importing it would empty the registry (issue 12)."""
    data = read_json_file(path)
    if not isinstance(data, dict) or data.get("version") != 1:
        raise RegisterError(f"{path}: expected an object with \"version\": 1")
    parties = data.get("parties")
    if not isinstance(parties, list) or not parties:
        raise RegisterError(f"{path}: \"parties\" must be a non-empty list (a registry without parties would "
                            "route nothing)")
    gp_rows = data.get("fastlegeregister", [])
    if not isinstance(gp_rows, list):
        raise RegisterError(f"{path}: \"fastlegeregister\" must be a list")
    register = MemoryRegister()
    for i, raw in enumerate(parties):
        party = _party(i, raw)
        if party.herid in register.parties:
            raise RegisterError(f"parties[{i}] (herid {party.herid}): the HER-id appears twice")
        register.parties[party.herid] = party
    check_tree(register.parties)
    for i, raw in enumerate(gp_rows):
        where = _where("fastlegeregister", i, raw, "gp_herid")
        if not isinstance(raw, dict):
            raise RegisterError(f"{where}: an entry must be an object")
        for key in ("fnr", "gp_herid", "valid_from"):
            if key not in raw:
                raise RegisterError(f"{where}: the field {key!r} is missing")
        if not isinstance(raw["fnr"], str) or not fodselsnummer.is_valid(raw["fnr"]):
            raise RegisterError(f"{where}: fnr is not a valid fødselsnummer or D-nummer")
        try:
            valid_from = date.fromisoformat(raw["valid_from"])
            valid_to = date.fromisoformat(raw["valid_to"]) if raw.get("valid_to") else None
        except (TypeError, ValueError):
            raise RegisterError(f"{where}: valid_from and valid_to must be dates (YYYY-MM-DD)") from None
        relation = raw.get("relation", "fastlege")
        if relation not in ("fastlege", "vikar"):
            raise RegisterError(f"{where}: relation must be fastlege or vikar")
        assignment = GpAssignment(fnr=raw["fnr"], gp_herid=_herid(raw["gp_herid"], where, "gp_herid"),
                                  valid_from=valid_from, valid_to=valid_to, relation=relation)
        gp = register.parties.get(assignment.gp_herid)
        if gp is None or gp.kind != "person":
            raise RegisterError(f"{where}: gp_herid is not a person in parties")
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
    # Bounded: a registry kept in the store before cycles were refused, or edited by hand, must not make
    # routing loop for ever. A cycle or a chain longer than MAX_DEPTH has no address.
    parent = register.party(party.parent_herid) if party.parent_herid else None
    seen = {party.herid}
    while parent is not None and parent.kind != "organisation":
        if parent.herid in seen or len(seen) > MAX_DEPTH:
            return None
        seen.add(parent.herid)
        parent = register.party(parent.parent_herid) if parent.parent_herid else None
    if parent is None:
        return None
    return Address(organisation=parent, unit=party)
