"""``gateway forlop``: the overview nobody in the field has — each patient's pathway, who is due for the next
samhandlingspunkt per kommune and hospital, where contact points are missing, and the WMFG10 indicator."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from gateway.cli import context
from gateway.cli.output import emit
from gateway.domain import fodselsnummer
from gateway.oversikt.coverage import coverage_csv
from gateway.oversikt.indicator import point_counts_csv, wmfg10_csv
from gateway.oversikt.pathway import Worklist

OSLO = ZoneInfo("Europe/Oslo")


def _today(value: str | None) -> date:
    if value is None:
        return datetime.now(OSLO).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-30") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@click.group("forlop")
def forlop() -> None:
    """The pathway overview: patients' samhandlingspunkter, due lists, contact-point coverage, WMFG10."""


@forlop.command("patient")
@click.option("--fnr", prompt="Fødselsnummer", hide_input=True,
              help="The patient's fødselsnummer or D-nummer (asked for without echo when left out); it is matched "
                   "through the store's patient key and never printed or logged.")
@click.option("--json", "as_json", is_flag=True)
def patient(fnr: str, as_json: bool) -> None:
    """One patient's pathway: which samhandlingspunkter are done, when, by whom, and whether the results
    reached their receivers."""
    fnr = fnr.strip()
    if not fodselsnummer.is_valid(fnr):
        raise click.BadParameter("not a valid fødselsnummer or D-nummer (check digits)", param_hint="--fnr")
    settings = context.settings()
    store = context.lookup_store(settings)
    from gateway.operations.forlop import pathways

    found = pathways(store, context.register(settings), context.rules(settings), patient_key=store.patient_key(fnr))
    if not found:
        raise click.ClickException("no kartlegging for that patient in the store")
    p = found[0]
    if as_json:
        click.echo(json.dumps({"kommunenummer": p.kommunenummer, "hospitals": list(p.hospitals),
                               "kartlegginger": [_record(k) for k in p.kartlegginger],
                               "windows": [asdict(w) for w in p.windows]}, default=_json_default, indent=2,
                              ensure_ascii=False))
        return
    click.echo(f"kommune {p.kommunenummer}; hospitals {', '.join(map(str, p.hospitals)) or '-'}")
    for k in p.kartlegginger:
        state = "declined" if k.declined else k.status
        click.echo(f"  SP{k.samhandlingspunkt}  {k.performed_on}  {state:<10} by {k.sender_name} ({k.sender_herid})"
                   + ("  WMFG10" if k.wmfg10 else ""))
        for m in k.messages:
            click.echo(f"        → {m.role:<18} {m.receiver_herid:<9} {m.state}")
    for w in p.windows:
        click.echo(f"  next: SP{w.samhandlingspunkt} due {w.from_date} – {w.to_date} (from {w.basis} {w.basis_date})")


def _record(k: Any) -> dict[str, Any]:
    return {"event_id": k.event_id, "samhandlingspunkt": k.samhandlingspunkt, "performed_on": k.performed_on,
            "sender_herid": k.sender_herid, "sender_name": k.sender_name, "status": k.status,
            "declined": k.declined, "ask_again_after": k.ask_again_after, "wmfg10": k.wmfg10,
            "messages": [asdict(m) for m in k.messages]}


def _items(name: str, key: str, worklist: Worklist) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for item in worklist.due_soon + worklist.overdue:
        rows.append({name: key, "list": "overdue" if item in worklist.overdue else "due soon",
                     "patient": item.patient_key[:12], "samhandlingspunkt": item.window.samhandlingspunkt,
                     "from": item.window.from_date, "to": item.window.to_date, "days_left": item.days_left})
    for again in worklist.ask_again:
        rows.append({name: key, "list": "ask again", "patient": again.patient_key[:12],
                     "samhandlingspunkt": again.samhandlingspunkt, "from": again.ask_again_after, "to": None,
                     "days_left": None})
    return rows


