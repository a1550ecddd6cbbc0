"""AppRec 1.0 and 1.1: the application receipt a receiver returns for every message.

``parse_apprec`` reads receipts from untrusted peers (safe parsing, size limit, schema check);
``build_apprec`` answers a MsgHead message, as a receiver does (the receiver simulator and the
tests need it). Status (8258): 1 OK, 2 Avvist, 3 OK med feil i delmelding; errors from 8221.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from lxml import etree

from gateway.messages.msghead import element
from gateway.messages.validation import MSGHEAD_NS, MessageInvalid, parse_untrusted, validate_message

APPREC_NS: dict[Literal["1.0", "1.1"], str] = {"1.0": "http://www.kith.no/xmlstds/apprec/2004-11-21", "1.1": "http://www.kith.no/xmlstds/apprec/2012-02-15"}
MIG_VERSION = {"1.0": "1.0 2004-11-21", "1.1": "v1.1 2012-02-15"}
OID_ERROR = "2.16.578.1.12.4.1.1.8221"
ERROR_TEXT = {
    "E10": "Ugyldig meldingsidentifikator", "E20": "Lege finnes ikke", "E21": "Mottaker finnes ikke",
    "E35": "Pasienten finnes ikke i mottakersystemet", "E36": "Pasientopplysninger er utilstrekkelige",
    "T01": "Ikke XML / ikke 'well formed' / uleselig", "T02": "XML validerer ikke",
    "T10": "Støtter ikke meldingsformatet", "T99": "Annen feil på format", "X99": "Annen feil",
}
Version = Literal["1.0", "1.1"]


class Status(StrEnum):
    OK = "1"
    AVVIST = "2"
    OK_FEIL_I_DELMELDING = "3"

    @property
    def text(self) -> str:
        return {"1": "OK", "2": "Avvist", "3": "OK, feil i delmelding"}[self.value]


@dataclass(frozen=True)
class AppRecError:
    """One Error of a receipt. ``system`` is its code list (``S``): 8221 is the general list, but receivers
    also answer with others (e.g. 8223 for message-type specific errors, where the same code means something
    else), so a code without its list cannot be read right. None when the receipt left it out."""

    code: str
    text: str
    detail: str | None = None
    system: str | None = None


@dataclass(frozen=True)
class AppRec:
    version: Version
    id: str
    status: Status
    errors: tuple[AppRecError, ...]
    original_msg_id: str
    original_msg_type: str
    sender_herid: str | None
    receiver_herid: str | None
    sender_herids: tuple[str, ...] = ()  # every HER-id in Sender (institution, department, person)
    receiver_herids: tuple[str, ...] = ()


def _herid(party: etree._Element | None, ns: str) -> str | None:
    """The most specific HER-id of an AppRec party (person, then department, then institution)."""
    if party is None:
        return None
    for path in ("ar:HCP/ar:Inst/ar:HCPerson", "ar:HCP/ar:Inst/ar:Dept", "ar:HCP/ar:Inst", "ar:HCP/ar:HCProf"):
        for el in party.iterfind(path, {"ar": ns}):
            type_id = el.find(f"{{{ns}}}TypeId")
            ident = el.findtext(f"{{{ns}}}Id")
            if ident and type_id is not None and (type_id.get("V") or "").strip() == "HER":
                return ident.strip()
    return None


def _herids(party: etree._Element | None, ns: str) -> tuple[str, ...]:
    """Every HER-id of an AppRec party: the receipt is checked against the message's parties by these."""
    if party is None:
        return ()
    found = []
    for el in party.iter(f"{{{ns}}}Inst", f"{{{ns}}}Dept", f"{{{ns}}}HCPerson", f"{{{ns}}}HCProf"):
        type_id = el.find(f"{{{ns}}}TypeId")
        ident = el.findtext(f"{{{ns}}}Id")
        if ident and type_id is not None and (type_id.get("V") or "").strip() == "HER":
            found.append(ident.strip())
    return tuple(found)


def parse_apprec(xml: bytes) -> AppRec:
    """Raises MessageInvalid (T01/T02) for what is not a valid AppRec 1.0 or 1.1."""
    root = validate_message(xml)
    version = next((v for v, ns in APPREC_NS.items() if root.tag == f"{{{ns}}}AppRec"), None)
    if version is None:
        raise MessageInvalid("T10", "/", f"not an AppRec: {etree.QName(root).localname}")
    ns = APPREC_NS[version]
    q = {"ar": ns}
    status_code = (_required(root, "ar:Status", q).get("V") or "").strip()
    try:
        status = Status(status_code)
    except ValueError:  # schema-valid (the code list is not in the XSD) but not a status 8220 knows
        raise MessageInvalid("T02", "/AppRec/Status", "the status is not one of 1, 2, 3 (code list 8220)") from None
    errors = tuple(
        AppRecError((e.get("V") or "").strip(), (e.get("DN") or "").strip(), e.get("OT"),
                    (e.get("S") or "").strip() or None)
        for e in root.iterfind("ar:Error", q)
    )
    return AppRec(
        version=version,
        id=(root.findtext("ar:Id", namespaces=q) or "").strip(),
        status=status,
        errors=errors,
        original_msg_id=(root.findtext("ar:OriginalMsgId/ar:Id", namespaces=q) or "").strip(),
        original_msg_type=(_required(root, "ar:OriginalMsgId/ar:MsgType", q).get("V") or "").strip(),
        sender_herid=_herid(root.find("ar:Sender", q), ns),
        receiver_herid=_herid(root.find("ar:Receiver", q), ns),
        sender_herids=_herids(root.find("ar:Sender", q), ns),
        receiver_herids=_herids(root.find("ar:Receiver", q), ns),
    )


