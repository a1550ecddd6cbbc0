"""Issue 13: the messages are not only schema-valid but use the standards as a receiving EPJ expects,
checked point by point on every message the fixtures produce and on generated events (both validators
still pass); and the receipt tracker's checks (point 2) on a real store."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.delivery.bus import MemoryPublisher
from gateway.delivery.inbound import InboundHandler
from gateway.delivery.receipts import AppRecTracker
from gateway.domain.kartlegging import InpatientStay, Kartlegging, parse_event
from gateway.domain.registry import Party, load_register
from gateway.errors import Parked, Reason
from gateway.messages.apprec import AppRecError, Status, build_apprec
from gateway.messages.outbound import Melding, msg_id_for
from gateway.messages.validation import explain_with_xmlschema, validate_message
from gateway.pipeline import build_meldinger, process_event
from gateway.routing.route import route
from gateway.store import SqlStore, open_store
from gateway.store.events import EventOutcome, Incoming

ROOT = Path(__file__).resolve().parents[2]
REGISTER = load_register(ROOT / "fixtures" / "register.json")
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
NS = {"mh": "http://www.kith.no/xmlstds/msghead/2006-05-24", "dia": "http://www.kith.no/xmlstds/dialog/2013-01-23",
      "po": "http://www.kith.no/xmlstds/po/poKomponent/2012-04-01", "fk1": "http://www.kith.no/xmlstds/felleskomponent1",
      "epj2": "http://www.kith.no/xmlstds/epj/epj2/2008-02-20"}
NAV_TEXT = "nav"


def fixture_events() -> list[Kartlegging]:
    out = []
    for path in sorted((ROOT / "fixtures" / "events").glob("*.json")):
        if int(path.name[:2]) < 80:
            out.append(parse_event(path.read_bytes()))
    return out


EVENTS = fixture_events()
ADMITTED = [replace(e, inpatient_stay=InpatientStay(date(2026, 1, 20))) for e in EVENTS if e.samhandlingspunkt < 3]


def meldinger(event: Kartlegging) -> tuple[Melding, ...]:
    try:
        return build_meldinger(event, route(event, REGISTER), NOW)
    except Parked:
        return ()


ALL = [(e, m) for e in EVENTS + ADMITTED for m in meldinger(e)]


def check_usage(event: Kartlegging, melding: Melding) -> None:
    """Every point of issue 13 that can be seen in one message."""
    validate_message(melding.xml)
    assert explain_with_xmlschema(melding.xml) == []
    assert b"&#13;" not in melding.xml  # point 9: a carriage return stays a line end
    root = etree.fromstring(melding.xml)
    info = root.find("mh:MsgInfo", NS)
    # point 9: GenDate in Oslo time with its offset; IssueDate is the kartlegging's own time
    gen = datetime.fromisoformat(info.findtext("mh:GenDate", namespaces=NS))
    assert gen.utcoffset() is not None and gen.utcoffset().total_seconds() in (3600, 7200)  # type: ignore[union-attr]
    issue = datetime.fromisoformat(root.find("mh:Document/mh:RefDoc/mh:IssueDate", NS).get("V"))
    assert issue == event.occurred_at
    # point 4: coded ICD-10 without a dot
    for code in root.iter(f"{{{NS['po']}}}Diagnosekode"):
        assert "." not in code.get("V") and code.get("V") == event.diagnosis.icd10.replace(".", "")
    # point 9: a substitute GP is addressed as one
    receiver_role = info.find("mh:Receiver/mh:Organisation/mh:HealthcareProfessional/mh:RoleToPatient", NS)
    if receiver_role is not None:
        gp = next(m for m in route(event, REGISTER).receivers if m.herid == melding.to_herid)
        assert receiver_role.get("V") == ("15" if gp.relation == "vikar" else "6")
    if melding.msg_type == "DIALOG_HELSEFAGLIG":
        notat = root.find(".//dia:Notat", NS)
        # point 5: a new Helsefaglig dialog names the "Kontakt hos mottaker" and the profession wanted
        assert notat.find("dia:TemaKodet", NS).get("V") == "6" and info.find("mh:ConversationRef", NS) is None
        roles = notat.findall("dia:RollerRelatertNotat", NS)
        assert [r.find("dia:RoleToPatient", NS).get("V") for r in roles][-1] == "24"
        profession = roles[-1].find("dia:HealthcareProfessional/dia:TypeHealthcareProfessional", NS).get("V")
        assert profession == ("LE" if melding.role in ("fastlege", "sykehus") else "SP")
        # point 9: a hospital koordinator is 18, a kommune one 8; the declined notice is not a result
        contact_role = roles[0].find("dia:RoleToPatient", NS).get("V")
        assert contact_role != ("8" if REGISTER.party(event.sender.herid).kind == "department" else "18")  # type: ignore[union-attr]
        tema = notat.findtext("dia:Tema", namespaces=NS)
        assert tema.startswith("Behovskartlegging") == (event.declined is None)
        # point 8: the HPR number when the event has one
        hpr = roles[0].find("dia:HealthcareProfessional/dia:Ident/fk1:Id", NS)
        assert (hpr.text if hpr is not None else None) == event.sender.contact.hpr
    else:
        # point 3: PLO only for an inpatient stay, in its sequence, without life topics as services
        assert event.inpatient_stay is not None
        doc = root.find(".//mh:Content/*", NS)
        assert doc.find("po:TjenesteBehov", NS) is None
        first = event.inpatient_stay.first_event_id is None
        assert doc.find("po:InformasjonOmForsendelsen/po:Forsendelsesstatus", NS).get("V") == ("N" if first else "M")
        assert doc.find("po:TypeInnholdIMelding/po:TypeInnhold", NS).get("V") == ("1" if first else "2")
        assert (info.find("mh:ConversationRef", NS) is None) == first
        codes = [h.get("V") for h in doc.iterfind("po:OpplysningOpphold/po:TidsfestetHendelse/po:Hendelsekode", NS)]
        assert codes[0] == "1" and all(h.get("S") == "2.16.578.1.12.4.1.1.9121" for h in
                                       doc.iterfind(".//po:Hendelsekode", NS))
        kontakt = doc.find("po:KontaktpersonHelsepersonell/po:Kontaktperson", NS)
        assert (kontakt is not None) == bool(event.sender.contact.hpr)
    # point 6: no message to NAV
    assert REGISTER.party(melding.to_herid).service_type != NAV_TEXT  # type: ignore[union-attr]


@pytest.mark.parametrize(("event", "melding"), ALL,
                         ids=[f"{e.event_id[-4:]}-{m.to_herid}-{m.msg_type}" for e, m in ALL])
def test_every_fixture_message_uses_the_standards_right(event: Kartlegging, melding: Melding) -> None:
    check_usage(event, melding)


def test_the_fixtures_exercise_both_formats_and_the_special_cases() -> None:
    assert {m.msg_type for _, m in ALL} == {"DIALOG_HELSEFAGLIG", "HELSEOPPL_SOKNAD"}
    assert any(m.role == "fastlege" and b'V="15"' in m.xml for _, m in ALL), "a vikar is among the fixtures"
    assert any(e.declined for e, _ in ALL)


def test_point_7_one_kommune_contact_point_without_a_stay() -> None:
    for event in EVENTS:
        kommune = [m for m in meldinger(event) if m.role in ("kommune", "saksbehandling")]
        assert len(kommune) <= 1, event.event_id
        assert all(m.msg_type == "DIALOG_HELSEFAGLIG" for m in meldinger(event))


TEXT = st.text(st.sampled_from("abcæøå ÆØÅ.,-\r\n<&>0123456789"), min_size=1, max_size=60)


@st.composite
def generated(draw: st.DrawFn) -> Kartlegging:
    base = draw(st.sampled_from([e for e in EVENTS if e.declined is None and not e.consent.objects_to_sharing]))
    name = draw(st.one_of(TEXT.filter(lambda t: t.strip() and "\r" not in t),
                          st.sampled_from(["Kari", "Kari Nordmann"])))
    roles = ["koordinator", "kontaktlege", "forløpskoordinator", "kreftsykepleier"]
    contact = replace(base.sender.contact, name=name, hpr=draw(st.one_of(st.none(), st.just("9144889"))),
                      role=draw(st.sampled_from(roles)))
    stay = None
    if base.samhandlingspunkt < 3 and draw(st.booleans()):
        first = draw(st.one_of(st.none(), st.just("5b0a0d7e-0000-4000-8000-00000000aaaa")))
        stay = InpatientStay(date(2026, 1, 20), first, None, draw(st.one_of(st.none(), st.just(date(2026, 3, 20)))))
    return replace(base, sender=replace(base.sender, contact=contact), inpatient_stay=stay,
                   diagnosis=replace(base.diagnosis, icd10=draw(st.sampled_from(["C50.9", "C61", "C34.1", "c18.7"]))),
                   assessment=replace(base.assessment, what_matters=draw(TEXT)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated())
def test_generated_events_use_the_standards_right(event: Kartlegging) -> None:
    built = meldinger(event)
    assert built
    for melding in built:
        check_usage(replace(event, diagnosis=replace(event.diagnosis, icd10=event.diagnosis.icd10.upper())), melding)
        root = etree.fromstring(melding.xml)
        if len(event.sender.contact.name.split()) < 2 and melding.msg_type == "DIALOG_HELSEFAGLIG":
            assert root.find(".//dia:RollerRelatertNotat/dia:HealthcareProfessional/dia:FamilyName", NS) is None


def test_plo_update_refers_to_the_earlier_messages() -> None:
    """The sequence of point 3 with the official sample's shape (RefToParent, RefToConversation)."""
    base = next(e for e in ADMITTED if e.samhandlingspunkt == 1 and e.patient.kommunenummer == "4601")
    first = next(m for m in meldinger(base) if m.msg_type == "HELSEOPPL_SOKNAD")
    later = replace(base, event_id="5b0a0d7e-0000-4000-8000-00000000bbbb",
                    inpatient_stay=InpatientStay(date(2026, 1, 20), base.event_id, base.event_id))
    update = next(m for m in meldinger(later) if m.msg_type == "HELSEOPPL_SOKNAD")
    ref = etree.fromstring(update.xml).find("mh:MsgInfo/mh:ConversationRef", NS)
    assert ref.findtext("mh:RefToParent", namespaces=NS) == first.msg_id == msg_id_for(base.event_id, first.to_herid)
    assert ref.findtext("mh:RefToConversation", namespaces=NS) == first.msg_id


