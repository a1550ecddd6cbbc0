"""The kartlegging.status/1 contract: every built status is valid against the published schema, uses only
documented fields, has a stable id, and never carries the patient's identity, diagnosis or note text."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.oversikt.status import (
    APPREC_CODE_SYSTEM,
    SCHEMA,
    AppRecError,
    AppRecResult,
    ContactPoint,
    EventChange,
    EventState,
    MessageChange,
    MessageState,
    Receiver,
    StatusError,
    build_status,
    routing_key,
    status_id,
)

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "kartlegging.status-1.schema.json"
CONTRACT: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft7Validator(CONTRACT, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
OSLO = ZoneInfo("Europe/Oslo")
EVENT_ID = "0d6f2a4e-8a43-4a5e-9d0c-2f5b1e7c9a10"
AT = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
RECEIVER = Receiver(8100001, "Trondheim kommune, tildelingskontoret", "kommune")
CONTACT = ContactPoint(8100002, "Kreftkoordinator Trondheim", "kreftkoordinator", "+47 72 54 00 00",
                       "Hverdager 08:00-15:30")


def documented(instance: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields of ``instance`` that the schema does not describe (the contract allows extras for later versions,
    but the gateway itself must only send what is documented)."""
    found: list[str] = []
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for key, value in instance.items():
            if key not in props:
                found.append(f"{path}/{key}")
            else:
                found += documented(value, props[key], f"{path}/{key}")
    elif isinstance(instance, list):
        for i, item in enumerate(instance):
            found += documented(item, schema.get("items", {}), f"{path}/{i}")
    return found


def check(status: dict[str, Any]) -> None:
    errors = sorted(VALIDATOR.iter_errors(status), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    assert documented(status, CONTRACT) == []
    at = datetime.fromisoformat(status["at"])
    assert at.utcoffset() == at.astimezone(OSLO).utcoffset()  # the offset is Oslo's on that day
    json.dumps(status)  # JSON-ready


def every_state() -> list[EventChange | MessageChange]:
    ok = AppRecResult("1")
    with_errors = AppRecResult("3", (AppRecError("E36", "Mangler adresse"),))
    avvist = AppRecResult("2", (AppRecError("E21", "Mottaker finnes ikke", APPREC_CODE_SYSTEM),
                                AppRecError("T02", None)))
    return [
        EventChange(EVENT_ID, EventState.ROUTED, AT, contact_point=CONTACT, sender_herid=8000001),
        EventChange(EVENT_ID, EventState.ROUTED, AT, contact_point=ContactPoint(8100003, "Tildeling", "kommune")),
        EventChange(EVENT_ID, EventState.ROUTED, AT),
        EventChange(EVENT_ID, EventState.SENT, AT),
        EventChange(EVENT_ID, EventState.PARKED, AT, reason_code="ROUTING_NO_KOMMUNE_CONTACT_POINT"),
        EventChange(EVENT_ID, EventState.PARKED, AT, seq=2, reason_code="EVENT_WMFG10_MISSING"),
        EventChange(EVENT_ID, EventState.NOT_SHARED, AT),
        EventChange(EVENT_ID, EventState.DECLINED, AT),
        MessageChange(EVENT_ID, "m-1", RECEIVER, MessageState.ACKNOWLEDGED, AT, apprec=ok),
        MessageChange(EVENT_ID, "m-1", RECEIVER, MessageState.ACKNOWLEDGED, AT, apprec=with_errors),
        MessageChange(EVENT_ID, "m-1", RECEIVER, MessageState.REJECTED, AT, apprec=avvist),
        MessageChange(EVENT_ID, "m-1", RECEIVER, MessageState.OVERDUE, AT),
        MessageChange(EVENT_ID, "m-1", RECEIVER, MessageState.SUPERSEDED, AT, superseded_by="m-2"),
        MessageChange(EVENT_ID, "m-1", RECEIVER, MessageState.SUPERSEDED, AT),
    ]


@pytest.mark.parametrize("change", every_state(), ids=lambda c: f"{c.state}")
def test_every_state_builds_a_valid_status(change: EventChange | MessageChange) -> None:
    status = build_status(change)
    check(status)
    assert status["schema"] == SCHEMA
    assert status["state"] == change.state
    assert routing_key(status["state"]) == f"kartlegging.status.{change.state}"


def test_all_nine_states_are_covered_by_the_schema() -> None:
    assert {c.state.value for c in every_state()} == set(CONTRACT["properties"]["state"]["enum"])


def test_routed_carries_the_contact_point_for_the_patient() -> None:
    status = build_status(EventChange(EVENT_ID, EventState.ROUTED, AT, contact_point=CONTACT))
    assert status["contact_point"] == {"herid": 8100002, "name": "Kreftkoordinator Trondheim",
                                       "role": "kreftkoordinator", "phone": "+47 72 54 00 00",
                                       "opening_hours": "Hverdager 08:00-15:30"}
    bare = build_status(EventChange(EVENT_ID, EventState.ROUTED, AT, contact_point=ContactPoint(1, "X", "kommune")))
    assert bare["contact_point"]["phone"] is None and bare["contact_point"]["opening_hours"] is None


def test_rejected_carries_standard_texts_not_the_receivers_free_text() -> None:
    status = build_status(MessageChange(
        EVENT_ID, "m-1", RECEIVER, MessageState.REJECTED, AT,
        apprec=AppRecResult("2", (AppRecError("e21", "Kari Nordmann 01017012345 ukjent", detail="Kari"),
                                  AppRecError("Z9", "fri tekst", "2.16.578.1.12.4.1.1.9999"),
                                  AppRecError("not a code!", "x")))))
    assert status["apprec"] == {"status": "2", "errors": [
        {"code": "E21", "text": "Mottaker finnes ikke", "system": APPREC_CODE_SYSTEM},
        {"code": "Z9", "text": "Ukjent feilkode (se mottakerens kvittering)", "system": "2.16.578.1.12.4.1.1.9999"},
        {"code": "X99", "text": "Annen feil", "system": APPREC_CODE_SYSTEM},
    ]}
    check(status)


@pytest.mark.parametrize(("at", "expected"), [
    (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "2026-01-15T13:00:00+01:00"),
    (datetime(2026, 7, 15, 12, 0, tzinfo=UTC), "2026-07-15T14:00:00+02:00"),
    (datetime(2025, 12, 31, 23, 30, tzinfo=UTC), "2026-01-01T00:30:00+01:00"),  # a new year in Oslo
    (datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), "2026-03-29T01:59:59+01:00"),  # just before summer time
    (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "2026-03-29T03:00:00+02:00"),
    (datetime(2026, 6, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5))), "2026-06-01T16:00:00+02:00"),
    (datetime(2026, 3, 29, 2, 30, tzinfo=OSLO), "2026-03-29T03:30:00+02:00"),  # a wall time that does not exist
])
def test_at_is_oslo_time_with_offset(at: datetime, expected: str) -> None:
    assert build_status(EventChange(EVENT_ID, EventState.SENT, at))["at"] == expected


