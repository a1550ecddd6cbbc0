"""The event contract: every fixture parses or parks with its reason; reasons never carry patient data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.kartlegging import CONTRACT_PATH, TOPICS, _fast_check, _validator, event_id_of, parse_event
from gateway.errors import Parked, Reason

EVENTS = Path(__file__).resolve().parents[2] / "fixtures" / "events"
GOOD = sorted(p for p in EVENTS.glob("*.json") if int(p.name[:2]) < 80)
BAD = {
    "80-bad-sp1-uten-wmfg10.json": Reason.WMFG10_MISSING,
    "83-bad-fodselsnummer.json": Reason.BAD_FNR,
    "84-bad-mangler-diagnose.json": Reason.SCHEMA,
    "85-bad-ikke-json.json": Reason.NOT_JSON,
}


def good() -> dict[str, Any]:
    return json.loads(GOOD[0].read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_fixtures_parse(path: Path) -> None:
    event = parse_event(path.read_bytes())
    assert event.event_id == json.loads(path.read_text(encoding="utf-8"))["event_id"]


def test_fixtures_use_all_five_points_and_all_thirteen_topics() -> None:
    events = [parse_event(p.read_bytes()) for p in GOOD]
    assert {e.samhandlingspunkt for e in events} == {1, 2, 3, 4, 5}
    assert {t.topic for e in events for t in e.assessment.topics} == set(TOPICS)


@pytest.mark.parametrize(("name", "code"), BAD.items())
def test_bad_fixtures_park_with_their_reason(name: str, code: Reason) -> None:
    with pytest.raises(Parked) as info:
        parse_event((EVENTS / name).read_bytes())
    assert info.value.code == code
    assert info.value.reason


@pytest.mark.parametrize(
    ("change", "code", "needle"),
    [
        (lambda e: e.update(schema="kartlegging.completed/2"), Reason.UNSUPPORTED_SCHEMA, "kartlegging.completed/2"),
        (lambda e: e["patient"].update(kommunenummer="46x1"), Reason.SCHEMA, "patient.kommunenummer"),
        (lambda e: e.update(samhandlingspunkt=6), Reason.SCHEMA, "samhandlingspunkt"),
        (lambda e: e["assessment"].update(distress_score=11), Reason.SCHEMA, "distress_score"),
        (lambda e: e["assessment"]["topics"].append({"topic": "hobby", "need": True}), Reason.SCHEMA, "topic"),
        (lambda e: e.update(event_id="not-a-uuid"), Reason.SCHEMA, "event_id"),
        (lambda e: e.update(occurred_at="2026-02-03T14:30:00"), Reason.SCHEMA, "occurred_at"),
        (lambda e: e["diagnosis"].update(diagnosed_on="2026-02-30"), Reason.SCHEMA, "diagnosed_on"),
        (lambda e: e["sender"].pop("contact"), Reason.SCHEMA, "contact"),
    ],
)
def test_wrong_fields_are_named(change: Any, code: Reason, needle: str) -> None:
    event = good()
    change(event)
    with pytest.raises(Parked) as info:
        parse_event(json.dumps(event).encode())
    assert info.value.code == code
    assert needle in info.value.reason


def test_unknown_extra_fields_are_ignored() -> None:
    event = good()
    event["new_top_level"] = {"x": 1}
    event["patient"]["middle_name"] = "Ny"
    event["assessment"]["topics"][0]["severity"] = 3
    assert parse_event(json.dumps(event).encode()).patient.kommunenummer == event["patient"]["kommunenummer"]


@pytest.mark.parametrize("field", ["fnr", "given_name", "family_name"])
def test_reasons_never_echo_patient_data(field: str) -> None:
    event = good()
    secret = {"fnr": "1234567890X", "given_name": "x" * 300, "family_name": "Hemmelig" * 40}[field]
    event["patient"][field] = secret
    with pytest.raises(Parked) as info:
        parse_event(json.dumps(event).encode())
    assert secret[:20] not in info.value.reason
    assert f"patient.{field}" in info.value.reason


def test_bad_checksum_reason_has_no_number() -> None:
    with pytest.raises(Parked) as info:
        parse_event((EVENTS / "83-bad-fodselsnummer.json").read_bytes())
    assert "13116900217" not in info.value.reason


def test_event_id_of_reads_broken_bodies_too() -> None:
    assert event_id_of(b'{"event_id": "3F0C6A52-7B1E-4D2A-9C4E-000000000001", broken') == (
        "3f0c6a52-7b1e-4d2a-9c4e-000000000001")
    assert event_id_of(b"garbage") is None


def test_contract_is_a_valid_json_schema() -> None:
    import jsonschema

    schema = json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))
    jsonschema.validators.validator_for(schema).check_schema(schema)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [prefix] + [p for k, v in value.items() for p in _paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [prefix] + [p for i, v in enumerate(value) for p in _paths(v, (*prefix, i))]
    return [prefix]


JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_mutation_parses_or_parks(data: st.DataObject) -> None:
    event = good()
    path = data.draw(st.sampled_from([p for p in _paths(event) if p]))
    target = event
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans()) and isinstance(target, dict):
        target.pop(path[-1])
    else:
        target[path[-1]] = data.draw(JUNK)
    try:
        parse_event(json.dumps(event).encode())
        parsed = True
    except Parked as parked:
        parsed = False
        # an event-level reason, never a routing or delivery one
        assert parked.code.value.startswith("EVENT_"), parked.code
    # the fast gate and the reference validator agree on every mutation
    fast_ok = True
    try:
        _fast_check()(event)
    except fastjsonschema.JsonSchemaException:
        fast_ok = False
    assert fast_ok == _validator().is_valid(event)
    if parsed:  # nothing the contract refuses gets through the parser
        assert fast_ok