def test_point_6_no_diagnosis_reaches_nav_even_with_consent() -> None:
    register = load_register(ROOT / "fixtures" / "register.json")
    register.parties[8100199] = Party(8100199, "NAV Bergen", "service", parent_herid=8100100, service_type="nav",
                                      formats=("dialogmelding-1.1",))
    for event in EVENTS:
        consenting = replace(event, consent=replace(event.consent, share_with_nav=True))
        try:
            out = process_event(consenting, register, NOW)
        except Parked:
            continue
        for m in out.meldinger:
            assert m.to_herid != 8100199
        assert event.diagnosis.icd10.encode() not in b"".join(m.xml for m in out.meldinger if m.to_herid == 8100199)


def test_point_1_an_event_from_a_sender_not_served_is_parked() -> None:
    event = EVENTS[0]
    with pytest.raises(Parked) as info:
        process_event(event, REGISTER, NOW, served=frozenset({8100701}))
    assert info.value.code == Reason.SENDER_NOT_SERVED and event.patient.fnr not in info.value.reason
    assert process_event(event, REGISTER, NOW, served=frozenset({event.sender.herid})).meldinger


# --- point 2: the receipt tracker on a real (SQLite) store -------------------------------------------------

@pytest.fixture
def sent(tmp_path: Path) -> tuple[SqlStore, list[Melding]]:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    event = EVENTS[0]
    body = json.dumps({"event_id": event.event_id}).encode()
    [stored] = store.record_events([Incoming(body, event.event_id, None)])
    out = meldinger(event)
    store.record_outcomes([EventOutcome(stored.ref, "routed", meldinger=out)])
    store.mark_sent_many([(stored.ref, [m.msg_id for m in out])])
    return store, list(out)


