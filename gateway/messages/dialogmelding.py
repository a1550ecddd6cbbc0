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

from datetime import datetime

from lxml import etree

from gateway.domain.kartlegging import Kartlegging
from gateway.domain.registry import Address
from gateway.messages.msghead import FASTLEGE, OID_ROLE, element, msghead

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
# The sender's contact role (free text in the event) → code list 9034 (roles to the patient).
CONTACT_ROLE: dict[str, tuple[str, str]] = {
    "forløpskoordinator": ("17", "Forløpskoordinator kreft"),
    "kontaktlege": ("19", "Kontaktlege"),
    "koordinator": ("8", "Koordinator Individuell plan"),
}
DEFAULT_CONTACT_ROLE = ("21", "Helsefaglig kontakt")  # e.g. kreftkoordinator, kreftsykepleier
# The receiver role (from routing) → RoleToPatient of the receiving person in MsgHead.
RECEIVER_ROLE: dict[str, tuple[str, str]] = {"fastlege": FASTLEGE}

_D = f"{{{DIALOG_NS}}}"
_F = f"{{{FK1_NS}}}"


def _d(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    return element(parent, _D + tag, text, **attrs)


def tema(event: Kartlegging) -> str:
    """The short title receivers see in their inbox."""
    return f"Behovskartlegging samhandlingspunkt {event.samhandlingspunkt} – Pakkeforløp hjem"


def split_name(name: str) -> tuple[str, str]:
    """(given, family) from a full name: the family name is the last word."""
    given, _, family = name.strip().rpartition(" ")
    return given.strip(), family or name


def dialogmelding_tree(
    event: Kartlegging, sender: Address, receiver: Address, receiver_role: str, msg_id: str,
    generated_at: datetime, note_text: str,
) -> etree._Element:
    """The message as a tree: the gateway validates the tree, then serializes it (no second parse)."""
    root, content = msghead(
        msg_type=MSG_TYPE, msg_id=msg_id, generated_at=generated_at, sender=sender, receiver=receiver,
        patient=(event.patient.fnr, event.patient.given_name, event.patient.family_name),
        receiver_role=RECEIVER_ROLE.get(receiver_role),
    )
    dialog = etree.SubElement(content, _D + "Dialogmelding", nsmap={None: DIALOG_NS, "fk1": FK1_NS})
    notat = _d(dialog, "Notat")
    _d(notat, "TemaKodet", **TEMA_KODET)
    _d(notat, "Tema", tema(event))
    _d(notat, "TekstNotatInnhold", note_text)
    _d(notat, "DatoNotat", event.assessment.performed_on.isoformat())
    # The contact person the receiver should call, structured as well as in the text.
    contact = event.sender.contact
    roller = _d(notat, "RollerRelatertNotat")
    code, text = CONTACT_ROLE.get(contact.role.strip().lower(), DEFAULT_CONTACT_ROLE)
    _d(roller, "RoleToPatient", V=code, DN=text, S=OID_ROLE)
    hp = _d(roller, "HealthcareProfessional")  # dia:HealthcareProfessional: FamilyName before GivenName
    given, family = split_name(contact.name)
    _d(hp, "FamilyName", family)
    if given:
        _d(hp, "GivenName", given)
    # TeleCom is in the dialog namespace, its TeleAddress in felleskomponent1 (fk1:TeleCom type).
    element(_d(hp, "TeleCom"), _F + "TeleAddress", V="tel:" + "".join(contact.phone.split()))
    return root
