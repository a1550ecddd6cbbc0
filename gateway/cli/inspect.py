"""Commands that find and inspect what the gateway did, and replay it: messages, events, the audit trail,
route explanations."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click

from gateway.cli import checks, context
from gateway.cli.output import fields, nested, page
from gateway.errors import GatewayError, Parked, StoreMissing, StoreUnavailable
from gateway.settings import Settings
from gateway.store import SqlStore, open_store
from gateway.store.queries import body_facts

MESSAGE_COLUMNS = ["msg_id", "status", "msg_type", "to_herid", "transport", "role", "kommunenummer",
                   "samhandlingspunkt", "created_at", "apprec_status", "flags"]
EVENT_COLUMNS = ["id", "event_id", "status", "reason_code", "samhandlingspunkt", "kommunenummer", "attempts",
                 "received_at", "flags"]
TWO_HOSPITALS = "two-hospitals"  # gateway.domain.history.TWO_HOSPITALS, spelled here to keep start-up light
FLAGS = [TWO_HOSPITALS]
APPREC_WORDS = {"1": "OK", "2": "Avvist", "3": "OK, feil i delmelding"}  # messages.apprec.Status.text


@click.group()
def messages() -> None:
    """Find and inspect outbound messages (in the store named by GATEWAY_STORE_URL)."""


def _apprec_words(row: dict[str, Any]) -> dict[str, Any]:
    """``apprec_status`` as the words of the AppRec standard (1 OK, 2 Avvist, 3 OK, feil i delmelding), so
    nobody has to remember the codes; the code stays in ``apprec_code``."""
    code = row.get("apprec_status")
    if code is not None:
        row = {**row, "apprec_status": APPREC_WORDS.get(str(code), str(code)), "apprec_code": str(code)}
    return row


def _finder(fnr: str | None) -> tuple[SqlStore, str | None]:
    """The store to search, and the keyed patient hash of ``--fnr`` (never the number itself: it is not stored,
    logged or echoed). With ``--fnr`` the store is bound to the installation's secret, so that parked events,
    whose patient is matched from their body, are keyed the same way."""
    if fnr is None:
        return context.store(), None
    store = context.lookup_store(context.settings())
    return store, store.patient_key(fnr)


@messages.command("list")
@click.option("--status", type=click.Choice(["built", "sent", "acknowledged", "rejected", "overdue", "superseded",
                                             "parked"]))
@click.option("--receiver", type=checks.HERID, help="Receiver HER-id.")
@click.option("--kommune", callback=checks.kommunenummer, help="Kommunenummer of the patient.")
@click.option("--samhandlingspunkt", "--sp", "sp", type=click.IntRange(1, 5))
@click.option("--fnr", callback=checks.optional_fodselsnummer,
              help="The patient's fødselsnummer (matched through the keyed hash; never stored or shown).")
@click.option("--since", callback=checks.iso_time, help=f"Created at or after: {checks.WHEN_HELP}.")
@click.option("--until", callback=checks.iso_time, help="Created before (a date alone: to the end of that day).")
@click.option("--flag", type=click.Choice(FLAGS),
              help="Only messages of events flagged for operators (two-hospitals: a second hospital did the same "
                   "samhandlingspunkt within GATEWAY_TWO_HOSPITALS_WINDOW_DAYS).")
@click.option("--limit", default=50, show_default=True, type=checks.LIMIT)
@click.option("--offset", default=0, type=click.IntRange(0, None), help="Skip this many (the next page).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def messages_list(status: str | None, receiver: int | None, kommune: str | None, sp: int | None, fnr: str | None,
                  since: str | None, until: str | None, flag: str | None, limit: int, offset: int,
                  as_json: bool) -> None:
    """List messages, newest first, a page at a time ("showing N of M" on stderr)."""
    store, patient = _finder(fnr)
    rows, total = store.search_messages(status=status, receiver=receiver, kommune=kommune,
                                                  samhandlingspunkt=sp, since=since, until=until, flag=flag,
                                                  patient=patient, limit=limit, offset=offset)
    page([_apprec_words(r) for r in rows], total, offset, MESSAGE_COLUMNS, as_json)


@messages.command("overdue")
@click.option("--limit", default=50, show_default=True, type=checks.LIMIT)
@click.option("--offset", default=0, type=click.IntRange(0, None))
@click.option("--json", "as_json", is_flag=True)
def messages_overdue(limit: int, offset: int, as_json: bool) -> None:
    """Messages sent without an AppRec within the deadline (GATEWAY_APPREC_DEADLINE_HOURS), newest first."""
    rows, total = context.store().search_messages(status="overdue", limit=limit, offset=offset)
    page([_apprec_words(r) for r in rows], total, offset, MESSAGE_COLUMNS, as_json)


SHOW_KEYS = ["msg_id", "status", "msg_type", "from_herid", "to_herid", "transport", "api_id", "role", "why",
             "created_at", "posted_at", "sent_at", "apprec_status", "apprec_errors", "answered_at", "overdue_at",
             "reason_code", "reason", "event_ref"]


@messages.command("show")
@click.argument("msg_id", callback=checks.key)
@click.option("--no-xml", is_flag=True, help="Leave out the XML.")
@click.option("--xml-only", is_flag=True, help="Only the XML: the exact stored bytes (to a file with > FILE).")
@click.option("--json", "as_json", is_flag=True, help="The message, its history and receipt as JSON (no XML).")
def messages_show(msg_id: str, no_xml: bool, xml_only: bool, as_json: bool) -> None:
    """One message: state, why it went where it went, its history, its receipt and its XML."""
    store = context.store()
    row = store.message(msg_id)
    if row is None:
        raise click.ClickException(f"no message {msg_id}; list them with 'gateway messages list'")
    if xml_only:
        out: BinaryIO = sys.stdout.buffer
        out.write(bytes(row["xml"]))
        out.flush()
        return
    history = store.history("message", row["msg_id"])
    if as_json:
        click.echo(json.dumps({**nested(_apprec_words({k: row.get(k) for k in SHOW_KEYS})),
                               "history": history}, ensure_ascii=False, indent=2, default=str))
        return
    fields(_apprec_words(row), SHOW_KEYS)
    click.echo("history:")
    for h in history:
        click.echo(f"  {h['at']}  {h['status']:<12} {h['reason_code'] or ''} {h['reason'] or ''}".rstrip())
    if not no_xml:
        click.echo("xml:")
        click.echo(bytes(row["xml"]).decode("utf-8"))


@click.group()
def events() -> None:
    """Find and inspect received events."""


def _with_body_facts(row: dict[str, Any]) -> dict[str, Any]:
    """A parked event has no kommune or samhandlingspunkt of its own when it parked before it was understood:
    show them from the body when the body says (issue 15), never anything of the patient but the kommune."""
    out = {k: v for k, v in row.items() if k != "body"}
    if row.get("kommunenummer") is None or row.get("samhandlingspunkt") is None:
        for k, v in body_facts(row.get("body")).items():
            if out.get(k) is None:
                out[k] = v
    return out


@events.command("list")
@click.option("--status", type=click.Choice(["received", "routed", "sent", "not_shared", "declined", "parked"]))
@click.option("--reason-code", callback=checks.reason_code, help="e.g. ROUTING_UNKNOWN_KOMMUNE")
@click.option("--kommune", callback=checks.kommunenummer, help="Kommunenummer of the patient (parked ones too).")
@click.option("--samhandlingspunkt", "--sp", "sp", type=click.IntRange(1, 5))
@click.option("--receiver", type=checks.HERID, help="Events with a message to this HER-id.")
@click.option("--fnr", callback=checks.optional_fodselsnummer,
              help="The patient's fødselsnummer (matched through the keyed hash; never stored or shown).")
@click.option("--since", callback=checks.iso_time, help=f"Received at or after: {checks.WHEN_HELP}.")
@click.option("--until", callback=checks.iso_time, help="Received before (a date alone: to the end of that day).")
@click.option("--flag", type=click.Choice(FLAGS), help="Only events flagged for operators.")
@click.option("--limit", default=50, show_default=True, type=checks.LIMIT)
@click.option("--offset", default=0, type=click.IntRange(0, None), help="Skip this many (the next page).")
@click.option("--json", "as_json", is_flag=True)
def events_list(status: str | None, reason_code: str | None, kommune: str | None, sp: int | None,
                receiver: int | None, fnr: str | None, since: str | None, until: str | None, flag: str | None,
                limit: int, offset: int, as_json: bool) -> None:
    """List events, newest first (parked ones with their reason code, and their kommune and samhandlingspunkt
    when the body says)."""
    store, patient = _finder(fnr)
    rows, total = store.search_events(status=status, reason_code=reason_code, kommune=kommune,
                                                samhandlingspunkt=sp, receiver=receiver, since=since, until=until,
                                                flag=flag, patient=patient, limit=limit, offset=offset)
    page([_with_body_facts(r) for r in rows], total, offset,
         EVENT_COLUMNS + (["reason"] if status == "parked" else []), as_json)


@events.command("show")
@click.argument("key", callback=checks.key)
@click.option("--json", "as_json", is_flag=True)
def events_show(key: str, as_json: bool) -> None:
    """One event (by event_id or store number): state, reason, history and its messages (not its body)."""
    store = context.store()
    row = store.event(key)
    if row is None:
        raise click.ClickException(f"no event {key}")
    row = _with_body_facts(row)
    history = store.history("event", str(row["id"]))
    found = [_apprec_words({k: m[k] for k in ("msg_id", "status", "role", "to_herid", "transport", "created_at")})
             for m in store.messages(row["id"])]
    if as_json:
        click.echo(json.dumps({**nested({c: row.get(c) for c in [*EVENT_COLUMNS, "reason"]}), "history": history,
                               "messages": found}, ensure_ascii=False, indent=2, default=str))
        return
    fields(row, [*EVENT_COLUMNS, "reason"], 18)
    click.echo("history:")
    for h in history:
        click.echo(f"  {h['at']}  {h['status']:<10} {h['reason_code'] or ''} {h['reason'] or ''}".rstrip())
    click.echo("messages:")
    for m in found:
        click.echo(f"  {m['msg_id']}  {m['status']:<12} {m['role']:<17} {m['to_herid']}  [{m['transport']}]")


@click.command()
@click.argument("key", required=False, callback=checks.key)
@click.option("--status", type=click.Choice(["parked", "rejected", "overdue"]), help="Bulk: everything in this state.")
@click.option("--reason-code", callback=checks.reason_code, help="Bulk, parked events: only this reason code.")
@click.option("--since", callback=checks.iso_time, help=f"Bulk: received/created at or after: {checks.WHEN_HELP}.")
@click.option("--until", callback=checks.iso_time, help="Bulk: before this time.")
@click.option("--reason", callback=checks.reason,
              help="Why you replay (stored in the audit trail; one line, in words). Not needed with --dry-run.")
@click.option("--operator", callback=checks.operator,
              help="Your name, recorded in the audit trail beside your OS login (which is always recorded).")
@click.option("--new-conversation", is_flag=True, help="Messages: rebuild with a new MsgId instead of re-sending.")
@click.option("--force-same-receiver", is_flag=True,
              help="Re-send a REJECTED message to the receiver who rejected it (rarely right: see 'gateway reroute').")
@click.option("--dry-run", is_flag=True, help="Show what would happen; change nothing.")
@click.option("--yes", is_flag=True, help="Bulk: do not ask (for scripts; without a terminal, --yes is required).")
def replay(key: str | None, status: str | None, reason_code: str | None, since: str | None, until: str | None,
           reason: str | None, operator: str | None, new_conversation: bool, force_same_receiver: bool,
           dry_run: bool, yes: bool) -> None:
    """Replay one event or message (KEY = event_id, event number or MsgId), or many (--status)."""
    from gateway.operations.replay import ReplayError, execute, plan

    if (key is None) == (status is None):
        raise click.UsageError("give either KEY or --status")
    if reason is None and not dry_run:
        raise click.UsageError("give --reason 'why, in words' (it goes into the audit trail), or use --dry-run")
    store = context.store()
    if key is not None:
        keys = [key]
    elif status == "parked":
        keys = [str(r["id"]) for r in store.find_events(status="parked", reason_code=reason_code, since=since,
                                                          until=until, limit=checks.MAX_LIMIT)]
    else:
        keys = [r["msg_id"] for r in store.find_messages(status=status, since=since, until=until,
                                                         limit=checks.MAX_LIMIT)]
    try:
        plans = [plan(store, k, new_conversation=new_conversation, force_same_receiver=force_same_receiver)
                 for k in keys]
    except ReplayError as exc:
        raise click.ClickException(str(exc)) from exc
    if dry_run or not plans:
        for p in plans:
            click.echo(f"would {p.action}  [{p.kind} {p.target}]")
        click.echo(f"{len(plans)} to replay" + (" (dry run: nothing changed)" if dry_run else ""))
        return
    assert reason is not None
    if key is None:
        checks.confirm_bulk(f"replay {len(plans)} {status} item(s)", yes)
    settings = context.settings()
    publisher = context.publisher(settings)
    register = context.register(settings) if any(p.new_conversation for p in plans) else None
    rules = context.rules(settings) if register is not None else None
    who = context.operator(settings, operator)
    done = 0
    with click.progressbar(plans, label="replaying", show_pos=True, file=sys.stderr) as bar:
        for p in bar:
            try:
                execute(p, store, publisher, register, operator=who, reason=reason,
                        window_days=settings.two_hospitals_window_days, rules=rules, folders=context.folders(settings))
                done += 1
            except (ReplayError, GatewayError) as exc:
                # audited as failed: a failed replay must not look like a done one (issue 15)
                store.audit(who, f"replay-{p.kind}", p.target, reason, p.action,
                            outcome=f"failed: {type(exc).__name__}")
                click.echo(f"\nskipped {p.target}: {exc}", err=True)
    publisher.close()
    click.echo(f"replayed {done} of {len(plans)}; audit trail: gateway audit")
    if done < len(plans):
        sys.exit(1)


@click.command()
@click.option("--operator", help="Only entries whose operator contains this (case-insensitive).")
@click.option("--action", help="Only this action, e.g. reroute, replay-event, registry-import, retention.")
@click.option("--target", help="Only this target (an event number, a MsgId).")
@click.option("--since", callback=checks.iso_time, help=checks.WHEN_HELP)
@click.option("--until", callback=checks.iso_time)
@click.option("--limit", default=50, show_default=True, type=checks.LIMIT)
@click.option("--offset", default=0, type=click.IntRange(0, None))
@click.option("--json", "as_json", is_flag=True)
def audit(operator: str | None, action: str | None, target: str | None, since: str | None, until: str | None,
          limit: int, offset: int, as_json: bool) -> None:
    """The operators' audit trail: who did what, when, why, and how it went (newest first)."""
    rows, total = context.store().audit_search(operator=operator, action=action, target=target, since=since,
                                               until=until, limit=limit, offset=offset)
    page(rows, total, offset, ["at", "operator", "action", "target", "outcome", "reason", "detail"], as_json)


