"""The ``gateway`` command: what operators, hospital systems and developers run."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import sys
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any

import click
from kombu import Connection

from gateway import __version__
from gateway.adresseregister import Party, Register, RegisterError, address_of, load_register
from gateway.bus import PARKED_QUEUE, Publisher, declare_topology, queue_depth
from gateway.config import DEFAULTS, REPO_ROOT, Settings
from gateway.consumer import EventHandler, Handled, KartleggingConsumer, drain_until_idle
from gateway.historikk import TWO_HOSPITALS, Historikk
from gateway.kartlegging import event_id_of, parse_event
from gateway.logs import configure, log
from gateway.reasons import Parked
from gateway.registerlager import StoreRegister, import_gp_register, import_parties
from gateway.replay import ReplayError, execute, plan
from gateway.routing import route
from gateway.rutingregler import RuleError, RuleSet, default_rules
from gateway.store import SqlStore, Store, StoreUnavailable, open_store
from gateway.tracking import AppRecTracker, apprec_queue
from gateway.validation import MessageInvalid, validate_message

ENV_HELP = "\b\n" + "\n".join(f"  {name:<34} default {value or '(none)'}" for name, value in DEFAULTS.items())


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def _register(settings: Settings) -> Register:
    if str(settings.registry_path) == "store":
        store = open_store(settings.store_url)
        if not isinstance(store, SqlStore):
            raise click.ClickException("GATEWAY_REGISTRY=store needs a SQL store")
        register = StoreRegister(store)
        if not register.parties:
            raise click.ClickException("GATEWAY_REGISTRY=store, but the store holds no registry: "
                                       "run 'gateway registry import --parties FILE.json' first")
        return register
    try:
        return load_register(settings.registry_path)
    except FileNotFoundError as exc:
        raise click.ClickException(
            f"the contact-point registry {settings.registry_path} does not exist; set GATEWAY_REGISTRY to the file"
        ) from exc
    except RegisterError as exc:
        raise click.ClickException(f"the contact-point registry {settings.registry_path} is broken: {exc}") from exc


@click.group(epilog=f"Configuration (environment variables):\n\n{ENV_HELP}")
@click.version_option(__version__, prog_name="gateway")
def main() -> None:
    """Pakkeforløp hjem gateway: kartlegging events in, MsgHead + Dialogmelding 1.1 out."""


@main.command()
def run() -> None:
    """Consume kartlegging events until stopped (SIGTERM or Ctrl-C stop it cleanly)."""
    settings = _settings()
    configure(settings.log_format)
    register = _register(settings)
    rules = _rules()
    store = open_store(settings.store_url)
    publisher = Publisher(settings.broker_url)
    handler = EventHandler(register, store, publisher, rules=rules, window_days=settings.two_hospitals_window_days)
    tracker = AppRecTracker(store, publisher, settings.apprec_deadline_hours)
    receipts = apprec_queue(settings.own_herid)
    with Connection(settings.broker_url, heartbeat=30) as connection:
        declare_topology(connection)
        consumer = KartleggingConsumer(
            connection, handler, settings.prefetch,
            periodic=[(settings.overdue_check_seconds, tracker.check_overdue)],
            extra_consumers=lambda Consumer, channel: [
                Consumer(queues=[receipts], on_message=tracker.on_message, prefetch_count=settings.prefetch)],
        )

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("consumer.stopping", signal=signal.Signals(signum).name)
            consumer.should_stop = True
            consumer.batcher.should_stop = True  # also ends a batch's backoff wait during an outage

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("gateway.started", broker=connection.as_uri(), store=settings.store_url.split(":", 1)[0],
                 registry=str(settings.registry_path))
        consumer.run_forever()
    publisher.close()
    store.close()
    log.info("gateway.stopped")


def _rules() -> RuleSet:
    try:
        return default_rules()
    except RuleError as exc:
        raise click.ClickException(f"the routing rules are broken; refusing to route wrongly: {exc}") from exc


@main.command()
@click.option("--broker", default="memory://", show_default=True,
              help="Broker URL; memory:// runs everything in this process, amqp://… uses RabbitMQ.")
@click.option("--events", "events_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=REPO_ROOT / "fixtures" / "events", show_default=True, help="Folder of event JSON files.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Folder for the built messages and the demo store (emptied first).")
def demo(broker: str, events_dir: Path, out: Path) -> None:
    """Publish the fixture events, run the whole path over them and print what became of each."""
    settings = _settings()
    if out.exists():
        shutil.rmtree(out)
    (out / "messages").mkdir(parents=True)
    log_file = (out / "gateway.log").open("w", encoding="utf-8")
    configure("json", stream=log_file)
    register = _register(settings)
    store = open_store(f"sqlite:///{out / 'demo.sqlite3'}")
    files = sorted(events_dir.glob("*.json"))
    publisher = Publisher(broker)
    names: dict[str, str] = {}
    results: list[Handled] = []
    with Connection(broker) as connection:
        declare_topology(connection)
        for path in files:
            body = path.read_bytes()
            event_id = event_id_of(body)
            names[event_id or path.stem] = path.name
            publisher.publish_event(body, event_id or path.stem)
        handler = EventHandler(register, store, publisher, window_days=settings.two_hospitals_window_days)
        drain_until_idle(connection, handler, settings.prefetch, on_handled=results.append)
        depth = {q: queue_depth(connection, q) for q in sorted({f"{m['to_herid']}_async" for m in store.messages()})}
        depth[PARKED_QUEUE.name] = queue_depth(connection, PARKED_QUEUE.name)
    publisher.close()
    click.echo(f"Demo over {len(files)} events on {broker.split(':', 1)[0]}:// — messages in {out / 'messages'}\n")
    for handled, path in zip(results, files, strict=False):
        name = names.get(handled.event_id or "", path.name if handled.event_id is None else "?")
        state = handled.status + (f" {handled.reason_code}: {handled.reason}" if handled.reason_code else "")
        if handled.status in ("not_shared", "declined"):
            state += f" ({handled.reason})"
        if handled.flags:
            state += f" [flagged: {', '.join(handled.flags)}]"
        click.echo(f"{name}\n  state: {state}")
        for row in store.messages(handled.event_ref):
            target = out / "messages" / f"{Path(name).stem}__{row['role']}__{row['to_herid']}.xml"
            target.write_bytes(row["xml"])
            party = register.party(row["to_herid"])
            click.echo(f"  → {row['role']:<18} HER-id {row['to_herid']:<8} {party.name if party else '?'}")
            click.echo(f"    {row['msg_type']} MsgId {row['msg_id']} [{row['status']}] {target.name}")
    click.echo("\nQueues now: " + ", ".join(f"{q} {n}" for q, n in depth.items()))
    by_status: dict[str, int] = {}
    for handled in results:
        by_status[handled.status] = by_status.get(handled.status, 0) + 1
    click.echo("\nSummary: " + ", ".join(f"{n} {status}" for status, n in sorted(by_status.items())))
    click.echo(f"The gateway's log lines are in {out / 'gateway.log'}.")
    store.close()
    log_file.close()


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--broker", envvar="GATEWAY_BROKER_URL", default=DEFAULTS["GATEWAY_BROKER_URL"], show_default=True)
def publish(files: tuple[Path, ...], broker: str) -> None:
    """Publish event JSON files as a hospital system would (exchange kartlegging)."""
    publisher = Publisher(broker)
    for path in files:
        body = path.read_bytes()
        event_id = event_id_of(body)
        if event_id is None:
            click.echo(f"warning: {path} has no event_id; publishing it anyway (the gateway will park it)", err=True)
        publisher.publish_event(body, event_id or "")
        click.echo(f"published {path} (event_id {event_id})")
    publisher.close()


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Validate MsgHead message files against the official schemas (exit 1 if any fails)."""
    failed = 0
    for path in files:
        try:
            validate_message(path.read_bytes())
        except MessageInvalid as exc:
            failed += 1
            click.echo(f"{path}: INVALID {exc.code} at {exc.path}: {exc.message}")
        else:
            click.echo(f"{path}: valid")
    if failed:
        sys.exit(1)


