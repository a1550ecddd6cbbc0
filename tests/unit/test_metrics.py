"""The health server answers /healthz while the process runs and /readyz only when the store and the broker
do; the store's gauges and the consumer's counters appear on /metrics. No server needed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from gateway import metrics
from gateway.delivery.consumer import Handled
from gateway.store import open_store
from tests.factories import park_event, record_event


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_readyz_says_which_dependency_is_missing(tmp_path: Path) -> None:
    ready = {"store": True, "broker": False}
    server = metrics.HealthServer("127.0.0.1", 0, lambda: dict(ready)).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert _get(base + "/healthz") == (200, "ok\n")
        status, body = _get(base + "/readyz")
        assert status == 503 and json.loads(body) == {"ready": False, "store": True, "broker": False}
        ready["broker"] = True
        assert _get(base + "/readyz")[0] == 200
        assert _get(base + "/nothing")[0] == 404
    finally:
        server.stop()


def test_store_gauges_and_event_counters_are_scraped(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    ref = record_event(store, b"{}", "e1", None).ref
    park_event(store, ref, "ROUTING_UNKNOWN_KOMMUNE", "test")
    registry = tmp_path / "register.json"
    registry.write_text("{}")
    metrics.register_collector(metrics.GatewayCollector(store, None, registry))
    metrics.record_handled([Handled(1, "e1", "parked", "ROUTING_UNKNOWN_KOMMUNE", "x"),
                            Handled(2, "e2", "sent", None, None, (1, 2), ("m1", "m2"))])
    server = metrics.HealthServer("127.0.0.1", 0, lambda: {}).start()
    try:
        status, text = _get(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.stop()
    assert status == 200
    assert 'gateway_parked_events{reason_code="ROUTING_UNKNOWN_KOMMUNE"} 1.0' in text
    assert "gateway_store_up 1.0" in text
    assert 'gateway_events_total{outcome="parked",reason_code="ROUTING_UNKNOWN_KOMMUNE"}' in text
    assert 'gateway_messages_sent_total{transport="amqp"}' in text
    assert "gateway_last_event_received_timestamp_seconds" in text
    assert "gateway_registry_updated_timestamp_seconds" in text
