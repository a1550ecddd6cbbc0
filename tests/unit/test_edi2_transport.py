"""The EDI 2.0 transport inside the gateway, without a network: the consumer stores EDI 2.0 messages and
publishes only the AMQP ones; the outbox posts the stored bytes to the stand-in; the inbox brings the
receiver's AppRec back to the tracker. Receivers of both kinds in one batch."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.delivery.bus import MemoryPublisher
from gateway.delivery.consumer import EventHandler
from gateway.delivery.edi2.transport import Edi2Inbox, Edi2Outbox
from gateway.delivery.receipts import AppRecTracker
from gateway.domain.kartlegging import Checks, event_id_of
from gateway.domain.registry import EDI2, MemoryRegister, load_register
from gateway.errors import Reason
from gateway.standin.local import LocalMeldingstjener, local_meldingstjener
from gateway.standin.state import FailRule, ReceiverBehaviour
from gateway.store import Incoming, SqlStore, open_store

# The fixtures' dates are fixed: the date checks are off, as in the demo (docs/limits.md).
FIXTURE_CHECKS = Checks(max_past_days=0, future_days=0)
ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "fixtures" / "events"
EVENT = "02-sp2-trondheim-lungekreft.json"
GP = 8101001  # the event's fastlege, made an EDI receiver here


def register_with_edi_gp(edi_herids: set[int]) -> MemoryRegister:
    register = load_register(ROOT / "fixtures" / "register.json")
    for herid in edi_herids:
        register.parties[herid] = dataclasses.replace(register.parties[herid], edi_address=f"m{herid}@test.edi")
    return register


def incoming(name: str) -> Incoming:
    body = (EVENTS / name).read_bytes()
    return Incoming(body, event_id_of(body), None, "application/json")


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    return open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")


def world(tmp_path: Path, **receivers: ReceiverBehaviour) -> LocalMeldingstjener:
    return local_meldingstjener([8100701, 8100700], tmp_path / "key.jwk.json",
                                receivers={int(k[1:]): v for k, v in receivers.items()})


def test_mixed_batch_amqp_now_edi2_by_the_outbox_then_acknowledged(store: SqlStore, tmp_path: Path) -> None:
    publisher = MemoryPublisher()
    handler = EventHandler(register_with_edi_gp({GP}), store, publisher, checks=FIXTURE_CHECKS,
                           clock=lambda: datetime(2026, 3, 1, tzinfo=UTC))
    [handled] = handler.handle_batch([incoming(EVENT)])
    rows = {r["to_herid"]: r for r in store.messages(handled.event_ref)}
    assert rows[GP]["transport"] == EDI2 and rows[GP]["status"] == "built"
    amqp = {o.properties["message_id"] for o in publisher.published()}
    assert rows[GP]["msg_id"] not in amqp and amqp == {r["msg_id"] for h, r in rows.items() if h != GP}
    assert handled.status == "routed", "acked, but not sent until the EDI 2.0 message is out"
    assert store.event(str(handled.event_ref))["status"] == "routed"  # type: ignore[index]

    local = world(tmp_path)
    run = Edi2Outbox(store, local.msh).send_pending()
    assert (run.sent, run.parked, run.error) == (1, 0, None)
    posted = [m for m in local.standin.state.messages.values() if not m.is_app_rec]
    assert len(posted) == 1 and posted[0].msg_id == rows[GP]["msg_id"]
    assert posted[0].sha256 == hashlib.sha256(rows[GP]["xml"]).hexdigest(), "the stored bytes"
    assert store.message(rows[GP]["msg_id"])["status"] == "sent"  # type: ignore[index]
    assert store.event(str(handled.event_ref))["status"] == "sent"  # type: ignore[index]
    assert Edi2Outbox(store, local.msh).send_pending().sent == 0, "nothing is posted twice"

    tracker = AppRecTracker(store, publisher)
    inbox = Edi2Inbox(local.msh, [8100701], lambda doc, _id: tracker.handle(doc))
    assert inbox.poll().read == 1
    assert store.message(rows[GP]["msg_id"])["status"] == "acknowledged"  # type: ignore[index]
    assert inbox.poll().read == 0, "marked read only after it was handled"


def test_rejected_apprec_through_the_api_ends_rejected_with_its_texts(store: SqlStore, tmp_path: Path) -> None:
    handler = EventHandler(register_with_edi_gp({GP}), store, MemoryPublisher(), checks=FIXTURE_CHECKS)
    [handled] = handler.handle_batch([incoming(EVENT)])
    local = world(tmp_path, h8101001=ReceiverBehaviour("avvist", "E35"))
    Edi2Outbox(store, local.msh).send_pending()
    tracker = AppRecTracker(store, MemoryPublisher())
    Edi2Inbox(local.msh, [8100701], lambda doc, _id: tracker.handle(doc)).poll()
    row = next(r for r in store.messages(handled.event_ref) if r["to_herid"] == GP)
    message = store.message(row["msg_id"])
    assert message is not None and message["status"] == "rejected"
    assert "E35" in message["apprec_errors"]


def test_a_4xx_parks_the_message_a_5xx_waits(store: SqlStore, tmp_path: Path) -> None:
    handler = EventHandler(register_with_edi_gp({GP}), store, MemoryPublisher(), checks=FIXTURE_CHECKS)
    [handled] = handler.handle_batch([incoming(EVENT)])
    msg_id = next(r["msg_id"] for r in store.messages(handled.event_ref) if r["to_herid"] == GP)
    local = world(tmp_path)
    local.standin.config.faults.rules.append(FailRule(status=503, times=1, path="/Messages", method="POST"))
    now = [0.0]
    outbox = Edi2Outbox(store, local.msh, clock=lambda: now[0])
    run = outbox.send_pending()
    assert run.sent == 0 and run.error and store.message(msg_id)["status"] == "built"  # type: ignore[index]
    assert outbox.send_pending().error is None and outbox.send_pending().sent == 0, "waits for its backoff"
    now[0] = 100.0
    assert outbox.send_pending().sent == 1

    vikar = 8101002  # the substitute GP of event 05, an EDI receiver too
    second_handler = EventHandler(register_with_edi_gp({GP, vikar}), store, MemoryPublisher(), checks=FIXTURE_CHECKS)
    [second] = second_handler.handle_batch([incoming("05-sp4-trondheim-kommune-vikar.json")])
    local.standin.config.faults.rules.append(FailRule(status=400, times=1, path="/Messages", method="POST"))
    assert outbox.send_pending().parked == 1
    [parked] = store.find_messages(status="parked")
    assert parked["to_herid"] == vikar and parked["event_ref"] == second.event_ref
    message = store.message(parked["msg_id"])
    assert message is not None and message["reason_code"] == Reason.EDI2_REJECTED and "400" in message["reason"]