@click.group("route")
def routing_group() -> None:
    """The routing rules in routes/ (GATEWAY_ROUTES)."""


@routing_group.command("explain")
@click.argument("event_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--event", "event_key", callback=checks.key,
              help="A stored event (event_id or number): how it was decided then, and how it would be today.")
@click.option("--json", "as_json", is_flag=True)
def route_explain(event_file: Path | None, event_key: str | None, as_json: bool) -> None:
    """Who would receive EVENT_FILE and why (the rule and fallback step), and every candidate skipped.
    Sends nothing."""
    if (event_file is None) == (event_key is None):
        raise click.UsageError("give EVENT_FILE or --event ID")
    from gateway.domain.history import Historikk
    from gateway.domain.kartlegging import parse_event
    from gateway.routing.route import route

    settings = context.settings()
    if event_key is not None:
        _explain_stored(settings, event_key, as_json)
        return
    assert event_file is not None
    register = context.register(settings)
    rules = context.rules(settings)
    history: Historikk | None
    try:
        store = open_store(settings.store_url, create=False, secret=context.secret(settings, create=False))
        history = lambda fnr: store.kartlegginger([fnr])[fnr]  # noqa: E731
    except (ValueError, StoreUnavailable, StoreMissing):
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
            "receivers": [{"role": m.role, "herid": m.herid, "format": m.format, "transport": m.transport,
                           "why": m.why} for m in chosen.receivers],
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
        click.echo(f"  → {m.role:<15} {m.herid:<9} {party.name}  [{m.format}, {m.transport}]\n      {m.why}")
    for skip in chosen.skipped:
        click.echo(f"  skipped {skip.role}/{skip.target} {skip.herid or ''}: {skip.why}")




