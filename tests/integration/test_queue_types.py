"""Queue types on the real single node: quorum queues with the delivery limit dead-lettering to gateway.parked,
a queue that exists with another type refused with the operator's command, a receiver's classic queue used as
it is, and a broker URL list whose first node is down. Quorum tests get a vhost of their own, because the
session vhost already holds classic queues (the Rabbit fixture's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from gateway.delivery.bus import (
    AmqpPublisher,
    Outgoing,
    Topology,
    connect,
    declare_topology,
    parked_reason,
)
from gateway.errors import ConfigurationError, Reason
from tests.conftest import FIXTURES, ROOT, Rabbit, fixture_herids

QUORUM = Topology("quorum", 2)


@pytest.fixture
def quorum_vhost(broker_url: str) -> Iterator[str]:
    """A vhost of this test's own (made and deleted with rabbitmqctl, as the session vhost is)."""
    vhost = f"gateway-qq-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    user = urlparse(broker_url).username or "guest"
    subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"], check=True,
                   capture_output=True, timeout=60)
    try:
        yield urlparse(broker_url)._replace(path="/" + vhost).geturl()
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], check=False, capture_output=True, timeout=120)


def test_past_the_delivery_limit_the_broker_parks_the_event_with_a_readable_reason(quorum_vhost: str) -> None:
    with connect(quorum_vhost) as conn:
        declare_topology(conn, QUORUM, "8199999_async")
    rabbit = Rabbit(quorum_vhost, QUORUM)
    try:
        rabbit.publish_event(b'{"event_id": "poison"}', "poison")
        deliveries = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            method, _props, _body = rabbit.channel.basic_get("gateway.kartlegging")
            if method is None:
                if rabbit.channel.queue_declare("gateway.parked", passive=True).method.message_count:
                    break
                rabbit.connection.sleep(0.05)
                continue
            deliveries += 1
            rabbit.channel.basic_nack(method.delivery_tag, requeue=True)  # what a crash before the ack does
        assert deliveries == QUORUM.delivery_limit + 1
        parked = rabbit.take("gateway.parked", 1, timeout=5)
        assert [d.body for d in parked] == [b'{"event_id": "poison"}'], "the body is kept unchanged"
        code, reason = parked_reason(parked[0].headers)
        assert code == Reason.BROKER_DELIVERY_LIMIT and "gateway.kartlegging" in reason
    finally:
        rabbit.close()


def test_a_gateway_asked_for_quorum_refuses_a_classic_queue_and_says_what_to_do(rabbit: Rabbit,
                                                                               gateway_env: dict[str, str]) -> None:
    """The session vhost holds a classic gateway.kartlegging (with an event in it): no silent redeclaration."""
    rabbit.publish_event(b"{}", "kept")
    env = {**gateway_env, "GATEWAY_QUEUE_TYPE": "quorum"}
    done = subprocess.run([sys.executable, "-m", "gateway", "run"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    vhost = urlparse(rabbit.url).path[1:]
    assert "exists as a classic queue" in done.stderr
    assert f"rabbitmqctl -p {vhost} delete_queue gateway.kartlegging --if-empty" in done.stderr
    assert "GATEWAY_QUEUE_TYPE=classic" in done.stderr
    assert rabbit.channel.queue_declare("gateway.kartlegging", passive=True).method.message_count == 1


def test_declare_topology_raises_configuration_error_for_a_quorum_queue_asked_as_classic(quorum_vhost: str) -> None:
    with connect(quorum_vhost) as conn:
        declare_topology(conn, QUORUM)
        with pytest.raises(ConfigurationError, match="exists as a quorum queue"):
            declare_topology(conn, Topology("classic", 0))
        with pytest.raises(ConfigurationError, match="GATEWAY_DELIVERY_LIMIT=7"):
            declare_topology(conn, Topology("quorum", 7))


def test_a_receivers_classic_queue_is_used_as_it_is_with_a_warning(quorum_vhost: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    classic = Rabbit(quorum_vhost)  # gateway.kartlegging etc. classic here; the receiver's queue too
    classic.declare("8100405_async")
    publisher = AmqpPublisher(quorum_vhost, topology=QUORUM)
    try:
        publisher.publish_batch([Outgoing("8100405_async", b"<a/>", {"message_id": "m1"}),
                                 Outgoing("8101201_async", b"<b/>", {"message_id": "m2"})])
        assert [d.body for d in classic.take("8100405_async", 1)] == [b"<a/>"], "nothing lost to the refusal"
        _method, _props, body = classic.channel.basic_get("8101201_async", auto_ack=True)
        assert body == b"<b/>", "the queue the gateway made itself is a quorum one, and got its message"
    finally:
        publisher.close()
        classic.close()
    assert "queue.type_mismatch" in capsys.readouterr().out


def test_the_gateway_runs_on_quorum_queues_and_skips_a_dead_first_url(quorum_vhost: str, spawn: Any,
                                                                     gateway_env: dict[str, str]) -> None:
    """The first URL refuses (nothing listens on port 1): the gateway goes on to the next by itself."""
    u = urlparse(quorum_vhost)
    dead = u._replace(netloc=f"{u.username}:{u.password}@127.0.0.1:1").geturl()
    env = {**gateway_env, "GATEWAY_BROKER_URL": f"{dead},{quorum_vhost}", "GATEWAY_QUEUE_TYPE": "quorum",
           "GATEWAY_DELIVERY_LIMIT": "20"}
    rabbit = Rabbit(quorum_vhost, Topology("quorum", 20))
    try:
        g = spawn(env)
        g.start(rabbit)
        body = (FIXTURES / "events" / "01-sp1-bergen-brystkreft.json").read_bytes()
        rabbit.publish_event(body, json.loads(body)["event_id"])
        deadline = time.monotonic() + 30
        arrived = 0
        while not arrived and time.monotonic() < deadline:
            for herid in fixture_herids():
                rabbit.declare(f"{herid}_async")
                arrived += rabbit.channel.queue_declare(f"{herid}_async", passive=True).method.message_count
            time.sleep(0.2)
        assert arrived >= 1, "the event went out through the quorum queues"
        assert g.stop() == 0
        assert '"queue_type": "quorum"' in g.log_text()
    finally:
        rabbit.close()
