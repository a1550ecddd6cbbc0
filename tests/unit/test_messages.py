"""Built messages validate with both lxml and xmlschema, carry the mandatory content, and survive any text."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.domain.kartlegging import InpatientStay, Kartlegging, Topic, parse_event
from gateway.domain.registry import load_register
from gateway.messages.validation import MessageInvalid, explain_with_xmlschema, validate_message
from gateway.pipeline import build_meldinger
from gateway.routing.route import route

ROOT = Path(__file__).resolve().parents[2]
REGISTER = load_register(ROOT / "fixtures" / "register.json")
EVENT = parse_event((ROOT / "fixtures" / "events" / "01-sp1-bergen-brystkreft.json").read_bytes())
NOW = datetime(2026, 2, 3, 15, 0, tzinfo=UTC)
NS = {"mh": "http://www.kith.no/xmlstds/msghead/2006-05-24", "dia": "http://www.kith.no/xmlstds/dialog/2013-01-23",
      "epj2": "http://www.kith.no/xmlstds/epj/epj2/2008-02-20",
      "po": "http://www.kith.no/xmlstds/po/poKomponent/2012-04-01"}
SAMPLES = ROOT / "fixtures" / "samples" / "dialogmelding-1.1"
BROKEN_SAMPLE = "helsenorge_MetadataTestsDialogmelding11.xml"


ADMITTED = replace(EVENT, inpatient_stay=InpatientStay(date(2026, 1, 30)))


def build(event: Kartlegging = EVENT) -> list[bytes]:
    """Dialogmelding to the forvaltningsenhet and to the fastlege; with an inpatient stay (``ADMITTED``) the
    forvaltningsenhet, which reads PLO, gets PLO Helseopplysninger instead."""
    return [m.xml for m in build_meldinger(event, route(event, REGISTER), NOW)]


def note(xml: bytes) -> str:
    root = etree.fromstring(xml)
    dialog = root.findtext(".//dia:TekstNotatInnhold", namespaces=NS)
    return dialog if dialog is not None else root.findtext(".//epj2:Journaltekst/epj2:Notat", namespaces=NS)


def test_messages_validate_with_both_validators() -> None:
    for xml in build() + build(ADMITTED):
        validate_message(xml)
        assert explain_with_xmlschema(xml) == []


@pytest.mark.parametrize(("admitted", "index"), [(False, 0), (True, 0), (False, 1)],
                         ids=["forvaltningsenhet", "forvaltningsenhet-plo", "fastlege"])
def test_note_carries_the_mandatory_content(admitted: bool, index: int) -> None:
    text = note(build(ADMITTED if admitted else EVENT)[index])
    e = EVENT
    for needle in (e.sender.name, e.sender.contact.name, e.sender.contact.phone, e.sender.contact.role,
                   e.diagnosis.text, e.diagnosis.icd10, "WMFG10", "03.02.2026", "6 av 10",
                   e.assessment.what_matters, e.assessment.follow_up):
        assert needle in text
    for topic in e.assessment.topics:
        assert (topic.label in text) == topic.need
        if topic.need and topic.note:
            assert topic.note in text


def test_addresses_and_patient_in_msghead() -> None:
    fvt, gp = (etree.fromstring(x) for x in build())
    plo = etree.fromstring(build(ADMITTED)[0])
    assert plo.find("mh:MsgInfo/mh:Type", NS).get("V") == "HELSEOPPL_SOKNAD"
    assert plo.xpath("mh:MsgInfo/mh:Receiver/mh:Organisation/mh:Organisation/mh:Ident/mh:Id/text()",
                     namespaces=NS) == ["8100101"]
    assert fvt.xpath("mh:MsgInfo/mh:Receiver/mh:Organisation/mh:Ident/mh:Id/text()", namespaces=NS) == ["8100100"]
    assert fvt.xpath("mh:MsgInfo/mh:Receiver/mh:Organisation/mh:Organisation/mh:Ident/mh:Id/text()",
                     namespaces=NS) == ["8100101"]
    assert gp.findtext("mh:MsgInfo/mh:Receiver/mh:Organisation/mh:HealthcareProfessional/mh:FamilyName",
                       namespaces=NS) == "Lin"
    assert gp.find("mh:MsgInfo/mh:Patient/mh:Ident/mh:TypeId", NS).get("V") == "FNR"
    assert gp.findtext("mh:MsgInfo/mh:Patient/mh:Ident/mh:Id", namespaces=NS) == EVENT.patient.fnr
    assert gp.findtext("mh:MsgInfo/mh:Sender/mh:Organisation/mh:Organisation/mh:Ident/mh:Id",
                       namespaces=NS) == "8100601"


def test_msgid_is_stable_per_event_and_receiver() -> None:
    ids = [etree.fromstring(x).findtext("mh:MsgInfo/mh:MsgId", namespaces=NS) for x in build()]
    again = [etree.fromstring(x).findtext("mh:MsgInfo/mh:MsgId", namespaces=NS) for x in build()]
    assert ids == again and len(set(ids)) == 2


def test_d_nummer_is_typed_dnr() -> None:
    from datetime import date

    from gateway.domain.fodselsnummer import synthetic
    from gateway.domain.registry import GpAssignment

    dnr = synthetic(date(1970, 3, 4), 0, d_nummer=True)
    REGISTER.assignments[dnr] = [GpAssignment(dnr, 8100901, date(2000, 1, 1))]
    try:
        xml = build(replace(EVENT, patient=replace(EVENT.patient, fnr=dnr)))[0]
    finally:
        del REGISTER.assignments[dnr]
    assert etree.fromstring(xml).find("mh:MsgInfo/mh:Patient/mh:Ident/mh:TypeId", NS).get("V") == "DNR"


def test_xml_special_characters_and_norwegian_letters_survive() -> None:
    nasty = "Æ Ø Å æ ø å <tag> & ]]> \"quote\" 'apostrof' \u00a0 – €"
    event = replace(EVENT, assessment=replace(EVENT.assessment, what_matters=nasty,
                                              topics=(Topic("oral_helse", True, nasty),)))
    xml = build(event)[0]
    validate_message(xml)
    assert note(xml).count(nasty) == 2
    assert b"<tag>" not in xml


def test_tampered_message_is_t02_with_a_path() -> None:
    root = etree.fromstring(build()[0])
    msg_id = root.find("mh:MsgInfo/mh:MsgId", NS)
    msg_id.getparent().remove(msg_id)
    with pytest.raises(MessageInvalid) as info:
        validate_message(etree.tostring(root))
    assert info.value.code == "T02"
    assert info.value.path


def test_not_well_formed_is_t01() -> None:
    with pytest.raises(MessageInvalid) as info:
        validate_message(b"<MsgHead><MsgInfo></MsgHead>")
    assert info.value.code == "T01"


def test_entity_expansion_is_refused() -> None:
    bomb = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24">&lol2;</MsgHead>"""
    with pytest.raises(MessageInvalid) as info:
        validate_message(bomb)
    assert info.value.code == "T01"


def test_external_entity_is_not_read() -> None:
    xxe = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24">&e;</MsgHead>"""
    with pytest.raises(MessageInvalid) as info:
        validate_message(xxe)
    assert "root:" not in info.value.message


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.xml")), ids=lambda p: p.name)
def test_official_samples(path: Path) -> None:
    if path.name == BROKEN_SAMPLE:
        with pytest.raises(MessageInvalid) as info:
            validate_message(path.read_bytes())
        assert info.value.code == "T02"
        assert explain_with_xmlschema(path.read_bytes())
    else:
        validate_message(path.read_bytes())
        assert explain_with_xmlschema(path.read_bytes()) == []


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("æøåÆØÅ\n\t"),
               min_size=1, max_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, TEXT, TEXT)
def test_any_printable_text_gives_a_valid_message(what_matters: str, topic_note: str, contact: str) -> None:
    event = replace(
        EVENT,
        sender=replace(EVENT.sender, contact=replace(EVENT.sender.contact, name=contact)),
        assessment=replace(EVENT.assessment, what_matters=what_matters,
                           topics=(Topic("psykisk_helse", True, topic_note),)),
    )
    for xml in build(event):
        validate_message(xml)
        assert what_matters in note(xml) or what_matters.strip() == ""