def test_status_id_is_stable_and_distinguishes_entity_state_and_seq() -> None:
    one = build_status(EventChange(EVENT_ID, EventState.PARKED, AT, reason_code="INTERNAL_ERROR"))
    again = build_status(EventChange(EVENT_ID, EventState.PARKED, AT + timedelta(hours=1),
                                     reason_code="INTERNAL_ERROR"))
    assert one["status_id"] == again["status_id"] == status_id(EVENT_ID, "event", "parked", 1)
    assert uuid.UUID(one["status_id"]).version == 5
    changes = [c for c in every_state() if c.state not in ("routed", "acknowledged")]
    distinct = {(c.event_id, getattr(c, "msg_id", None), c.state, c.seq) for c in changes}
    assert len(changes) == 9 and len(distinct) == 8  # the two superseded: one change, with and without successor
    ids = {build_status(c)["status_id"] for c in changes}
    assert len(ids) == len(distinct)
    other_message = build_status(MessageChange(EVENT_ID, "m-2", RECEIVER, MessageState.OVERDUE, AT))["status_id"]
    other_event = build_status(EventChange(str(uuid.uuid4()), EventState.SENT, AT))["status_id"]
    assert other_message not in ids and other_event not in ids


@pytest.mark.parametrize(("change", "message"), [
    (EventChange(EVENT_ID, EventState.PARKED, AT), "reason code"),
    (EventChange(EVENT_ID, EventState.PARKED, AT, reason_code="lowercase"), "reason code"),
    (EventChange(EVENT_ID, EventState.SENT, AT, reason_code="INTERNAL_ERROR"), "only for parked"),
    (EventChange(EVENT_ID, EventState.SENT, AT, contact_point=CONTACT), "only for routed"),
    (EventChange("not-a-uuid", EventState.SENT, AT), "UUID"),
    (EventChange(EVENT_ID, EventState.SENT, datetime(2026, 1, 1, 12, 0)), "naive"),
    (EventChange(EVENT_ID, EventState.SENT, AT, seq=0), "seq"),
    (EventChange(EVENT_ID, EventState.SENT, AT, sender_herid=0), "HER-id"),
    (MessageChange(EVENT_ID, "m", RECEIVER, MessageState.ACKNOWLEDGED, AT), "needs the AppRec"),
    (MessageChange(EVENT_ID, "m", RECEIVER, MessageState.REJECTED, AT, apprec=AppRecResult("1")), "status 2"),
    (MessageChange(EVENT_ID, "m", RECEIVER, MessageState.ACKNOWLEDGED, AT, apprec=AppRecResult("2")), "1 or 3"),
    (MessageChange(EVENT_ID, "m", RECEIVER, MessageState.OVERDUE, AT, apprec=AppRecResult("1")), "only for"),
    (MessageChange(EVENT_ID, "m", RECEIVER, MessageState.OVERDUE, AT, superseded_by="n"), "only for superseded"),
    (MessageChange(EVENT_ID, " ", RECEIVER, MessageState.OVERDUE, AT), "msg_id is empty"),
    (MessageChange(EVENT_ID, "m", Receiver(-1, "x", "kommune"), MessageState.OVERDUE, AT), "HER-id"),
])
def test_impossible_changes_are_refused(change: EventChange | MessageChange, message: str) -> None:
    with pytest.raises(StatusError, match=message):
        build_status(change)


