"""The demo as a use-case: publish the fixture events, run the whole path over them on an in-memory (or
real) broker and a fresh SQLite store, and report what became of each. The CLI prints the result."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kombu import Connection

from gateway.delivery.bus import (
    PARKED_QUEUE,
    AmqpPublisher,
    MemoryPublisher,
    Publisher,
    declare_topology,
    queue_depth,
    receiver_queue_name,
)
from gateway.delivery.consumer import EventHandler, Handled, drain_until_idle
from gateway.delivery.edi2.transport import Edi2Inbox, Edi2Outbox
from gateway.delivery.receipts import AppRecTracker
from gateway.delivery.status import StatusPublisher
from gateway.domain.kartlegging import Checks, event_id_of
from gateway.domain.registry import EDI2, Register
from gateway.errors import GatewayError
from gateway.operations.forlop import pathways
from gateway.oversikt.pathway import Pathway
from gateway.pipeline import Folders
from gateway.routing.rules import RuleSet
from gateway.standin.local import local_meldingstjener
from gateway.store import SqlStore, open_store

DEMO_CHECKS = Checks(accept_synthetic=True, max_past_days=0, future_days=0)
MARKER = ".gateway-demo"  # the demo only ever empties a folder that carries this file


class DemoFolderRefused(GatewayError):
    """The output folder holds something the demo did not write; it is never deleted."""


@dataclass(frozen=True)
class DemoMessage:
    role: str
    to_herid: int
    receiver_name: str
    msg_type: str
    msg_id: str
    status: str
    file: Path
    transport: str = "amqp"


@dataclass(frozen=True)
class DemoEvent:
    file: str
    handled: Handled
    messages: tuple[DemoMessage, ...]


@dataclass
class DemoResult:
    broker: str
    out: Path
    events: list[DemoEvent] = field(default_factory=list)
    queues: dict[str, int] = field(default_factory=dict)
    edi2: dict[str, int] = field(default_factory=dict)  # what went through the (local) Meldingstjener
    statuses: list[dict[str, Any]] = field(default_factory=list)  # what the hospitals were told
    pathways: list[Pathway] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.events:
            counts[e.handled.status] = counts.get(e.handled.status, 0) + 1
        return dict(sorted(counts.items()))


def prepare_out(out: Path) -> None:
    """Empties ``out`` only if the demo made it (it carries MARKER); refuses any other non-empty folder."""
    if out.exists():
        if not out.is_dir():
            raise DemoFolderRefused(f"{out} is a file; give --out a folder")
        entries = list(out.iterdir())
        if entries and not (out / MARKER).exists():
            raise DemoFolderRefused(f"{out} is not empty and was not made by the demo; give --out a new folder")
        for entry in entries:
            _remove(entry)
    (out / "messages").mkdir(parents=True)
    (out / MARKER).write_text("made by 'gateway demo'; the demo empties this folder when run again\n")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            _remove(child)
        path.rmdir()
    else:
        path.unlink()


def run_demo(*, broker: str, events_dir: Path, out: Path, register: Register, rules: RuleSet, folders: Folders,
             prefetch: int, window_days: int) -> DemoResult:
    files = sorted(events_dir.glob("*.json"))
    store = open_store(f"sqlite:///{out / 'demo.sqlite3'}")
    publisher = AmqpPublisher(broker)
    names: dict[str, str] = {}
    results: list[Handled] = []
    result = DemoResult(broker, out)
    try:
        with Connection(broker) as connection:
            declare_topology(connection)
            for path in files:
                body = path.read_bytes()
                event_id = event_id_of(body)
                names[event_id or path.stem] = path.name
                publisher.publish_event(body, event_id or path.stem)
            # The fixture world has fixed dates and synthetic numbers: no checks against today's date.
            handler = EventHandler(register, store, publisher, rules=rules, window_days=window_days, folders=folders,
                                   checks=DEMO_CHECKS)
            drain_until_idle(connection, handler, prefetch, on_handled=results.append)
            result.edi2 = _through_the_meldingstjener(store, publisher, out, {h for h in _senders(files)})
            told = MemoryPublisher()
            statuses = StatusPublisher(store, told, register)
            while statuses.publish_pending():
                pass
            result.statuses = [json.loads(o.body) for o in told.published()]
            receivers = sorted({receiver_queue_name(m["to_herid"]) for m in store.messages()
                                if (m.get("transport") or "amqp") == "amqp"})  # EDI 2.0 ones have no queue
            result.queues = {q: queue_depth(connection, q) for q in receivers}
            result.queues[PARKED_QUEUE.name] = queue_depth(connection, PARKED_QUEUE.name)
        for handled, path in zip(results, files, strict=False):
            name = names.get(handled.event_id or "", path.name if handled.event_id is None else "?")
            if handled.status == "routed":  # its EDI 2.0 messages have gone out since: the store knows
                now = store.event(str(handled.event_ref))
                handled = replace(handled, status=now["status"] if now else handled.status, reason=None)
            messages = []
            for row in store.messages(handled.event_ref):
                target = out / "messages" / f"{Path(name).stem}__{row['role']}__{row['to_herid']}.xml"
                target.write_bytes(row["xml"])
                party = register.party(row["to_herid"])
                messages.append(DemoMessage(row["role"], row["to_herid"], party.name if party else "?",
                                            row["msg_type"], row["msg_id"], row["status"], target,
                                            row.get("transport") or "amqp"))
            result.events.append(DemoEvent(name, handled, tuple(messages)))
        result.pathways = pathways(store, register, rules)
    finally:
        publisher.close()
        store.close()
    return result


def _senders(files: list[Path]) -> set[int]:
    """The HER-ids the demo's events are sent from: the parties the gateway acts for at the Meldingstjener."""
    found = set()
    for path in files:
        try:
            found.add(int(json.loads(path.read_bytes())["sender"]["herid"]))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def _through_the_meldingstjener(store: SqlStore, publisher: Publisher, out: Path, served: set[int]) -> dict[str, int]:
    """The EDI 2.0 receivers' messages go to a local stand-in of NHN's Meldingstjener (which answers as an EDI
    receiver would, with an AppRec); the receipts come back through the same API."""
    if not store.pending(EDI2, 1):
        return {}
    local = local_meldingstjener(served, out / "helseid-client-key.jwk.json")
    try:
        outbox = Edi2Outbox(store, local.msh)
        posted = parked = receipts = 0
        while True:  # the outbox takes a batch a pass; the demo runs it until the store has none waiting
            run = outbox.send_pending()
            posted, parked = posted + run.sent, parked + run.parked
            if not run.sent and not run.parked:
                break
        tracker = AppRecTracker(store, publisher)
        inbox = Edi2Inbox(local.msh, sorted(served), lambda document, _id: tracker.handle(document))
        while (read := inbox.poll().read) > 0:
            receipts += read
    finally:
        local.close()
    return {"posted": posted, "parked": parked, "receipts": receipts}


