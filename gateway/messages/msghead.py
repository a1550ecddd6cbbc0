"""The MsgHead 1.2 envelope (Hodemelding), built with lxml SubElement: ~100 µs a message (the Dialogmelding
builds one per shape and copies it: gateway.messages.dialogmelding).

Addresses follow "tjenestebasert adressering": the top organisation with its HER-id, and
below it the service/department (a sub-Organisation) or the person (HealthcareProfessional)
that handles the message. Element order follows MsgHead-v1_2.xsd exactly; the gotchas:

- ``Organisation``: OrganisationName, TypeOrganisation?, Ident+, Address?, TeleCom*, then a
  sub-``Organisation``?, then ``HealthcareProfessional``? (both after the organisation's own Ident).
- ``HealthcareProfessional``: RoleToPatient comes *before* FamilyName and GivenName; Ident is required.
- ``Patient``: FamilyName, MiddleName?, GivenName (family first), then Ident.
- ``RefDoc``: IssueDate before MsgType; then Content (a choice with FileReference).
"""

from __future__ import annotations

import copy
import re
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from lxml import etree

from gateway.domain import fodselsnummer
from gateway.domain.registry import Address, Party

MSGHEAD_NS = "http://www.kith.no/xmlstds/msghead/2006-05-24"
MIG_VERSION = "v1.2 2006-05-24"  # fixed="…" in the XSD
OID_ORG_ID = "2.16.578.1.12.4.1.1.9051"  # organisation id types (HER, ENH)
OID_PERSON_ID = "2.16.578.1.12.4.1.1.8116"  # person id types (FNR, DNR, HPR, HER)
OID_ROLE = "2.16.578.1.12.4.1.1.9034"  # roles to the patient
PERSON_ID_TEXT = {"FNR": "Fødselsnummer", "DNR": "D-nummer", "HER": "HER-id", "HPR": "HPR-nummer"}
FASTLEGE = ("6", "Fastlege")  # 9034
VIKAR_FOR_FASTLEGE = ("15", "Vikar for fastlege")  # 9034: a substitute is not the patient's fastlege
# Norwegian EPJ systems show MsgHead times as wall-clock times; the official samples carry Norwegian local
# time. A UTC "Z" time is legal but reads an hour or two wrong in the receiver's inbox, so the offset is Oslo's.
OSLO = ZoneInfo("Europe/Oslo")

_M = f"{{{MSGHEAD_NS}}}"
# Characters XML 1.0 cannot carry at all (C0 controls but tab/LF/CR, U+FFFE/FFFF, lone surrogates).
# lxml refuses them with ValueError; a stray control character pasted into a note must not stop
# the message, so it becomes U+FFFD (the replacement character).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` with the characters XML 1.0 cannot carry replaced by U+FFFD, and line ends made ``\\n``.

    A carriage return is legal XML, but lxml must write it as ``&#13;`` to keep it through parsing, and
    receiving EPJ systems show that as a stray character or a double line break; a note typed on Windows
    would reach the kommune full of them. ``\\r\\n`` and a lone ``\\r`` both become ``\\n``."""
    if value.isprintable():  # the common case, checked in C: printable characters are all legal in XML
        return value
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _NOT_XML.sub("\ufffd", value)


def oslo_time(moment: datetime) -> str:
    """An aware time as Norwegian local time with its offset (``2026-03-10T13:00:00+01:00``)."""
    return moment.astimezone(OSLO).isoformat(timespec="seconds")


def element(parent: etree._Element, qname: str, text: str | None = None, **attrs: str) -> etree._Element:
    """A child element with optional text: the one helper every XML builder here uses.

    Text and attribute values go through ``xml_text``; escaping ``<``, ``&`` and ``]]>`` is lxml's job."""
    el = etree.SubElement(parent, qname, {k: xml_text(v) for k, v in attrs.items()} if attrs else None)
    if text is not None:
        el.text = xml_text(text)
    return el


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    """A MsgHead-namespace child."""
    return element(parent, _M + tag, text, **attrs)


def _ident(parent: etree._Element, id_: str, v: str, dn: str, s: str) -> None:
    ident = sub(parent, "Ident")
    sub(ident, "Id", id_)
    sub(ident, "TypeId", V=v, DN=dn, S=s)


def _organisation(parent: etree._Element, org: Party) -> etree._Element:
    el = sub(parent, "Organisation")
    sub(el, "OrganisationName", org.name)
    _ident(el, str(org.herid), "HER", "HER-id", OID_ORG_ID)
    return el


def address(parent: etree._Element, addr: Address, *, role_to_patient: tuple[str, str] | None = None) -> None:
    """Organisation (HER-id), and below it the unit: a sub-Organisation or a HealthcareProfessional.

    ``role_to_patient`` (code list 9034, e.g. ``FASTLEGE``) is only written for a person. Built once
    per address and copied: the same few receivers get most messages."""
    parent.append(copy.deepcopy(_address_tree(addr, role_to_patient)))


