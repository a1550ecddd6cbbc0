"""Dialogmelding 1.1 (``DIALOG_HELSEFAGLIG``, a ``Notat``) inside MsgHead 1.2.

The note text is rendered from ``templates/`` (gateway.messages.note); here it only goes into
``TekstNotatInnhold``. lxml escapes it: no text can break the XML.

Order in ``Notat`` (dialogmelding-v1.1.xsd): TemaKodet (required), Tema, TekstNotatInnhold, Merknad,
DokIdNotat, DatoNotat, Foresporsel, RollerRelatertNotat*. In ``RollerRelatertNotat``: RolleNotat,
RoleToPatient, TilknyttetEnhet, then HealthcareProfessional or Person. ``TilknyttetEnhet`` was added
in 2017 *without* a new namespace, so receivers on the 2013 schema reject it: it is not used.
The 2013 schema also required the HealthcareProfessional/Person choice, so one is always written.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache

from lxml import etree

from gateway.domain.kartlegging import Kartlegging
from gateway.domain.registry import Address
from gateway.messages.msghead import (
    FASTLEGE,
    OID_PERSON_ID,
    OID_ROLE,
    PERSON_ID_TEXT,
    VIKAR_FOR_FASTLEGE,
    element,
    msghead_of_text,
    oslo_time,
    patient_ident_type,
    xml_text,
)

DIALOG_NS = "http://www.kith.no/xmlstds/dialog/2013-01-23"
FK1_NS = "http://www.kith.no/xmlstds/felleskomponent1"
MSG_TYPE = ("DIALOG_HELSEFAGLIG", "Helsefaglig dialog")
# MsgInfo/Type V → DN for what this module emits. The key is also the AMQP ``type`` property of the
# outgoing message, so a receiver can route without parsing the XML.
# Code list 7322 (Dialogmelding topics) has four values: 6 "Henvendelse om pasient",
# 7 "Tilbakemelding på mottak av utskrivningsklar pasient", 8 "Forespørsel om helseopplysninger",
# 9 "Forespørsel om legemiddelopplysninger". A kartlegging result is an unsolicited note about a
# patient, neither a reply (7) nor a request (8, 9): 6 is the only one that fits.
TEMA_KODET = {"V": "6", "DN": "Henvendelse om pasient", "S": "2.16.578.1.12.4.1.1.7322"}
# The sender's contact role (free text in the event) → code list 9034 (roles to the patient). A
# "koordinator" is two different things: in a kommune the individual plan's koordinator (8, helse- og
# omsorgstjenesteloven § 7-2), in a hospital the koordinator of spesialisthelsetjenesteloven § 2-5a (18).
CONTACT_ROLE: dict[str, tuple[str, str]] = {
    "forløpskoordinator": ("17", "Forløpskoordinator kreft"),
    "kontaktlege": ("19", "Kontaktlege"),
}
KOORDINATOR_KOMMUNE = ("8", "Koordinator Individuell plan")
KOORDINATOR_SYKEHUS = ("18", "Koordinator (spesialisthelsetjenesteloven)")
DEFAULT_CONTACT_ROLE = ("21", "Helsefaglig kontakt")  # e.g. kreftkoordinator, kreftsykepleier
# The receiver's role (from routing; "vikar" for a fastlege's substitute) → RoleToPatient in MsgHead.
RECEIVER_ROLE: dict[str, tuple[str, str]] = {"fastlege": FASTLEGE, "vikar": VIKAR_FOR_FASTLEGE}
# "Kontakt hos mottaker" (9034: 24) and the profession wanted there (9060), as the sample
# sarepta_Helsefaglig_dialog_angi_profesjon_hos_mottaker.xml shows: the receiving EPJ files a new
# Helsefaglig dialog in the work list of that profession. A GP practice: the lege; a hospital contact
# point: the kontaktlege; a kommune service (kreftkoordinator, koordinerende enhet, tildeling): the
# sykepleier who assesses the need for services.
KONTAKT_HOS_MOTTAKER = ("24", "Kontakt hos mottaker")
LEGE = ("LE", "Lege")
SYKEPLEIER = ("SP", "Sykepleier")
RECEIVER_PROFESSION: dict[str, tuple[str, str]] = {"fastlege": LEGE, "vikar": LEGE, "sykehus": LEGE}

_D = f"{{{DIALOG_NS}}}"
_F = f"{{{FK1_NS}}}"


def _d(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    return element(parent, _D + tag, text, **attrs)


def tema(event: Kartlegging) -> str:
    """The short title receivers see in their inbox. A declined kartlegging has no result, so its notice
    must not read like one."""
    if event.declined is not None:
        return f"Pasienten takket nei til kartlegging ved samhandlingspunkt {event.samhandlingspunkt} – " \
            "Pakkeforløp hjem"
    return f"Behovskartlegging samhandlingspunkt {event.samhandlingspunkt} – Pakkeforløp hjem"


def name_parts(name: str) -> tuple[str | None, str | None]:
    """(given, family) for the structured fields, or (None, None) for a one-word name: "Kari" may be a given
    or a family name, and a guess in FamilyName files the person wrong; the text carries the name anyway."""
    words = name.split()
    if len(words) < 2:
        return None, None
    return " ".join(words[:-1]), words[-1]


def contact_role(event: Kartlegging, sender: Address) -> tuple[str, str]:
    """The contact person's RoleToPatient (9034); "koordinator" depends on which side of the service sent it."""
    role = event.sender.contact.role.strip().lower()
    if role == "koordinator":
        return KOORDINATOR_KOMMUNE if sender.organisation.kommunenummer else KOORDINATOR_SYKEHUS
    return CONTACT_ROLE.get(role, DEFAULT_CONTACT_ROLE)


