"""Shared test helpers: a real RabbitMQ through pika (an independent client, not the gateway's
kombu code), a real PostgreSQL, and the gateway started as a real process.

Sharing the machine: each test run gets its own RabbitMQ vhost (made with ``rabbitmqctl`` and deleted at
the end) and each PostgreSQL test its own database, so two checkouts on one machine never consume each
other's messages and nothing touches the default vhost. Tests that need a server are marked
(``rabbitmq``, ``postgres``) by the fixtures they use and skip with a clear message when the server is
absent; ``GATEWAY_TEST_REQUIRE_SERVERS=1`` (set by scripts/test.sh) turns that skip into a failure.
Tests marked ``destructive`` (they stop the broker) run only with ``GATEWAY_TEST_DESTRUCTIVE=1``, which
scripts/test.sh sets only on CI.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import pika
import pytest

from gateway.delivery.bus import CLASSIC, Topology

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SERVER_URL = os.environ.get("GATEWAY_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
REQUIRE_SERVERS = os.environ.get("GATEWAY_TEST_REQUIRE_SERVERS") == "1"
DESTRUCTIVE = os.environ.get("GATEWAY_TEST_DESTRUCTIVE") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "destructive: stops or restarts a shared server; runs only on CI")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"rabbit", "broker_url", "gateway", "gateway_env"}:
            item.add_marker(pytest.mark.rabbitmq)
        if "postgres_url" in names:
            item.add_marker(pytest.mark.postgres)
        if item.get_closest_marker("destructive") and not DESTRUCTIVE:
            item.add_marker(pytest.mark.skip(reason="destructive (stops the broker): runs only with "
                                                    "GATEWAY_TEST_DESTRUCTIVE=1, which CI sets"))


def _unavailable(what: str) -> None:
    if REQUIRE_SERVERS:
        pytest.fail(f"{what} (GATEWAY_TEST_REQUIRE_SERVERS=1: scripts/test.sh should have started it)")
    pytest.skip(f"{what}; run scripts/test.sh, which starts RabbitMQ and PostgreSQL")


def _server_answers(host: str, port: int) -> bool:
    import socket

    try:
        socket.create_connection((host, port), 2).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A vhost of this test run's own on the real RabbitMQ, deleted afterwards."""
    u = urlparse(SERVER_URL)
    if not _server_answers(u.hostname or "127.0.0.1", u.port or 5672):
        _unavailable(f"RabbitMQ does not answer on {u.hostname}:{u.port or 5672}")
    if shutil.which("rabbitmqctl") is None:
        _unavailable("rabbitmqctl is not on PATH, so the tests cannot make a vhost of their own")
    vhost = f"gateway-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    user = unquote(u.username or "guest")
    try:
        subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True, timeout=60)
        subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"], check=True,
                       capture_output=True, timeout=60)
    except (subprocess.SubprocessError, OSError) as exc:
        _unavailable(f"could not make a test vhost with rabbitmqctl ({exc})")
    try:
        yield u._replace(path="/" + vhost).geturl()
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], check=False, capture_output=True, timeout=120)


def pika_parameters(url: str) -> pika.ConnectionParameters:
    u = urlparse(url)
    vhost = unquote(u.path[1:]) if u.path not in ("", "/", "//") else "/"
    return pika.ConnectionParameters(
        host=u.hostname or "127.0.0.1", port=u.port or 5672, virtual_host=vhost,
        credentials=pika.PlainCredentials(u.username or "guest", u.password or "guest"),
    )


@dataclass
class Delivery:
    properties: pika.BasicProperties
    body: bytes
    edi: bool = False  # handed over by the Meldingstjener (EDI 2.0), so it has no AMQP properties of ours

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})


