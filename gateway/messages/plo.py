"""PLO 1.6 ``HelseopplysningerVedSoknad`` (``HELSEOPPL_SOKNAD``) inside MsgHead 1.2, for the
kommune's saksbehandling service (and any forvaltningsenhet that reads PLO but not Dialogmelding).

Mapping of the kartlegging onto PLO (nothing is dropped; what PLO has no field for goes in the text):

| kartlegging | PLO 1.6 |
|---|---|
| sender unit, HER-id, phone, contact person | TilknyttetEnhet/Kontaktenhet (+ Merknad with the contact person) |
| samhandlingspunkt, WMFG10 | TypeInnholdIMelding (9140: 2 "Oppdaterte opplysninger") + Merknad |
| performed_on | OpplysningOpphold/TidsfestetHendelse (BeskrivelseAvHendelse, TidspunktForHendelse) |
| diagnosis (ICD-10) | InfoMedisinskDiagnose/MedisinskDiagnose (Diagnosekode, OID 7110) |
| the note text (topics, distress, what matters, follow-up, contact) | Journaltekst (9145: 1 "Pasientens status") |
| follow_up | Journaltekst (9145: 2 "Antatt forløp") |
| topics with a need | TjenesteBehov (BetegnelseTjeneste = topic, BeskrivelseAvTjeneste = note) |

The contact person goes in Merknad and the text, not in KontaktpersonHelsepersonell: that element
requires an Ident (HPR number) that the event does not carry.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lxml import etree

from gateway.domain.kartlegging import Kartlegging
from gateway.domain.registry import Address
from gateway.messages.msghead import OID_ORG_ID, element, msghead

P5_NS = "http://www.kith.no/xmlstds/po/HelseopplysningerVedSoknad/2012-04-01"
PO_NS = "http://www.kith.no/xmlstds/po/poKomponent/2012-04-01"
FK1_NS = "http://www.kith.no/xmlstds/felleskomponent1"
EPJ2_NS = "http://www.kith.no/xmlstds/epj/epj2/2008-02-20"
M1_NS = "http://www.kith.no/xmlstds/epj/meta/2008-02-20"
MSG_TYPE = ("HELSEOPPL_SOKNAD", "Helseopplysninger")
OID_ICD10 = "2.16.578.1.12.4.1.1.7110"
OID_TYPE_INNHOLD = "2.16.578.1.12.4.1.1.9140"
OID_OVERSKRIFT = "2.16.578.1.12.4.1.1.9145"
GENERELT_JOURNALNOTAT_TYPE = "2.16.578.1.12.4.1.6.13.11009.0"  # fixed by EPJ-journalnotat-mv.xsd

_PO, _FK1, _EPJ2, _M1 = (f"{{{ns}}}" for ns in (PO_NS, FK1_NS, EPJ2_NS, M1_NS))


def helseopplysninger_tree(
    event: Kartlegging, sender: Address, receiver: Address, receiver_role: str, msg_id: str,
    generated_at: datetime, note_text: str,
) -> etree._Element:
    root, content = msghead(
        msg_type=MSG_TYPE, msg_id=msg_id, generated_at=generated_at, sender=sender, receiver=receiver,
        patient=(event.patient.fnr, event.patient.given_name, event.patient.family_name),
    )
    doc = etree.SubElement(content, f"{{{P5_NS}}}HelseopplysningerVedSoknad",
                           nsmap={"p5": P5_NS, None: PO_NS, "fk1": FK1_NS, "epj2": EPJ2_NS, "m1": M1_NS})
    element(element(doc, _PO + "InformasjonOmForsendelsen"), _PO + "Forsendelsesstatus", V="N", DN="Ny")

    contact = event.sender.contact
    enhet = element(doc, _PO + "TilknyttetEnhet")
    kontaktenhet = element(enhet, _PO + "Kontaktenhet")
    element(kontaktenhet, _FK1 + "OrganisationName", event.sender.name)
    ident = element(kontaktenhet, _FK1 + "Ident")
    element(ident, _FK1 + "Id", str(event.sender.herid))
    element(ident, _FK1 + "TypeId", V="HER", DN="HER-id", S=OID_ORG_ID)
    element(element(kontaktenhet, _FK1 + "TeleCom"), _FK1 + "TeleAddress", V="tel:" + "".join(contact.phone.split()))
    element(enhet, _PO + "Merknad", f"Kontaktperson: {contact.name} ({contact.role}), telefon {contact.phone}")

    innhold = element(doc, _PO + "TypeInnholdIMelding")
    element(innhold, _PO + "TypeInnhold", V="2", DN="Oppdaterte opplysninger", S=OID_TYPE_INNHOLD)
    code = f" ({event.assessment.procedure_code})" if event.assessment.procedure_code else ""
    element(innhold, _PO + "Merknad",
        f"Resultat av behovskartlegging{code}, samhandlingspunkt {event.samhandlingspunkt}, Pakkeforløp hjem")

    hendelse = element(element(doc, _PO + "OpplysningOpphold"), _PO + "TidsfestetHendelse")
    element(hendelse, _PO + "BeskrivelseAvHendelse", f"Behovskartlegging gjennomført{code}")
    element(hendelse, _PO + "TidspunktForHendelse", V=event.assessment.performed_on.isoformat())
    element(hendelse, _PO + "Anslag", "false")

    diagnose = element(element(doc, _PO + "InfoMedisinskDiagnose"), _PO + "MedisinskDiagnose")
    element(diagnose, _PO + "Hoveddiagnose", "true")
    element(diagnose, _PO + "Diagnosekode", V=event.diagnosis.icd10, DN=event.diagnosis.text, S=OID_ICD10)
    element(diagnose, _PO + "DiagnoseBeskrivelse",
        f"{event.diagnosis.text}, diagnostisert {event.diagnosis.diagnosed_on.strftime('%d.%m.%Y')}")

    notat = etree.SubElement(element(doc, _PO + "MedisinskfagligeOpplysninger"), _EPJ2 + "GenereltJournalnotat", {
        _M1 + "basiskomponenttype": "EPJ dokument", _M1 + "komponenttype": GENERELT_JOURNALNOTAT_TYPE,
        _M1 + "informasjonskategori": "Andre notater", "komponentID": str(uuid.uuid5(uuid.UUID(msg_id), "notat")),
    })
    status = element(notat, _EPJ2 + "Journaltekst")
    element(status, _EPJ2 + "Overskriftskode", V="1", DN="Pasientens status", S=OID_OVERSKRIFT)
    element(status, _EPJ2 + "Notat", note_text)
    if event.assessment.follow_up:
        forlop = element(notat, _EPJ2 + "Journaltekst")
        element(forlop, _EPJ2 + "Overskriftskode", V="2", DN="Antatt forløp", S=OID_OVERSKRIFT)
        element(forlop, _EPJ2 + "Notat", event.assessment.follow_up)

    for topic in event.assessment.topics:
        if topic.need:
            behov = element(doc, _PO + "TjenesteBehov")
            element(behov, _PO + "BetegnelseTjeneste", topic.label)
            if topic.note:
                element(behov, _PO + "BeskrivelseAvTjeneste", topic.note)
    return root
