"""The console's reads and the users table on both backends: the SQL is written once for SQLite and
PostgreSQL, so it is run on both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.console.auth import hash_password
from gateway.store import EventOutcome, SqlStore, open_store
from gateway.store.users import UserError, UserStore
from tests.conftest import postgres_database
from tests.factories import mark_sent, melding, park_event, record_event


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
        yield s
        s.close()
        return
    request.applymarker(pytest.mark.postgres)
    with postgres_database() as url:
        s = open_store(url)
        yield s
        s.close()


def _body(event_id: str, kommune: str, fnr: str) -> bytes:
    return json.dumps({"event_id": event_id, "patient": {"fnr": fnr, "kommunenummer": kommune}}).encode()


def test_searches_count_page_and_find_parked_events_by_the_kommune_in_their_body(store: SqlStore) -> None:
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    parked = record_event(store, _body("p1", "4601", "17856100030"), "p1", None).ref
    park_event(store, parked, "ROUTING_UNKNOWN_KOMMUNE", "x")
    other = record_event(store, _body("p2", "5001", "01815500454"), "p2", None).ref
    park_event(store, other, "INTERNAL_ERROR", "y")
    sent = record_event(store, _body("s1", "4601", "17856100030"), "s1", None).ref
    store.record_outcomes([EventOutcome(sent, "routed", None, None, 1, "4601", (melding("s1", 8100101),),
                                        store.patient_key("17856100030"))])
    mark_sent(store, sent, [melding("s1", 8100101).msg_id])

    rows, total = store.search_events(kommune="4601")
    assert total == 2 and [r["id"] for r in rows] == [sent, parked]
    rows, total = store.search_events(kommune="4601", status="parked")
    assert (total, rows[0]["id"]) == (1, parked)
    rows, total = store.search_events(kommune="4601", limit=1, offset=1)
    assert total == 2 and [r["id"] for r in rows] == [parked]
    rows, total = store.search_events(patient=store.patient_key("17856100030"))  # the parked one by its body
    assert total == 2 and [r["id"] for r in rows] == [sent, parked]
    assert store.search_events(patient=store.patient_key("17856100030"), kommune="5001")[1] == 0
    assert store.search_events(receiver=8100101)[1] == 1
    assert store.search_events(key=melding("s1", 8100101).msg_id)[0][0]["id"] == sent
    assert store.search_events(key=str(other))[0][0]["id"] == other
    assert store.search_events(since=since, status="parked")[1] == 2
    rows, total = store.search_messages(kommune="4601", samhandlingspunkt=1, patient=store.patient_key("17856100030"))
    assert total == 1 and rows[0]["status"] == "sent"
    assert store.search_messages(key="s1")[1] == 1

    counts = store.state_counts(since)
    assert counts["events"] == {"parked": 2, "sent": 1} and counts["messages"] == {"sent": 1}
    assert {r["reason_code"]: r["n"] for r in store.parked_by_reason()} == {"ROUTING_UNKNOWN_KOMMUNE": 1,
                                                                           "INTERNAL_ERROR": 1}
    assert store.last_times()["message_sent"] is not None
    assert store.recent_receivers(since) == [8100101]
    assert store.apprec_problems() == []
    assert store.record_apprec("a1", melding("s1", 8100101).msg_id, "2", [{"code": "E35", "text": "t", "detail": None}],
                               sender_herids=("8100101",), receiver_herids=("1",)) == "rejected"
    assert [r["status"] for r in store.apprec_problems()] == ["rejected"]
    assert [r["status"] for r in store.answered_since(since)] == ["rejected"]

    store.audit("kari (konsoll)", "replay-event", str(parked), "rettet")
    store.audit("ola", "replay-message", "m1", "ny kopi")
    rows, total = store.audit_search(operator="KARI")
    assert total == 1 and rows[0]["reason"] == "rettet"
    assert store.audit_search(action="replay-message")[1] == 1
    assert store.audit_actions() == ["replay-event", "replay-message"]


def test_users_are_added_changed_and_disabled(store: SqlStore) -> None:
    users = UserStore(store.db)
    users.add("Kari", "Kari Drift", "drift", hash_password("riktig hest batteri"))
    with pytest.raises(UserError):
        users.add("kari", "", "drift", hash_password("riktig hest batteri"))
    with pytest.raises(UserError):
        users.add("ola", "", "admin", hash_password("riktig hest batteri"))
    with pytest.raises(UserError):
        users.set_active("ingen", False)
    users.set_active("kari", False)
    user = users.get("KARI")
    assert user is not None and not user.active and user.may_act
    assert users.failed("kari", 2, datetime.now(UTC)) is False
    assert users.failed("kari", 2, datetime.now(UTC)) is True
    assert users.get("kari").locked_until is not None  # type: ignore[union-attr]
    users.set_password("kari", hash_password("enda et passord her"))
    assert users.get("kari").locked_until is None  # type: ignore[union-attr]
