"""Conformance: every message type the gateway emits, built from varied events, is valid against the
official schemas in both lxml and xmlschema, and the two validators agree on broken messages too."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.domain.kartlegging import TOPICS, InpatientStay, Kartlegging, Topic, parse_event
from gateway.domain.registry import load_register
from gateway.errors import Parked, Reason
from gateway.messages.apprec import AppRecError, Status, build_apprec
from gateway.messages.validation import MessageInvalid, explain_with_xmlschema, validate_message
from gateway.pipeline import Folders, build_meldinger
from gateway.routing.route import route

ROOT = Path(__file__).resolve().parents[2]
REGISTER = load_register(ROOT / "fixtures" / "register.json")
BASE = parse_event((ROOT / "fixtures" / "events" / "02-sp2-trondheim-lungekreft.json").read_bytes())
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)

NORSK = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzæøåÆØÅ ÉéüÜ.,;:-–()/%&<>\"'\n0123456789"),
                min_size=1, max_size=400)
LONG = st.text(st.sampled_from("Ærlig talt, pasienten ønsker å bo hjemme så lenge som mulig. <&> "), min_size=5000,
               max_size=20000)
FREE_TEXT = st.one_of(st.none(), NORSK, LONG)


@st.composite
def kartlegginger(draw: st.DrawFn) -> Kartlegging:
    codes = draw(st.lists(st.sampled_from(sorted(TOPICS)), unique=True, max_size=13))
    topics = tuple(Topic(c, draw(st.booleans()), draw(FREE_TEXT)) for c in codes)
    contact = replace(BASE.sender.contact, name=draw(NORSK.filter(str.strip)), role=draw(NORSK.filter(str.strip)))
    stay = draw(st.one_of(st.none(), st.builds(InpatientStay, st.dates(date(2026, 2, 1), date(2026, 3, 1)))))
    return replace(
        BASE,
        inpatient_stay=stay,
        sender=replace(BASE.sender, name=draw(NORSK.filter(str.strip)), contact=contact),
        diagnosis=replace(BASE.diagnosis, text=draw(NORSK.filter(str.strip))),
        assessment=replace(
            BASE.assessment,
            distress_score=draw(st.one_of(st.none(), st.integers(0, 10))),
            topics=topics,
            what_matters=draw(FREE_TEXT),
            follow_up=draw(FREE_TEXT),
            performed_on=draw(st.dates(date(2026, 3, 1), date(2026, 8, 31))),
        ),
    )


def _both_valid(xml: bytes) -> None:
    validate_message(xml)
    assert explain_with_xmlschema(xml) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kartlegginger())
def test_every_emitted_type_is_valid_in_both_validators(event: Kartlegging) -> None:
    meldinger = build_meldinger(event, route(event, REGISTER), NOW)
    # Trondheim's own rule: saksbehandling gets PLO, and only while the patient is admitted (issue 13)
    types = {"DIALOG_HELSEFAGLIG", "HELSEOPPL_SOKNAD"} if event.inpatient_stay else {"DIALOG_HELSEFAGLIG"}
    assert {m.msg_type for m in meldinger} == types
    for melding in meldinger:
        _both_valid(melding.xml)
    for version in ("1.0", "1.1"):
        _both_valid(build_apprec(meldinger[0].xml, Status.AVVIST, (AppRecError("X99", "Annen feil"),),
                                 version=version))  # type: ignore[arg-type]


def test_all_thirteen_topics_at_once() -> None:
    event = replace(BASE, assessment=replace(BASE.assessment, topics=tuple(
        Topic(code, True, f"Behov: {label} – æøå") for code, label in TOPICS.items())))
    for melding in build_meldinger(event, route(event, REGISTER), NOW):
        _both_valid(melding.xml)
        for label in TOPICS.values():
            assert label.encode() in melding.xml


def _validators_agree(xml: bytes) -> bool:
    try:
        validate_message(xml)
        lxml_ok = True
    except MessageInvalid:
        lxml_ok = False
    return lxml_ok == (explain_with_xmlschema(xml) == [])


@pytest.mark.parametrize("seed", range(25))
def test_validators_agree_on_broken_messages(seed: int) -> None:
    rng = random.Random(seed)
    melding = rng.choice(build_meldinger(BASE, route(BASE, REGISTER), NOW))
    root = etree.fromstring(melding.xml)
    victims = [el for el in root.iter() if el.getparent() is not None]
    victim = rng.choice(victims)
    if rng.random() < 0.5 or victim.tag == CONTENT:
        victim.getparent().remove(victim)
    else:
        victim.addnext(etree.Element(victim.tag))  # a duplicate where the schema may allow only one
    assert _validators_agree(etree.tostring(root))


CONTENT = "{http://www.kith.no/xmlstds/msghead/2006-05-24}Content"


def test_known_disagreement_a_second_content_element() -> None:
    """RefDoc allows one Content (a choice of FileReference or Content). libxml2 rejects a second one;
    xmlschema 4.3 accepts it. lxml is the gate, so such a message never leaves; this test notices the
    day the two libraries change their minds."""
    root = etree.fromstring(build_meldinger(BASE, route(BASE, REGISTER), NOW)[0].xml)
    root.find(f".//{CONTENT}").addnext(etree.Element(CONTENT))
    xml = etree.tostring(root)
    with pytest.raises(MessageInvalid) as info:
        validate_message(xml)
    assert info.value.code == "T02" and "Content" in info.value.message
    assert explain_with_xmlschema(xml) == []


def test_a_template_that_drops_the_mandatory_block_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notat.txt.j2").write_text(
        "Kartlegging {{ e.assessment.performed_on.strftime('%d.%m.%Y') }} ({{ e.assessment.procedure_code }})\n"
        "{{ e.sender.name }}: {{ e.sender.contact.name }}\n{{ e.diagnosis.text }} {{ e.diagnosis.icd10 }}\n",
        encoding="utf-8")
    with pytest.raises(Parked) as info:
        build_meldinger(BASE, route(BASE, REGISTER), NOW, Folders(templates=str(tmp_path)))
    assert info.value.code == Reason.TEMPLATE_INCOMPLETE
    assert "phone" in info.value.reason and "contact person" not in info.value.reason
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    (fixed / "notat.txt.j2").write_text((tmp_path / "notat.txt.j2").read_text() + "{{ e.sender.contact.phone }}\n",
                                        encoding="utf-8")
    assert len(build_meldinger(BASE, route(BASE, REGISTER), NOW, Folders(templates=str(fixed)))) == 2


PLO_SAMPLES = sorted((ROOT / "fixtures" / "samples" / "plo-1.6").glob("*.xml"))


@pytest.mark.parametrize("path", PLO_SAMPLES, ids=lambda p: p.name)
def test_official_plo_samples_validate_in_both(path: Path) -> None:
    _both_valid(path.read_bytes())
