"""Repairs an operator runs after something went wrong (issue 15): ``reroute`` (an event to today's
receivers) and ``retention`` (the store kept to the configured age). Both are use-cases in
``gateway.operations`` or the store; this module is their command line: dry-run first, a reason in words,
confirmation for bulk work, and an audit entry with the outcome."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from gateway.cli import checks, context
from gateway.errors import GatewayError
from gateway.operations.reroute import RerouteError, ReroutePlan, execute_reroute, plan_reroute

MARKS = {"new": "+", "gone": "-", "kept-delivered": "=", "unchanged": "="}


def show_plan(p: ReroutePlan) -> None:
    """The difference between then and today, one receiver a line: + new, - superseded, = left alone."""
    click.echo(f"event {p.ref} ({p.event_id or 'no event_id'}), {p.status_then}"
               + (f" {p.reason_then}" if p.reason_then else ""))
    if p.parked_today is not None:
        click.echo(f"  today: still PARKED {p.parked_today[0]}: {p.parked_today[1]}")
        return
    for c in p.changes:
        then = f" (was {c.old_msg_id} {c.old_status})" if c.old_msg_id else ""
        what = {"new": "new conversation", "gone": "superseded", "kept-delivered": "delivered before; left as is",
                "unchanged": "unchanged; left alone"}[c.kind]
        click.echo(f"  {MARKS[c.kind]} {c.role:<17} {c.herid:<9} [{c.transport}] {what}{then}")
    if not p.changed:
        click.echo("  no difference: nothing to do")


@click.command()
@click.argument("key", callback=checks.key)
@click.option("--reason", callback=checks.reason, help="Why (audit trail, in words). Not needed with --dry-run.")
@click.option("--operator", callback=checks.operator, help="Your name beside your OS login in the audit trail.")
@click.option("--dry-run", is_flag=True, help="Show the difference; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="The plan (and result) as JSON.")
def reroute(key: str, reason: str | None, operator: str | None, dry_run: bool, as_json: bool) -> None:
    """Route a stored event again with today's registry and rules (KEY: event_id, event number or a MsgId of
    one of its messages): new receivers get a new conversation, messages to receivers that are gone are
    superseded, unchanged receivers are left alone. Run with --dry-run first."""
    if reason is None and not dry_run:
        raise click.UsageError("give --reason 'why, in words' (it goes into the audit trail), or use --dry-run")
    settings = context.settings()
    store = context.store(settings, keyed=not dry_run)
    try:
        p = plan_reroute(store, key, context.register(settings), context.rules(settings),
                         window_days=settings.two_hospitals_window_days, checks=context.checks(settings))
    except RerouteError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json and dry_run:
        click.echo(json.dumps(p.as_dict(), ensure_ascii=False, indent=2))
    elif not as_json:
        show_plan(p)
    if dry_run:
        click.echo("dry run: nothing changed", err=True)
        return
    assert reason is not None
    publisher = context.publisher(settings)
    try:
        result = execute_reroute(p, store, publisher, operator=context.operator(settings, operator), reason=reason,
                                 folders=context.folders(settings))
    except RerouteError as exc:
        raise click.ClickException(f"{exc} (audited as failed)") from exc
    finally:
        publisher.close()
    if as_json:
        click.echo(json.dumps({**p.as_dict(), "sent": result.sent, "waiting_edi2": result.waiting,
                               "superseded": result.superseded}, ensure_ascii=False, indent=2))
        return
    for msg_id in result.sent:
        click.echo(f"sent {msg_id}")
    for msg_id in result.waiting:
        click.echo(f"stored {msg_id} for the EDI 2.0 outbox")
    click.echo(f"re-routed: {result.summary()}; audit trail: gateway audit --action reroute")


@click.command()
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask (for scripts; required without a terminal).")
@click.option("--archive", type=click.Path(dir_okay=False, path_type=Path),
              help="First write each purged event and its messages to this file as JSON lines (bodies base64). "
                   "It holds patient data: keep it where the store's backups are kept.")
@click.option("--reason", callback=checks.reason, help="Why now (audit trail); default: the retention policy.")
@click.option("--operator", callback=checks.operator)
def retention(dry_run: bool, yes: bool, archive: Path | None, reason: str | None, operator: str | None) -> None:
    """Purge finished events and their messages older than GATEWAY_RETENTION_DAYS (unset: keep everything).
    Events whose messages still wait for a transport or an AppRec are never purged."""
    settings = context.settings()
    if settings.retention_days is None:
        click.echo("GATEWAY_RETENTION_DAYS is not set: the retention policy is to keep everything; nothing to do")
        return
    before = checks.stored(datetime.now(UTC) - timedelta(days=settings.retention_days))
    store = context.store(settings)
    found = store.retention_candidates(before)
    click.echo(f"{found['events']} event(s) and {found['messages']} message(s) received before {before} "
               f"(older than {settings.retention_days} days) and finished")
    if dry_run or not found["events"]:
        click.echo("dry run: nothing changed" if dry_run else "nothing to purge", err=True)
        return
    checks.confirm_bulk(f"purge {found['events']} event(s) and {found['messages']} message(s)", yes)
    who = context.operator(settings, operator)
    why = reason or f"retention policy: {settings.retention_days} days"
    try:
        if archive is not None:
            with archive.open("a", encoding="utf-8") as out:
                done = store.purge(before, out)
        else:
            done = store.purge(before)
    except (OSError, GatewayError) as exc:
        store.audit(who, "retention", before, why, f"archive {archive}" if archive else None,
                    outcome=f"failed: {type(exc).__name__}")
        raise click.ClickException(f"retention stopped ({type(exc).__name__}: {exc}); what was purged before the "
                                   "error is gone, the rest is kept; run it again") from exc
    store.audit(who, "retention", before, why, f"{done['events']} events, {done['messages']} messages"
                + (f"; archived to {archive}" if archive else ""), outcome="done")
    click.echo(f"purged {done['events']} event(s) and {done['messages']} message(s)"
               + (f"; archived to {archive}" if archive else ""))
    sys.stdout.flush()
