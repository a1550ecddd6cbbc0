"""Commands for developers and hospital-system integrators: the demo, publishing events, validating messages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gateway.cli import context
from gateway.domain.kartlegging import event_id_of
from gateway.logs import configure
from gateway.messages.validation import MessageInvalid, validate_message
from gateway.operations.demo import DemoFolderRefused, as_dict, describe, prepare_out, run_demo
from gateway.settings import PACKAGED_FIXTURES, SETTINGS


@click.command()
@click.option("--broker", default="memory://", show_default=True,
              help="Broker URL; memory:// runs everything in this process, amqp://… uses RabbitMQ.")
@click.option("--events", "events_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=PACKAGED_FIXTURES / "events", show_default="the packaged fixture events",
              help="Folder of event JSON files.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Folder for the built messages and the demo store (only a folder the demo "
                                      "made itself is emptied).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
def demo(broker: str, events_dir: Path, out: Path, as_json: bool) -> None:
    """Publish the fixture events, run the whole path over them and print what became of each."""
    settings = context.settings()
    try:
        prepare_out(out)
    except DemoFolderRefused as exc:
        raise click.ClickException(str(exc)) from exc
    with (out / "gateway.log").open("w", encoding="utf-8") as log_file:
        configure("json", stream=log_file)
        result = run_demo(broker=broker, events_dir=events_dir, out=out, register=context.register(settings),
                          rules=context.rules(settings), folders=context.folders(settings),
                          prefetch=settings.prefetch, window_days=settings.two_hospitals_window_days)
    if as_json:
        click.echo(json.dumps(as_dict(result), ensure_ascii=False, indent=2))
        return
    n = len(result.events)
    click.echo(f"Demo over {n} events on {broker.split(':', 1)[0]}:// — messages in {out / 'messages'}\n")
    for e in result.events:
        click.echo(f"{e.file}\n  state: {describe(e.handled)}")
        for m in e.messages:
            click.echo(f"  → {m.role:<18} HER-id {m.to_herid:<8} {m.receiver_name}  ({m.transport})")
            click.echo(f"    {m.msg_type} MsgId {m.msg_id} [{m.status}] {m.file.name}")
    click.echo("\nQueues now: " + ", ".join(f"{q} {n}" for q, n in result.queues.items()))
    if result.edi2:
        click.echo(f"EDI 2.0 (a local stand-in of NHN's Meldingstjener): {result.edi2['posted']} posted, "
                   f"{result.edi2['parked']} refused, {result.edi2['receipts']} AppRec(s) fetched back")
    click.echo(f"\nStatus events the hospitals hear (exchange kartlegging, kartlegging.status.<state>): "
               f"{len(result.statuses)}")
    files = {e.handled.event_id: e.file for e in result.events}
    for s in result.statuses:
        about = f"message to {s['message']['receiver']['herid']}" if "message" in s else "event"
        extra = (f" reason {s['reason_code']}" if s.get("reason_code") else "") + (
            f" — tell the patient: {s['contact_point']['name']} ({s['contact_point']['herid']})"
            if s.get("contact_point") else "")
        click.echo(f"  {files.get(s['event_id'], s['event_id'])[:46]:<46} {s['state']:<12} {about}{extra}")
    click.echo("\nPathway overview (patients by pseudonymous key; points done; next point due):")
    for p in result.pathways:
        nxt = ", ".join(f"SP{w.samhandlingspunkt} {w.from_date}–{w.to_date}" for w in p.windows) or "-"
        done = ", ".join(f"SP{n}" for n in p.points_done()) or "none (declined)"
        click.echo(f"  {p.patient_key[:12]}  kommune {p.kommunenummer}  done: {done:<16} next: {nxt}")
    click.echo("\nSummary: " + ", ".join(f"{n} {status}" for status, n in result.summary().items()))
    click.echo(f"The gateway's log lines are in {out / 'gateway.log'}.")
    store_url = f"sqlite:///{(out / 'demo.sqlite3').resolve()}"
    click.echo(f"\nSign in to the web console at http://{settings.console_host}:{settings.console_port}/ after:\n"
               f"  export GATEWAY_STORE_URL={store_url}\n"
               "  gateway users add NAME --role drift && gateway console")


BROKER_DEFAULT = next(s.default for s in SETTINGS if s.name == "GATEWAY_BROKER_URL")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--broker", help="Broker URL [default: GATEWAY_BROKER_URL]")
def publish(files: tuple[Path, ...], broker: str | None) -> None:
    """Publish event JSON files as a hospital system would (exchange kartlegging)."""
    publisher = context.publisher(context.settings(), broker)
    for path in files:
        body = path.read_bytes()
        event_id = event_id_of(body)
        if event_id is None:
            click.echo(f"warning: {path} has no event_id; publishing it anyway (the gateway will park it)", err=True)
        publisher.publish_event(body, event_id or "")
        click.echo(f"published {path} (event_id {event_id})")
    publisher.close()


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Validate MsgHead message files against the official schemas (exit 1 if any fails)."""
    schemas = context.settings().schema_dir
    failed = 0
    for path in files:
        try:
            validate_message(path.read_bytes(), schemas)
        except MessageInvalid as exc:
            failed += 1
            click.echo(f"{path}: INVALID {exc.code} at {exc.path}: {exc.message}")
        else:
            click.echo(f"{path}: valid")
    if failed:
        sys.exit(1)
