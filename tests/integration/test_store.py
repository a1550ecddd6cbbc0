"""The SQLite store keeps every event and message with its history."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.messages.outbound import Melding, msg_id_for
from gateway.store import SqlStore, open_store
from gateway.store.db import migrations
from tests.conftest import postgres_database
from tests.factories import mark_not_shared, mark_sent, park_event, record_event, record_route


def _melding(event_id: str, herid: int) -> Melding:
    return Melding(msg_id=msg_id_for(event_id, herid), event_id=event_id, msg_type="DIALOG_HELSEFAGLIG",
                   from_herid=1, to_herid=herid, role="fastlege", why="test", generated_at="2026-01-01T00:00:00",
                   xml=b"<x/>")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """Every store test runs on both real backends."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")
        yield s
        s.close()
    else:
        with postgres_database() as url:
            s = open_store(url)
            yield s
            s.close()


def test_event_walks_received_routed_sent_with_history(store: SqlStore) -> None:
    stored = record_event(store, b"{}", "e1", "e1")
    assert stored.status == "received"
    m = _melding("e1", 42)
    record_route(store, stored.ref, 1, "4601", [m])
    assert store.messages(stored.ref)[0]["status"] == "built"
    mark_sent(store, stored.ref, [m.msg_id])
    assert store.events()[0]["status"] == "sent"
    assert store.messages(stored.ref)[0]["status"] == "sent"
    assert [h["status"] for h in store.history("event", str(stored.ref))] == ["received", "routed", "sent"]
    assert [h["status"] for h in store.history("message", m.msg_id)] == ["built", "sent"]


def test_redelivered_event_is_recognised_not_duplicated(store: SqlStore) -> None:
    first = record_event(store, b"{}", "e1", None)
    mark_not_shared(store, first.ref, "objection")
    again = record_event(store, b"{}", "e1", None)
    assert again == type(first)(first.ref, "not_shared")
    assert len(store.events()) == 1


def test_republished_parked_event_is_received_again(store: SqlStore) -> None:
    first = record_event(store, b"{}", "e1", None)
    park_event(store, first.ref, "ROUTING_UNKNOWN_KOMMUNE", "kommune 9999 is not in the registry")
    assert store.events()[0]["reason_code"] == "ROUTING_UNKNOWN_KOMMUNE"
    again = record_event(store, b"{}", "e1", None)
    assert again.status == "received"
    statuses = [h["status"] for h in store.history("event", str(first.ref))]
    assert statuses == ["received", "parked", "received"]
    assert again.attempts == 1


def test_events_without_id_are_told_apart_by_message_id_or_body(store: SqlStore) -> None:
    first = record_event(store, b"not json", None, None)
    assert record_event(store, b"not json", None, None).ref == first.ref  # a redelivery, not a new event
    assert record_event(store, b"not json either", None, None).ref != first.ref
    assert record_event(store, b"not json", None, "m-1").ref != first.ref
    assert record_event(store, b"not json", None, "m-1").ref == record_event(store, b"x", None, "m-1").ref
    assert len(store.events()) == 3


def test_redelivery_counts_attempts_but_a_replay_starts_afresh(store: SqlStore) -> None:
    ref = record_event(store, b"{}", "e1", None).ref
    assert record_event(store, b"{}", "e1", None).attempts == 2
    assert record_event(store, b"{}", "e1", None).attempts == 3
    park_event(store, ref, "ROUTING_UNKNOWN_KOMMUNE", "x")
    assert record_event(store, b"{}", "e1", None).attempts == 1


def test_rebuilt_message_keeps_its_msgid(store: SqlStore) -> None:
    ref = record_event(store, b"{}", "e1", None).ref
    record_route(store, ref, 1, "4601", [_melding("e1", 42)])
    record_route(store, ref, 1, "4601", [_melding("e1", 42)])
    assert len(store.messages(ref)) == 1


def test_store_survives_reopen_and_migrates_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    s = open_store(url)
    record_event(s, b"{}", "e1", None)
    s.close()
    again = open_store(url)
    assert again.events()[0]["event_id"] == "e1"
    versions = again.db.query("SELECT version FROM schema_version ORDER BY version")  # type: ignore[attr-defined]
    assert [v["version"] for v in versions] == list(range(1, len(migrations()) + 1))


def test_bodies_come_back_as_bytes(store: SqlStore) -> None:
    ref = record_event(store, b"\x00\xffbody", "e1", None).ref
    record_route(store, ref, 1, "4601", [_melding("e1", 42)])
    assert store.messages(ref)[0]["xml"] == b"<x/>"


def test_unsupported_store_url_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        open_store("mysql://x")


