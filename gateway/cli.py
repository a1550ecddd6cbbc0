"""The ``gateway`` command: what operators, hospital systems and developers run."""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path
from types import FrameType

import click
from kombu import Connection

from gateway import __version__
from gateway.adresseregister import Register, RegisterError, load_register
from gateway.bus import PARKED_QUEUE, Publisher, declare_topology, queue_depth
from gateway.config import DEFAULTS, REPO_ROOT, Settings
from gateway.consumer import EventHandler, Handled, KartleggingConsumer, drain_until_idle
from gateway.kartlegging import event_id_of
from gateway.logs import configure, log
from gateway.store import open_store
from gateway.validation import MessageInvalid, validate_message

ENV_HELP = "\n".join(f"  {name:<20} default {value}" for name, value in DEFAULTS.items())


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def _register(settings: Settings) -> Register:
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
    store = open_store(settings.store_url)
    publisher = Publisher(settings.broker_url)
    handler = EventHandler(register, store, publisher)
    with Connection(settings.broker_url, heartbeat=30) as connection:
        declare_topology(connection)
        consumer = KartleggingConsumer(connection, handler, settings.prefetch)

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("consumer.stopping", signal=signal.Signals(signum).name)
            consumer.should_stop = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("gateway.started", broker=connection.as_uri(), store=settings.store_url.split(":", 1)[0],
                 registry=str(settings.registry_path))
        consumer.run_forever()
    publisher.close()
    store.close()
    log.info("gateway.stopped")


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
        handler = EventHandler(register, store, publisher)
        drain_until_idle(connection, handler, settings.prefetch, on_handled=results.append)
        depth = {q: queue_depth(connection, q) for q in sorted({f"{m['to_herid']}_async" for m in store.messages()})}
        depth[PARKED_QUEUE.name] = queue_depth(connection, PARKED_QUEUE.name)
    publisher.close()
    click.echo(f"Demo over {len(files)} events on {broker.split(':', 1)[0]}:// — messages in {out / 'messages'}\n")
    for handled, path in zip(results, files, strict=False):
        name = names.get(handled.event_id or "", path.name if handled.event_id is None else "?")
        state = handled.status + (f" {handled.reason_code}: {handled.reason}" if handled.reason_code else "")
        if handled.status == "not_shared":
            state += f" ({handled.reason})"
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


if __name__ == "__main__":
    main()