def tracker(store: SqlStore) -> tuple[AppRecTracker, MemoryPublisher]:
    publisher = MemoryPublisher()
    return AppRecTracker(store, publisher), publisher


def test_receipt_from_another_receiver_is_parked(sent: tuple[SqlStore, list[Melding]]) -> None:
    store, (a, b) = sent
    t, publisher = tracker(store)
    forged = build_apprec(a.xml, Status.AVVIST).replace(str(a.to_herid).encode(), str(b.to_herid).encode())
    assert t.handle(forged) == "parked"
    assert publisher.published()[0].properties["headers"]["x-reason-code"] == Reason.APPREC_WRONG_PARTY
    assert store.message(a.msg_id)["status"] == "sent"  # type: ignore[index]


def test_only_sent_or_overdue_take_a_final_status(sent: tuple[SqlStore, list[Melding]]) -> None:
    store, (a, _) = sent
    t, _ = tracker(store)
    errors = (AppRecError("E35", "Pasienten finnes ikke i mottakersystemet"),)
    assert t.handle(build_apprec(a.xml, Status.AVVIST, errors)) == "rejected"
    assert t.handle(build_apprec(a.xml, Status.OK)) == "late"
    row = store.message(a.msg_id)
    assert row["status"] == "rejected" and "E35" in row["apprec_errors"]  # type: ignore[index]
    assert any("late receipt" in (h["reason"] or "") for h in store.history("message", a.msg_id))