def receiver_profession(receiver_role: str) -> tuple[str, str]:
    return RECEIVER_PROFESSION.get(receiver_role, SYKEPLEIER)


def dialogmelding_values(event: Kartlegging, sender: Address, receiver_role: str, msg_id: str,
                        generated_at: datetime, note_text: str) -> dict[str, str | None]:
    """Every value of the message that is not its structure, as text. None: the element is left out (the
    contact's names and HPR number; never an empty string for those) or, for the patient's names, left
    without text; an empty string is written as an empty element, as before."""
    contact = event.sender.contact
    given, family = name_parts(contact.name)
    role_v, role_dn = contact_role(event, sender)
    prof_v, prof_dn = receiver_profession(receiver_role)
    fnr = event.patient.fnr
    id_v, id_dn = patient_ident_type(fnr)
    issued = event.occurred_at
    return {
        "gen_date": oslo_time(generated_at), "msg_id": msg_id, "fnr": fnr, "given": event.patient.given_name,
        "family": event.patient.family_name, "id_v": id_v, "id_dn": id_dn,
        "issue_date": oslo_time(issued) if isinstance(issued, datetime) else issued.isoformat(),
        "tema": tema(event), "note": note_text, "dato": event.assessment.performed_on.isoformat(),
        "role_v": role_v, "role_dn": role_dn, "c_family": family or None, "c_given": given or None,
        "hpr": contact.hpr or None,
        "tel": "tel:" + "".join(contact.phone.split()), "prof_v": prof_v, "prof_dn": prof_dn,
    }