def _explain_stored(settings: Settings, key: str, as_json: bool) -> None:
    """Then: the stored decision (state, reason, each message and its why). Today: the re-route plan with
    today's registry and rules, which is what ``gateway reroute`` would do."""
    from gateway.cli.repair import show_plan
    from gateway.operations.reroute import RerouteError, plan_reroute

    store = context.store(settings)
    row = store.event(key)
    if row is None:
        raise click.ClickException(f"no event {key}; find one with 'gateway events list'")
    then = [{k: m[k] for k in ("msg_id", "status", "role", "to_herid", "transport", "why")}
            for m in store.messages(row["id"])]
    try:
        today = plan_reroute(store, str(row["id"]), context.register(settings), context.rules(settings),
                             window_days=settings.two_hospitals_window_days, checks=context.checks(settings))
    except RerouteError as exc:
        today = None
        why_not = str(exc)
    if as_json:
        click.echo(json.dumps({"then": {"status": row["status"], "reason_code": row["reason_code"],
                                        "reason": row["reason"], "messages": then},
                               "today": today.as_dict() if today else {"error": why_not}},
                              ensure_ascii=False, indent=2))
        return
    click.echo(f"then: {row['status']}" + (f" {row['reason_code']}: {row['reason']}" if row["reason_code"] else ""))
    for m in then:
        click.echo(f"  → {m['role']:<15} {m['to_herid']:<9} [{m['transport']}] {m['status']}\n      {m['why']}")
    if today is None:
        click.echo(f"today: cannot be routed again: {why_not}")
        return
    if today.parked_today is not None:
        click.echo(f"today: still PARKED {today.parked_today[0]}: {today.parked_today[1]}")
        return
    click.echo("today (+ new, - gone, = unchanged; 'gateway reroute' acts on this):")
    show_plan(today)
