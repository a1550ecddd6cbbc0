"""Queue types, broker URL lists and the advice for a queue that exists with another type, without a server.
The broker's refusal texts are the ones RabbitMQ 3.10 sent on this machine (tests/integration checks them live)."""

from __future__ import annotations

import pytest

from gateway.delivery.bus import CLASSIC, Topology, connect, mismatch_advice, parked_reason
from gateway.delivery.consumer import MAX_ATTEMPTS
from gateway.errors import ConfigurationError, Reason
from gateway.settings import SETTINGS, Settings

CLASSIC_WANTED_QUORUM = ("Queue.declare: (406) PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue "
                         "'gateway.kartlegging' in vhost 'prod': received the value 'quorum' of type 'longstr' but "
                         "current is none")
QUORUM_WANTED_CLASSIC = ("Queue.declare: (406) PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue "
                         "'gateway.parked' in vhost '/': received none but current is the value 'quorum' of type "
                         "'longstr'")
LIMIT_CHANGED = ("Queue.declare: (406) PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue "
                 "'gateway.kartlegging' in vhost '/': received the value '20' of type 'signedint' but current is "
                 "the value '50' of type 'signedint'")


def test_broker_urls_take_semicolons_or_commas() -> None:
    s = Settings.from_env({"GATEWAY_BROKER_URL": "amqp://a:5701//, amqp://b:5702//;amqp://c:5703//"})
    assert s.broker_urls == ("amqp://a:5701//", "amqp://b:5702//", "amqp://c:5703//")
    assert Settings.from_env({}).broker_urls == ("amqp://guest:guest@127.0.0.1:5672//",)
    with pytest.raises(ConfigurationError, match="GATEWAY_BROKER_URL"):
        Settings.from_env({"GATEWAY_BROKER_URL": "rabbit-1;rabbit-2"})


def test_queue_type_and_limit_are_checked() -> None:
    s = Settings.from_env({"GATEWAY_QUEUE_TYPE": "quorum", "GATEWAY_DELIVERY_LIMIT": "30"})
    assert (s.queue_type, s.delivery_limit) == ("quorum", 30)
    assert Settings.from_env({}).queue_type == "classic", "a single node stays classic unless told otherwise"
    with pytest.raises(ConfigurationError, match="GATEWAY_QUEUE_TYPE"):
        Settings.from_env({"GATEWAY_QUEUE_TYPE": "mirrored"})
    with pytest.raises(ConfigurationError, match="GATEWAY_DELIVERY_LIMIT"):
        Settings.from_env({"GATEWAY_DELIVERY_LIMIT": "-1"})


def test_the_broker_limit_stays_behind_the_gateways_own() -> None:
    """The broker's limit is the second line: by default it must leave the gateway's own counting room to park
    an event with a readable reason first (the help text names the gateway's limit, so it must be right)."""
    setting = next(s for s in SETTINGS if s.name == "GATEWAY_DELIVERY_LIMIT")
    assert int(setting.default) > 2 * MAX_ATTEMPTS
    assert f"limit of {MAX_ATTEMPTS}" in setting.help


def test_classic_declares_no_arguments_quorum_replicates_and_dead_letters_to_parked() -> None:
    assert CLASSIC.kartlegging_queue().queue_arguments is None
    assert CLASSIC.receiver_queue("8100405_async").queue_arguments is None
    q = Topology("quorum", 50)
    assert q.kartlegging_queue().queue_arguments == {
        "x-queue-type": "quorum", "x-delivery-limit": 50, "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "gateway.parked", "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish"}
    assert q.kartlegging_queue().routing_key == "kartlegging.completed"
    assert q.parked_queue().queue_arguments == {"x-queue-type": "quorum"}
    assert q.receiver_queue("8100405_async").queue_arguments == {"x-queue-type": "quorum"}
    assert Topology("quorum", 0).kartlegging_queue().queue_arguments == {"x-queue-type": "quorum"}


def test_advice_names_the_queue_its_type_and_the_command() -> None:
    advice = mismatch_advice(CLASSIC_WANTED_QUORUM, Topology("quorum", 50))
    assert advice is not None
    assert "'gateway.kartlegging'" in advice and "exists as a classic queue" in advice
    assert "GATEWAY_QUEUE_TYPE=classic" in advice
    assert "rabbitmqctl -p prod delete_queue gateway.kartlegging --if-empty" in advice
    back = mismatch_advice(QUORUM_WANTED_CLASSIC, CLASSIC)
    assert back is not None and "exists as a quorum queue" in back and "GATEWAY_QUEUE_TYPE=quorum" in back
    limit = mismatch_advice(LIMIT_CHANGED, Topology("quorum", 20), existing="quorum")
    assert limit is not None and "x-delivery-limit = 50" in limit and "GATEWAY_DELIVERY_LIMIT=20" in limit
    dlx_first = CLASSIC_WANTED_QUORUM.replace("'x-queue-type'", "'x-dead-letter-exchange'")
    found = mismatch_advice(dlx_first, Topology("quorum", 50), existing="classic")
    assert found is not None and "exists as a classic queue" in found, "the probed type decides, not the first arg"
    assert mismatch_advice("NOT_FOUND - no queue 'x' in vhost '/'", CLASSIC) is None


def test_parked_reason_reads_the_gateways_headers_and_the_brokers_dead_letter() -> None:
    assert parked_reason({"x-reason-code": "EVENT_NOT_JSON", "x-reason": "not JSON"}) == ("EVENT_NOT_JSON", "not JSON")
    code, text = parked_reason({"x-first-death-reason": "delivery_limit", "x-first-death-queue": "gateway.kartlegging",
                                "x-death": [{"reason": "delivery_limit", "queue": "gateway.kartlegging"}]})
    assert code == Reason.BROKER_DELIVERY_LIMIT and "gateway.kartlegging" in text
    assert parked_reason({})[0] == Reason.INTERNAL_ERROR


def test_several_urls_become_kombu_alternates_tried_in_turn() -> None:
    conn = connect(["amqp://u:p@a:5701/v", "amqp://u:p@b:5702/v", "amqp://u:p@c:5703/v"], heartbeat=5)
    assert (conn.hostname, conn.port) == ("a", 5701)
    assert len(conn.alt) == 3
    seen = []
    for _ in range(3):  # what kombu does after each failed attempt
        conn.maybe_switch_next()
        seen.append((conn.hostname, conn.port, conn.virtual_host))
    assert seen == [("b", 5702, "v"), ("c", 5703, "v"), ("a", 5701, "v")]
    clone = conn.clone()  # what kombu's ConsumerMixin reconnects with: the whole list goes along
    assert len(clone.alt) == 3 and clone.heartbeat == 5