def describe(handled: Handled) -> str:
    """One line for an event's end state, without patient data."""
    state = handled.status + (f" {handled.reason_code}: {handled.reason}" if handled.reason_code else "")
    if handled.status in ("not_shared", "declined"):
        state += f" ({handled.reason})"
    if handled.flags:
        state += f" [flagged: {', '.join(handled.flags)}]"
    return state


def as_dict(result: DemoResult) -> dict[str, Any]:
    return {
        "broker": result.broker.split(":", 1)[0],
        "out": str(result.out),
        "events": [{"file": e.file, "event_id": e.handled.event_id, "status": e.handled.status,
                    "reason_code": e.handled.reason_code, "flags": list(e.handled.flags),
                    "messages": [{"role": m.role, "to_herid": m.to_herid, "receiver": m.receiver_name,
                                  "msg_type": m.msg_type, "msg_id": m.msg_id, "status": m.status,
                                  "transport": m.transport, "file": str(m.file)} for m in e.messages]}
                   for e in result.events],
        "queues": result.queues,
        "edi2": result.edi2,
        "statuses": result.statuses,
        "pathways": [{"patient": p.patient_key[:12], "kommunenummer": p.kommunenummer,
                      "points_done": list(p.points_done()),
                      "next": [{"samhandlingspunkt": w.samhandlingspunkt, "from": w.from_date.isoformat(),
                                "to": w.to_date.isoformat()} for w in p.windows]} for p in result.pathways],
        "summary": result.summary(),
    }
