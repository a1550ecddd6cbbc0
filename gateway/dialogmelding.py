"""Dialogmelding 1.1 (``DIALOG_HELSEFAGLIG``, a ``Notat``) inside MsgHead 1.2.

The note text is rendered from ``templates/`` (gateway.notat); here it only goes into
``TekstNotatInnhold``. lxml escapes it: no text can break the XML.
"""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from gateway.adresseregister import Address
from gateway.kartlegging import Kartlegging
from gateway.msghead import element, msghead, serialize

DIALOG_NS = "http://www.kith.no/xmlstds/dialog/2013-01-23"
FK1_NS = "http://www.kith.no/xmlstds/felleskomponent1"
MSG_TYPE = ("DIALOG_HELSEFAGLIG", "Helsefaglig dialog")
# Code list 7322 (dialog topics): 6 "Henvendelse om pasient" is the one for an unsolicited note
# about a patient; the others (7–9) are answers and requests that do not fit a kartlegging.
TEMA_KODET = {"V": "6", "DN": "Henvendelse om pasient", "S": "2.16.578.1.12.4.1.1.7322"}
OID_ROLE = "2.16.578.1.12.4.1.1.9034"
# Sender contact roles → code list 9034 (roles to the patient)
CONTACT_ROLE = {
    "forløpskoordinator": ("17", "Forløpskoordinator kreft"),
    "kontaktlege": ("19", "Kontaktlege"),
    "koordinator": ("8", "Koordinator Individuell plan"),
}
DEFAULT_CONTACT_ROLE = ("21", "Helsefaglig kontakt")
RECEIVER_ROLE = {"fastlege": ("6", "Fastlege")}

_D = f"{{{DIALOG_NS}}}"
_F = f"{{{FK1_NS}}}"


def _d(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    return element(parent, _D + tag, text, **attrs)


def build_dialogmelding(
    event: Kartlegging, sender: Address, receiver: Address, receiver_role: str, msg_id: str,
    generated_at: datetime, note_text: str,
) -> bytes:
    root, content = msghead(
        msg_type=MSG_TYPE, msg_id=msg_id, generated_at=generated_at, sender=sender, receiver=receiver,
        patient=(event.patient.fnr, event.patient.given_name, event.patient.family_name),
        receiver_role=RECEIVER_ROLE.get(receiver_role),
    )
    dialog = etree.SubElement(content, _D + "Dialogmelding", nsmap={None: DIALOG_NS, "fk1": FK1_NS})
    notat = _d(dialog, "Notat")
    _d(notat, "TemaKodet", **TEMA_KODET)
    _d(notat, "Tema", f"Behovskartlegging samhandlingspunkt {event.samhandlingspunkt} – Pakkeforløp hjem")
    _d(notat, "TekstNotatInnhold", note_text)
    _d(notat, "DatoNotat", event.assessment.performed_on.isoformat())
    # The contact person the receiver should call, as a structured role as well as in the text.
    contact = event.sender.contact
    roller = _d(notat, "RollerRelatertNotat")
    code, text = CONTACT_ROLE.get(contact.role.lower(), DEFAULT_CONTACT_ROLE)
    _d(roller, "RoleToPatient", V=code, DN=text, S=OID_ROLE)
    hp = _d(roller, "HealthcareProfessional")
    given, _, family = contact.name.rpartition(" ")
    _d(hp, "FamilyName", family or contact.name)
    if given:
        _d(hp, "GivenName", given)
    telecom = _d(hp, "TeleCom")
    etree.SubElement(telecom, _F + "TeleAddress", V="tel:" + "".join(contact.phone.split()))
    return serialize(root)