def test_duplicate_receipts_are_recorded_once_and_ids_match_in_any_case(
        sent: tuple[SqlStore, list[Melding]]) -> None:
    store, (a, _) = sent
    t, _ = tracker(store)
    upper = build_apprec(a.xml, Status.OK, apprec_id="A1").replace(a.msg_id.encode(), a.msg_id.upper().encode())
    assert t.handle(upper) == "acknowledged"
    assert t.handle(upper) == "duplicate"
    assert len(store.db.query("SELECT * FROM apprecs WHERE apprec_id = 'A1'")) == 1


def test_error_code_list_is_kept_and_unknown_status_parked(sent: tuple[SqlStore, list[Melding]]) -> None:
    store, (a, _) = sent
    t, publisher = tracker(store)
    xml = build_apprec(a.xml, Status.AVVIST, (AppRecError("01", "Feil i meldingen", None, "2.16.578.1.12.4.1.1.8223"),))
    assert t.handle(xml) == "rejected"
    assert json.loads(store.message(a.msg_id)["apprec_errors"])[0]["system"] == "2.16.578.1.12.4.1.1.8223"  # type: ignore[index]
    odd = build_apprec(a.xml, Status.OK).replace(b'<Status V="1"', b'<Status V="9"')
    assert t.handle(odd) == "parked"
    assert publisher.published()[-1].properties["headers"]["x-reason-code"] == Reason.APPREC_INVALID


def test_anything_else_on_a_served_queue_is_stored_and_handed_on_or_parked(
        sent: tuple[SqlStore, list[Melding]]) -> None:
    store, (a, _) = sent
    publisher = MemoryPublisher()
    handler = InboundHandler(store, publisher, AppRecTracker(store, publisher))
    assert handler.handle(a.xml, "8100601_async") == "handed_on"  # e.g. a reply: a MsgHead message
    assert handler.handle(b"\x00not xml", "8100601_async") == "parked"
    assert [o.queue for o in publisher.published()] == ["gateway.inbound", "gateway.parked"]
    assert [r["status"] for r in store.inbound()] == ["parked", "handed_on"]
