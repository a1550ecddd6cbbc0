"""Faults on a real three-node cluster with quorum queues: two gateway replicas (``python -m gateway run``) on one
PostgreSQL store, hospitals publishing all along, and one node lost in three ways: its Erlang VM killed with
SIGKILL while it leads gateway.kartlegging (then started again), a minority node stopped for a while, and a node
cut off from the other two by a network partition while clients can still reach it. Afterwards every event is in
an end state, every stored message reached its receiver, no MsgId came with two contents, every parked event is on
gateway.parked, and the replica that was connected to the lost node found a surviving one by itself (each replica
is given all three URLs, in its own order)."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import psycopg
import pytest

from gateway.delivery.bus import Topology
from tests.cluster.conftest import NODES, Cluster
from tests.conftest import FIXTURES, GatewayProcess, Meldingstjener, Rabbit, pika_parameters, postgres_database
from tests.integration.test_faults import check_nothing_lost, make_events, publish_all, wait_until_settled

pytestmark = pytest.mark.cluster

QUORUM = Topology("quorum", 50)
# How long a minority node stays stopped. A graceful stop is seen at once (connections close, Raft members
# leave), so the figure only has to outlast the replicas' reconnecting and a few batches; 30 s is three times
# the nodes' net_ticktime. GATEWAY_TEST_CLUSTER_OUTAGE_S=60 runs the full minute of the issue.
OUTAGE_S = float(os.environ.get("GATEWAY_TEST_CLUSTER_OUTAGE_S", "30"))
BACKLOG = 1200
STREAM = 1200
RATE = 60.0  # events a second published during the fault


class Feeder(threading.Thread):
    """A hospital publishing at a steady rate with confirms, on its own connection to a node the fault spares.
    Only confirmed events count as published; a failed publish is tried again (the gateway dedups by event_id)."""

    def __init__(self, url: str, events: list[tuple[str | None, bytes]]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.events = events
        self.published: list[tuple[str | None, bytes]] = []
        self.errors = 0

    def run(self) -> None:
        channel = None
        for event in self.events:
            started = time.monotonic()
            while True:
                try:
                    if channel is None:
                        channel = pika.BlockingConnection(pika_parameters(self.url)).channel()
                        channel.confirm_delivery()
                    channel.basic_publish("kartlegging", "kartlegging.completed", event[1], pika.BasicProperties(
                        content_type="application/json", delivery_mode=2, message_id=event[0]))
                    self.published.append(event)
                    break
                except pika.exceptions.AMQPError:
                    self.errors += 1
                    channel = None
                    time.sleep(0.5)
            time.sleep(max(0.0, 1 / RATE - (time.monotonic() - started)))


def replica_env(urls: str, store_url: str, meldingstjener: Meldingstjener) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    # The broker cluster is under test here, not EDI 2.0: the replicas get the fixture registry without EDI
    # addresses, so every receiver reads AMQP (EDI 2.0 under faults: tests/integration/test_edi2_gateway.py).
    registry = json.loads((FIXTURES / "register.json").read_text(encoding="utf-8"))
    for party in registry["parties"]:
        party.pop("edi_address", None)
    amqp_only = Path(tempfile.gettempdir()) / f"gateway-cluster-register-{os.getpid()}.json"
    amqp_only.write_text(json.dumps(registry), encoding="utf-8")
    env.update(GATEWAY_BROKER_URL=urls, GATEWAY_QUEUE_TYPE="quorum", GATEWAY_STORE_URL=store_url,
               GATEWAY_REGISTRY=str(amqp_only), GATEWAY_LOG_FORMAT="json", GATEWAY_PREFETCH="50",
               GATEWAY_HEARTBEAT_SECONDS="5", GATEWAY_HEALTH_PORT="0",
               # the fixtures' synthetic numbers and fixed dates, as in gateway_env; one secret for both replicas
               GATEWAY_SYNTHETIC_FNR="accept", GATEWAY_MAX_PAST_DAYS="0", GATEWAY_MAX_FUTURE_DAYS="0",
               GATEWAY_SECRET_FILE=str(Path(tempfile.gettempdir()) / f"gateway-cluster-{os.getpid()}.secret"))
    return env


def pg_statuses(url: str) -> dict[str, str]:
    with psycopg.connect(url) as db:
        return {r[0]: r[1] for r in db.execute("SELECT event_id, status FROM events WHERE event_id IS NOT NULL")}


def settled(url: str) -> int:
    with psycopg.connect(url) as db:
        return int(db.execute("SELECT count(*) FROM events WHERE status IN "
                              "('sent', 'not_shared', 'declined', 'parked')").fetchone()[0])


def run_through(cluster: Cluster, vhost: str, spawn: Any, meldingstjener: Meldingstjener, *, declare_on: int,
                client: int,
                firsts: Callable[[int], tuple[int, int]], fault: Callable[[int, str], None]) -> list[GatewayProcess]:
    """Declare the queues through ``declare_on`` (its node becomes the inbound queue's first leader), publish a
    backlog, start two replicas (URL lists starting at ``firsts(leader)``), feed more events from ``client``,
    inflict ``fault(leader, store_url)`` mid-run, then check that nothing was lost."""
    Rabbit(cluster.url(declare_on, vhost), QUORUM).close()
    leader = cluster.leader(vhost)
    rabbit = Rabbit(cluster.url(client, vhost), QUORUM)
    rabbit.meldingstjener = meldingstjener
    events = make_events(BACKLOG + STREAM)
    backlog, stream = events[:BACKLOG], events[BACKLOG:]
    with postgres_database() as store_url:
        try:
            publish_all(rabbit, backlog)
            replicas = [spawn(replica_env(cluster.urls(vhost, first), store_url, meldingstjener), f"replica-{i}.log")
                        for i, first in enumerate(firsts(leader))]
            for r in replicas:
                r.start(rabbit, timeout=60)
            deadline = time.monotonic() + 60
            while rabbit.consumer_count("gateway.kartlegging") < 2:
                assert time.monotonic() < deadline, "both replicas consume"
                time.sleep(0.2)
            feeder = Feeder(cluster.url(client, vhost), stream)
            feeder.start()
            while settled(store_url) < BACKLOG // 4:  # mid-run: the replicas are busy
                time.sleep(0.1)
            fault(leader, store_url)
            feeder.join(timeout=STREAM / RATE + 120)
            assert not feeder.is_alive(), "the hospital could go on publishing through a surviving node"
            published = backlog + feeder.published
            wait_until_settled(rabbit, lambda: pg_statuses(store_url), published, timeout=240)
            for r in replicas:
                assert r.proc is not None and r.proc.poll() is None, f"a replica died:\n{r.log_text()[-3000:]}"
                assert r.stop() == 0
            with psycopg.connect(store_url) as db:
                stored = {row[0]: row[1] for row in db.execute("SELECT msg_id, status FROM messages")}
            check_nothing_lost(rabbit, published, pg_statuses(store_url), stored)
            print(f"leader gwc{leader}; published {len(published)}, feeder errors {feeder.errors}")
        finally:
            rabbit.close()
    return replicas


def others(*nodes: int) -> list[int]:
    return [n for n in NODES if n not in nodes]


def test_the_leader_of_the_inbound_queue_killed_and_brought_back(cluster: Cluster, vhost: str, spawn: Any,
                                                                 meldingstjener: Meldingstjener) -> None:
    killed: list[int] = []

    def fault(leader: int, _store: str) -> None:
        cluster.kill(leader)
        killed.append(leader)
        time.sleep(5)
        cluster.start_node(leader)

    replicas = run_through(cluster, vhost, spawn, meldingstjener, declare_on=1, client=2,
                           firsts=lambda leader: (leader, others(leader, 2)[0]), fault=fault)
    assert killed == [1]
    assert '"broker.reconnected"' in replicas[0].log_text(), "the replica on the killed node moved by itself"
    cluster.await_all()
    assert cluster.leader(vhost) in NODES


def test_a_minority_node_stopped_for_a_while(cluster: Cluster, vhost: str, spawn: Any,
                                             meldingstjener: Meldingstjener) -> None:
    stopped: list[int] = []

    def fault(leader: int, _store: str) -> None:
        victim = others(leader, 3)[0]  # neither the leader nor the feeding client's node
        stopped.append(victim)
        cluster.stop_app(victim)
        time.sleep(OUTAGE_S)
        cluster.start_app(victim)

    replicas = run_through(cluster, vhost, spawn, meldingstjener, declare_on=1, client=3,
                           firsts=lambda leader: (leader, others(leader, 3)[0]), fault=fault)
    assert stopped == [2]
    assert '"broker.reconnected"' in replicas[1].log_text(), "the replica on the stopped node moved by itself"


def test_a_node_partitioned_from_the_other_two(cluster: Cluster, vhost: str, spawn: Any,
                                               meldingstjener: Meldingstjener, tmp_path: Path) -> None:
    """gwc3 leads the inbound queue and is cut off from gwc1 and gwc2 (the host still reaches it): the majority
    elects a new leader, pause_minority makes gwc3 stop serving clients, the replica connected to it goes on
    through another node; after the heal gwc3 rejoins and catches up."""
    def fault(leader: int, _store: str) -> None:
        assert leader == 3
        cluster.partition()
        try:
            time.sleep(25)
            assert cluster.leader(vhost) in (1, 2), "the majority leads the queue during the partition"
        finally:
            cluster.heal()

    replicas = run_through(cluster, vhost, spawn, meldingstjener, declare_on=3, client=1,
                           firsts=lambda leader: (2, 3), fault=fault)
    assert '"broker.reconnected"' in replicas[1].log_text(), "the replica on the cut-off node moved by itself"