class Rabbit:
    """What a hospital system and a receiver see of the broker."""

    def __init__(self, url: str, topology: Topology = CLASSIC) -> None:
        """``topology``: declare the queues as a gateway with that GATEWAY_QUEUE_TYPE does (RabbitMQ refuses
        a declaration whose arguments differ from the queue's)."""
        self.url = url
        self.topology = topology
        self.connection = pika.BlockingConnection(pika_parameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.channel.exchange_declare("kartlegging", "topic", durable=True)
        self.channel.queue_declare("gateway.kartlegging", durable=True,
                                   arguments=topology.kartlegging_queue().queue_arguments)
        self.channel.queue_bind("gateway.kartlegging", "kartlegging", "kartlegging.completed")
        self.declare("gateway.parked")
        self.declare("gateway.inbound")  # what the gateway hands on (issue 13), with the topology's type
        self._inbound: list[Delivery] = []  # taken from gateway.inbound for another HER-id than asked for
        self.meldingstjener: Meldingstjener | None = None  # where EDI receivers' messages are looked for
        self._taken_edi: set[str] = set()

    def declare(self, queue: str) -> None:
        """A receiver's queue or gateway.parked, with the topology's type."""
        self.channel.queue_declare(queue, durable=True, arguments=self.topology.receiver_queue(queue).queue_arguments)

    def publish_event(self, body: bytes, event_id: str | None = None) -> None:
        self.channel.basic_publish(
            "kartlegging", "kartlegging.completed", body,
            pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=event_id),
        )

    def purge(self, *queues: str) -> None:
        for q in queues:
            self.channel.queue_purge(q)

    def delete(self, *queues: str) -> None:
        for q in queues:
            self.channel.queue_delete(q)

    def consumer_count(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.consumer_count

    def take(self, queue: str, count: int, timeout: float = 20.0) -> list[Delivery]:
        """Wait for ``count`` messages on ``queue`` (declared durable, as the gateway does)."""
        self.declare(queue)
        got: list[Delivery] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.05)
                continue
            got.append(Delivery(props, body))
        return got

    def take_for(self, herid: int, count: int, timeout: float = 20.0) -> list[Delivery]:
        """What a receiver gets: from ``{herid}_async``, or, for a HER-id the gateway serves (it reads that
        queue as the party's messaging system), from ``gateway.inbound``, where the gateway hands it on, or,
        for an EDI receiver, what the Meldingstjener stand-in handed it (``edi`` set on the Delivery)."""
        if herid in EDI:
            return self._take_edi(herid, count, timeout)
        if herid not in SERVED:
            return self.take(f"{herid}_async", count, timeout)
        got = [d for d in self._inbound if d.headers.get("toHerId") == str(herid)][:count]
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            for d in self.take("gateway.inbound", 1, timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
                self._inbound.append(d)
                if d.headers.get("toHerId") == str(herid):
                    got.append(d)
        for d in got:
            self._inbound.remove(d)
        return got

    def _take_edi(self, herid: int, count: int, timeout: float) -> list[Delivery]:
        assert self.meldingstjener is not None, "the test's gateway_env has the stand-in; give it to Rabbit"
        got: list[Delivery] = []
        deadline = time.monotonic() + timeout
        while True:
            for item in self.meldingstjener.delivered(herid):
                if item["id"] not in self._taken_edi and len(got) < count:
                    self._taken_edi.add(item["id"])
                    got.append(Delivery(pika.BasicProperties(message_id=item["msg_id"]),
                                        base64.b64decode(item["document_b64"]), edi=True))
            if len(got) >= count or time.monotonic() >= deadline:
                return got
            time.sleep(0.2)

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


# GATEWAY_SERVED_HERIDS' default (the demo registry's senders): the gateway consumes their queues.
SERVED = {8100601, 8100701, 8100801, 8100103, 8100203, 8100302}


def fixture_herids() -> list[int]:
    data = json.loads((FIXTURES / "register.json").read_text(encoding="utf-8"))
    return [p["herid"] for p in data["parties"]]


@pytest.fixture
def rabbit(broker_url: str, meldingstjener: Meldingstjener) -> Iterator[Rabbit]:
    r = Rabbit(broker_url)
    r.meldingstjener = meldingstjener
    r.purge("gateway.kartlegging", "gateway.parked", "gateway.inbound")
    r.delete(*(f"{h}_async" for h in fixture_herids()))
    yield r
    r.close()


@dataclass
class GatewayProcess:
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)

    def start(self, rabbit: Rabbit, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "run"], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.log_text()}")
            if rabbit.consumer_count("gateway.kartlegging") >= 1:
                return
            time.sleep(0.1)
        raise AssertionError(f"gateway did not start consuming within {timeout}s:\n{self.log_text()}")

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.exit_codes.append(code)
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


