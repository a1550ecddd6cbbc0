"""The batch logic without a server: a real SQLite store and a publisher that only records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.delivery.bus import MemoryPublisher
from gateway.delivery.consumer import MAX_ATTEMPTS, EventHandler
from gateway.domain.kartlegging import event_id_of
from gateway.domain.registry import load_register
from gateway.errors import PublishFailed
from gateway.store import Incoming, SqlStore, open_store

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "fixtures" / "events"
REGISTER = load_register(ROOT / "fixtures" / "register.json")


@pytest.fixture
def handler(tmp_path: Path) -> EventHandler:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    return EventHandler(REGISTER, store, MemoryPublisher(),
                        clock=lambda: datetime(2026, 3, 10, tzinfo=UTC))


def delivery(name: str) -> Incoming:
    body = (EVENTS / name).read_bytes()
    return Incoming(body, event_id_of(body), None, "application/json")


def test_a_batch_is_recorded_published_once_and_marked(handler: EventHandler) -> None:
    results = handler.handle_batch([delivery("01-sp1-bergen-brystkreft.json"), delivery("81-bad-ukjent-kommune.json"),
                                    delivery("08-sp1-bergen-reservasjon.json")])
    assert [r.status for r in results] == ["sent", "parked", "not_shared"]
    publisher: MemoryPublisher = handler.publisher  # type: ignore[assignment]
    assert len(publisher.batches) == 1, "one broker transaction for the whole batch"
    queues = sorted(o.queue for o in publisher.batches[0])
    assert queues == ["8100101_async", "8100901_async", "gateway.parked"]
    assert {e["status"] for e in handler.store.events()} == {"sent", "parked", "not_shared"}


def test_a_failed_publish_leaves_the_batch_to_be_tried_again(handler: EventHandler) -> None:
    publisher: MemoryPublisher = handler.publisher  # type: ignore[assignment]
    publisher.fail = True
    with pytest.raises(PublishFailed):
        handler.handle_batch([delivery("01-sp1-bergen-brystkreft.json")])
    store: SqlStore = handler.store  # type: ignore[assignment]
    assert store.events()[0]["status"] == "routed"
    built = {m["msg_id"]: bytes(m["xml"]) for m in store.messages()}
    publisher.fail = False
    again = handler.handle_batch([delivery("01-sp1-bergen-brystkreft.json")])
    assert again[0].status == "sent"
    resent = {o.properties["message_id"]: o.body for o in publisher.batches[0]}
    assert resent == built, "the stored messages go out again byte for byte"
    assert handler.handle_batch([delivery("01-sp1-bergen-brystkreft.json")])[0].status == "sent"
    assert len(publisher.batches) == 1, "a duplicate of a sent event publishes nothing"


def test_an_event_that_keeps_coming_back_is_parked(handler: EventHandler) -> None:
    publisher: MemoryPublisher = handler.publisher  # type: ignore[assignment]
    publisher.fail = True
    body = json.loads((EVENTS / "02-sp2-trondheim-lungekreft.json").read_text(encoding="utf-8"))
    body["event_id"] = "11111111-2222-4333-8444-555555555555"
    d = Incoming(json.dumps(body).encode(), body.get("event_id"), None, "application/json")
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(PublishFailed):
            handler.handle_batch([d])
    publisher.fail = False
    result = handler.handle_batch([d])[0]
    assert (result.status, result.reason_code) == ("parked", "DELIVERY_RETRIES_EXHAUSTED")


def test_two_hospitals_in_one_batch_and_in_a_rebuilt_message(handler: EventHandler) -> None:
    """Events of one batch see each other; a message rebuilt by an operator keeps the two-hospitals note."""
    from lxml import etree

    from gateway.operations.replay import execute, plan

    results = handler.handle_batch([delivery("01-sp1-bergen-brystkreft.json"),
                                    delivery("15-sp1-bergen-to-sykehus.json")])
    assert [r.flags for r in results] == [(), ("two-hospitals",)]
    store = handler.store
    flagged = store.find_messages(flag="two-hospitals")
    assert len(flagged) == 2
    kommune = next(m for m in flagged if m["role"] == "kommune")
    execute(plan(store, kommune["msg_id"], new_conversation=True), store, handler.publisher,  # type: ignore[arg-type]
            REGISTER, operator="test", reason="ny samtale")
    rebuilt = handler.publisher.batches[-1][0]  # type: ignore[attr-defined]
    text = "".join(etree.fromstring(rebuilt.body).xpath("//*[local-name()='TekstNotatInnhold']")[0].itertext())
    assert "Merk: pasienten fikk også behovskartlegging ved samhandlingspunkt 1 fra Kreftavdelingen" in text


def test_one_commit_a_batch_is_not_fsynced_and_a_durable_one_always_follows(handler: EventHandler) -> None:
    """record_events commits without an fsync (docs/guarantees.md, "fsyncs"); a batch with anything new then
    commits durably before it publishes and before it is acked, and the connection is back at FULL."""
    store: SqlStore = handler.store  # type: ignore[assignment]
    kinds: list[bool] = []
    real = store.db.transaction

    def spy(work, *, durable=True):  # type: ignore[no-untyped-def]
        kinds.append(durable)
        return real(work, durable=durable)

    store.db.transaction = spy  # type: ignore[method-assign]
    handler.handle_batch([delivery("01-sp1-bergen-brystkreft.json"), delivery("81-bad-ukjent-kommune.json")])
    assert kinds[0] is False and kinds[1:] and all(kinds[1:]), kinds
    assert store.db.query("PRAGMA synchronous")[0]["synchronous"] == 2, "FULL again after the relaxed commit"


def test_the_status_pass_starts_with_a_durable_write(handler: EventHandler) -> None:
    store: SqlStore = handler.store  # type: ignore[assignment]
    handler.handle_batch([delivery("01-sp1-bergen-brystkreft.json")])
    before = store.db.query("PRAGMA user_version")[0]["user_version"]
    store.tell_statuses(lambda changes, facts: None)
    assert store.db.query("PRAGMA user_version")[0]["user_version"] == before + 1
