"""Status events from the store's transitions: one per change a hospital hears about, valid against the
contract, with the kommune contact point at routing, never patient data; published again after a crash with
the same ids and bytes, never a new one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from gateway.delivery.bus import MemoryPublisher
from gateway.delivery.consumer import EventHandler
from gateway.delivery.receipts import AppRecTracker
from gateway.delivery.status import StatusPublisher
from gateway.domain.kartlegging import Checks, event_id_of
from gateway.domain.registry import load_register
from gateway.messages.apprec import AppRecError, Status, build_apprec
from gateway.settings import PACKAGED_SCHEMAS
from gateway.store import Incoming, SqlStore, open_store

# The fixtures' dates are fixed: the date checks are off, as in the demo (docs/limits.md).
FIXTURE_CHECKS = Checks(max_past_days=0, future_days=0)
ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "fixtures" / "events"
REGISTER = load_register(ROOT / "fixtures" / "register.json")
SCHEMA = json.loads((PACKAGED_SCHEMAS / "kartlegging.status-1.schema.json").read_text(encoding="utf-8"))


def incoming(name: str) -> Incoming:
    body = (EVENTS / name).read_bytes()
    return Incoming(body, event_id_of(body), None, "application/json")


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    return open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")


def statuses(publisher: MemoryPublisher) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(o.body) for o in publisher.published() if o.exchange == "kartlegging"]


def test_every_change_once_with_contact_point_and_no_patient_data(store: SqlStore) -> None:
    publisher = MemoryPublisher()
    handler = EventHandler(REGISTER, store, publisher, checks=FIXTURE_CHECKS,
                           clock=lambda: datetime(2026, 3, 1, tzinfo=UTC))
    files = ["01-sp1-bergen-brystkreft.json", "81-bad-ukjent-kommune.json", "08-sp1-bergen-reservasjon.json",
             "85-bad-ikke-json.json"]
    handler.handle_batch([incoming(f) for f in files])
    status_pub = MemoryPublisher()
    sp = StatusPublisher(store, status_pub, REGISTER)
    assert sp.publish_pending() > 0
    got = statuses(status_pub)
    for s in got:
        jsonschema.validate(s, SCHEMA)
    by_event: dict[str, list[str]] = {}
    for s in got:
        by_event.setdefault(s["event_id"], []).append(s["state"])
    good = json.loads((EVENTS / files[0]).read_text())
    bad = json.loads((EVENTS / files[1]).read_text())
    objected = json.loads((EVENTS / files[2]).read_text())
    assert by_event[good["event_id"]] == ["routed", "sent"]
    assert by_event[bad["event_id"]] == ["parked"]
    assert by_event[objected["event_id"]] == ["not_shared"]
    assert len(by_event) == 3, "the unreadable event (no event_id) gets no status"
    routed = next(s for s in got if s["state"] == "routed")
    assert routed["contact_point"]["herid"] == 8100101  # Bergen's forvaltningsenhet in the fixture registry
    parked = next(s for s in got if s["state"] == "parked")
    assert parked["reason_code"] == "ROUTING_UNKNOWN_KOMMUNE"
    text = json.dumps(got, ensure_ascii=False)
    for secret in (good["patient"]["fnr"], good["patient"]["family_name"], good["diagnosis"]["text"]):
        assert secret not in text
    assert sp.publish_pending() == 0, "the offset moved: nothing twice"

    # a receipt later: one more status, for the message
    msg = next(m for m in store.messages() if m["to_herid"] == 8100101)
    receipt = build_apprec(bytes(msg["xml"]), Status.AVVIST, (AppRecError("E35", "Pasienten finnes ikke"),))
    AppRecTracker(store, publisher).handle(receipt)
    assert sp.publish_pending() == 1
    rejected = statuses(status_pub)[-1]
    assert (rejected["state"], rejected["message"]["msg_id"]) == ("rejected", msg["msg_id"])


def test_a_crash_before_the_offset_moves_republishes_the_same_statuses(store: SqlStore) -> None:
    handler = EventHandler(REGISTER, store, MemoryPublisher(), checks=FIXTURE_CHECKS,
                           clock=lambda: datetime(2026, 3, 1, tzinfo=UTC))
    handler.handle_batch([incoming("01-sp1-bergen-brystkreft.json")])
    first, second = MemoryPublisher(), MemoryPublisher()
    StatusPublisher(store, first, REGISTER).publish_pending()
    store.db.transaction(lambda tx: tx.execute("UPDATE transitions SET told = NULL"))  # never marked told
    StatusPublisher(store, second, REGISTER).publish_pending()
    assert [o.body for o in first.published()] == [o.body for o in second.published()]
    assert [o.properties["message_id"] for o in first.published()] == \
        [o.properties["message_id"] for o in second.published()]


def test_a_full_pass_asks_to_run_again_soon() -> None:
    """A status backlog drains in small passes between the consumer's batches, not one every interval."""
    from gateway.delivery.policy import FailurePolicy, More, Periodic

    results = iter([More(100), 3])
    entry = Periodic(0.5, lambda: next(results), "status")
    entry.run_if_due(FailurePolicy(), now=10.0)
    assert entry.next_at == 10.0 + entry.behind
    entry.run_if_due(FailurePolicy(), now=10.1)
    assert entry.next_at == 10.6