def _build(sender: Address, receiver: Address, receiver_role: str, v: Mapping[str, str | None]) -> etree._Element:
    """The message built element by element from its values (what ``dialogmelding_tree`` copies)."""
    root, content = msghead_of_text(
        msg_type=MSG_TYPE, msg_id=str(v["msg_id"]), gen_date=str(v["gen_date"]), sender=sender, receiver=receiver,
        patient=(str(v["fnr"]), v["given"], v["family"], str(v["id_v"]), str(v["id_dn"])),  # type: ignore[arg-type]
        receiver_role=RECEIVER_ROLE.get(receiver_role), issue_date=str(v["issue_date"]), conversation=None,
    )
    dialog = etree.SubElement(content, _D + "Dialogmelding", nsmap={None: DIALOG_NS, "fk1": FK1_NS})
    notat = _d(dialog, "Notat")
    _d(notat, "TemaKodet", **TEMA_KODET)
    _d(notat, "Tema", v["tema"])
    _d(notat, "TekstNotatInnhold", v["note"])
    _d(notat, "DatoNotat", v["dato"])
    # The contact person the receiver should call, structured as well as in the text.
    roller = _d(notat, "RollerRelatertNotat")
    _d(roller, "RoleToPatient", V=str(v["role_v"]), DN=str(v["role_dn"]), S=OID_ROLE)
    hp = _d(roller, "HealthcareProfessional")  # dia:HealthcareProfessional: FamilyName before GivenName
    if v["c_family"]:
        _d(hp, "FamilyName", v["c_family"])
    if v["c_given"]:
        _d(hp, "GivenName", v["c_given"])
    if v["hpr"]:  # Ident is fk1:Ident: its children are in felleskomponent1 (as in the official sample)
        ident = _d(hp, "Ident")
        element(ident, _F + "Id", v["hpr"])
        element(ident, _F + "TypeId", V="HPR", DN=PERSON_ID_TEXT["HPR"], S=OID_PERSON_ID)
    # TeleCom is in the dialog namespace, its TeleAddress in felleskomponent1 (fk1:TeleCom type).
    element(_d(hp, "TeleCom"), _F + "TeleAddress", V=str(v["tel"]))
    mottaker = _d(notat, "RollerRelatertNotat")
    _d(mottaker, "RoleToPatient", V=KONTAKT_HOS_MOTTAKER[0], DN=KONTAKT_HOS_MOTTAKER[1], S=OID_ROLE)
    _d(_d(mottaker, "HealthcareProfessional"), "TypeHealthcareProfessional", V=str(v["prof_v"]),
       DN=str(v["prof_dn"]))
    return root


def dialogmelding_tree_direct(
    event: Kartlegging, sender: Address, receiver: Address, receiver_role: str, msg_id: str,
    generated_at: datetime, note_text: str,
) -> etree._Element:
    """The message built element by element; ``dialogmelding_tree`` must give the same bytes (tested)."""
    return _build(sender, receiver, receiver_role,
                  dialogmelding_values(event, sender, receiver_role, msg_id, generated_at, note_text))


# A slot: the value's name, the path of child indexes from the root, and the attribute (None: the text).
_Slot = tuple[str, tuple[int, ...], str | None]
_MARK = "⁣slot:"  # printable to xml_text (INVISIBLE SEPARATOR), so a placeholder goes through unchanged


@lru_cache(maxsize=1024)
def _skeleton(sender: Address, receiver: Address, receiver_role: str, present: tuple[tuple[str, bool], ...]
              ) -> tuple[etree._Element, tuple[_Slot, ...]]:
    """The message of one shape (addresses, receiver role, which values are there) built once with
    placeholders, and where each value goes."""
    root = _build(sender, receiver, receiver_role,
                  {name: _MARK + name if there else None for name, there in present})
    slots: list[_Slot] = []
    for el in root.iter():
        path: tuple[int, ...] = ()
        node = el
        while (parent := node.getparent()) is not None:
            path = (parent.index(node), *path)
            node = parent
        if el.text is not None and el.text.startswith(_MARK):
            slots.append((el.text[len(_MARK):], path, None))
        for attr, value in el.attrib.items():
            if value.startswith(_MARK):
                slots.append((value[len(_MARK):], path, str(attr)))
    return root, tuple(slots)


def dialogmelding_tree(
    event: Kartlegging, sender: Address, receiver: Address, receiver_role: str, msg_id: str,
    generated_at: datetime, note_text: str,
) -> etree._Element:
    """The message as a tree: the gateway validates the tree, then serializes it (no second parse).

    A new Helsefaglig dialog (TemaKodet 6, no ConversationRef) as HIS 1077 and the official samples build
    it: the sender's contact person as the first RollerRelatertNotat, "Kontakt hos mottaker" as the second.

    Built by copying a skeleton of the same shape and filling in the values (about a third of the cost of
    ~52 ``SubElement`` calls); the bytes are those of ``dialogmelding_tree_direct`` (tested on every fixture
    and on generated events)."""
    values = dialogmelding_values(event, sender, receiver_role, msg_id, generated_at, note_text)
    skeleton, slots = _skeleton(sender, receiver, receiver_role,
                                tuple((name, value is not None) for name, value in values.items()))
    root = copy.deepcopy(skeleton)
    for name, path, attr in slots:
        el = root
        for i in path:
            el = el[i]
        text = xml_text(str(values[name]))
        if attr is None:
            el.text = text
        else:
            el.set(attr, text)
    return root
