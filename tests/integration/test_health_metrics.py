"""``gateway run`` as a real process on the real broker: /healthz, /readyz and /metrics scraped over HTTP."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, Rabbit
from tests.factories import cli_json

EVENT = FIXTURES / "events" / "01-sp1-bergen-brystkreft.json"
UNKNOWN_KOMMUNE = FIXTURES / "events" / "81-bad-ukjent-kommune.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape_until(url: str, needle: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = get(url)[1]
        if needle in text:
            return text
        time.sleep(0.3)
    raise AssertionError(f"{needle!r} never appeared on {url}:\n{text[-3000:]}")


def explained_receivers(env: dict[str, str], event: Path) -> list[dict[str, Any]]:
    receivers: list[dict[str, Any]] = cli_json(env, "route", "explain", str(event))["receivers"]
    return receivers


def test_health_and_metrics_of_a_running_gateway(gateway_env: dict[str, str], rabbit: Rabbit, spawn: Any) -> None:
    port = free_port()
    gateway = spawn({**gateway_env, "GATEWAY_HEALTH_PORT": str(port)})
    gateway.start(rabbit)
    base = f"http://127.0.0.1:{port}"
    assert get(base + "/healthz") == (200, "ok\n")
    status, body = get(base + "/readyz")
    assert status == 200, body
    assert json.loads(body) == {"ready": True, "store": True, "broker": True}
    for path in (EVENT, UNKNOWN_KOMMUNE):
        rabbit.publish_event(path.read_bytes(), json.loads(path.read_text(encoding="utf-8"))["event_id"])
    assert rabbit.take("gateway.parked", 1)
    text = scrape_until(base + "/metrics", 'gateway_events_total{outcome="sent",reason_code=""} 1.0')
    assert 'gateway_events_total{outcome="parked",reason_code="ROUTING_UNKNOWN_KOMMUNE"} 1.0' in text
    sent = len(explained_receivers(gateway_env, EVENT))  # what routing says the event goes to, asked separately
    assert sent >= 2
    assert f'gateway_messages_sent_total{{transport="amqp"}} {sent}.0' in text
    assert "gateway_store_up 1.0" in text and "gateway_broker_up 1.0" in text
    assert 'gateway_parked_events{reason_code="ROUTING_UNKNOWN_KOMMUNE"} 1.0' in text
    assert f'gateway_messages{{state="sent"}} {sent}.0' in text
    assert 'gateway_queue_messages{queue="gateway.kartlegging"}' in text
    assert "gateway_last_event_received_timestamp_seconds" in text
    assert "gateway_registry_updated_timestamp_seconds" in text
    assert "17856100030" not in text and "24928200635" not in text
    assert gateway.stop() == 0
