"""Issue 12, end to end: hostile input and faults against ``gateway run`` on a real RabbitMQ, on both stores.

Each test sends several variants of one class of fault, then proves the consumer is *alive and correct*: the
process still runs and a good event published afterwards reaches its receivers. Across all of them: nothing
is lost (every event ends in a state), no MsgId reaches a receiver with two contents, and no planted identity
or name appears in a header, the store's reasons or the log.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pika
import psycopg
import pytest

from gateway.domain import fodselsnummer
from gateway.messages.apprec import answer
from tests.conftest import FIXTURES, ROOT, Delivery, GatewayProcess, Rabbit, postgres_database

OWN_QUEUE = "8100601_async"  # the sender of fixture 01 (a served HER-id): where its receipts come back
GOOD = json.loads((FIXTURES / "events" / "01-sp1-bergen-brystkreft.json").read_text(encoding="utf-8"))
GOOD_RECEIVERS = {8100101, 8100901}  # fixture 01's receivers (test_end_to_end checks them in detail)
PLANTED_FNR = fodselsnummer.synthetic(date(1961, 5, 17), 2)
PLANTED = [PLANTED_FNR, "Synnøve", "Hemmeligsen", "brystkreft med spredning til lever"]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, gateway_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``gateway_env`` on one of the two stores; short backoff so outages end quickly after they end."""
    env = {**gateway_env, "GATEWAY_RETRY_CAP_SECONDS": "1", "GATEWAY_OVERDUE_CHECK_SECONDS": "0.5"}
    if request.param == "sqlite":
        yield env
        return
    with postgres_database() as url:
        yield {**env, "GATEWAY_STORE_URL": url}


def rows(env: dict[str, str], query: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    url = env["GATEWAY_STORE_URL"]
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
        db.row_factory = sqlite3.Row
        try:
            found = [dict(r) for r in db.execute(query, args).fetchall()]
            db.commit()
            return found
        finally:
            db.close()
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as pg:
        cursor = pg.execute(query.replace("?", "%s"), args)
        return list(cursor.fetchall()) if cursor.description else []


def event(**changes: Any) -> dict[str, Any]:
    e = json.loads(json.dumps(GOOD))
    e["event_id"] = str(uuid.uuid4())
    for path, value in changes.items():
        target = e
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return e


def publish(rabbit: Rabbit, body: bytes, message_id: str | None = None, queue: str | None = None,
            encoding: str | None = None) -> None:
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=message_id,
                                 content_encoding=encoding)
    if queue is None:
        rabbit.channel.basic_publish("kartlegging", "kartlegging.completed", body, props)
    else:
        rabbit.channel.queue_declare(queue, durable=True)
        rabbit.channel.basic_publish("", queue, body, props)


def parked(rabbit: Rabbit, count: int, timeout: float = 30.0) -> list[Delivery]:
    got = rabbit.take("gateway.parked", count, timeout)
    assert len(got) == count, f"gateway.parked got {len(got)} of {count}"
    return got


def status_of(env: dict[str, str], event_id: str) -> str | None:
    found = rows(env, "SELECT status FROM events WHERE event_id = ?", (event_id,))
    return found[0]["status"] if found else None


def assert_alive_and_correct(rabbit: Rabbit, gateway: GatewayProcess, env: dict[str, str]) -> None:
    """The process runs and a good event published now reaches all its receivers."""
    assert gateway.proc is not None and gateway.proc.poll() is None, gateway.log_text()[-3000:]
    e = event()
    publish(rabbit, json.dumps(e).encode(), e["event_id"])
    for herid in GOOD_RECEIVERS:
        got = rabbit.take(f"{herid}_async", 1, timeout=60)
        assert got and got[0].properties.correlation_id == e["event_id"], (herid, gateway.log_text()[-3000:])
    deadline = time.monotonic() + 20
    while status_of(env, e["event_id"]) != "sent" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status_of(env, e["event_id"]) == "sent"
    assert gateway.proc.poll() is None