def _required(parent: etree._Element, path: str, namespaces: dict[str, str]) -> etree._Element:
    """An element the schema requires (the document was validated before it is read)."""
    found = parent.find(path, namespaces)
    if found is None:
        raise MessageInvalid("T02", path, "a required element is missing")
    return found


def _sub(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    return element(parent, f"{{{ns}}}{tag}", text, **attrs)


def _party(parent: etree._Element, ns: str, org: etree._Element) -> None:
    """MsgHead Organisation (with a sub-organisation or a person) → AppRec HCP/Inst (Dept, HCPerson)."""
    m = {"mh": MSGHEAD_NS}
    inst = _sub(_sub(parent, ns, "HCP"), ns, "Inst")

    def ident(target: etree._Element, source: etree._Element, name: str | None) -> None:
        if name:
            _sub(target, ns, "Name", name)
        for i in source.iterfind("mh:Ident", m):
            if _required(i, "mh:TypeId", m).get("V", "").strip() == "HER":
                _sub(target, ns, "Id", i.findtext("mh:Id", namespaces=m))
                _sub(target, ns, "TypeId", V="HER", DN="HER-id")
                return

    ident(inst, org, org.findtext("mh:OrganisationName", namespaces=m))
    sub_org = org.find("mh:Organisation", m)
    if sub_org is not None:
        ident(_sub(inst, ns, "Dept"), sub_org, sub_org.findtext("mh:OrganisationName", namespaces=m))
    person = org.find("mh:HealthcareProfessional", m)
    if person is not None:
        name = " ".join(filter(None, (person.findtext("mh:GivenName", namespaces=m),
                                      person.findtext("mh:FamilyName", namespaces=m))))
        ident(_sub(inst, ns, "HCPerson"), person, name or None)


def build_apprec(original: bytes, status: Status, errors: tuple[AppRecError, ...] = (), *,
                 version: Version = "1.1", apprec_id: str | None = None, now: datetime | None = None) -> bytes:
    """The receipt a receiver returns for ``original`` (a MsgHead message it could read)."""
    msg = parse_untrusted(original)
    m = {"mh": MSGHEAD_NS}
    info = msg.find("mh:MsgInfo", m)
    if info is None:
        raise MessageInvalid("T02", "/MsgHead/MsgInfo", "no MsgInfo: cannot answer a message without a MsgId")
    ns = APPREC_NS[version]
    root = etree.Element(f"{{{ns}}}AppRec", nsmap={None: ns})
    _sub(root, ns, "MsgType", V="APPREC", DN="Applikasjonskvittering")
    _sub(root, ns, "MIGversion", MIG_VERSION[version])
    _sub(root, ns, "GenDate", (now or datetime.now(UTC)).isoformat(timespec="seconds"))
    _sub(root, ns, "Id", apprec_id or str(uuid.uuid4()))
    # The receipt goes back: its sender is the original's receiver, and the other way round.
    _party(_sub(root, ns, "Sender"), ns, _required(info, "mh:Receiver/mh:Organisation", m))
    _party(_sub(root, ns, "Receiver"), ns, _required(info, "mh:Sender/mh:Organisation", m))
    _sub(root, ns, "Status", V=status.value, DN=status.text)
    for error in errors:
        attrs = {"V": error.code, "DN": error.text or ERROR_TEXT.get(error.code, ""), "S": error.system or OID_ERROR}
        if error.detail:
            attrs["OT"] = error.detail
        _sub(root, ns, "Error", **attrs)
    original_id = _sub(root, ns, "OriginalMsgId")
    msg_type = _required(info, "mh:Type", m)
    _sub(original_id, ns, "MsgType", V=msg_type.get("V", ""), DN=msg_type.get("DN", ""))
    _sub(original_id, ns, "IssueDate", info.findtext("mh:GenDate", namespaces=m))
    _sub(original_id, ns, "Id", info.findtext("mh:MsgId", namespaces=m))
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate_message(xml)
    return xml


def answer(original: bytes, **kwargs: object) -> bytes:
    """What a receiving EPJ system answers: OK for a valid message, Avvist with T02 for an invalid
    one that can still be read. A message that is not well-formed (T01) cannot be answered by
    receipt, since its MsgId cannot be read; that raises MessageInvalid."""
    try:
        validate_message(original)
    except MessageInvalid as exc:
        if exc.code == "T01":
            raise
        detail = f"{exc.path}: {exc.message}"[:200]
        return build_apprec(original, Status.AVVIST, (AppRecError(exc.code, ERROR_TEXT[exc.code], detail),),
                            **kwargs)  # type: ignore[arg-type]
    return build_apprec(original, Status.OK, **kwargs)  # type: ignore[arg-type]
