"""PLO 1.6 ``HelseopplysningerVedSoknad`` (``HELSEOPPL_SOKNAD``) inside MsgHead 1.2, for a kommune
service that reads PLO, and only while the patient is admitted (the event's ``inpatient_stay``).

Helseopplysninger belong to the innlagt → utskrivningsklar process (NHN's guide on PLO between
helseforetak and kommune; the official samples ``Helseopplysninger_Varsel_om_innlagt_pasient_v1-6_Ny``
and ``..._Oppdaterte_opplysninger_v1-6_Endring1/2``). Routing sends PLO only when the event carries a
stay; everything else is a Dialogmelding. The sequence:

| message | Forsendelsesstatus | TypeInnhold (9140) | ConversationRef |
|---|---|---|---|
| first about the stay (no ``first_event_id``) | N Ny | 1 Varsel om innlagt pasient | none |
| later ones | M Endring | 2 Oppdaterte opplysninger | RefToParent: previous, RefToConversation: first |

(both the MsgIds the earlier events' messages to the same receiver got)

Mapping of the kartlegging onto PLO:

| kartlegging | PLO 1.6 |
|---|---|
| sender unit, HER-id, phone | TilknyttetEnhet/Kontaktenhet (+ Merknad with the contact person) |
| contact person with an HPR number | KontaktpersonHelsepersonell/Kontaktperson (its Ident is required) |
| admitted_on | OpplysningOpphold/TidsfestetHendelse, Hendelsekode (9121) 1 Pasient innlagt |
| discharge_ready_on | another one, Hendelsekode 3 Pasient utskrivningsklar, Anslag true |
| samhandlingspunkt, WMFG10, performed_on | TypeInnholdIMelding/Merknad and the text |
| diagnosis (ICD-10) | MedisinskDiagnose/Diagnosekode without the dot (list 7110); the text keeps it |
| the note text (topics, distress, what matters, follow-up, contact) | Journaltekst (9145: 1 "Pasientens status") |
| follow_up | Journaltekst (9145: 2 "Antatt forløp") |

The kartlegging's life topics (family, work, finances …) are needs the patient told about, not services
applied for: they stay in the text and never become ``TjenesteBehov``, which a saksbehandler would read
as an application for that service.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lxml import etree

from gateway.domain.kartlegging import Kartlegging
from gateway.domain.registry import Address
from gateway.messages.dialogmelding import contact_role, name_parts
from gateway.messages.msghead import OID_ORG_ID, OID_PERSON_ID, OID_ROLE, PERSON_ID_TEXT, element, msghead
from gateway.messages.outbound import msg_id_for

P5_NS = "http://www.kith.no/xmlstds/po/HelseopplysningerVedSoknad/2012-04-01"
PO_NS = "http://www.kith.no/xmlstds/po/poKomponent/2012-04-01"
FK1_NS = "http://www.kith.no/xmlstds/felleskomponent1"
EPJ2_NS = "http://www.kith.no/xmlstds/epj/epj2/2008-02-20"
M1_NS = "http://www.kith.no/xmlstds/epj/meta/2008-02-20"
MSG_TYPE = ("HELSEOPPL_SOKNAD", "Helseopplysninger")
OID_ICD10 = "2.16.578.1.12.4.1.1.7110"
OID_TYPE_INNHOLD = "2.16.578.1.12.4.1.1.9140"
OID_OVERSKRIFT = "2.16.578.1.12.4.1.1.9145"
OID_HENDELSE = "2.16.578.1.12.4.1.1.9121"
TYPE_INNHOLD_VARSEL = ("1", "Varsel om innlagt pasient")
TYPE_INNHOLD_OPPDATERT = ("2", "Oppdaterte opplysninger")
HENDELSE_INNLAGT = ("1", "Pasient innlagt")
HENDELSE_UTSKRIVNINGSKLAR = ("3", "Pasient utskrivningsklar")
GENERELT_JOURNALNOTAT_TYPE = "2.16.578.1.12.4.1.6.13.11009.0"  # fixed by EPJ-journalnotat-mv.xsd

_PO, _FK1, _EPJ2, _M1 = (f"{{{ns}}}" for ns in (PO_NS, FK1_NS, EPJ2_NS, M1_NS))


def icd10_code(code: str) -> str:
    """ICD-10 as coded values carry it (list 7110): no dot, upper case (``C50.9`` → ``C509``), as the
    official samples (``S720``, ``I509``) have it, and as NAV reads it (issue 13: NAV strips dots)."""
    return code.replace(".", "").strip().upper()


def conversation_of(event: Kartlegging, receiver: Address) -> tuple[str, str] | None:
    """ConversationRef (RefToParent, RefToConversation) for a later message about the stay, else None.
    Both are the MsgIds the earlier events produced for the same receiver (``msg_id_for``)."""
    stay = event.inpatient_stay
    if stay is None or stay.first_event_id is None or stay.first_event_id == event.event_id:
        return None
    parent = stay.previous_event_id or stay.first_event_id
    return msg_id_for(parent, receiver.herid), msg_id_for(stay.first_event_id, receiver.herid)


def helseopplysninger_tree(
    event: Kartlegging, sender: Address, receiver: Address, receiver_role: str, msg_id: str,
    generated_at: datetime, note_text: str,
) -> etree._Element:
    """The PLO message; raises ValueError without an inpatient stay (routing never asks for one then)."""
    stay = event.inpatient_stay
    if stay is None:
        raise ValueError("PLO Helseopplysninger need an inpatient stay; routing sends a Dialogmelding otherwise")
    conversation = conversation_of(event, receiver)
    root, content = msghead(
        msg_type=MSG_TYPE, msg_id=msg_id, generated_at=generated_at, sender=sender, receiver=receiver,
        patient=(event.patient.fnr, event.patient.given_name, event.patient.family_name),
        issued=event.occurred_at, conversation=conversation,
    )
    doc = etree.SubElement(content, f"{{{P5_NS}}}HelseopplysningerVedSoknad",
                           nsmap={"p5": P5_NS, None: PO_NS, "fk1": FK1_NS, "epj2": EPJ2_NS, "m1": M1_NS})
    status = ("M", "Endring") if conversation else ("N", "Ny")
    element(element(doc, _PO + "InformasjonOmForsendelsen"), _PO + "Forsendelsesstatus", V=status[0], DN=status[1])

    contact = event.sender.contact
    enhet = element(doc, _PO + "TilknyttetEnhet")
    kontaktenhet = element(enhet, _PO + "Kontaktenhet")
    element(kontaktenhet, _FK1 + "OrganisationName", event.sender.name)
    ident = element(kontaktenhet, _FK1 + "Ident")
    element(ident, _FK1 + "Id", str(event.sender.herid))
    element(ident, _FK1 + "TypeId", V="HER", DN="HER-id", S=OID_ORG_ID)
    element(element(kontaktenhet, _FK1 + "TeleCom"), _FK1 + "TeleAddress", V="tel:" + "".join(contact.phone.split()))
    element(enhet, _PO + "Merknad", f"Kontaktperson: {contact.name} ({contact.role}), telefon {contact.phone}")
    if contact.hpr:  # fk1:HealthcareProfessional requires an Ident: only with the HPR number
        person = element(element(doc, _PO + "KontaktpersonHelsepersonell"), _PO + "Kontaktperson")
        role = contact_role(event, sender)
        element(person, _FK1 + "RoleToPatient", V=role[0], DN=role[1], S=OID_ROLE)
        given, family = name_parts(contact.name)
        if family:
            element(person, _FK1 + "FamilyName", family)
        if given:
            element(person, _FK1 + "GivenName", given)
        hpr = element(person, _FK1 + "Ident")
        element(hpr, _FK1 + "Id", contact.hpr)
        element(hpr, _FK1 + "TypeId", V="HPR", DN=PERSON_ID_TEXT["HPR"], S=OID_PERSON_ID)
        element(element(person, _FK1 + "TeleCom"), _FK1 + "TeleAddress", V="tel:" + "".join(contact.phone.split()))

    innhold = element(doc, _PO + "TypeInnholdIMelding")
    kind = TYPE_INNHOLD_OPPDATERT if conversation else TYPE_INNHOLD_VARSEL
    element(innhold, _PO + "TypeInnhold", V=kind[0], DN=kind[1], S=OID_TYPE_INNHOLD)
    code = f" ({event.assessment.procedure_code})" if event.assessment.procedure_code else ""
    element(innhold, _PO + "Merknad",
        f"Resultat av behovskartlegging{code}, samhandlingspunkt {event.samhandlingspunkt}, Pakkeforløp hjem, "
        f"utført {event.assessment.performed_on.strftime('%d.%m.%Y')}")

    _hendelse(doc, HENDELSE_INNLAGT, stay.admitted_on.isoformat(), estimate=False)
    if stay.discharge_ready_on is not None:
        _hendelse(doc, HENDELSE_UTSKRIVNINGSKLAR, stay.discharge_ready_on.isoformat(), estimate=True)

    diagnose = element(element(doc, _PO + "InfoMedisinskDiagnose"), _PO + "MedisinskDiagnose")
    element(diagnose, _PO + "Hoveddiagnose", "true")
    element(diagnose, _PO + "Diagnosekode", V=icd10_code(event.diagnosis.icd10), DN=event.diagnosis.text,
            S=OID_ICD10)
    element(diagnose, _PO + "DiagnoseBeskrivelse",
        f"{event.diagnosis.text} ({event.diagnosis.icd10}), "
        f"diagnostisert {event.diagnosis.diagnosed_on.strftime('%d.%m.%Y')}")

    notat = etree.SubElement(element(doc, _PO + "MedisinskfagligeOpplysninger"), _EPJ2 + "GenereltJournalnotat", {
        _M1 + "basiskomponenttype": "EPJ dokument", _M1 + "komponenttype": GENERELT_JOURNALNOTAT_TYPE,
        _M1 + "informasjonskategori": "Andre notater", "komponentID": str(uuid.uuid5(uuid.UUID(msg_id), "notat")),
    })
    journal = element(notat, _EPJ2 + "Journaltekst")
    element(journal, _EPJ2 + "Overskriftskode", V="1", DN="Pasientens status", S=OID_OVERSKRIFT)
    element(journal, _EPJ2 + "Notat", note_text)
    if event.assessment.follow_up:
        forlop = element(notat, _EPJ2 + "Journaltekst")
        element(forlop, _EPJ2 + "Overskriftskode", V="2", DN="Antatt forløp", S=OID_OVERSKRIFT)
        element(forlop, _EPJ2 + "Notat", event.assessment.follow_up)
    return root


def _hendelse(parent: etree._Element, code: tuple[str, str], when: str, *, estimate: bool) -> None:
    """One OpplysningOpphold per event of the stay (the element holds exactly one TidsfestetHendelse)."""
    hendelse = element(element(parent, _PO + "OpplysningOpphold"), _PO + "TidsfestetHendelse")
    element(hendelse, _PO + "Hendelsekode", V=code[0], DN=code[1], S=OID_HENDELSE)
    element(hendelse, _PO + "TidspunktForHendelse", V=when)
    element(hendelse, _PO + "Anslag", "true" if estimate else "false")