def no_leak(gateway: GatewayProcess, env: dict[str, str], headers: list[dict[str, Any]]) -> None:
    reasons = " ".join(str(r["reason"]) for r in rows(env, "SELECT reason FROM events WHERE reason IS NOT NULL"))
    reasons += " ".join(str(r["reason"]) for r in rows(env, "SELECT reason FROM transitions WHERE reason IS NOT NULL"))
    seen = reasons + json.dumps(headers, ensure_ascii=False, default=str) + gateway.log_text()
    for secret in PLANTED:
        assert secret not in seen, secret


def drain_receivers(rabbit: Rabbit) -> list[Delivery]:
    out: list[Delivery] = []
    for herid in GOOD_RECEIVERS | {8100102, 8100103, 8100201, 8100401}:
        out += rabbit.take(f"{herid}_async", 1000, timeout=0.3)
    return out


def one_content_per_msg_id(deliveries: list[Delivery]) -> None:
    contents: dict[str, set[bytes]] = {}
    for d in deliveries:
        contents.setdefault(d.properties.message_id, set()).add(d.body)
    assert all(len(c) == 1 for c in contents.values()), "a MsgId reached a receiver with two contents"


# 1, 2: poison on the receipt queue ----------

def apprec_with_status(original: bytes, status: str) -> bytes:
    ok = answer(original)
    return ok.replace(b'V="1"', f'V="{status}"'.encode(), 1)