@lru_cache(maxsize=1024)
def _address_tree(addr: Address, role_to_patient: tuple[str, str] | None) -> etree._Element:
    holder = etree.Element(_M + "Holder", nsmap={None: MSGHEAD_NS})
    _build_address(holder, addr, role_to_patient)
    return holder[0]


def _build_address(parent: etree._Element, addr: Address, role_to_patient: tuple[str, str] | None) -> None:
    org = _organisation(parent, addr.organisation)
    unit = addr.unit
    if unit is None:
        return
    if unit.kind == "person":
        hp = sub(org, "HealthcareProfessional")
        if role_to_patient:
            sub(hp, "RoleToPatient", V=role_to_patient[0], DN=role_to_patient[1], S=OID_ROLE)
        if unit.family_name:
            sub(hp, "FamilyName", unit.family_name)
        if unit.given_name:
            sub(hp, "GivenName", unit.given_name)
        # A person's HER-id is typed with the organisation id list 9051, as in the official samples.
        _ident(hp, str(unit.herid), "HER", "HER-id", OID_ORG_ID)
        if unit.hpr:
            _ident(hp, unit.hpr, "HPR", "HPR-nummer", OID_PERSON_ID)
    else:
        _organisation(org, unit)


def patient_ident_type(fnr: str) -> tuple[str, str]:
    """(V, DN) in code list 8116: D-nummer when the first digit is 4-7, else fødselsnummer."""
    kind = fodselsnummer.kind(fnr)
    return kind, PERSON_ID_TEXT[kind]


def msghead(
    *, msg_type: tuple[str, str], msg_id: str, generated_at: datetime, sender: Address, receiver: Address,
    patient: tuple[str, str, str] | None, receiver_role: tuple[str, str] | None = None,
    issued: datetime | date | None = None, conversation: tuple[str, str] | None = None,
) -> tuple[etree._Element, etree._Element]:
    """The envelope and its empty ``Content`` element, where the caller puts the payload.

    ``msg_type`` is MsgInfo/Type (V, DN); ``patient`` is (fnr or D-nummer, given name, family name);
    ``receiver_role`` is the receiving person's RoleToPatient (9034), e.g. ``FASTLEGE``.
    ``issued`` is RefDoc/IssueDate: when the *document* was made (the kartlegging), which the receiver
    files the document under; GenDate is only when this envelope was generated, and a re-send or a delayed
    event would otherwise date the document wrong. ``conversation`` is ConversationRef (RefToParent,
    RefToConversation), only for a message that continues an earlier one (PLO updates)."""
    if issued is None:
        issued = generated_at
    return msghead_of_text(
        msg_type=msg_type, msg_id=msg_id, gen_date=oslo_time(generated_at), sender=sender, receiver=receiver,
        patient=None if patient is None else (*patient, *patient_ident_type(patient[0])),
        receiver_role=receiver_role,
        issue_date=oslo_time(issued) if isinstance(issued, datetime) else issued.isoformat(),
        conversation=conversation)


def msghead_of_text(
    *, msg_type: tuple[str, str], msg_id: str, gen_date: str, sender: Address, receiver: Address,
    patient: tuple[str, str, str, str, str] | None, receiver_role: tuple[str, str] | None,
    issue_date: str, conversation: tuple[str, str] | None,
) -> tuple[etree._Element, etree._Element]:
    """``msghead`` with every value already text: ``patient`` is (id, given, family, id type V, id type DN).
    The skeleton builder (gateway.messages.dialogmelding) calls it with placeholders."""
    root = etree.Element(_M + "MsgHead", nsmap={None: MSGHEAD_NS})
    info = sub(root, "MsgInfo")
    sub(info, "Type", V=msg_type[0], DN=msg_type[1])
    sub(info, "MIGversion", MIG_VERSION)
    sub(info, "GenDate", gen_date)
    sub(info, "MsgId", msg_id)
    if conversation is not None:
        ref = sub(info, "ConversationRef")
        sub(ref, "RefToParent", conversation[0])
        sub(ref, "RefToConversation", conversation[1])
    address(sub(info, "Sender"), sender)
    address(sub(info, "Receiver"), receiver, role_to_patient=receiver_role)
    if patient is not None:
        fnr, given, family, id_v, id_dn = patient
        p = sub(info, "Patient")
        sub(p, "FamilyName", family)
        sub(p, "GivenName", given)
        _ident(p, fnr, id_v, id_dn, OID_PERSON_ID)
    ref_doc = sub(sub(root, "Document"), "RefDoc")
    sub(ref_doc, "IssueDate", V=issue_date)
    sub(ref_doc, "MsgType", V="XML", DN="XML-instans")
    return root, sub(ref_doc, "Content")


def serialize(root: etree._Element) -> bytes:
    """UTF-8 bytes with an XML declaration: Norwegian letters stay letters, not character references."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
