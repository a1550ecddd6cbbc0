"""Benchmarks of the gateway against the raw broker, measured in one run on one machine.

    python bench/run.py [--events 20000] [--rate 200] [--seconds 60] [--memory-events 100000]
    python bench/run.py --broker "$(scripts/cluster.sh urls VHOST)" --queue-type quorum --drain-only

``--broker`` takes one URL or a cluster's ';'-separated list: the benchmark's own clients use the first, the
gateway gets them all. ``--queue-type quorum`` declares every queue as a quorum queue (the relay's too, so the
ratio compares like with like). ``--drain-only`` runs (1) and (2).

1. raw relay: consume → publish → ack with no work (pika, asynchronous confirms, prefetch 500),
   the same message sizes as the gateway sees: the upper bound;
2. drain: a backlog of realistic events (each routed to two receivers) in gateway.kartlegging,
   drained by a real `gateway run` into the receivers' queues;
3. latency: events at a fixed rate; publish → arrival in the receiver's queue, p50/p95/p99;
4. memory: the gateway's resident memory over a long run;
then one table, a JSON file in bench/results/, and a row appended to BENCHMARKS.md.
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
    def __init__(self, workdir: Path, prefetch: int, log: Path | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(GATEWAY_BROKER_URL=BROKER_URL, GATEWAY_STORE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
                   GATEWAY_REGISTRY=str(ROOT / "fixtures" / "register.json"), GATEWAY_LOG_FORMAT="json",
                   GATEWAY_PREFETCH=str(prefetch), GATEWAY_QUEUE_TYPE="quorum" if QUEUE_ARGS else "classic",
                   GATEWAY_DELIVERY_LIMIT="0", GATEWAY_SYNTHETIC_FNR="accept", GATEWAY_MAX_PAST_DAYS="0",
                   GATEWAY_MAX_FUTURE_DAYS="0", GATEWAY_SECRET_FILE=str(workdir / "gateway.secret"),
                   GATEWAY_HEALTH_PORT="0")  # no fixed port: another gateway on the machine may hold 9464
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


def drain(n: int, workdir: Path, prefetch: int, processes: int = 1) -> float:
    """``processes`` gateways share the store and the input queue, as replicas would."""
    conn, ch = channel()
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
    for gw in gateways:
        gw.stop()
    for q in RECEIVERS:
        ch.queue_purge(q)
    conn.close()
    return n / elapsed


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000, help="backlog size for the drain (and the relay)")
    ap.add_argument("--rate", type=float, default=200.0, help="events per second for the latency run")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the latency run")
    ap.add_argument("--memory-events", type=int, default=100_000, help="events in the memory run")
    ap.add_argument("--prefetch", type=int, default=200, help="GATEWAY_PREFETCH for the gateway under test")
    ap.add_argument("--processes", type=int, default=1,
                    help="gateway processes sharing the store for the drain (replicas); latency and memory use one")
    ap.add_argument("--broker", default=SERVER_URL, help="broker URL, or a cluster's ';'-separated URLs")
    ap.add_argument("--queue-type", choices=("classic", "quorum"), default="classic")
    ap.add_argument("--drain-only", action="store_true", help="only the raw relay and the drain")
    args = ap.parse_args()
    global BROKER_URL, QUEUE_ARGS
    BROKER_URL = args.broker
    QUEUE_ARGS = {"x-queue-type": "quorum"} if args.queue_type == "quorum" else None
    nodes = len(BROKER_URL.split(";"))
    with tempfile.TemporaryDirectory() as tmp:

        def workdir(name: str) -> Path:
            (Path(tmp) / name).mkdir()
            return Path(tmp) / name

        print(f"raw relay over {args.events} messages …", flush=True)
        relay = raw_relay(args.events)
        print(f"drain of {args.events} events …", flush=True)
        drained = drain(args.events, workdir("drain"), args.prefetch, args.processes)
        lat: dict[str, float] = {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
        mem: dict[str, float] = {"rss_after_10pct_mb": float("nan"), "rss_end_mb": float("nan"),
                                 "growth_mb": float("nan")}
        if not args.drain_only:
            print(f"latency at {args.rate}/s for {args.seconds} s …", flush=True)
            lat = latency(args.rate, args.seconds, workdir("latency"), args.prefetch)
            print(f"memory over {args.memory_events} events …", flush=True)
            mem = memory(args.memory_events, workdir("memory"), args.prefetch)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "events": args.events, "prefetch": args.prefetch, "drain_processes": args.processes,
        "broker_nodes": nodes, "queue_type": args.queue_type,
        "raw_relay_msg_s": round(relay), "drain_events_s": round(drained),
        "drain_messages_s": round(2 * drained), "ratio_drain_raw": round(drained / relay, 3),
        **{k: round(v, 1) for k, v in lat.items()}, **{k: round(v, 1) for k, v in mem.items()},
        "memory_events": args.memory_events, "latency_rate": args.rate, "latency_seconds": args.seconds,
    }
    rows = [("raw relay (pika, async confirms)", f"{result['raw_relay_msg_s']:,} msg/s", "upper bound"),
            (f"gateway drain ({args.processes} process{'es' if args.processes > 1 else ''})",
             f"{result['drain_events_s']:,} events/s ({result['drain_messages_s']:,} msg/s)",
             f"ratio {result['ratio_drain_raw']} (goal ≥ 0.30)"),
            (f"latency at {args.rate:g}/s", f"p50 {result['p50_ms']} / p95 {result['p95_ms']} / "
             f"p99 {result['p99_ms']} ms", "goal p99 ≤ 50 ms"),
            (f"memory over {args.memory_events:,} events", f"{result['rss_after_10pct_mb']} → "
             f"{result['rss_end_mb']} MB", f"growth {result['growth_mb']} MB (goal < 20)")]
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<48} {note}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{result['date'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    bench_md = ROOT / "BENCHMARKS.md"
    if not bench_md.exists():
        bench_md.write_text(
            "# Benchmarks\n\nRows are appended by `python bench/run.py`; old rows stay. Goals: drain ≥ 0.30 × "
            "raw relay, p99 ≤ 50 ms at 200 events/s, memory growth < 20 MB over 100,000 events.\n\n"
            "| date (UTC) | machine | events | raw relay msg/s | drain events/s | ratio | p50 / p95 / p99 ms | "
            "RSS growth MB |\n|---|---|---|---|---|---|---|---|\n", encoding="utf-8")
    with bench_md.open("a", encoding="utf-8") as f:
        events = f"{args.events}" + (f" ({args.processes} processes)" if args.processes > 1 else "")
        events += f" ({nodes}-node cluster, {args.queue_type})" if nodes > 1 else (
            " (quorum)" if args.queue_type == "quorum" else "")
        f.write(f"| {result['date']} | {result['machine']} | {events} | {result['raw_relay_msg_s']} | "
                f"{result['drain_events_s']} | {result['ratio_drain_raw']} | {result['p50_ms']} / {result['p95_ms']} / "
                f"{result['p99_ms']} | {result['growth_mb']} (over {args.memory_events}) |\n")
    print(f"\nwritten: {path.relative_to(ROOT)} and a row in BENCHMARKS.md")


if __name__ == "__main__":
    main()