def _store() -> Store:
    settings = _settings()
    try:
        return open_store(settings.store_url)
    except (ValueError, StoreUnavailable) as exc:
        raise click.ClickException(f"cannot open the store ({settings.store_url.split(':', 1)[0]}): {exc}") from exc


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c) if r.get(c) is not None else "")) for r in rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        click.echo("  ".join(str(r.get(c) if r.get(c) is not None else "").ljust(widths[c]) for c in columns))


def _emit(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        # JSON carries every column (but never a body or XML); the table only the readable ones.
        click.echo(json.dumps([{k: v for k, v in r.items() if k not in ("xml", "body")} for r in rows],
                              ensure_ascii=False, indent=2))
    else:
        _table(rows, columns)


MESSAGE_COLUMNS = ["msg_id", "status", "msg_type", "to_herid", "role", "kommunenummer", "samhandlingspunkt",
                   "created_at", "apprec_status", "flags"]
EVENT_COLUMNS = ["id", "event_id", "status", "reason_code", "samhandlingspunkt", "kommunenummer", "attempts",
                 "received_at", "flags"]
FLAGS = [TWO_HOSPITALS]


@main.group()
def messages() -> None:
    """Find and inspect outbound messages (in the store named by GATEWAY_STORE_URL)."""


@messages.command("list")
@click.option("--status", type=click.Choice(["built", "sent", "acknowledged", "rejected", "overdue", "superseded"]))
@click.option("--receiver", type=int, help="Receiver HER-id.")
@click.option("--kommune", help="Kommunenummer of the patient.")
@click.option("--samhandlingspunkt", "--sp", "sp", type=click.IntRange(1, 5))
@click.option("--since", help="ISO date or time (UTC), inclusive.")
@click.option("--until", help="ISO date or time (UTC), exclusive.")
@click.option("--flag", type=click.Choice(FLAGS),
              help="Only messages of events flagged for operators (two-hospitals: a second hospital did the same "
                   "samhandlingspunkt within GATEWAY_TWO_HOSPITALS_WINDOW_DAYS).")
@click.option("--limit", default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def messages_list(status: str | None, receiver: int | None, kommune: str | None, sp: int | None, since: str | None,
                  until: str | None, flag: str | None, limit: int, as_json: bool) -> None:
    """List messages, oldest first."""
    rows = _store().find_messages(status=status, receiver=receiver, kommune=kommune, samhandlingspunkt=sp,
                                  since=since, until=until, flag=flag, limit=limit)
    _emit(rows, MESSAGE_COLUMNS, as_json)


@messages.command("overdue")
@click.option("--json", "as_json", is_flag=True)
def messages_overdue(as_json: bool) -> None:
    """Messages sent without an AppRec within the deadline (GATEWAY_APPREC_DEADLINE_HOURS)."""
    _emit(_store().find_messages(status="overdue"), MESSAGE_COLUMNS, as_json)


@messages.command("show")
@click.argument("msg_id")
@click.option("--no-xml", is_flag=True, help="Leave out the XML.")
def messages_show(msg_id: str, no_xml: bool) -> None:
    """One message: state, why it went where it went, its history, its receipt and its XML."""
    store = _store()
    row = store.message(msg_id)
    if row is None:
        raise click.ClickException(f"no message {msg_id}; list them with 'gateway messages list'")
    for key in ("msg_id", "status", "msg_type", "from_herid", "to_herid", "role", "why", "created_at", "sent_at",
                "apprec_status", "apprec_errors", "answered_at", "overdue_at", "event_ref"):
        click.echo(f"{key + ':':<15} {row.get(key) if row.get(key) is not None else ''}")
    click.echo("history:")
    for h in store.history("message", msg_id):
        click.echo(f"  {h['at']}  {h['status']:<12} {h['reason_code'] or ''} {h['reason'] or ''}".rstrip())
    if not no_xml:
        click.echo("xml:")
        click.echo(bytes(row["xml"]).decode("utf-8"))


@main.group()
def events() -> None:
    """Find and inspect received events."""


@events.command("list")
@click.option("--status", type=click.Choice(["received", "routed", "sent", "not_shared", "declined", "parked"]))
@click.option("--reason-code", help="e.g. ROUTING_UNKNOWN_KOMMUNE")
@click.option("--since")
@click.option("--until")
@click.option("--flag", type=click.Choice(FLAGS), help="Only events flagged for operators.")
@click.option("--limit", default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def events_list(status: str | None, reason_code: str | None, since: str | None, until: str | None,
                flag: str | None, limit: int, as_json: bool) -> None:
    """List events, oldest first (parked ones with their reason code)."""
    _emit(_store().find_events(status=status, reason_code=reason_code, since=since, until=until, flag=flag,
                               limit=limit),
          EVENT_COLUMNS + (["reason"] if status == "parked" else []), as_json)


@events.command("show")
@click.argument("key")
def events_show(key: str) -> None:
    """One event (by event_id or store number): state, reason, history and its messages (not its body)."""
    store = _store()
    row = store.event(key)
    if row is None:
        raise click.ClickException(f"no event {key}")
    for column in [*EVENT_COLUMNS, "reason"]:
        click.echo(f"{column + ':':<18} {row.get(column) if row.get(column) is not None else ''}")
    click.echo("history:")
    for h in store.history("event", str(row["id"])):
        click.echo(f"  {h['at']}  {h['status']:<10} {h['reason_code'] or ''} {h['reason'] or ''}".rstrip())
    click.echo("messages:")
    for m in store.messages(row["id"]):
        click.echo(f"  {m['msg_id']}  {m['status']:<12} {m['role']:<17} {m['to_herid']}")


def _operator(value: str | None) -> str:
    return value or os.environ.get("GATEWAY_OPERATOR") or getpass.getuser()


@main.command()
@click.argument("key", required=False)
@click.option("--status", type=click.Choice(["parked", "rejected", "overdue"]), help="Bulk: everything in this state.")
@click.option("--reason-code", help="Bulk, parked events: only this reason code.")
@click.option("--since", help="Bulk: received/created at or after this ISO time.")
@click.option("--until", help="Bulk: before this ISO time.")
@click.option("--reason", required=True, help="Why you replay (stored in the audit trail).")
@click.option("--operator", help="Your name for the audit trail (default: GATEWAY_OPERATOR or the login name).")
@click.option("--new-conversation", is_flag=True, help="Messages: rebuild with a new MsgId instead of re-sending.")
@click.option("--dry-run", is_flag=True, help="Show what would happen; change nothing.")
def replay(key: str | None, status: str | None, reason_code: str | None, since: str | None, until: str | None,
           reason: str, operator: str | None, new_conversation: bool, dry_run: bool) -> None:
    """Replay one event or message (KEY = event_id, event number or MsgId), or many (--status)."""
    if (key is None) == (status is None):
        raise click.UsageError("give either KEY or --status")
    store = _store()
    if key is not None:
        keys = [key]
    elif status == "parked":
        keys = [str(r["id"]) for r in store.find_events(status="parked", reason_code=reason_code, since=since,
                                                          until=until, limit=1_000_000)]
    else:
        keys = [r["msg_id"] for r in store.find_messages(status=status, since=since, until=until, limit=1_000_000)]
    try:
        plans = [plan(store, k, new_conversation=new_conversation) for k in keys]
    except ReplayError as exc:
        raise click.ClickException(str(exc)) from exc
    if dry_run or not plans:
        for p in plans:
            click.echo(f"would {p.action}  [{p.kind} {p.target}]")
        click.echo(f"{len(plans)} to replay" + (" (dry run: nothing changed)" if dry_run else ""))
        return
    settings = _settings()
    publisher = Publisher(settings.broker_url)
    register = _register(settings) if any(p.new_conversation for p in plans) else None
    who = _operator(operator)
    done = 0
    with click.progressbar(plans, label="replaying", show_pos=True, file=sys.stderr) as bar:
        for p in bar:
            try:
                execute(p, store, publisher, register, operator=who, reason=reason,  # type: ignore[arg-type]
                        window_days=settings.two_hospitals_window_days)
                done += 1
            except ReplayError as exc:
                click.echo(f"\nskipped {p.target}: {exc}", err=True)
    publisher.close()
    click.echo(f"replayed {done} of {len(plans)}; audit trail: gateway audit")


@main.command()
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def audit(limit: int, as_json: bool) -> None:
    """The operators' audit trail: who replayed what, when and why (newest first)."""
    _emit(_store().audit_log(limit), ["at", "operator", "action", "target", "reason", "detail"], as_json)


@main.group("route")
def routing_group() -> None:
    """The routing rules in routes/ (GATEWAY_ROUTES)."""


@routing_group.command("explain")
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def route_explain(event_file: Path, as_json: bool) -> None:
    """Who would receive EVENT_FILE and why (the rule and fallback step), and every candidate skipped.
    Sends nothing."""
    settings = _settings()
    register = _register(settings)
    rules = _rules()
    history: Historikk | None
    try:
        store = open_store(settings.store_url)
        history = lambda fnr: store.kartlegginger([fnr])[fnr]  # noqa: E731
    except (ValueError, StoreUnavailable):
        history = None
    try:
        event = parse_event(event_file.read_bytes())
        chosen = route(event, register, rules, history, settings.two_hospitals_window_days)
    except Parked as parked:
        if as_json:
            click.echo(json.dumps({"parked": str(parked.code), "reason": parked.reason}, ensure_ascii=False))
        else:
            click.echo(f"would be PARKED {parked.code}: {parked.reason}")
        sys.exit(2)
    second = chosen.second_hospital
    earlier = None if second is None else {
        "herid": second.sender_herid, "samhandlingspunkt": second.samhandlingspunkt, "event_id": second.event_id,
        "performed_on": second.performed_on.isoformat() if second.performed_on else None}
    if as_json:
        click.echo(json.dumps({
            "rule": chosen.rule, "additions": list(chosen.additions), "template": chosen.template,
            "flags": list(chosen.flags), "two_hospitals": earlier, "declined": chosen.declined,
            "why_none": chosen.why_none,
            "receivers": [{"role": m.role, "herid": m.herid, "format": m.format, "why": m.why}
                          for m in chosen.receivers],
            "skipped": [{"role": s.role, "target": s.target, "herid": s.herid, "why": s.why} for s in chosen.skipped],
        }, ensure_ascii=False, indent=2))
        return
    click.echo(f"event {event.event_id}: samhandlingspunkt {event.samhandlingspunkt}, kommune "
               f"{event.patient.kommunenummer}, sender {event.sender.herid}")
    if chosen.why_none:
        click.echo(f"no receivers: {chosen.why_none}")
    if chosen.rule:
        click.echo(f"rule: {chosen.rule}" + (f", texts {chosen.template}*" if chosen.template != "notat" else ""))
    for addition in chosen.additions:
        click.echo(f"also: {addition}")
    if earlier:
        click.echo(f"flag: {TWO_HOSPITALS} (built-in check, window {settings.two_hospitals_window_days} days): "
                   f"another hospital, HER-id {earlier['herid']}, did samhandlingspunkt "
                   f"{earlier['samhandlingspunkt']} on {earlier['performed_on']} (event {earlier['event_id']})")
    for m in chosen.receivers:
        party = m.address.unit or m.address.organisation
        click.echo(f"  → {m.role:<15} {m.herid:<9} {party.name}  [{m.format}]\n      {m.why}")
    for skip in chosen.skipped:
        click.echo(f"  skipped {skip.role}/{skip.target} {skip.herid or ''}: {skip.why}")


@main.group()
def registry() -> None:
    """The contact-point registry in the store (used when GATEWAY_REGISTRY=store)."""


@registry.command("import")
@click.option("--parties", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Registry JSON file (parties; the format of GATEWAY_REGISTRY).")
@click.option("--gp", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="GP register CSV: fnr,gp_herid,valid_from,valid_to,relation.")
def registry_import(parties: Path | None, gp: Path | None) -> None:
    """Replace the registry in the store, atomically; a broken file changes nothing and names its line."""
    if parties is None and gp is None:
        raise click.UsageError("give --parties, --gp or both")
    store = _store()
    assert isinstance(store, SqlStore)
    try:
        if parties is not None:
            click.echo(f"parties: {import_parties(store, parties)} imported from {parties}")
        if gp is not None:
            with gp.open("rb") as f:
                sample = f.read(65536)
            estimate = int(gp.stat().st_size * sample.count(b"\n") / max(1, len(sample)))
            with click.progressbar(length=estimate, label="GP register", file=sys.stderr, show_pos=True) as bar:
                count = import_gp_register(store, gp, progress=bar.update)
                bar.update(estimate)
            click.echo(f"GP register: {count} rows imported from {gp}")
    except RegisterError as exc:
        raise click.ClickException(f"nothing was changed: {exc}") from exc


def _register_from_store() -> StoreRegister:
    store = _store()
    assert isinstance(store, SqlStore)
    return StoreRegister(store)


def _party_line(p: Party) -> str:
    extra = ", ".join(filter(None, (p.service_type, p.kommunenummer and f"kommune {p.kommunenummer}",
                                    "formats " + "/".join(p.formats) if p.formats else None,
                                    None if p.active else "INACTIVE")))
    return f"{p.herid:<9} {p.kind:<12} {p.name}" + (f"  ({extra})" if extra else "")


@registry.command("show")
@click.argument("herid", type=int)
def registry_show(herid: int) -> None:
    """One communication party, its address and what lies under it."""
    register = _register_from_store()
    party = register.party(herid)
    if party is None:
        raise click.ClickException(f"HER-id {herid} is not in the registry")
    click.echo(_party_line(party))
    address = address_of(register, herid)
    if address is not None:
        click.echo(f"address: {address.organisation.name} ({address.organisation.herid})"
                   + (f" / {address.unit.name} ({address.unit.herid})" if address.unit else ""))
    _echo_children(register, herid)


def _echo_children(register: StoreRegister, herid: int) -> None:
    for child in sorted((p for p in register.parties.values() if p.parent_herid == herid), key=lambda p: p.herid):
        click.echo("  " + _party_line(child))


@registry.command("kommune")
@click.argument("kommunenummer")
def registry_kommune(kommunenummer: str) -> None:
    """A kommune and its services (forvaltningsenhet, koordinerende enhet, kreftkoordinator, …)."""
    register = _register_from_store()
    kommune = register.kommune(kommunenummer)
    if kommune is None:
        raise click.ClickException(f"kommune {kommunenummer} is not in the registry")
    click.echo(_party_line(kommune))
    _echo_children(register, kommune.herid)


@registry.command("gp")
@click.argument("fnr")
def registry_gp(fnr: str) -> None:
    """A patient's GP periods (the number is never logged)."""
    register = _register_from_store()
    rows = register.assignments_for(fnr)
    if not rows:
        raise click.ClickException("no GP register entry for that number")
    today = date.today()
    for a in sorted(rows, key=lambda a: a.valid_from):
        gp = register.party(a.gp_herid)
        now = " (valid today)" if a.valid_from <= today and (a.valid_to is None or today <= a.valid_to) else ""
        click.echo(f"{a.relation:<9} {a.gp_herid:<9} {gp.name if gp else '?':<22} {a.valid_from} – "
                   f"{a.valid_to or ''}{now}")


if __name__ == "__main__":
    main()
