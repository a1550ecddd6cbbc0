"""Status events on a real RabbitMQ, read with pika as the hospital would: every state change of an event and
of each message is told exactly once (one status id per change; a re-publish after a crash is the same id with
the same bytes), also across kill -9 of the gateway, and none carries patient data."""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema

from gateway.settings import PACKAGED_SCHEMAS
from tests.conftest import Rabbit
from tests.integration.test_faults import (
    kill_repeatedly,
    make_events,
    publish_all,
    sqlite_rows,
    sqlite_statuses,
    wait_until_settled,
)

SCHEMA = json.loads((PACKAGED_SCHEMAS / "kartlegging.status-1.schema.json").read_text(encoding="utf-8"))
HOSPITAL_QUEUE = "hospital.status"


def bind_hospital(rabbit: Rabbit) -> None:
    rabbit.channel.exchange_declare("kartlegging", "topic", durable=True)
    rabbit.channel.queue_declare(HOSPITAL_QUEUE, durable=True)
    rabbit.channel.queue_bind(HOSPITAL_QUEUE, "kartlegging", "kartlegging.status.#")


def told(rabbit: Rabbit) -> list[tuple[Any, bytes]]:
    got = []
    while True:
        method, props, body = rabbit.channel.basic_get(HOSPITAL_QUEUE, auto_ack=True)
        if method is None:
            return got
        got.append((props, body))


def wait_until_told(env: dict[str, str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sqlite_rows(env, "SELECT count(*) FROM transitions WHERE told IS NULL")[0][0] == 0:
            return
        time.sleep(0.3)
    raise AssertionError("the gateway did not tell every change in time")


def check_told_once(env: dict[str, str], received: list[tuple[Any, bytes]], events: list[tuple[str | None, bytes]]
                    ) -> dict[str, list[str]]:
    by_id: dict[str, set[bytes]] = defaultdict(set)
    states: dict[str, list[str]] = defaultdict(list)
    for props, body in received:
        status = json.loads(body)
        assert props.message_id == status["status_id"]
        assert props.routing_key if hasattr(props, "routing_key") else True
        if status["status_id"] not in by_id:
            jsonschema.validate(status, SCHEMA)
            entity = status["message"]["msg_id"] if "message" in status else "event"
            states[f"{status['event_id']}/{entity}"].append(status["state"])
        by_id[status["status_id"]].add(body)
    assert all(len(bodies) == 1 for bodies in by_id.values()), "a status id came twice with different content"
    for key, seen in states.items():
        assert len(seen) == len(set(seen)), f"{key} was told a state twice under different ids: {seen}"
    # every end state in the store was told, and nothing the store does not have
    stored = sqlite_statuses(env)
    for event_id, status in stored.items():
        if status in ("sent", "parked", "not_shared", "declined"):
            assert status in states.get(f"{event_id}/event", []), f"{event_id} ended {status} but was not told so"
    text = b"".join(body for _, body in received).decode("utf-8")
    for _, body in events:
        try:
            patient = json.loads(body)["patient"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(patient, dict) and isinstance(patient.get("fnr"), str):
            assert patient["fnr"] not in text
    return states


def test_each_change_is_told_once_across_kill_9(rabbit: Rabbit, gateway_env: dict[str, str], tmp_path: Path,
                                                 spawn: Any) -> None:
    bind_hospital(rabbit)
    rng = random.Random(20261130)
    events = make_events(600)
    publish_all(rabbit, events)
    env = {**gateway_env, "GATEWAY_PREFETCH": "100"}
    g = spawn(env, "g.log")
    g.start(rabbit)
    kills = kill_repeatedly(g, rabbit, rng, 3, 0.3, 1.2)
    wait_until_settled(rabbit, lambda: sqlite_statuses(env), events, timeout=180)
    wait_until_told(env)
    assert g.stop() == 0
    states = check_told_once(env, told(rabbit), events)
    assert kills >= 1
    routed = [k for k, v in states.items() if k.endswith("/event") and "routed" in v]
    assert routed and all("sent" in states[k] for k in routed), "a routed event is told sent too"
