"""Prometheus metrics and the health endpoints of ``gateway run``.

Why both counters and store-read gauges: the counters (events by outcome, messages sent, retries) are what
this process did and are cheap to keep; but "how many messages are overdue", "how many events are parked"
and "when did the last event arrive" are facts about the store, shared by every replica, so they are read
from the store when Prometheus scrapes. An alert then fires once for the gateway, not once per replica, and
a restarted process does not start again from zero.

No label ever carries patient data: outcomes, reason codes, states, HER-ids of receivers and queue names only.

The HTTP server is the standard library's, in a daemon thread: ``/healthz`` answers as long as the process
runs (a container runtime restarts it when it does not); ``/readyz`` answers 200 only when the store and the
broker both answer, so a load balancer or compose waits for a gateway that can actually work.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.store import SqlStore

EVENTS = Counter("gateway_events", "Events handled by this process, by outcome and reason code.",
                 ["outcome", "reason_code"])
MESSAGES_SENT = Counter("gateway_messages_sent", "Messages published to a receiver by this process.", ["transport"])
RETRIES = Counter("gateway_batch_retries", "Batches deferred with backoff because the store or broker failed.",
                  ["error"])
APPRECS = Counter("gateway_apprecs", "AppRecs received, by result and receiver HER-id (read from the store).",
                  ["status", "receiver"])
APPREC_LATENCY = Histogram("gateway_apprec_latency_seconds", "Time from sending a message to its AppRec.",
                           buckets=(60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600, 96 * 3600))
CONSOLE_SIGNINS = Counter("gateway_console_signins", "Sign-ins to the web console, by result.", ["result"])
CONSOLE_ACTIONS = Counter("gateway_console_actions", "Actions carried out from the web console.", ["action"])


def record_handled(handled: Iterable[Any]) -> None:
    """Counts what the consumer did with a batch (``Handled`` results; typed loosely so this module
    stays below the delivery layer)."""
    for h in handled:
        outcome = "duplicate" if (h.reason or "").startswith("duplicate") else h.status
        EVENTS.labels(outcome, h.reason_code or "").inc()
        if h.status == "sent" and h.msg_ids and outcome != "duplicate":
            MESSAGES_SENT.labels("amqp").inc(len(h.msg_ids))


def _ts(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


@dataclass
class BrokerProbe:
    """Is the broker there, and how deep are the queues? One short connection per look, kept for
    ``cache_seconds`` so a scrape every few seconds does not open a connection each time."""

    url: str
    queues: Callable[[], list[str]]
    cache_seconds: float = 10.0
    timeout: float = 3.0
    _at: float = 0.0
    _up: bool = False
    _depths: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def look(self, force: bool = False) -> tuple[bool, dict[str, int]]:
        with self._lock:
            if not force and time.monotonic() - self._at < self.cache_seconds:
                return self._up, dict(self._depths)
            self._up, self._depths = self._look()
            self._at = time.monotonic()
            return self._up, dict(self._depths)

    def _look(self) -> tuple[bool, dict[str, int]]:
        from kombu import Connection, Queue

        depths: dict[str, int] = {}
        try:
            with Connection(self.url, connect_timeout=self.timeout, transport_options={"max_retries": 0}) as conn:
                conn.ensure_connection(max_retries=1, timeout=self.timeout)
                for name in self.queues():
                    channel = conn.channel()
                    try:
                        depths[name] = int(Queue(name, durable=True)(channel).queue_declare(passive=True).message_count)
                    except Exception:  # a queue not declared yet is simply not shown
                        pass
                    finally:
                        with contextlib.suppress(Exception):
                            channel.close()
        except Exception:
            return False, {}
        return True, depths


def store_up(store: SqlStore) -> bool:
    try:
        store.db.query("SELECT 1 AS one")
        return True
    except Exception:
        return False


class GatewayCollector(Collector):
    """Gauges read from the store and the broker at scrape time (see the module's docstring for why)."""

    def __init__(self, store: SqlStore, broker: BrokerProbe | None, registry_file: Path | None) -> None:
        self.store = store
        self.broker = broker
        self.registry_file = registry_file

    def describe(self) -> list[Any]:
        return []  # collected on demand; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = store_up(self.store)
        yield GaugeMetricFamily("gateway_store_up", "1 when the store answers.", value=1 if up else 0)
        if self.broker is not None:
            broker_up, depths = self.broker.look()
            yield GaugeMetricFamily("gateway_broker_up", "1 when the broker answers.", value=1 if broker_up else 0)
            queue = GaugeMetricFamily("gateway_queue_messages", "Messages waiting in a queue.", labels=["queue"])
            for name, depth in sorted(depths.items()):
                queue.add_metric([name], depth)
            yield queue
        registry_ts = self._registry_ts(up)
        if registry_ts is not None:
            yield GaugeMetricFamily("gateway_registry_updated_timestamp_seconds",
                                    "When the contact-point registry was last imported or its file changed.",
                                    value=registry_ts)
        if not up:
            return
        try:
            states = self.store.message_state_totals()
            parked = self.store.parked_by_reason()
            last = self.store.last_times()
        except Exception:
            return
        messages = GaugeMetricFamily("gateway_messages", "Messages in the store by state.", labels=["state"])
        for state in ("built", "sent", "acknowledged", "rejected", "overdue", "superseded"):
            messages.add_metric([state], states.get(state, 0))
        yield messages
        parked_family = GaugeMetricFamily("gateway_parked_events", "Events parked now, by reason code.",
                                          labels=["reason_code"])
        for row in parked:
            parked_family.add_metric([row["reason_code"] or ""], int(row["n"]))
        yield parked_family
        for name, key, text in (
                ("gateway_last_event_received_timestamp_seconds", "event_received", "When the last event came in."),
                ("gateway_last_message_sent_timestamp_seconds", "message_sent", "When the last message went out.")):
            ts = _ts(last.get(key))
            if ts is not None:
                yield GaugeMetricFamily(name, text, value=ts)

    def _registry_ts(self, up: bool) -> float | None:
        if self.registry_file is not None:
            try:
                return self.registry_file.stat().st_mtime
            except OSError:
                return None
        if not up:
            return None
        try:
            return _ts(self.store.registry_imported_at())
        except Exception:
            return None


_registered: list[Collector] = []


def register_collector(collector: Collector) -> None:
    """One store collector a process (the console app may be built more than once in tests)."""
    for old in _registered:
        REGISTRY.unregister(old)
    _registered.clear()
    REGISTRY.register(collector)
    _registered.append(collector)


class AppRecObserver:
    """A periodic task of ``gateway run``: AppRecs answered since the last look become the latency histogram
    and the per-receiver counters. Read from the store so the receipt tracker needs no change."""

    def __init__(self, store: SqlStore, start: str) -> None:
        self.store = store
        self.since = start
        self.seen: set[str] = set()

    def __call__(self) -> None:
        try:
            rows = self.store.answered_since(self.since)
        except Exception:
            return
        fresh = [r for r in rows if r["msg_id"] not in self.seen]
        for r in fresh:
            APPRECS.labels(r["status"], str(r["to_herid"])).inc()
            sent, answered = _ts(r["sent_at"]), _ts(r["answered_at"])
            if sent is not None and answered is not None:
                APPREC_LATENCY.observe(max(0.0, answered - sent))
        if rows:
            newest = rows[-1]["answered_at"]
            self.seen = {r["msg_id"] for r in rows if r["answered_at"] == newest}
            self.since = newest


def metrics_text() -> bytes:
    return generate_latest(REGISTRY)


class HealthServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` on their own port, in a daemon thread."""

    def __init__(self, host: str, port: int, ready: Callable[[], dict[str, bool]]) -> None:
        checks = ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(200, b"ok\n", "text/plain; charset=utf-8")
                elif path == "/readyz":
                    result = checks()
                    ok = all(result.values())
                    self._send(200 if ok else 503, json.dumps({"ready": ok, **result}).encode() + b"\n",
                               "application/json")
                elif path == "/metrics":
                    self._send(200, metrics_text(), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"not found: /healthz, /readyz or /metrics\n", "text/plain; charset=utf-8")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Probes every few seconds would drown the gateway's own log lines."""

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
