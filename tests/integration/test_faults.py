"""Fault tests on real processes: the gateway killed with SIGKILL mid-work, RabbitMQ restarted
mid-run, the store unavailable for a while. Every event must end sent, not_shared, declined or parked; no
MsgId may reach a receiver twice except as an identical re-send; nothing is lost."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import EDI, FIXTURES, Meldingstjener, Rabbit, fixture_herids, postgres_database

END_STATES = {"sent", "not_shared", "declined", "parked"}
NS = uuid.UUID("0b7e1c2a-5d4f-4a8e-9f31-7c2d6e8a9b10")


def make_events(n: int) -> list[tuple[str | None, bytes]]:
    """n events cycled from the fixtures (good and bad), each with its own event_id."""
    sources = sorted((FIXTURES / "events").glob("*.json"))
    out: list[tuple[str | None, bytes]] = []
    for i in range(n):
        raw = sources[i % len(sources)].read_bytes()
        try:
            event = json.loads(raw)
        except ValueError:
            out.append((None, raw))
            continue
        event["event_id"] = str(uuid.uuid5(NS, str(i)))
        out.append((event["event_id"], json.dumps(event).encode()))
    return out


def publish_all(rabbit: Rabbit, events: list[tuple[str | None, bytes]]) -> None:
    for event_id, body in events:
        rabbit.publish_event(body, event_id)


def sqlite_rows(env: dict[str, str], query: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(env["GATEWAY_STORE_URL"].removeprefix("sqlite:///"), timeout=30)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def sqlite_statuses(env: dict[str, str]) -> dict[str, str]:
    return {r["event_id"]: r["status"] for r in sqlite_rows(env, "SELECT event_id, status FROM events "
                                                                 "WHERE event_id IS NOT NULL")}


def wait_until_settled(rabbit: Rabbit, statuses: Any, events: list[tuple[str | None, bytes]],
                       timeout: float) -> None:
    """Until every published event is in an end state in the store and the input queue is empty."""
    wanted = {i for i, _ in events if i is not None}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = rabbit.channel.queue_declare("gateway.kartlegging", passive=True).method.message_count
        try:
            done = {i for i, status in statuses().items() if status in END_STATES}
        except (sqlite3.Error, psycopg.Error):
            done = set()
        if waiting == 0 and wanted <= done:
            time.sleep(1.0)  # let the last acks and any parked copies of broken bodies land
            return
        time.sleep(0.5)
    try:
        now = statuses()
    except (sqlite3.Error, psycopg.Error):
        now = {}
    left: dict[str, int] = defaultdict(int)
    for i in wanted:
        left[now.get(i, "not in the store")] += 1
    waiting = rabbit.channel.queue_declare("gateway.kartlegging", passive=True).method.message_count
    raise AssertionError(f"the gateway did not settle in time: {waiting} waiting on the queue; events by state "
                         f"{dict(left)}")


def drain(rabbit: Rabbit, queue: str, *, keep: bool = False) -> list[Any]:
    """Everything on a queue; with ``keep`` the messages go back afterwards (a peek)."""
    rabbit.declare(queue)
    got = []
    while True:
        method, props, body = rabbit.channel.basic_get(queue, auto_ack=not keep)
        if method is None:
            break
        got.append((props, body))
    if keep:
        rabbit.channel.basic_recover(requeue=True)
    return got


def check_nothing_lost(rabbit: Rabbit, events: list[tuple[str | None, bytes]], statuses: dict[str, str],
                       stored_messages: dict[str, str]) -> None:
    ids = {i for i, _ in events if i is not None}
    assert set(statuses) >= ids, "every event is in the store"
    assert {statuses[i] for i in ids} <= END_STATES, "every event ended sent, not_shared or parked"
    delivered: dict[str, set[bytes]] = defaultdict(set)
    # a message to a party the gateway serves is read from its queue and handed on on gateway.inbound (issue 13)
    for queue in [*(f"{herid}_async" for herid in fixture_herids()), "gateway.inbound"]:
        for props, body in drain(rabbit, queue):
            delivered[props.message_id].add(body)
    # the EDI receivers' messages went through the Meldingstjener stand-in
    for herid in EDI:
        for d in rabbit.take_for(herid, 10**6, timeout=0):
            delivered[d.properties.message_id].add(d.body)
    missing = set(stored_messages) - set(delivered)
    assert not missing, f"{len(missing)} stored messages never arrived, e.g. {sorted(missing)[:3]}"
    assert set(delivered) <= set(stored_messages), "a message arrived that the store does not know"
    assert all(len(bodies) == 1 for bodies in delivered.values()), "a MsgId came twice with different content"
    assert set(stored_messages.values()) <= {"sent", "acknowledged"}, "acknowledged: an EDI receiver's AppRec"
    parked = drain(rabbit, "gateway.parked")
    parked_ids = {p.headers.get("x-event-id") for p, _ in parked}
    assert {i for i in ids if statuses[i] == "parked"} <= parked_ids, "every parked event is on gateway.parked"
    assert any(p.headers.get("x-reason-code") == "EVENT_NOT_JSON" for p, _ in parked)


def kill_repeatedly(g: Any, rabbit: Rabbit, rng: random.Random, times: int, low: float, high: float) -> int:
    """SIGKILL the gateway ``times`` times at random moments (``low``–``high`` s apart), starting it again each
    time; returns how often it was still running to be killed."""
    kills = 0
    for _ in range(times):
        time.sleep(rng.uniform(low, high))
        assert g.proc is not None
        if g.proc.poll() is not None:
            break
        g.proc.kill()
        g.proc.wait()
        kills += 1
        g.start(rabbit)
    return kills


def test_kill_9_at_random_points(rabbit: Rabbit, gateway_env: dict[str, str], tmp_path: Path, spawn: Any) -> None:
    rng = random.Random(20261124)
    events = make_events(5000)
    publish_all(rabbit, events)
    env = {**gateway_env, "GATEWAY_PREFETCH": "200"}
    g = spawn(env, "g.log")
    g.start(rabbit)
    kills = kill_repeatedly(g, rabbit, rng, 5, 0.3, 1.5)
    assert kills >= 3, "the gateway should still have been working when it was killed"
    wait_until_settled(rabbit, lambda: sqlite_statuses(env), events, timeout=180)
    assert g.stop() == 0
    statuses = sqlite_statuses(env)
    stored = {r["msg_id"]: r["status"] for r in sqlite_rows(env, "SELECT msg_id, status FROM messages")}
    check_nothing_lost(rabbit, events, statuses, stored)
    resends = sqlite_rows(env, "SELECT count(*) FROM transitions WHERE reason = 'delivered again: re-send'")[0][0]
    print(f"kills: {kills}, events re-sent after a kill: {resends}")


@pytest.mark.destructive
@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl on this machine")
def test_rabbitmq_restarted_mid_run(gateway_env: dict[str, str], broker_url: str, tmp_path: Path,
                                    spawn: Any, meldingstjener: Meldingstjener) -> None:
    rabbit = Rabbit(broker_url)
    rabbit.meldingstjener = meldingstjener
    rabbit.purge("gateway.kartlegging", "gateway.parked")
    rabbit.delete(*(f"{h}_async" for h in fixture_herids()))
    events = make_events(2000)
    publish_all(rabbit, events)
    g = spawn(gateway_env, "g.log")
    g.start(rabbit)
    rabbit.close()
    time.sleep(0.5)
    try:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
        time.sleep(3)
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
        subprocess.run(["rabbitmqctl", "await_startup"], check=False, capture_output=True, timeout=120)
    rabbit = Rabbit(broker_url)
    rabbit.meldingstjener = meldingstjener
    try:
        wait_until_settled(rabbit, lambda: sqlite_statuses(gateway_env), events, timeout=180)
        assert g.proc is not None and g.proc.poll() is None, "the gateway survived the broker restart"
        assert g.stop() == 0
        assert '"broker.reconnected"' in g.log_text(), "the restart happened while the gateway was connected"
        statuses = sqlite_statuses(gateway_env)
        stored = {r["msg_id"]: r["status"] for r in sqlite_rows(gateway_env, "SELECT msg_id, status FROM messages")}
        check_nothing_lost(rabbit, events, statuses, stored)
    finally:
        rabbit.close()


@pytest.mark.postgres
def test_store_unavailable_for_a_while(rabbit: Rabbit, gateway_env: dict[str, str], tmp_path: Path, spawn: Any) -> None:
    with postgres_database() as url:
        name = url.rsplit("/", 1)[1]
        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        env = {**gateway_env, "GATEWAY_STORE_URL": url}
        g = spawn(env, "g.log")
        g.start(rabbit)

        def pg(query: str) -> list[Any]:
            with psycopg.connect(url) as db:
                return db.execute(query).fetchall()

        def pg_statuses() -> dict[str, str]:
            return {r[0]: r[1] for r in pg("SELECT event_id, status FROM events WHERE event_id IS NOT NULL")}

        half = len(list((FIXTURES / "events").glob("*.json")))  # every fixture once, the broken body too
        first = make_events(2 * half)[:half]
        publish_all(rabbit, first)
        wait_until_settled(rabbit, pg_statuses, first, timeout=60)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            second = [(str(uuid.uuid5(NS, f"outage-{i}")), body)
                      for i, (_, body) in enumerate(make_events(2 * half)[half:])]
            second = [(i, json.dumps({**json.loads(b), "event_id": i}).encode()) for i, b in second
                      if b.startswith(b"{") and b.rstrip().endswith(b"}")]
            publish_all(rabbit, second)
            time.sleep(3)
            # nothing could be recorded, so nothing was delivered or acked: no receiver got a message
            # of the second wave, and the gateway is still alive, waiting
            second_ids = {i for i, _ in second}
            leaked = [p.correlation_id for h in fixture_herids() for p, _ in drain(rabbit, f"{h}_async", keep=True)
                      if p.correlation_id in second_ids]
            assert leaked == []
            assert g.proc is not None and g.proc.poll() is None, "the gateway waits, it does not die"
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        wait_until_settled(rabbit, pg_statuses, first + second, timeout=120)
        assert g.stop() == 0
        assert '"batch.deferred"' in g.log_text()
        statuses = pg_statuses()
        stored = {r[0]: r[1] for r in pg("SELECT msg_id, status FROM messages")}
        check_nothing_lost(rabbit, first + second, statuses, stored)