def test_unknown_state_has_no_routing_key() -> None:
    with pytest.raises(StatusError):
        routing_key("received")


# --- property tests ---------------------------------------------------------------------------------------------

letters = st.text(alphabet="abcdefghijklmnopqrstuvwxyzæøå", min_size=6, max_size=10)
# Realistic first and family names made unique with a random tail, so finding one in the output cannot be chance.
given_names = st.builds(lambda a, b: a + b, st.sampled_from(["Kari", "Ola", "Ingrid", "Per", "Åse"]), letters)
family_names = st.builds(lambda a, b: a + b, st.sampled_from(["Nordmann", "Hansen", "Østby"]), letters)
fnrs = st.from_regex(r"[0-7][0-9]{10}", fullmatch=True)
diagnoses = st.builds(lambda a, b: f"{a} {b}", st.sampled_from(["Ondartet svulst i bryst", "C50.9 brystkreft"]),
                      letters)
notes = st.builds(lambda a, b: f"{a} {b}", st.sampled_from(["Bekymret for økonomien", "Trenger hjelp hjemme"]),
                  letters)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                        timezones=st.sampled_from([UTC, OSLO, timezone(timedelta(hours=5, minutes=30))]))
herids = st.integers(min_value=1, max_value=999_999_999)
safe_text = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ -,", min_size=1, max_size=60).filter(str.strip)
receivers = st.builds(Receiver, herids, safe_text, st.sampled_from(["kommune", "fastlege", "kreftkoordinator"]))
codes = st.sampled_from(["E10", "E20", "E21", "E35", "E36", "T01", "T02", "T10", "T99", "X99", "E99", "bad code"])


@st.composite
def changes(draw: st.DrawFn, planted: list[str] | None = None, fnr: str = "") -> EventChange | MessageChange:
    """Any valid state change; ``planted`` strings are put in every free-text input that could quote a patient,
    and ``fnr`` also in the registry's text (a contact point's name and opening hours)."""
    leak = (lambda: " ".join(draw(st.permutations(planted)))) if planted else (lambda: draw(safe_text))
    event_id = str(draw(st.uuids()))
    at = draw(instants)
    seq = draw(st.integers(min_value=1, max_value=5))
    sender = draw(st.none() | herids)
    state = draw(st.sampled_from(list(EventState) + list(MessageState)))
    if isinstance(state, EventState):
        reason = draw(st.sampled_from(["ROUTING_NO_FASTLEGE", "EVENT_SCHEMA_VIOLATION"])) if state == "parked" else None
        contact = None
        if state == "routed" and draw(st.booleans()):
            contact = ContactPoint(draw(herids), draw(safe_text) + fnr, "kommune",
                                   draw(st.none() | st.just("+47 22 00 00 00")),
                                   draw(st.none() | st.just(f"08-15 {fnr[:6]} {fnr[6:]}")))
        return EventChange(event_id, state, at, seq, sender, reason, contact)
    apprec = None
    if state in ("acknowledged", "rejected"):
        status = "2" if state == "rejected" else draw(st.sampled_from(["1", "3"]))
        errors = tuple(AppRecError(draw(codes), leak(), draw(st.none() | st.just(APPREC_CODE_SYSTEM)), leak())
                       for _ in range(draw(st.integers(0, 3))))
        apprec = AppRecResult(status, errors)
    superseded_by = draw(st.none() | st.just(str(uuid.uuid4()))) if state == "superseded" else None
    return MessageChange(event_id, str(draw(st.uuids())), draw(receivers), state, at, seq, sender, apprec,
                         superseded_by)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(changes())
def test_every_generated_change_builds_a_valid_status(change: EventChange | MessageChange) -> None:
    check(build_status(change))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), given_names, family_names, fnrs, diagnoses, notes)
def test_planted_patient_data_never_reaches_a_status(data: st.DataObject, given_name: str, family_name: str,
                                                     fnr: str, diagnosis: str, note: str) -> None:
    planted = [given_name, family_name, fnr, diagnosis, note]
    change = data.draw(changes(planted, fnr))
    status = build_status(change)
    check(status)
    text = json.dumps(status, ensure_ascii=False)
    for secret in planted:
        assert secret not in text
    assert fnr[:6] + " " + fnr[6:] not in text
