"""AppRec 1.0/1.1: every official sample is read; receipts we build validate and round-trip."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.domain.kartlegging import parse_event
from gateway.domain.registry import load_register
from gateway.messages.apprec import OID_ERROR, AppRecError, Status, answer, build_apprec, parse_apprec
from gateway.messages.validation import MAX_MESSAGE_BYTES, MessageInvalid, explain_with_xmlschema
from gateway.pipeline import process

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "samples"
REGISTER = load_register(ROOT / "fixtures" / "register.json")
EVENT_FILE = ROOT / "fixtures" / "events" / "01-sp1-bergen-brystkreft.json"


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("apprec-*/*.xml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_official_apprec_samples_are_read(path: Path) -> None:
    receipt = parse_apprec(path.read_bytes())
    assert receipt.version == path.parent.name.split("-")[1]
    assert receipt.original_msg_id and receipt.id
    if "avvist" in path.name:
        assert receipt.status is Status.AVVIST
        assert [e.code for e in receipt.errors] == ["E21"]
        assert receipt.errors[0].text == "Mottaker finnes ikke"


def test_leading_spaces_in_type_ids_are_trimmed() -> None:
    receipt = parse_apprec((SAMPLES / "apprec-1.0" / "ksfiks_example-avvist.xml").read_bytes())
    assert receipt.sender_herid == "258521"  # its Inst TypeId is V=" HER"


@pytest.mark.parametrize("version", ["1.0", "1.1"])
@pytest.mark.parametrize("status", list(Status))
def test_built_receipts_validate_and_round_trip(version: str, status: Status) -> None:
    outcome = process(EVENT_FILE.read_bytes(), REGISTER, datetime(2026, 2, 3, tzinfo=UTC))
    melding = outcome.meldinger[0]
    errors = () if status is Status.OK else (AppRecError("E35", "Pasienten finnes ikke i mottakersystemet", "æøå"),)
    xml = build_apprec(melding.xml, status, errors, version=version)  # type: ignore[arg-type]
    assert explain_with_xmlschema(xml) == []
    receipt = parse_apprec(xml)
    # the error's code list (S) is kept: 8223 codes are not 8221 codes
    assert (receipt.version, receipt.status) == (version, status)
    assert receipt.errors == tuple(replace(e, system=OID_ERROR) for e in errors)
    assert receipt.original_msg_id == melding.msg_id
    assert receipt.original_msg_type == "DIALOG_HELSEFAGLIG"
    # the receipt goes from the receiver back to the sender
    assert receipt.sender_herid == str(melding.to_herid)
    assert receipt.receiver_herid == str(melding.from_herid)


def test_broken_official_sample_is_answered_avvist_t02() -> None:
    broken = (SAMPLES / "dialogmelding-1.1" / "helsenorge_MetadataTestsDialogmelding11.xml").read_bytes()
    receipt = parse_apprec(answer(broken))
    assert receipt.status is Status.AVVIST
    assert [e.code for e in receipt.errors] == ["T02"]
    assert receipt.original_msg_id


@pytest.mark.parametrize("path", sorted((SAMPLES / "dialogmelding-1.1").glob("sarepta_*.xml")), ids=lambda p: p.name)
def test_valid_official_samples_are_answered_ok(path: Path) -> None:
    assert parse_apprec(answer(path.read_bytes())).status is Status.OK


def test_unreadable_message_cannot_be_answered() -> None:
    with pytest.raises(MessageInvalid) as info:
        answer(b"<MsgHead")
    assert info.value.code == "T01"


def test_apprec_parser_refuses_oversize_and_entities() -> None:
    with pytest.raises(MessageInvalid):
        parse_apprec(b"<a>" + b" " * (MAX_MESSAGE_BYTES + 1) + b"</a>")
    with pytest.raises(MessageInvalid) as info:
        parse_apprec(b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><AppRec>&x;</AppRec>')
    assert info.value.code == "T01"


def test_a_msghead_is_not_an_apprec() -> None:
    outcome = process(EVENT_FILE.read_bytes(), REGISTER, datetime(2026, 2, 3, tzinfo=UTC))
    with pytest.raises(MessageInvalid) as info:
        parse_apprec(outcome.meldinger[0].xml)
    assert info.value.code == "T10"
    assert parse_event(EVENT_FILE.read_bytes()).event_id == outcome.event.event_id  # the fixture itself is fine