def test_poison_receipts_are_parked_and_the_consumer_lives(rabbit: Rabbit, backend: dict[str, str], spawn: Any
                                                           ) -> None:
    env = {**backend, "GATEWAY_MAX_RECEIPT_BYTES": "200000"}
    gateway = spawn(env)
    gateway.start(rabbit)
    e = event()
    publish(rabbit, json.dumps(e).encode(), e["event_id"])
    original = rabbit.take("8100901_async", 1)[0].body
    drain_receivers(rabbit)
    poison = {
        "26 spaces": b" " * 26 + b"<a/>",
        "28 spaces": b" " * 28 + b"<a/>",
        "100k tabs": b"\t" * 100_000 + b"<a/>",
        "comment prolog": b"<!-- x -->" * 10_000 + b"<a/>",
        "status 9": apprec_with_status(original, "9"),
        "status empty": apprec_with_status(original, ""),
        "billion laughs": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>',
        "too large": b"<a>" + b"x" * 300_000 + b"</a>",
        "not xml": b"\xff\xfe\x00garbage",
    }
    for name, body in poison.items():
        publish(rabbit, body, f"poison-{name}", queue=OWN_QUEUE)
    got = parked(rabbit, len(poison))
    by_id = {d.properties.message_id: d for d in got}
    for name, body in poison.items():
        d = by_id[f"poison-{name}"]
        if name == "too large":
            assert d.headers["x-reason-code"] == "APPREC_TOO_LARGE"
            assert json.loads(d.body)["bytes"] == len(body)
        else:  # an AppRec the tracker cannot read, or anything else on a served party's queue (issue 13)
            expected = "APPREC_INVALID" if name.startswith("status") else "INBOUND_UNREADABLE"
            assert d.headers["x-reason-code"] == expected, name
            assert d.body == body, f"{name}: parked byte for byte"
    publish(rabbit, answer(original), "good-receipt", queue=OWN_QUEUE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not rows(env, "SELECT 1 FROM messages WHERE status = 'acknowledged'"):
        time.sleep(0.2)
    assert rows(env, "SELECT status FROM messages WHERE status = 'acknowledged'"), "a good receipt still counts"
    assert_alive_and_correct(rabbit, gateway, env)
    assert '"exit"' not in gateway.log_text()


# 4, 5: event_id confusion ----------

def test_event_ids_are_never_confused(rabbit: Rabbit, backend: dict[str, str], spawn: Any) -> None:
    env = backend
    gateway = spawn(env)
    gateway.start(rabbit)
    a, b = event(), event()
    publish(rabbit, json.dumps(a).encode(), a["event_id"])
    for herid in GOOD_RECEIVERS:
        assert rabbit.take(f"{herid}_async", 1)
    # 4: a nested object quoting A's id, before B's own: B is B, and A is not dropped as a duplicate
    nested = {"correction_of": {"event_id": a["event_id"]}, **{k: v for k, v in b.items() if k != "event_id"},
              "event_id": b["event_id"]}
    publish(rabbit, json.dumps(nested).encode(), "nested")
    deadline = time.monotonic() + 30
    while status_of(env, b["event_id"]) != "sent" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status_of(env, b["event_id"]) == "sent"
    first = drain_receivers(rabbit)
    assert {d.properties.correlation_id for d in first} == {b["event_id"]}
    # 5: one event_id, other bodies: later, twice in one batch, and again after that
    later = json.loads(json.dumps(a))
    later["diagnosis"]["text"] = "Endret tekst"
    twin1, twin2 = event(), None
    twin2 = json.loads(json.dumps(twin1))
    twin2["assessment"]["distress_score"] = 9
    publish(rabbit, json.dumps(later).encode(), a["event_id"])
    publish(rabbit, json.dumps(twin1).encode(), twin1["event_id"])
    publish(rabbit, json.dumps(twin2).encode(), twin1["event_id"])
    publish(rabbit, json.dumps(later).encode(), a["event_id"])  # the same conflict again: recorded once
    publish(rabbit, json.dumps(a, indent=2).encode(), a["event_id"])  # the same event, spaced: a duplicate
    got = parked(rabbit, 3)
    assert {d.headers["x-reason-code"] for d in got} == {"EVENT_ID_CONFLICT"}
    assert sorted(d.body for d in got) == sorted([json.dumps(later).encode(), json.dumps(twin2).encode(),
                                                   json.dumps(later).encode()])
    time.sleep(1.0)
    conflicts = rows(env, "SELECT id, body, status, reason_code FROM events WHERE reason_code = 'EVENT_ID_CONFLICT'")
    assert len(conflicts) == 2, "each conflicting version is stored once, so the operator sees both"
    originals = rows(env, "SELECT body, status FROM events WHERE event_id IN (?, ?)",
                     (a["event_id"], twin1["event_id"]))
    assert {r["status"] for r in originals} == {"sent"}
    assert {bytes(r["body"]) for r in originals} == {json.dumps(a).encode(), json.dumps(twin1).encode()}
    rest = drain_receivers(rabbit)
    one_content_per_msg_id(first + rest)
    assert {d.properties.correlation_id for d in rest} == {twin1["event_id"]}, "only twin1's first body went out"
    assert_alive_and_correct(rabbit, gateway, env)


# 6, 7: size and bytes ----------

def test_oversized_and_odd_encodings_are_parked_as_they_came(rabbit: Rabbit, backend: dict[str, str], spawn: Any
                                                             ) -> None:
    env = {**backend, "GATEWAY_MAX_EVENT_BYTES": "65536"}
    gateway = spawn(env)
    gateway.start(rabbit)
    big = event(diagnosis__text="x" * 200_000)
    bigger_broken = b'{"event_id": "' + str(uuid.uuid4()).encode() + b'", "x": "' + b"y" * 3_000_000
    utf16 = json.dumps(event(), ensure_ascii=False).encode("utf-16")
    utf16be = json.dumps(event(), ensure_ascii=False).encode("utf-16-be")
    latin = json.dumps(event(patient__given_name="Åse"), ensure_ascii=False).encode("latin-1", "replace")
    publish(rabbit, json.dumps(big).encode(), "big")
    publish(rabbit, bigger_broken, "bigger")
    publish(rabbit, utf16, "utf16", encoding="utf-16")
    publish(rabbit, utf16be, "utf16be", encoding="utf-16-be")
    publish(rabbit, latin, "latin", encoding="latin-1")
    got = {d.properties.message_id: d for d in parked(rabbit, 5)}
    for name, size in (("big", len(json.dumps(big).encode())), ("bigger", len(bigger_broken))):
        assert got[name].headers["x-reason-code"] == "EVENT_TOO_LARGE"
        stub = json.loads(got[name].body)
        assert stub["bytes"] == size and len(stub["sha256"]) == 64
    assert got["big"].headers["x-event-id"] == big["event_id"]
    for name, body in (("utf16", utf16), ("utf16be", utf16be), ("latin", latin)):
        assert got[name].body == body, f"{name}: byte for byte"
        assert got[name].headers["x-reason-code"] == "EVENT_NOT_JSON"
    stored = rows(env, "SELECT body FROM events WHERE reason_code = 'EVENT_TOO_LARGE'")
    assert len(stored) == 2 and all(len(bytes(r["body"])) < 1000 for r in stored), "the store keeps the stub only"
    assert_alive_and_correct(rabbit, gateway, env)


# 8, 11: identities and leaks ----------

def test_implausible_identities_park_and_nothing_leaks(rabbit: Rabbit, backend: dict[str, str], spawn: Any) -> None:
    env = {**backend, "GATEWAY_MAX_PAST_DAYS": "1095", "GATEWAY_MAX_FUTURE_DAYS": "1"}
    gateway = spawn(env)
    gateway.start(rabbit)
    today = date.today()
    recent = today.isoformat()
    cases = {
        "born 2039": (event(patient__fnr=fodselsnummer.synthetic(date(2039, 1, 5), 0)), "EVENT_IMPLAUSIBLE_DATE"),
        "age 125": (event(patient__fnr=fodselsnummer.synthetic(date(1890, 1, 5), 0),
                          assessment__performed_on="2015-03-03"), "EVENT_IMPLAUSIBLE_DATE"),
        "far future": (event(assessment__performed_on="2031-01-01", occurred_at="2031-01-01T10:00:00+01:00"),
                       "EVENT_IMPLAUSIBLE_DATE"),
        "far past": (event(assessment__performed_on="2019-01-01", occurred_at="2019-01-01T10:00:00+01:00"),
                     "EVENT_IMPLAUSIBLE_DATE"),
        "fnr in a list": (event(patient=[PLANTED_FNR, "Synnøve", "Hemmeligsen"]), "EVENT_SCHEMA_VIOLATION"),
        "long diagnosis": (event(diagnosis__text="Synnøve brystkreft med spredning til lever " + "x" * 600),
                           "EVENT_SCHEMA_VIOLATION"),
        "name as schema": (event(schema="Synnøve Hemmeligsen"), "EVENT_UNSUPPORTED_SCHEMA"),
        "fnr as a date": (event(diagnosis__diagnosed_on=PLANTED_FNR), "EVENT_SCHEMA_VIOLATION"),
    }
    for e, _ in cases.values():
        for field in ("performed_on",):
            if e["assessment"][field] == GOOD["assessment"][field] and isinstance(e["patient"], dict):
                e["assessment"][field] = recent
                e["occurred_at"] = f"{recent}T10:00:00+01:00"
                e["diagnosis"]["diagnosed_on"] = recent if e["diagnosis"]["diagnosed_on"] != PLANTED_FNR else \
                    PLANTED_FNR
        publish(rabbit, json.dumps(e, ensure_ascii=False).encode(), e["event_id"])
    got = {d.headers.get("x-event-id"): d for d in parked(rabbit, len(cases))}
    for name, (e, code) in cases.items():
        assert got[e["event_id"]].headers["x-reason-code"] == code, (name, got[e["event_id"]].headers)
    no_leak(gateway, env, [d.headers for d in got.values()])
    # today's kartlegging with the fixture's synthetic patient still goes (GATEWAY_SYNTHETIC_FNR=accept here)
    assert_alive_and_correct(rabbit, gateway, env)


def test_synthetic_numbers_are_refused_in_production(rabbit: Rabbit, backend: dict[str, str], spawn: Any) -> None:
    env = {**backend, "GATEWAY_SYNTHETIC_FNR": "refuse"}
    gateway = spawn(env)
    gateway.start(rabbit)
    events = [event(patient__fnr=fodselsnummer.synthetic(date(1960 + i, 1 + i, 10), i)) for i in range(3)]
    for e in events:
        publish(rabbit, json.dumps(e).encode(), e["event_id"])
    got = parked(rabbit, 3)
    assert {d.headers["x-reason-code"] for d in got} == {"EVENT_SYNTHETIC_FODSELSNUMMER"}
    assert drain_receivers(rabbit) == []
    assert gateway.proc is not None and gateway.proc.poll() is None


# 3, 9: the registry ----------

def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_registry_cycles_and_bad_imports_change_nothing(rabbit: Rabbit, backend: dict[str, str], spawn: Any,
                                                        tmp_path: Path) -> None:
    env = {**backend, "GATEWAY_REGISTRY": "store"}
    from gateway.domain.registry import load_register
    from gateway.store.registry import write_gp_csv

    good = FIXTURES / "register.json"
    gp_csv = tmp_path / "gp-good.csv"
    write_gp_csv(gp_csv, [a for periods in load_register(good).assignments.values() for a in periods])
    assert cli(env, "registry", "import", "--parties", str(good), "--gp", str(gp_csv)).returncode == 0
    before = rows(env, "SELECT count(*) AS n FROM parties")[0]["n"]
    data = json.loads(good.read_text(encoding="utf-8"))
    variants: dict[str, tuple[Any, str]] = {}
    cyc = json.loads(json.dumps(data))
    deps = [p for p in cyc["parties"] if p["kind"] == "department"][:2]
    deps[0]["parent_herid"], deps[1]["parent_herid"] = deps[1]["herid"], deps[0]["herid"]
    variants["cycle"] = (cyc, f"cycle: {deps[0]['herid']} → {deps[1]['herid']} → {deps[0]['herid']}")
    variants["empty"] = ({"version": 1}, "non-empty list")
    half = json.loads(json.dumps(data))
    half["parties"] = [p for p in half["parties"] if p["kind"] != "person"]
    half["fastlegeregister"] = []
    variants["shrinks"] = (half, "--force")
    for name, (content, needle) in variants.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content), encoding="utf-8")
        done = cli(env, "registry", "import", "--parties", str(path))
        assert done.returncode == 1 and "nothing was changed" in done.stderr and needle in done.stderr, (name,
                                                                                                        done.stderr)
        assert "Traceback" not in done.stderr
    bad_utf8 = tmp_path / "bad.json"
    bad_utf8.write_bytes(good.read_bytes().replace(b'"Bergen kommune"', b'"Bergen \xff kommune"', 1))
    done = cli(env, "registry", "import", "--parties", str(bad_utf8))
    assert done.returncode == 1 and "not valid UTF-8" in done.stderr and "Traceback" not in done.stderr
    shifted = tmp_path / "gp.csv"
    shifted.write_text(f"fnr,gp_herid,valid_from,valid_to,relation\n8100901,{PLANTED_FNR},2020-01-01,,fastlege\n",
                       encoding="utf-8")
    done = cli(env, "registry", "import", "--parties", str(good), "--gp", str(shifted))
    assert done.returncode == 1 and "line 2" in done.stderr and PLANTED_FNR not in done.stderr + done.stdout
    assert rows(env, "SELECT count(*) AS n FROM parties")[0]["n"] == before, "parties and GP: one transaction"
    # a cycle already in the store (imported before the check existed) must not hang routing
    for herid, parent in ((8199001, 8199002), (8199002, 8199001)):
        rows(env, "INSERT INTO parties(herid, parent_herid, name, kind, active, formats) VALUES (?,?,?,?,?,?)",
             (herid, parent, f"Syklus {herid}", "department", 1, "[]"))
    gateway = spawn(env)
    gateway.start(rabbit)
    looped = event(sender__herid=8199001)
    publish(rabbit, json.dumps(looped).encode(), looped["event_id"])
    [got] = parked(rabbit, 1, timeout=30)
    assert got.headers["x-event-id"] == looped["event_id"]
    assert_alive_and_correct(rabbit, gateway, env)


