"""``gateway inbound``: what arrived on the served parties' queues and was not a receipt (replies,
"Tilbakemelding om feil i mottatt melding", unreadable messages), so an operator can see that nothing
was dropped and find what was parked."""

from __future__ import annotations

import click

from gateway.cli import context
from gateway.cli.output import emit, fields

INBOUND_COLUMNS = ["id", "received_at", "queue", "status", "msg_type", "msg_id", "from_herid", "to_herid",
                   "reason_code"]


@click.group()
def inbound() -> None:
    """Messages that arrived for the served HER-ids (GATEWAY_SERVED_HERIDS) and were not AppRecs."""


@inbound.command("list")
@click.option("--status", type=click.Choice(["handed_on", "parked"]))
@click.option("--limit", default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table (never the bodies).")
def inbound_list(status: str | None, limit: int, as_json: bool) -> None:
    """List arrivals, newest first."""
    emit(context.store().inbound(status=status, limit=limit), INBOUND_COLUMNS, as_json)


@inbound.command("show")
@click.argument("ref", type=int)
@click.option("--body", "with_body", is_flag=True, help="Also print the message as it arrived (patient data!).")
def inbound_show(ref: int, with_body: bool) -> None:
    """One arrival: its envelope, its fate and its history; the body only when asked for."""
    store = context.store()
    row = store.inbound_item(ref)
    if row is None:
        raise click.ClickException(f"no inbound message {ref}")
    fields(row, [*INBOUND_COLUMNS, "amqp_message_id", "reason"])
    for step in store.history("inbound", str(ref)):
        click.echo(f"  {step['at']}  {step['status']}  {step.get('reason_code') or ''} {step.get('reason') or ''}")
    if with_body:
        click.echo(bytes(row["body"]).decode("utf-8", errors="replace"))
