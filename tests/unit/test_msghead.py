"""MsgHead 1.2 + Dialogmelding 1.1 from a kartlegging: valid in lxml and xmlschema, carrying the mandatory
content, surviving any text, and a validator that refuses what a receiver would refuse (T01/T02).

Self-contained: the event and the addresses are built from the dataclasses here, not from fixtures or
routing, so a failure points at msghead/dialogmelding/notat/validation and nothing else."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.domain.kartlegging import (
    TOPICS,
    Assessment,
    Consent,
    Contact,
    Diagnosis,
    Kartlegging,
    Patient,
    Performer,
    Sender,
    Topic,
)
from gateway.domain.registry import Address, Party
from gateway.errors import Parked, Reason
from gateway.messages.dialogmelding import MSG_TYPE, dialogmelding_tree
from gateway.messages.msghead import serialize
from gateway.messages.note import render_note
from gateway.messages.validation import (
    PAYLOAD_FORMATS,
    SCHEMAS,
    MessageInvalid,
    explain_with_xmlschema,
    schema,
    validate_message,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "samples" / "dialogmelding-1.1"
BROKEN_SAMPLE = "helsenorge_MetadataTestsDialogmelding11.xml"
NS = {"mh": "http://www.kith.no/xmlstds/msghead/2006-05-24", "dia": "http://www.kith.no/xmlstds/dialog/2013-01-23",
      "fk1": "http://www.kith.no/xmlstds/felleskomponent1"}
NOW = datetime(2026, 2, 10, 9, 30, tzinfo=UTC)
MSG_ID = "5b0c3f1e-8d7a-4c55-9a8e-2f1d3c4b5a69"


def synthetic_fnr(birth: date, *, d_nummer: bool = False) -> str:
    """A synthetic test number (month + 80, never a real person's) with valid mod-11 check digits."""
    day = birth.day + (40 if d_nummer else 0)
    for individual in range(100, 500):
        base = [int(c) for c in f"{day:02d}{birth.month + 80:02d}{birth.year % 100:02d}{individual:03d}"]
        k1 = 11 - sum(d * w for d, w in zip(base, (3, 7, 6, 1, 8, 9, 4, 5, 2), strict=True)) % 11
        k1 = 0 if k1 == 11 else k1
        k2 = 11 - sum(d * w for d, w in zip([*base, k1], (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11
        k2 = 0 if k2 == 11 else k2
        if k1 < 10 and k2 < 10:
            return "".join(map(str, [*base, k1, k2]))
    raise AssertionError("no number found")


FNR = synthetic_fnr(date(1961, 5, 17))
DNR = synthetic_fnr(date(1970, 3, 4), d_nummer=True)

EVENT = Kartlegging(
    event_id="0b7e6a51-2f7c-4d0e-9a3b-6c1d2e3f4a5b",
    occurred_at=datetime(2026, 2, 9, 14, 0, tzinfo=UTC),
    samhandlingspunkt=2,
    sender=Sender(8200601, "Haukeland – Kreftavdelingen",
                  Contact("Kari Nordmann", "forløpskoordinator", "+47 55 97 00 00")),
    patient=Patient(FNR, "Åse", "Ødegård", "4601", 8200901),
    diagnosis=Diagnosis("C50.9", "Brystkreft, uspesifisert", date(2026, 1, 12)),
    assessment=Assessment(
        procedure_code="WMFG10",
        performed_on=date(2026, 2, 9),
        performed_by=Performer("Kari Nordmann", "kreftsykepleier"),
        distress_score=6,
        topics=(
            Topic("familie_nettverk", True, "Bor alene, datter i Oslo."),
            Topic("jobb_skole", False, None),
            Topic("ernaering", True, "Nedsatt matlyst, vekttap 4 kg."),
            Topic("psykisk_helse", True, None),
        ),
        what_matters="Å kunne være hjemme med familien og gå tur med hunden.",
        follow_up="Kommunen kontakter pasienten innen to uker.",
    ),
    consent=Consent(objects_to_sharing=False, share_with_nav=False),
)

HOSPITAL = Party(8200600, "Haukeland universitetssjukehus", "organisation")
KREFTAVDELINGEN = Party(8200601, "Kreftavdelingen", "department", parent_herid=8200600)
KOMMUNE = Party(8200100, "Bergen kommune", "organisation", kommunenummer="4601")
TILDELING = Party(8200101, "Etat for tjenestetildeling", "service", parent_herid=8200100,
                  service_type="forvaltningsenhet")
LEGESENTER = Party(8200900, "Fjellsiden legesenter", "organisation")
FASTLEGE = Party(8200901, "Rita Lin", "person", parent_herid=8200900, given_name="Rita", family_name="Lin",
                 hpr="9144889")
SENDER = Address(HOSPITAL, KREFTAVDELINGEN)
RECEIVERS = {"kommune": Address(KOMMUNE, TILDELING), "fastlege": Address(LEGESENTER, FASTLEGE)}


def build(event: Kartlegging = EVENT, role: str = "kommune") -> bytes:
    return serialize(dialogmelding_tree(event, SENDER, RECEIVERS[role], role, MSG_ID, NOW, render_note(event, role)))


def note_of(xml: bytes) -> str:
    return etree.fromstring(xml).findtext(".//dia:TekstNotatInnhold", namespaces=NS)


def both_valid(xml: bytes) -> None:
    validate_message(xml)
    assert explain_with_xmlschema(xml) == []


def with_texts(text: str) -> Kartlegging:
    return replace(EVENT, assessment=replace(EVENT.assessment, what_matters=text, follow_up=text,
                                             topics=(Topic("oral_helse", True, text),)))


# --- built messages ------------------------------------------------------------------------------

@pytest.mark.parametrize("role", sorted(RECEIVERS))
def test_built_message_is_valid_in_both_validators(role: str) -> None:
    xml = build(role=role)
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    both_valid(xml)


@pytest.mark.parametrize("role", sorted(RECEIVERS))
def test_note_carries_the_mandatory_content(role: str) -> None:
    text = note_of(build(role=role))
    e = EVENT
    for needle in (e.sender.name, e.sender.contact.name, e.sender.contact.role, e.sender.contact.phone,
                   e.diagnosis.text, e.diagnosis.icd10, "diagnostisert 12.01.2026", "WMFG10",
                   "Kartlegging utført 09.02.2026", "6 av 10", "Hva er viktig for deg: " + e.assessment.what_matters,
                   e.assessment.follow_up):
        assert needle in text, needle
    for topic in e.assessment.topics:
        assert (TOPICS[topic.topic] in text) == topic.need
        if topic.note:
            assert (topic.note in text) == topic.need


def test_note_without_distress_score_or_needs_says_so() -> None:
    event = replace(EVENT, assessment=replace(EVENT.assessment, distress_score=None, what_matters=None,
                                              topics=(Topic("jobb_skole", False, "ikke relevant"),)))
    text = render_note(event, "kommune")
    assert "Termometer" not in text and "Hva er viktig" not in text and "ikke relevant" not in text
    assert "Ingen behov ut over behandlingen ble registrert." in text


def test_template_folder_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "notat.txt.j2").write_text(
        "{{ e.sender.name }} {{ e.sender.contact.name }} {{ e.sender.contact.phone }} {{ e.diagnosis.text }} "
        "{{ e.diagnosis.icd10 }} {{ e.assessment.performed_on.strftime('%d.%m.%Y') }} "
        "{{ e.assessment.procedure_code }} – egen mal\n", encoding="utf-8")
    assert render_note(EVENT, "kommune", template_dir=tmp_path).endswith("– egen mal\n")
    (tmp_path / "notat_fastlege.txt.j2").write_text("{{ e.sender.name }} uten resten\n", encoding="utf-8")
    with pytest.raises(Parked) as info:
        render_note(EVENT, "fastlege", template_dir=tmp_path)
    assert info.value.code == Reason.TEMPLATE_INCOMPLETE
    assert FNR not in info.value.reason and "Ødegård" not in info.value.reason


def test_a_missing_template_variable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notat.txt.j2").write_text("{{ e.sender.no_such_field }}\n", encoding="utf-8")
    with pytest.raises(Exception, match="no_such_field"):
        render_note(EVENT, "kommune", template_dir=tmp_path)


def test_msghead_envelope() -> None:
    root = etree.fromstring(build(role="fastlege"))
    info = root.find("mh:MsgInfo", NS)
    assert (info.find("mh:Type", NS).get("V"), info.find("mh:Type", NS).get("DN")) == MSG_TYPE
    assert info.findtext("mh:MIGversion", namespaces=NS) == "v1.2 2006-05-24"
    # Issue 13: Norwegian local time with its offset, as the official samples carry it
    assert info.findtext("mh:GenDate", namespaces=NS) == "2026-02-10T10:30:00+01:00"
    assert info.findtext("mh:MsgId", namespaces=NS) == MSG_ID
    sender = info.find("mh:Sender/mh:Organisation", NS)
    assert sender.findtext("mh:Ident/mh:Id", namespaces=NS) == "8200600"
    assert sender.find("mh:Ident/mh:TypeId", NS).attrib == {"V": "HER", "DN": "HER-id",
                                                            "S": "2.16.578.1.12.4.1.1.9051"}
    assert sender.findtext("mh:Organisation/mh:OrganisationName", namespaces=NS) == "Kreftavdelingen"
    assert sender.findtext("mh:Organisation/mh:Ident/mh:Id", namespaces=NS) == "8200601"
    gp = info.find("mh:Receiver/mh:Organisation/mh:HealthcareProfessional", NS)
    assert [etree.QName(c).localname for c in gp] == ["RoleToPatient", "FamilyName", "GivenName", "Ident", "Ident"]
    assert gp.find("mh:RoleToPatient", NS).attrib == {"V": "6", "DN": "Fastlege", "S": "2.16.578.1.12.4.1.1.9034"}
    assert gp.xpath("mh:Ident/mh:Id/text()", namespaces=NS) == ["8200901", "9144889"]
    patient = info.find("mh:Patient", NS)
    assert [patient.findtext("mh:FamilyName", namespaces=NS), patient.findtext("mh:GivenName", namespaces=NS)] == [
        "Ødegård", "Åse"]
    assert patient.findtext("mh:Ident/mh:Id", namespaces=NS) == FNR
    assert patient.find("mh:Ident/mh:TypeId", NS).attrib == {"V": "FNR", "DN": "Fødselsnummer",
                                                             "S": "2.16.578.1.12.4.1.1.8116"}
    ref_doc = root.find("mh:Document/mh:RefDoc", NS)
    assert ref_doc.find("mh:MsgType", NS).get("V") == "XML"
    # the document's own date: when the kartlegging was completed (occurred_at), not GenDate
    assert ref_doc.find("mh:IssueDate", NS).get("V") == "2026-02-09T15:00:00+01:00"


def test_service_receiver_is_a_sub_organisation_without_role() -> None:
    org = etree.fromstring(build(role="kommune")).find("mh:MsgInfo/mh:Receiver/mh:Organisation", NS)
    assert org.findtext("mh:Ident/mh:Id", namespaces=NS) == "8200100"
    assert org.findtext("mh:Organisation/mh:Ident/mh:Id", namespaces=NS) == "8200101"
    assert org.find("mh:HealthcareProfessional", NS) is None
    assert not org.xpath(".//mh:RoleToPatient", namespaces=NS)


def test_d_nummer_is_typed_dnr() -> None:
    xml = build(replace(EVENT, patient=replace(EVENT.patient, fnr=DNR)))
    both_valid(xml)
    type_id = etree.fromstring(xml).find("mh:MsgInfo/mh:Patient/mh:Ident/mh:TypeId", NS)
    assert (type_id.get("V"), type_id.get("DN")) == ("DNR", "D-nummer")


def test_dialogmelding_notat() -> None:
    notat = etree.fromstring(build()).find(".//dia:Dialogmelding/dia:Notat", NS)
    assert [etree.QName(c).localname for c in notat] == ["TemaKodet", "Tema", "TekstNotatInnhold", "DatoNotat",
                                                        "RollerRelatertNotat", "RollerRelatertNotat"]
    assert notat.find("dia:TemaKodet", NS).attrib == {"V": "6", "DN": "Henvendelse om pasient",
                                                      "S": "2.16.578.1.12.4.1.1.7322"}
    assert notat.findtext("dia:Tema", namespaces=NS) == "Behovskartlegging samhandlingspunkt 2 – Pakkeforløp hjem"
    assert notat.findtext("dia:DatoNotat", namespaces=NS) == "2026-02-09"
    roller = notat.find("dia:RollerRelatertNotat", NS)
    assert roller.find("dia:RoleToPatient", NS).attrib == {"V": "17", "DN": "Forløpskoordinator kreft",
                                                           "S": "2.16.578.1.12.4.1.1.9034"}
    hp = roller.find("dia:HealthcareProfessional", NS)
    assert (hp.findtext("dia:FamilyName", namespaces=NS), hp.findtext("dia:GivenName", namespaces=NS)) == (
        "Nordmann", "Kari")
    assert hp.find("dia:TeleCom/fk1:TeleAddress", NS).get("V") == "tel:+4755970000"


def test_norwegian_letters_survive_as_utf8() -> None:
    letters = "æøå ÆØÅ"
    xml = build(with_texts(f"Pasienten ønsker {letters}"))
    both_valid(xml)
    assert letters.encode("utf-8") in xml  # as UTF-8 bytes, not as character references
    assert note_of(xml).count(f"Pasienten ønsker {letters}") == 3
    assert etree.fromstring(xml).findtext("mh:MsgInfo/mh:Patient/mh:FamilyName", namespaces=NS) == "Ødegård"


def test_markup_in_text_is_escaped() -> None:
    nasty = 'a < b && c > d ]]> <TekstNotatInnhold/> <![CDATA[x]]> "q" \'a\' &amp;'
    xml = build(with_texts(nasty))
    both_valid(xml)
    assert note_of(xml).count(nasty) == 3
    assert b"<TekstNotatInnhold/>" not in xml and b"]]>" not in xml and b"<![CDATA[" not in xml
    assert b"&lt;TekstNotatInnhold/&gt;" in xml and b"]]&gt;" in xml and b"&amp;&amp;" in xml


def test_characters_xml_cannot_carry_are_replaced() -> None:
    xml = build(with_texts("bjelle\x07 vtab\x0b nul\x00 surrogat\ud800 ikke-tegn\ufffe slutt"))
    both_valid(xml)
    assert "bjelle\ufffd vtab\ufffd nul\ufffd surrogat\ufffd ikke-tegn\ufffd slutt" in note_of(xml)


# --- the validator ---------------------------------------------------------------------------------

def _remove(xml: bytes, path: str) -> bytes:
    root = etree.fromstring(xml)
    victim = root.find(path, NS)
    victim.getparent().remove(victim)
    return etree.tostring(root)


@pytest.mark.parametrize(("removed", "path"), [
    ("mh:MsgInfo/mh:MsgId", "/MsgHead/MsgInfo/Sender"),
    ("mh:MsgInfo/mh:Sender/mh:Organisation/mh:Ident", "/MsgHead/MsgInfo/Sender/Organisation/Organisation"),
    (".//dia:Notat/dia:TemaKodet", "/MsgHead/Document/RefDoc/Content/Dialogmelding/Notat/Tema"),
])
def test_tampered_message_is_t02_with_a_readable_path(removed: str, path: str) -> None:
    xml = _remove(build(), removed)
    with pytest.raises(MessageInvalid) as info:
        validate_message(xml)
    assert info.value.code == "T02"
    assert info.value.path == path
    assert isinstance(info.value.line, int) and info.value.line > 0
    assert explain_with_xmlschema(xml)  # the second opinion agrees


def test_not_well_formed_is_t01_with_a_line() -> None:
    with pytest.raises(MessageInvalid) as info:
        validate_message(b"<MsgHead>\n<MsgInfo>\n</MsgHead>")
    assert info.value.code == "T01"
    assert info.value.line == 3
    for junk in (b"", b"not xml", build()[:-20], "<a>ø</a>".encode("latin-1")):
        with pytest.raises(MessageInvalid) as info:
            validate_message(junk)
        assert info.value.code == "T01"


BILLION_LAUGHS = ("<?xml version=\"1.0\"?>\n<!DOCTYPE MsgHead [<!ENTITY lol \"lol\">"
                  + "".join(f"<!ENTITY lol{i + 1} \"{('&lol' + (str(i) if i else '') + ';') * 10}\">" for i in range(9))
                  + "]>\n<MsgHead xmlns=\"http://www.kith.no/xmlstds/msghead/2006-05-24\">&lol9;</MsgHead>")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_billion_laughs_is_refused_without_expansion(encoding: str) -> None:
    bomb = BILLION_LAUGHS.replace('version="1.0"?>', f'version="1.0" encoding="{encoding}"?>').encode(encoding)
    with pytest.raises(MessageInvalid) as info:
        validate_message(bomb)
    assert info.value.code == "T01"
    assert "lollol" not in str(info.value)
    assert explain_with_xmlschema(bomb)[0].startswith("T01")


def test_external_entities_are_never_read() -> None:
    xxe = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24">&e;</MsgHead>"""
    with pytest.raises(MessageInvalid) as info:
        validate_message(xxe)
    assert info.value.code == "T01" and "root:" not in str(info.value)


def test_any_doctype_is_refused_in_any_encoding() -> None:
    for encoding in ("utf-8", "utf-16"):
        xml = f'<?xml version="1.0" encoding="{encoding}"?><!-- c --><!DOCTYPE MsgHead><MsgHead/>'.encode(encoding)
        with pytest.raises(MessageInvalid, match="DOCTYPE") as info:
            validate_message(xml)
        assert info.value.code == "T01"


def test_unknown_payload_is_t10() -> None:
    root = etree.fromstring(build())
    content = root.find(".//mh:Content", NS)
    content.remove(content[0])
    etree.SubElement(content, "{urn:example:not-a-standard}Payload")
    with pytest.raises(MessageInvalid) as info:
        validate_message(etree.tostring(root))
    assert info.value.code == "T10"


def test_every_bundle_namespace_picks_its_bundle() -> None:
    """PAYLOAD_FORMATS is written out by hand; it must say what the bundle files import."""
    xs = "{http://www.w3.org/2001/XMLSchema}"
    not_payload = {NS["mh"], "http://www.kith.no/xmlstds/base64container"}
    for name, relative in SCHEMAS.items():
        if not relative.startswith("bundles/"):
            continue
        imported = {i.get("namespace") for i in etree.parse(str(ROOT / "schemas" / relative)).iter(xs + "import")}
        assert imported - not_payload == {ns for ns, fmt in PAYLOAD_FORMATS.items() if fmt == name}
        assert schema(name) is schema(name)  # compiled once


def test_schema_folder_can_be_overridden(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    assert validate_message(build(), tmp_path / "schemas") is not None
    with pytest.raises(OSError):
        validate_message(build(), tmp_path / "nowhere")


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.xml")), ids=lambda p: p.name)
def test_official_dialogmelding_samples(path: Path) -> None:
    xml = path.read_bytes()
    if path.name == BROKEN_SAMPLE:
        with pytest.raises(MessageInvalid) as info:
            validate_message(xml)
        assert info.value.code == "T02"
        assert info.value.path == "/MsgHead/Document[2]/RefDoc/Content/Base64Container"
        assert re.search("schemaLocation", " ".join(explain_with_xmlschema(xml)))
    else:
        both_valid(xml)


def test_all_five_samples_are_here() -> None:
    assert len(list(SAMPLES.glob("*.xml"))) == 5


# --- any text ------------------------------------------------------------------------------------

PRINTABLE = st.text(st.characters(exclude_categories=("Cs", "Cc", "Co", "Cn")) | st.sampled_from("æøåÆØÅ\n\t<&>]"),
                    min_size=1, max_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(what_matters=PRINTABLE, note=PRINTABLE, follow_up=PRINTABLE, contact=PRINTABLE)
def test_any_printable_text_gives_a_valid_message(what_matters: str, note: str, follow_up: str,
                                                  contact: str) -> None:
    event = replace(
        EVENT,
        sender=replace(EVENT.sender, contact=replace(EVENT.sender.contact, name=contact)),
        assessment=replace(EVENT.assessment, what_matters=what_matters, follow_up=follow_up,
                           topics=(Topic("psykisk_helse", True, note),)),
    )
    for role in RECEIVERS:
        xml = build(event, role)
        both_valid(xml)
        text = note_of(xml)
        for value in (what_matters, note, follow_up, contact):
            assert value.replace("\r", "\n") in text.replace("\r", "\n") or not value.strip()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_at_all_gives_a_valid_message(text: str) -> None:
    validate_message(build(with_texts(text or "x")))


def test_the_fast_path_of_xml_text_keeps_only_legal_characters() -> None:
    """xml_text trusts str.isprintable(): every printable character must be legal XML 1.0."""
    from gateway.messages.msghead import _NOT_XML

    assert not [hex(c) for c in range(0x110000) if chr(c).isprintable() and _NOT_XML.match(chr(c))]