def edi_receivers() -> set[int]:
    """The fixture registry's receivers that read EDI (an edi_address): reached through the Meldingstjener."""
    data = json.loads((FIXTURES / "register.json").read_text(encoding="utf-8"))
    return {p["herid"] for p in data["parties"] if p.get("edi_address")}


EDI = edi_receivers()


@dataclass
class Meldingstjener:
    """The EDI 2.0 stand-in as its own process (``python -m gateway.standin``): NHN's Meldingstjener API as the
    gateway sees it, and, through its admin endpoint, what the simulated EDI receivers were handed."""

    base: str
    key: Path
    config: Path
    state: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "gateway.standin", "--port", self.base.rsplit(":", 1)[1],
                                         "--config", str(self.config), "--state-file", str(self.state)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base}/_standin/state", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("the Meldingstjener stand-in did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def delivered(self, herid: int) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = httpx.get(f"{self.base}/_standin/delivered", params={"receiver": herid},
                                                 timeout=10).json()
        return answer

    def env(self) -> dict[str, str]:
        return {"GATEWAY_MSH_URL": self.base, "GATEWAY_HELSEID_TOKEN_URL": f"{self.base}/connect/token",
                "GATEWAY_HELSEID_CLIENT_ID": "pakkeforlop-gateway", "GATEWAY_HELSEID_KEY": str(self.key),
                "GATEWAY_MSH_POLL_SECONDS": "0.2"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def meldingstjener(tmp_path: Path) -> Iterator[Meldingstjener]:
    """A stand-in of this test's own, knowing the gateway's HelseID client (a fresh key) for every HER-id."""
    from gateway.standin.local import write_client_key

    key = tmp_path / "helseid-key.jwk.json"
    public = write_client_key(key)
    base = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "standin.json"
    config.write_text(json.dumps({"clients": [{"client_id": "pakkeforlop-gateway", "jwk": public}],
                                  "authority": base}), encoding="utf-8")
    m = Meldingstjener(base, key, config, tmp_path / "standin-state.json")
    m.start()
    yield m
    m.stop()


@pytest.fixture
def gateway_env(tmp_path: Path, broker_url: str, meldingstjener: Meldingstjener) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        **meldingstjener.env(),  # the fixture registry's EDI receivers are reached through the stand-in
        GATEWAY_BROKER_URL=broker_url,
        GATEWAY_STORE_URL=f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        GATEWAY_REGISTRY=str(FIXTURES / "register.json"),
        GATEWAY_LOG_FORMAT="json",
        GATEWAY_PREFETCH="20",
        GATEWAY_HEALTH_PORT="0",  # several gateways run at once here; the health tests pick a free port
        GATEWAY_SECRET_FILE=str(tmp_path / "gateway.secret"),
        GATEWAY_SYNTHETIC_FNR="accept",  # the fixtures' numbers are synthetic; production refuses them
        # The fixtures are a synthetic world with fixed dates (some after today): the checks against today's
        # date are off here and tested on their own (tests/integration/test_hostile.py, tests/unit/test_hostile*).
        GATEWAY_MAX_PAST_DAYS="0",
        GATEWAY_MAX_FUTURE_DAYS="0",
        GATEWAY_RELOAD_SECONDS="0.5",
    )
    return env


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """Makes GatewayProcess objects and kills any still running when the test ends, pass or fail:
    a stray gateway would consume the next test's events."""
    made: list[GatewayProcess] = []

    def make(env: dict[str, str], name: str = "gateway.log") -> GatewayProcess:
        g = GatewayProcess(env, tmp_path / name)
        made.append(g)
        return g

    yield make
    for g in made:
        if g.proc is not None and g.proc.poll() is None:
            g.proc.kill()
            g.proc.wait()


@pytest.fixture
def gateway(gateway_env: dict[str, str], rabbit: Rabbit, spawn: Any) -> Iterator[GatewayProcess]:
    g = spawn(gateway_env)
    g.start(rabbit)
    yield g
    if g.proc is not None and g.proc.poll() is None:
        g.stop()


POSTGRES_URL = os.environ.get("GATEWAY_TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of this test's own on the real PostgreSQL server (skips or fails when there is none)."""
    with postgres_database() as url:
        yield url


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server, dropped afterwards."""
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL refuses {urlparse(POSTGRES_URL).hostname}: {str(exc).strip()[:120]}")
    name = f"gateway_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    u = urlparse(POSTGRES_URL)
    try:
        yield u._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
