"""The overview over a real store filled by the consumer from the fixture events: the numbers are derived
again here from the fixture files themselves, not from the store."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gateway.delivery.bus import MemoryPublisher
from gateway.delivery.consumer import EventHandler
from gateway.domain.kartlegging import Checks, event_id_of
from gateway.domain.registry import load_register
from gateway.operations.forlop import coverage_report, due, indicator, pathways
from gateway.routing.rules import packaged_rules
from gateway.store import Incoming, SqlStore, open_store

# The fixtures' dates are fixed: the date checks are off, as in the demo (docs/limits.md).
FIXTURE_CHECKS = Checks(max_past_days=0, future_days=0)
ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "fixtures" / "events").glob("*.json"))
REGISTER = load_register(ROOT / "fixtures" / "register.json")
RULES = packaged_rules()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SqlStore:
    s = open_store(f"sqlite:///{tmp_path_factory.mktemp('forlop') / 's.sqlite3'}")
    handler = EventHandler(REGISTER, s, MemoryPublisher(), checks=FIXTURE_CHECKS,
                           clock=lambda: datetime(2026, 11, 1, tzinfo=UTC))
    handler.handle_batch([Incoming(p.read_bytes(), event_id_of(p.read_bytes()), None, "application/json")
                          for p in EVENTS])
    return s


def fixtures() -> list[dict]:  # type: ignore[type-arg]
    out = []
    for p in EVENTS:
        try:
            out.append(json.loads(p.read_bytes()))
        except ValueError:
            continue
    return out


def test_indicator_matches_the_fixture_files(store: SqlStore) -> None:
    found = indicator(store, REGISTER)
    ended = {e["event_id"]: e["status"] for e in store.events()}
    expected_with: Counter[tuple[int, str]] = Counter()
    expected_without: Counter[tuple[int, str]] = Counter()
    for e in fixtures():
        if e.get("samhandlingspunkt") not in (1, 2) or e.get("declined") or e.get("event_id") not in ended:
            continue
        status = ended[e["event_id"]]
        code = e["assessment"].get("procedure_code")
        key = (e["sender"]["herid"], e["assessment"]["performed_on"][:7])
        if status in ("sent", "routed", "not_shared") and code == "WMFG10":
            expected_with[key] += 1
        elif status in ("sent", "routed", "not_shared") or (status == "parked" and code != "WMFG10"
                                                            and store.event(e["event_id"])["reason_code"]  # type: ignore[index]
                                                            == "EVENT_WMFG10_MISSING"):
            expected_without[key] += 1
    got_with = {(r.hospital_herid, r.month): r.with_wmfg10 for r in found.wmfg10 if r.with_wmfg10}
    got_without = {(r.hospital_herid, r.month): r.without_wmfg10 for r in found.wmfg10 if r.without_wmfg10}
    assert got_with == dict(expected_with)
    assert got_without == dict(expected_without)
    assert sum(got_without.values()) >= 1, "the fixture without WMFG10 counts as a kartlegging without it"


def test_pathway_of_a_patient_found_by_the_patient_key(store: SqlStore) -> None:
    e = next(e for e in fixtures() if e["samhandlingspunkt"] == 3)
    found = pathways(store, REGISTER, RULES, patient_key=store.patient_key(e["patient"]["fnr"]))
    assert len(found) == 1
    done = {k.samhandlingspunkt for k in found[0].done}
    expected = {x["samhandlingspunkt"] for x in fixtures()
                if x["patient"]["fnr"] == e["patient"]["fnr"] and not x.get("declined")
                and store.event(x["event_id"])["status"] in ("sent", "routed", "not_shared")}  # type: ignore[index]
    assert done == expected and 3 in done
    # SP4 about three months after SP3 (the default window: 80-110 days)
    sp3 = date.fromisoformat(e["assessment"]["performed_on"])
    window = next(w for w in found[0].windows if w.samhandlingspunkt == 4)
    assert (window.from_date - sp3).days == 80 and (window.to_date - sp3).days == 110
    mine = found[0].patient_key
    soon = due(store, REGISTER, RULES, window.from_date, 30)
    assert any(i.patient_key == mine for wl in soon.by_kommune.values() for i in wl.due_soon)
    late = due(store, REGISTER, RULES, sp3 + timedelta(days=400), 30)  # past the SP5 window (335-395 days)
    assert any(i.patient_key == mine for wl in late.by_kommune.values() for i in wl.overdue)


def test_coverage_names_the_missing_kreftkoordinator(store: SqlStore) -> None:
    rows = {(r.kommunenummer, r.role): r for r in coverage_report(store, REGISTER, RULES)}
    registry_roles = {(p.kommunenummer or "", p.service_type) for p in REGISTER.parties.values() if p.kind == "service"}
    kommuner = {p.herid: p.kommunenummer for p in REGISTER.parties.values() if p.kind == "organisation"}
    present = {(kommuner[p.parent_herid], p.service_type) for p in REGISTER.parties.values()
               if p.kind == "service" and p.parent_herid in kommuner}
    assert registry_roles  # the fixture has services
    for (kommune, role), row in rows.items():
        if row.wanted and (kommune, role) not in present:
            assert "missing" in row.problems, (kommune, role)
        if (kommune, role) in present:
            assert "missing" not in row.problems, (kommune, role)
    assert "missing" in rows[("1867", "kreftkoordinator")].problems  # Bø has none in the fixture registry