@forlop.command("due")
@click.option("--kommune", help="Only this kommune (kommunenummer).")
@click.option("--by", type=click.Choice(["kommune", "hospital"]), default="kommune", show_default=True)
@click.option("--days", type=click.IntRange(0, 365), default=30, show_default=True,
              help="'Due soon' means the window opens or closes within this many days.")
@click.option("--today", help="The day to look from (YYYY-MM-DD, Europe/Oslo); default today.")
@click.option("--json", "as_json", is_flag=True)
def due_command(kommune: str | None, by: str, days: int, today: str | None, as_json: bool) -> None:
    """Patients due soon or overdue for their next samhandlingspunkt, and declines to ask again about.
    Patients are shown by the first 12 characters of their pseudonymous key, never by name or number."""
    settings = context.settings()
    from gateway.operations.forlop import due

    lists = due(context.store(settings), context.register(settings), context.rules(settings), _today(today), days,
                kommune)
    groups: dict[Any, Worklist] = dict(lists.by_kommune if by == "kommune" else lists.by_hospital)
    rows = [row for key, wl in sorted(groups.items(), key=lambda kv: str(kv[0])) for row in _items(by, str(key), wl)]
    if as_json:
        click.echo(json.dumps(rows, default=_json_default, indent=2, ensure_ascii=False))
        return
    emit(rows, [by, "list", "patient", "samhandlingspunkt", "from", "to", "days_left"], False)


@forlop.command("coverage")
@click.option("--csv", "as_csv", is_flag=True, help="CSV (for a spreadsheet) instead of a table.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--problems-only", is_flag=True, help="Only roles with a problem (missing, inactive, rejecting…).")
def coverage_command(as_csv: bool, as_json: bool, problems_only: bool) -> None:
    """Per kommune: which contact roles the routing rules want, which the registry has, and how they answer."""
    settings = context.settings()
    from gateway.operations.forlop import coverage_report

    rows = coverage_report(context.store(settings), context.register(settings), context.rules(settings))
    if problems_only:
        rows = [r for r in rows if r.problems]
    if as_csv:
        click.echo(coverage_csv(rows), nl=False)
        return
    plain = [{**asdict(r), "herids": " ".join(map(str, r.herids)), "problems": " ".join(r.problems)} for r in rows]
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False))
        return
    emit(plain, ["kommunenummer", "role", "wanted", "active", "herids", "sent", "acknowledged", "rejected",
                 "overdue", "problems"], False)


@forlop.command("indicator")
@click.option("--csv", "as_csv", type=click.Choice(["wmfg10", "points"]), help="CSV of one table instead of text.")
@click.option("--json", "as_json", is_flag=True)
def indicator_command(as_csv: str | None, as_json: bool) -> None:
    """The national indicator: the share of SP1/SP2 kartlegginger per hospital and month that carry WMFG10,
    and counts per samhandlingspunkt, kommune and month (months in Europe/Oslo)."""
    settings = context.settings()
    from gateway.operations.forlop import indicator

    found = indicator(context.store(settings), context.register(settings))
    if as_csv == "wmfg10":
        click.echo(wmfg10_csv(found.wmfg10), nl=False)
        return
    if as_csv == "points":
        click.echo(point_counts_csv(found.points), nl=False)
        return
    if as_json:
        click.echo(json.dumps({"wmfg10": [asdict(r) for r in found.wmfg10],
                               "points": [asdict(r) for r in found.points]}, indent=2, ensure_ascii=False))
        return
    click.echo("WMFG10 at SP1/SP2, per hospital and month:")
    emit([asdict(r) for r in found.wmfg10], ["hospital_herid", "hospital_name", "month", "kartlegginger",
                                            "with_wmfg10", "without_wmfg10", "declined", "share"], False)
    click.echo("\nKartlegginger per samhandlingspunkt, kommune and month:")
    emit([asdict(r) for r in found.points], ["month", "kommunenummer", "samhandlingspunkt", "done", "declined"], False)