def test_patient_history_flags_and_declined_on_both_backends(store: SqlStore) -> None:
    from datetime import date

    from gateway.domain.history import last_hospital
    from gateway.domain.kartlegging import Contact
    from gateway.store.events import HISTORY_DEPTH, EventOutcome

    first = record_event(store, b"{}", "e1", None)
    store.record_outcomes([EventOutcome(first.ref, "routed", None, None, 1, "4601", (_melding("e1", 42),),
                                        store.patient_key("01017012345"), 8100601, "2026-02-03",
                                        sender_contact=Contact("Kari", "sykepleier", "+47 1234 5678"))])
    mark_sent(store, first.ref, [msg_id_for("e1", 42)])
    second = record_event(store, b"{}", "e2", None)
    store.record_outcomes([EventOutcome(second.ref, "routed", None, None, 1, "4601", (_melding("e2", 42),),
                                        store.patient_key("01017012345"), 8100701, "2026-02-20", ("two-hospitals",))])
    declined = record_event(store, b"{}", "e3", None)
    store.record_outcomes([EventOutcome(declined.ref, "declined", None, "no consent", 2, "4601", (),
                                        store.patient_key("01017012345"), 8100701, "2026-03-01")])
    history = store.kartlegginger(["01017012345", "02027012345"])
    assert [(t.event_id, t.sender_herid, t.performed_on) for t in history["01017012345"]] == [
        ("e2", 8100701, date(2026, 2, 20)), ("e1", 8100601, date(2026, 2, 3))]  # newest first; not the declined
    assert history["01017012345"][1].contact == Contact("Kari", "sykepleier", "+47 1234 5678")
    assert history["01017012345"][0].contact is None
    assert history["02027012345"] == []
    assert last_hospital(history["01017012345"]) == 8100701
    assert [e["event_id"] for e in store.find_events(flag="two-hospitals")] == ["e2"]
    assert [m["event_id"] for m in store.find_messages(flag="two-hospitals")] == ["e2"]
    assert store.find_events(flag="two") == []  # a whole flag, not a part of one
    assert record_event(store, b"{}", "e3", None).status == "declined"  # an end state: a duplicate is only noted
    sp3 = record_event(store, b"{}", "e4", None)  # SP3-SP5 are the kommune's: not the hospitals' history
    store.record_outcomes([EventOutcome(sp3.ref, "routed", None, None, 3, "4601", (), store.patient_key("01017012345"),
                                        8100103, "2026-03-05")])
    assert [t.event_id for t in store.kartlegginger(["01017012345"])["01017012345"]] == ["e2", "e1"]
    for i in range(HISTORY_DEPTH + 5):  # a patient with very many kartlegginger: only the newest are read
        ref = record_event(store, b"{}", f"many-{i}", None).ref
        store.record_outcomes([EventOutcome(ref, "routed", None, None, 1, "4601", (), store.patient_key("03037012345"),
                                            8100601, "2026-01-01")])
    many = store.kartlegginger(["03037012345"])["03037012345"]
    assert len(many) == HISTORY_DEPTH and many[0].event_id == f"many-{HISTORY_DEPTH + 4}"


def test_a_batch_records_new_events_at_once_and_a_repeat_in_it_once(store: SqlStore) -> None:
    from gateway.store import Incoming

    old = record_event(store, b"{}", "old", None)
    stored = store.record_events([Incoming(b"{}", "a", None), Incoming(b"{}", "old", None),
                                  Incoming(b"{}", "b", None), Incoming(b"{}", "a", None)])
    assert [s.status for s in stored] == ["received"] * 4
    assert stored[1].ref == old.ref and stored[0].ref == stored[3].ref != stored[2].ref
    assert (stored[0].attempts, stored[3].attempts) == (1, 2)
    assert sorted(e["event_id"] for e in store.events()) == ["a", "b", "old"]
    assert [h["reason"] for h in store.history("event", str(stored[0].ref))] == [
        None, "delivered again after 'received'"]



def _open_together(target: str, n: int) -> tuple[list[SqlStore], list[str]]:
    import threading

    barrier, stores, errors = threading.Barrier(n), [], []

    def start() -> None:
        barrier.wait()
        try:
            stores.append(open_store(target))
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=start) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return stores, errors


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_gateways_starting_together_on_a_new_database_all_start(backend: str, tmp_path: Path) -> None:
    """Replicas started at once on a fresh database once raced each other's migrations on PostgreSQL."""
    with contextlib.ExitStack() as stack:
        target = (f"sqlite:///{tmp_path / 'race.sqlite3'}" if backend == "sqlite"
                  else stack.enter_context(postgres_database()))
        stores, errors = _open_together(target, 4)
        assert errors == []
        versions = stores[0].db.query("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in versions] == list(range(1, len(migrations()) + 1))
        for s in stores:
            s.close()
