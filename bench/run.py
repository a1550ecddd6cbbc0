"""Benchmarks of the gateway against the raw broker, measured in one run on one machine.

    python bench/run.py [--events 20000] [--rate 200] [--seconds 60] [--memory-events 100000]
    python bench/run.py --broker "$(scripts/cluster.sh urls VHOST)" --queue-type quorum --drain-only

``--broker`` takes one URL or a cluster's ';'-separated list: the benchmark's own clients use the first, the
gateway gets them all. ``--queue-type quorum`` declares every queue as a quorum queue (the relay's too, so the
ratio compares like with like). ``--drain-only`` runs (1) and (2).

1. raw relay: consume → publish → ack with no work (pika, asynchronous confirms, prefetch 500),
   the same message sizes as the gateway sees: the upper bound;
2. drain: a backlog of realistic events (each routed to two receivers) in gateway.kartlegging,
   drained by a real `gateway run` into the receivers' queues, with one and with two processes
   (``--processes 1,2``); the ratio is reported in both units, events/s and outbound messages/s
   per relay msg/s; the first drain also counts the status events and how long they trail;
3. latency: events at a fixed rate (``--rate`` 200 and ``--low-rate`` 50); publish → arrival in the
   receiver's queue, p50/p95/p99;
4. memory: the gateway's resident memory over a long run;
5. EDI 2.0: the same backlog with both receivers on EDI 2.0, posted by the outbox to the local
   Meldingstjener stand-in (``python -m gateway.standin``);
then one table, a JSON file in bench/results/, and a row appended to BENCHMARKS.md (the last table).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.domain.fodselsnummer import synthetic_all  # noqa: E402
from tests.conftest import SERVER_URL, pika_parameters  # noqa: E402

BROKER_URL = SERVER_URL  # set from --broker in main(): one URL, or a cluster's ';'-separated list
QUEUE_ARGS: dict[str, Any] | None = None  # {"x-queue-type": "quorum"} with --queue-type quorum


def params() -> pika.ConnectionParameters:
    """The benchmark's own clients use the first node."""
    return pika_parameters(BROKER_URL.split(";")[0])

EVENT = json.loads((ROOT / "fixtures" / "events" / "07-sp1-hamar-skipper-nedlagt-enhet.json").read_text("utf-8"))
RECEIVERS = ("8100405_async", "8101201_async")  # forvaltningsenhet and fastlege: two receivers per event
OUT_SIZE = 9000  # bytes, about what the gateway publishes per message


@functools.cache
def _numbers(birth: date) -> list[str]:
    return synthetic_all(birth)