# 2: store outages of minutes ----------

class Outage:
    """Makes the store unavailable for a while without touching the shared servers: SQLite's write lock held
    by another connection (what a GP-register import does), or, on PostgreSQL, this test's own database
    closed to connections and its sessions ended."""

    def __init__(self, env: dict[str, str]) -> None:
        self.url = env["GATEWAY_STORE_URL"]
        self._sqlite: sqlite3.Connection | None = None

    def start(self) -> None:
        if self.url.startswith("sqlite:///"):
            self._sqlite = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
            self._sqlite.execute("BEGIN EXCLUSIVE")
            return
        name = self.url.rsplit("/", 1)[1]
        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                          "AND pid <> pg_backend_pid()", (name,))

    def end(self) -> None:
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
            return
        name = self.url.rsplit("/", 1)[1]
        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.mark.parametrize("minutes", [2.5])
def test_gateway_run_survives_a_store_outage_of_minutes(rabbit: Rabbit, backend: dict[str, str], spawn: Any,
                                                        minutes: float) -> None:
    """The store is down for 2.5 minutes, first while the gateway is idle (the overdue check, every 0.5 s, hits
    it: on main that killed the process within a second), then while receipts and events arrive (on main
    ``AppRecTracker.on_message`` raised out of the loop). The backoff cap is 1 s here instead of 30 s so the
    test ends within seconds of the outage; the cap only changes how long each wait is, not the code path: the
    policy waits, retries and keeps the input unacked exactly as with the default, for ~150 tries instead of
    ~5. Afterwards every receipt is recorded, every event sent, nothing is lost, and the process never exited."""
    env = backend
    gateway = spawn(env)
    gateway.start(rabbit)
    e = event()
    publish(rabbit, json.dumps(e).encode(), e["event_id"])
    originals = {h: rabbit.take(f"{h}_async", 1)[0].body for h in GOOD_RECEIVERS}
    outage = Outage(env)
    outage.start()
    try:
        time.sleep(minutes * 60 / 2)  # idle
        assert gateway.proc is not None and gateway.proc.poll() is None, gateway.log_text()[-3000:]
        for herid, body in originals.items():
            publish(rabbit, answer(body), f"receipt-{herid}", queue=OWN_QUEUE)
        during = event()
        publish(rabbit, json.dumps(during).encode(), during["event_id"])
        time.sleep(minutes * 60 / 2)  # receipts and an event wait
        assert gateway.proc.poll() is None, gateway.log_text()[-3000:]
    finally:
        outage.end()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            acked = rows(env, "SELECT count(*) AS n FROM messages WHERE status = 'acknowledged'")[0]["n"]
            if acked == len(GOOD_RECEIVERS) and status_of(env, during["event_id"]) == "sent":
                break
        except (sqlite3.Error, psycopg.Error):
            pass
        time.sleep(0.5)
    assert rows(env, "SELECT count(*) AS n FROM messages WHERE status = 'acknowledged'")[0]["n"] == len(GOOD_RECEIVERS)
    assert status_of(env, during["event_id"]) == "sent"
    log = gateway.log_text()
    assert "deferred" in log, "the outage was seen and waited out"
    assert rabbit.take("gateway.parked", 1, timeout=0.5) == [], "nothing was parked for a transient outage"
    sent = drain_receivers(rabbit)
    assert {d.properties.correlation_id for d in sent} == {during["event_id"]}
    one_content_per_msg_id(sent)
    assert_alive_and_correct(rabbit, gateway, env)