def patient_fnr(i: int) -> str:
    """A different synthetic patient for every event, as in a real backlog (the gateway looks up each
    patient's history; one patient repeated 100,000 times would measure something no hospital sends)."""
    birth = date(1940, 1, 1) + timedelta(days=i % 2_000)
    return _numbers(birth)[i // 2_000]


def event_body(i: int, run: str) -> tuple[str, bytes]:
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{run}/{i}"))
    patient = {**EVENT["patient"], "fnr": patient_fnr(i), "fastlege_herid": 8101201}
    return event_id, json.dumps({**EVENT, "event_id": event_id, "patient": patient}).encode()


def channel() -> tuple[pika.BlockingConnection, Any]:
    conn = pika.BlockingConnection(params())
    ch = conn.channel()
    ch.exchange_declare("kartlegging", "topic", durable=True)
    ch.queue_declare("gateway.kartlegging", durable=True, arguments=QUEUE_ARGS)
    ch.queue_bind("gateway.kartlegging", "kartlegging", "kartlegging.completed")
    for q in (*RECEIVERS, "gateway.parked"):
        ch.queue_declare(q, durable=True, arguments=QUEUE_ARGS)
        ch.queue_purge(q)
    ch.queue_purge("gateway.kartlegging")
    return conn, ch


def fill(ch: Any, bodies: list[tuple[str, bytes]], exchange: str = "kartlegging",
         key: str = "kartlegging.completed") -> None:
    ch.confirm_delivery()
    for event_id, body in bodies:
        ch.basic_publish(exchange, key, body, pika.BasicProperties(content_type="application/json",
                                                                   delivery_mode=2, message_id=event_id))


def depth(ch: Any, queue: str) -> int:
    return ch.queue_declare(queue, durable=True, passive=True).method.message_count


# 1. raw relay --------------------------------------------------------------------------------------
def raw_relay(n: int) -> float:
    conn, ch = channel()
    for q in ("bench.relay.in", "bench.relay.out"):
        ch.queue_declare(q, durable=True, arguments=QUEUE_ARGS)
        ch.queue_purge(q)
    fill(ch, [event_body(i, "relay") for i in range(n)], exchange="", key="bench.relay.in")
    conn.close()
    out_body = b"x" * OUT_SIZE
    state = {"published": 0, "acked": 0, "start": 0.0, "end": 0.0, "tags": {}}

    def on_open(connection: Any) -> None:
        connection.channel(on_open_callback=on_channel)

    def on_channel(c: Any) -> None:
        state["ch"] = c
        c.confirm_delivery(on_confirm)
        c.basic_qos(prefetch_count=500)
        state["start"] = time.perf_counter()
        c.basic_consume("bench.relay.in", on_message)

    def on_message(c: Any, method: Any, props: Any, body: bytes) -> None:
        c.basic_publish("", "bench.relay.out", out_body, pika.BasicProperties(delivery_mode=2))
        state["published"] += 1
        state["tags"][state["published"]] = method.delivery_tag

    def on_confirm(frame: Any) -> None:
        c = state["ch"]
        tag, multiple = frame.method.delivery_tag, frame.method.multiple
        c.basic_ack(state["tags"].pop(tag), multiple=multiple)
        for seq in [s for s in state["tags"] if s < tag] if multiple else []:
            state["tags"].pop(seq)
        state["acked"] = tag
        if tag >= n:
            state["end"] = time.perf_counter()
            c.connection.close()

    sel = pika.SelectConnection(params(), on_open_callback=on_open,
                                on_close_callback=lambda *_: sel.ioloop.stop())
    sel.ioloop.start()
    rate = n / (state["end"] - state["start"])
    conn, ch = channel()
    ch.queue_delete("bench.relay.in")
    ch.queue_delete("bench.relay.out")
    conn.close()
    return rate


# the gateway as a real process ---------------------------------------------------------------------
class Gateway:
    def __init__(self, workdir: Path, prefetch: int, log: Path | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(GATEWAY_BROKER_URL=BROKER_URL, GATEWAY_STORE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
                   GATEWAY_REGISTRY=str(ROOT / "fixtures" / "register.json"), GATEWAY_LOG_FORMAT="json",
                   GATEWAY_PREFETCH=str(prefetch), GATEWAY_QUEUE_TYPE="quorum" if QUEUE_ARGS else "classic",
                   GATEWAY_DELIVERY_LIMIT="0", GATEWAY_SYNTHETIC_FNR="accept", GATEWAY_MAX_PAST_DAYS="0",
                   GATEWAY_MAX_FUTURE_DAYS="0", GATEWAY_SECRET_FILE=str(workdir / "gateway.secret"),
                   GATEWAY_HEALTH_PORT="0")  # no fixed port: another gateway on the machine may hold 9464
        env.update(extra_env or {})
        self.log = (log or workdir / "gateway.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "run"], env=env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def wait_ready(self, ch: Any) -> None:
        deadline = time.monotonic() + 30
        while ch.queue_declare("gateway.kartlegging", passive=True).method.consumer_count < 1:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the gateway did not start; see its log")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


STATUS_QUEUE = "bench.status"


def drain(n: int, workdir: Path, prefetch: int, processes: int = 1, statuses: bool = False) -> dict[str, float]:
    """``processes`` gateways share the store and the input queue, as replicas would. With ``statuses`` the
    status events (``kartlegging.status.*``) are counted too, and the gateways run on until the status
    publisher has caught up: how many an event gives, and how long they trail the drain."""
    conn, ch = channel()
    if statuses:
        ch.queue_declare(STATUS_QUEUE, durable=False, arguments=QUEUE_ARGS)
        ch.queue_bind(STATUS_QUEUE, "kartlegging", "kartlegging.status.#")
        ch.queue_purge(STATUS_QUEUE)
    fill(ch, [event_body(i, f"drain-{time.time()}") for i in range(n)])
    start = time.perf_counter()
    gateways = []
    for i in range(processes):
        (workdir / str(i)).mkdir()
        gateways.append(Gateway(workdir, prefetch, log=workdir / str(i) / "gateway.log"))
    for gw in gateways:
        gw.wait_ready(ch)
    while sum(depth(ch, q) for q in RECEIVERS) < 2 * n:
        if any(gw.proc.poll() is not None for gw in gateways):
            raise SystemExit("a gateway died during the drain; see its log")
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    out = {"events_s": n / elapsed}
    if statuses:
        at_drain_end = depth(ch, STATUS_QUEUE)
        last, count, quiet_since = time.perf_counter(), at_drain_end, time.monotonic()
        while time.monotonic() - quiet_since < 3 and time.perf_counter() - start < elapsed + 600:
            time.sleep(0.1)
            now_count = depth(ch, STATUS_QUEUE)
            if now_count != count:
                count, last, quiet_since = now_count, time.perf_counter(), time.monotonic()
        out.update(statuses=count, statuses_per_event=count / n, statuses_at_drain_end=at_drain_end,
                   status_lag_s=max(0.0, last - start - elapsed), statuses_s=count / (last - start))
        ch.queue_delete(STATUS_QUEUE)
    for gw in gateways:
        gw.stop()
    for q in RECEIVERS:
        ch.queue_purge(q)
    conn.close()
    return out


def edi2_drain(n: int, workdir: Path, prefetch: int) -> dict[str, float]:
    """The same backlog with both receivers on EDI 2.0: the consumer stores the messages and acks, the EDI 2.0
    outbox (a periodic task in the same loop) posts each one to the local Meldingstjener stand-in
    (``python -m gateway.standin``, over HTTP with HelseID and DPoP). Counted from the process start until the
    store has every message sent; also when the consumer had acked every event (the queue empty)."""
    import socket
    import sqlite3

    import httpx

    from gateway.standin.local import write_client_key

    register = json.loads((ROOT / "fixtures" / "register.json").read_text("utf-8"))
    herids = {int(q.split("_")[0]) for q in RECEIVERS}
    for party in register["parties"]:
        if party["herid"] in herids:
            party["edi_address"] = f"{party['herid']}@edi.example.no"
    (workdir / "register.json").write_text(json.dumps(register), encoding="utf-8")
    public = write_client_key(workdir / "key.jwk.json")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    served = [8100601, 8100701, 8100801, 8100103, 8100203, 8100302]
    (workdir / "standin.json").write_text(json.dumps({
        "clients": [{"client_id": "bench", "jwk": public, "her_ids": served}], "authority": base}), encoding="utf-8")
    standin = subprocess.Popen([sys.executable, "-m", "gateway.standin", "--port", str(port), "--config",
                                str(workdir / "standin.json")], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=(workdir / "standin.log").open("wb"))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/_standin/state", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("the stand-in did not start") from None
                time.sleep(0.1)
        conn, ch = channel()
        fill(ch, [event_body(i, f"edi2-{time.time()}") for i in range(n)])
        start = time.perf_counter()
        gw = Gateway(workdir, prefetch, extra_env={
            "GATEWAY_REGISTRY": str(workdir / "register.json"), "GATEWAY_MSH_URL": base,
            "GATEWAY_HELSEID_TOKEN_URL": f"{base}/connect/token", "GATEWAY_HELSEID_CLIENT_ID": "bench",
            "GATEWAY_HELSEID_KEY": str(workdir / "key.jwk.json"), "GATEWAY_MSH_POLL_SECONDS": "0.05"})
        gw.wait_ready(ch)
        acked_at = None
        db = None
        while True:
            if gw.proc.poll() is not None:
                raise SystemExit("the gateway died during the EDI 2.0 drain; see its log")
            if acked_at is None and depth(ch, "gateway.kartlegging") == 0:
                acked_at = time.perf_counter()
            if db is None and (workdir / "bench.sqlite3").exists():
                db = sqlite3.connect(f"file:{workdir / 'bench.sqlite3'}?mode=ro", uri=True, timeout=5)
            try:
                sent = db.execute("SELECT count(*) FROM messages WHERE sent_at IS NOT NULL").fetchone()[0] if db else 0
            except sqlite3.OperationalError:
                sent = 0
            if sent >= 2 * n:
                break
            if time.perf_counter() - start > 1800:
                raise SystemExit(f"the EDI 2.0 drain stalled at {sent} of {2 * n} messages")
            time.sleep(0.2)
        elapsed = time.perf_counter() - start
        if db is not None:
            db.close()
        gw.stop()
        conn.close()
    finally:
        standin.terminate()
        standin.wait(timeout=10)
    return {"events_s": n / elapsed, "consumed_events_s": n / ((acked_at or start + elapsed) - start)}


class Receiver(threading.Thread):
    """Consumes the receivers' queues and notes when each event's message arrived."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.arrived: dict[str, float] = {}
        self.count = 0
        self.stop = False

    def run(self) -> None:
        conn = pika.BlockingConnection(params())
        ch = conn.channel()
        ch.basic_qos(prefetch_count=500)

        def on(c: Any, method: Any, props: Any, body: bytes) -> None:
            self.arrived.setdefault(props.correlation_id, time.perf_counter())
            self.count += 1
            c.basic_ack(method.delivery_tag)

        for q in RECEIVERS:
            ch.basic_consume(q, on)
        while not self.stop:
            conn.process_data_events(time_limit=0.1)
        conn.close()


def latency(rate: float, seconds: float, workdir: Path, prefetch: int) -> dict[str, float]:
    conn, ch = channel()
    gw = Gateway(workdir, prefetch)
    gw.wait_ready(ch)
    receiver = Receiver()
    receiver.start()
    sent: dict[str, float] = {}
    run = f"lat-{time.time()}"
    interval = 1 / rate
    t0 = time.perf_counter()
    for i in range(int(rate * seconds)):
        target = t0 + i * interval
        while (now := time.perf_counter()) < target:
            time.sleep(min(interval, target - now))
        event_id, body = event_body(i, run)
        sent[event_id] = time.perf_counter()
        ch.basic_publish("kartlegging", "kartlegging.completed", body,
                         pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=event_id))
    deadline = time.monotonic() + 30
    while len(receiver.arrived) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    receiver.stop = True
    receiver.join()
    gw.stop()
    conn.close()
    ms = sorted((receiver.arrived[e] - t) * 1000 for e, t in sent.items() if e in receiver.arrived)
    q = statistics.quantiles(ms, n=100)
    return {"p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98], "lost": len(sent) - len(ms),
            "achieved_rate": len(sent) / (time.perf_counter() - t0)}


def memory(n: int, workdir: Path, prefetch: int) -> dict[str, float]:
    conn, ch = channel()
    gw = Gateway(workdir, prefetch)
    gw.wait_ready(ch)
    receiver = Receiver()
    receiver.start()
    run = f"mem-{time.time()}"
    samples: list[tuple[int, float]] = []
    batch = 2000
    for start in range(0, n, batch):
        fill(ch, [event_body(i, run) for i in range(start, min(n, start + batch))])
        while receiver.count < 2 * start - 4 * batch:  # keep the backlog bounded
            time.sleep(0.05)
        samples.append((receiver.count // 2, gw.rss_mb()))
    while receiver.count < 2 * n:
        if gw.proc.poll() is not None:
            raise SystemExit("the gateway died during the memory run; see its log")
        time.sleep(0.2)
    samples.append((n, gw.rss_mb()))
    receiver.stop = True
    receiver.join()
    gw.stop()
    conn.close()
    warm = next(rss for done, rss in samples if done >= n * 0.1)
    return {"rss_start_mb": samples[0][1], "rss_after_10pct_mb": warm, "rss_end_mb": samples[-1][1],
            "growth_mb": samples[-1][1] - warm}


def _list(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000, help="backlog size for the drain (and the relay)")
    ap.add_argument("--rate", type=float, default=200.0, help="events per second for the latency run")
    ap.add_argument("--low-rate", type=float, default=50.0, help="a second, lower rate for the latency run")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each latency run")
    ap.add_argument("--memory-events", type=int, default=100_000, help="events in the memory run")
    ap.add_argument("--edi2-events", type=int, default=2_000, help="backlog for the EDI 2.0 drain (0: none)")
    ap.add_argument("--prefetch", type=int, default=200, help="GATEWAY_PREFETCH for the gateway under test")
    ap.add_argument("--processes", type=_list, default=[1, 2],
                    help="gateway processes sharing the store for the drain (replicas), e.g. 1,2; the first "
                         "also counts the status events; latency and memory use one")
    ap.add_argument("--broker", default=SERVER_URL, help="broker URL, or a cluster's ';'-separated URLs")
    ap.add_argument("--queue-type", choices=("classic", "quorum"), default="classic")
    ap.add_argument("--drain-only", action="store_true", help="only the raw relay and the drain(s)")
    ap.add_argument("--no-statuses", action="store_true", help="do not wait for the status events after the drain")
    ap.add_argument("--note", default="", help="a note for the BENCHMARKS.md row (what changed)")
    args = ap.parse_args()
    global BROKER_URL, QUEUE_ARGS
    BROKER_URL = args.broker
    QUEUE_ARGS = {"x-queue-type": "quorum"} if args.queue_type == "quorum" else None
    nodes = len(BROKER_URL.split(";"))
    nan = float("nan")
    with tempfile.TemporaryDirectory() as tmp:

        def workdir(name: str) -> Path:
            (Path(tmp) / name).mkdir()
            return Path(tmp) / name

        print(f"raw relay over {args.events} messages …", flush=True)
        relay = raw_relay(args.events)
        drains: dict[int, dict[str, float]] = {}
        for k, processes in enumerate(args.processes):
            print(f"drain of {args.events} events, {processes} process(es) …", flush=True)
            drains[processes] = drain(args.events, workdir(f"drain{processes}"), args.prefetch, processes,
                                      statuses=k == 0 and not args.no_statuses)
        lat: dict[float, dict[str, float]] = {}
        mem: dict[str, float] = {"rss_after_10pct_mb": nan, "rss_end_mb": nan, "growth_mb": nan}
        edi2: dict[str, float] = {"events_s": nan, "consumed_events_s": nan}
        if not args.drain_only:
            for rate in (args.rate, args.low_rate):
                print(f"latency at {rate}/s for {args.seconds} s …", flush=True)
                lat[rate] = latency(rate, args.seconds, workdir(f"latency{rate:g}"), args.prefetch)
            print(f"memory over {args.memory_events} events …", flush=True)
            mem = memory(args.memory_events, workdir("memory"), args.prefetch)
            if args.edi2_events:
                print(f"EDI 2.0 drain of {args.edi2_events} events …", flush=True)
                edi2 = edi2_drain(args.edi2_events, workdir("edi2"), args.prefetch)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(), "note": args.note,
        "events": args.events, "prefetch": args.prefetch, "broker_nodes": nodes, "queue_type": args.queue_type,
        "raw_relay_msg_s": round(relay),
        "drain": {str(p): {**{k: round(v, 3) for k, v in d.items()},
                           "messages_s": round(2 * d["events_s"]),
                           "ratio_events": round(d["events_s"] / relay, 3),
                           "ratio_messages": round(2 * d["events_s"] / relay, 3)} for p, d in drains.items()},
        "latency": {f"{r:g}": {k: round(v, 1) for k, v in d.items()} for r, d in lat.items()},
        "memory": {k: round(v, 1) for k, v in mem.items()}, "memory_events": args.memory_events,
        "edi2": {k: round(v, 1) for k, v in edi2.items()}, "edi2_events": args.edi2_events,
        "latency_seconds": args.seconds,
    }
    rows = [("raw relay (pika, async confirms)", f"{result['raw_relay_msg_s']:,} msg/s", "upper bound")]
    for p, d in result["drain"].items():
        rows.append((f"gateway drain ({p} process{'es' if p != '1' else ''})",
                     f"{round(d['events_s']):,} events/s ({d['messages_s']:,} msg/s)",
                     f"ratio {d['ratio_events']} events / {d['ratio_messages']} messages per relay msg "
                     f"(goal ≥ {'0.30' if p == '1' else '0.45'} messages)"))
        if "statuses" in d:
            rows.append(("  status events", f"{d['statuses_per_event']:.2f} per event, {d['statuses_s']:,.0f}/s",
                         f"{d['statuses_at_drain_end']:.0f} of {d['statuses']:.0f} out when the drain ended; "
                         f"the rest {d['status_lag_s']:.1f} s later"))
    for r, d in result["latency"].items():
        rows.append((f"latency at {r}/s", f"p50 {d['p50_ms']} / p95 {d['p95_ms']} / p99 {d['p99_ms']} ms",
                     f"lost {d['lost']:.0f}; goal p99 ≤ 50 ms at 200/s"))
    m = result["memory"]
    rows.append((f"memory over {args.memory_events:,} events", f"{m['rss_after_10pct_mb']} → {m['rss_end_mb']} MB",
                 f"growth {m['growth_mb']} MB (goal < 20)"))
    e = result["edi2"]
    rows.append((f"EDI 2.0 drain ({args.edi2_events:,} events, stand-in)",
                 f"{e['events_s']} events/s ({2 * e['events_s']:.0f} msg/s) posted",
                 f"consumed and stored at {e['consumed_events_s']} events/s"))
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<48} {note}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{result['date'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    with (ROOT / "BENCHMARKS.md").open("a", encoding="utf-8") as f:
        events = f"{args.events}" + (f" ({nodes}-node cluster, {args.queue_type})" if nodes > 1 else (
            " (quorum)" if args.queue_type == "quorum" else ""))

        def drain_cell(p: str) -> str:
            d = result["drain"].get(p)
            return "—" if d is None else (f"{round(d['events_s'])} ev/s = {d['messages_s']} msg/s: "
                                          f"**{d['ratio_events']} / {d['ratio_messages']}**")

        d1 = result["drain"].get(str(args.processes[0]), {})
        status = (f"{d1['statuses_per_event']:.2f}/event, {d1['statuses_s']:.0f}/s, lag {d1['status_lag_s']:.1f} s"
                  if "statuses" in d1 else "—")

        def lat_cell(r: float) -> str:
            d = result["latency"].get(f"{r:g}")
            return "—" if d is None else f"{d['p50_ms']} / {d['p95_ms']} / **{d['p99_ms']}**"

        f.write(f"| {result['date']}{' (' + args.note + ')' if args.note else ''} | {result['machine']} | {events} | "
                f"{result['raw_relay_msg_s']} | {drain_cell('1')} | {drain_cell('2')} | {lat_cell(args.rate)} | "
                f"{lat_cell(args.low_rate)} | {m['growth_mb']} (over {args.memory_events}) | "
                f"{e['events_s']} ev/s (consumed {e['consumed_events_s']}) | {status} |\n")
    print(f"\nwritten: {path.relative_to(ROOT)} and a row in BENCHMARKS.md")


if __name__ == "__main__":
    main()
