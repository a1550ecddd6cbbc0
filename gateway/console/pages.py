"""The console's pages that read: Oversikt, Søk, Detalj and Revisjon.

Patient data: names and fødselsnumre are on an event's detail page only (each view audited); lists mask them.
A patient is searched for by a POSTed form field, matched through the store's ``patient_key``, so the number is
never in a URL, the browser's history or an access log line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from gateway.console.web import (
    EVENT_STATES,
    FNR_SHAPE,
    MESSAGE_STATES,
    PAGE_SIZE,
    Console,
    _console,
    _date,
    _int,
    apprec_errors,
    apprec_text,
    mask_fnr,
    mask_name,
    operator_name,
    page,
    patient_of,
    pretty_body,
    pretty_xml,
    render,
)
from gateway.operations.replay import REPLAYABLE_EVENTS, REPLAYABLE_MESSAGES
from gateway.store.users import User

# --- Oversikt ---------------------------------------------------------------------------------------------------------

def overview_data(c: Console) -> dict[str, Any]:
    now = datetime.now(UTC)
    windows = {"last_hour": now - timedelta(hours=1), "last_day": now - timedelta(days=1),
               "last_week": now - timedelta(days=7)}
    counts = {name: c.store.state_counts(since.isoformat(timespec="milliseconds"))
              for name, since in windows.items()}
    registry_at: str | float | None
    if c.settings.registry_in_store:
        registry_at = c.store.registry_imported_at()
    else:
        try:
            registry_at = Path(str(c.settings.registry)).stat().st_mtime
        except OSError:
            registry_at = None
    broker_up, depths = c.broker.look()
    return {
        "windows": list(windows), "counts": counts, "event_states": EVENT_STATES, "message_states": MESSAGE_STATES,
        "parked": c.store.parked_by_reason(), "problems": c.store.apprec_problems(20),
        "last": c.store.last_times(), "registry_at": registry_at,
        "registry_source": "store" if c.settings.registry_in_store else str(c.settings.registry),
        "broker_up": broker_up, "depths": depths, "apprec_text": apprec_text,
    }


@page()
async def overview(request: Request, user: User, form: FormData | None) -> Response:
    data = await run_in_threadpool(overview_data, _console(request))
    return render(request, "overview.html", **data)


# --- Søk -------------------------------------------------------------------------------------------------------------

SEARCH_FIELDS = ("hva", "tilstand", "kommune", "sp", "mottaker", "fra", "til", "nokkel", "arsak")


def search_filters(source: Any) -> dict[str, str]:
    return {k: str(source.get(k)).strip()[:100] for k in SEARCH_FIELDS if source.get(k)}


def run_search(c: Console, filters: dict[str, str], patient: str | None, page_no: int) -> dict[str, Any]:
    what = "meldinger" if filters.get("hva") == "meldinger" else "hendelser"
    common: dict[str, Any] = {
        "kommune": filters.get("kommune") or None, "samhandlingspunkt": _int(filters.get("sp"), 1, 5),
        "receiver": _int(filters.get("mottaker")), "since": _date(filters.get("fra")),
        "until": _date(filters.get("til"), 1), "key": filters.get("nokkel") or None, "patient": patient,
        "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE}
    state = filters.get("tilstand") or None
    rows: list[dict[str, Any]]
    if what == "meldinger":
        rows, total = c.store.search_messages(status=state if state in MESSAGE_STATES else None, **common)
    else:
        rows, total = c.store.search_events(status=state if state in EVENT_STATES else None,
                                            reason_code=filters.get("arsak") or None, **common)
        for r in rows:
            p = patient_of(r.pop("body", None))
            r["patient_masked"] = " ".join(x for x in (mask_name(p.get("given_name"), p.get("family_name")),
                                                       mask_fnr(p.get("fnr"))) if x)
    return {"what": what, "rows": rows, "total": total, "page_no": page_no,
            "first": (page_no - 1) * PAGE_SIZE + 1 if rows else 0, "last": (page_no - 1) * PAGE_SIZE + len(rows),
            "has_next": page_no * PAGE_SIZE < total}


def _page_no(value: object) -> int:
    return _int(str(value) if value is not None else None, 1, 100_000) or 1


@page()
async def search_get(request: Request, user: User, form: FormData | None) -> Response:
    c = _console(request)
    filters = search_filters(request.query_params)
    page_no = _page_no(request.query_params.get("side"))
    result = await run_in_threadpool(run_search, c, filters, None, page_no) if request.query_params else None

    def link(n: int) -> str:
        return "/sok?" + urlencode({**filters, "side": n})

    return render(request, "search.html", filters=filters, result=result, link=link, patient_search=False,
                  event_states=EVENT_STATES, message_states=MESSAGE_STATES, fnr_error=False)


@page(post=True)
async def search_post(request: Request, user: User, form: FormData | None) -> Response:
    """The patient search: the number comes in a POST body, is turned into the store's patient_key at once and
    is only ever echoed back inside this response's form (with autocomplete off)."""
    assert form is not None
    c = _console(request)
    filters = search_filters(form)
    fnr = re.sub(r"\s", "", str(form.get("fnr") or ""))
    if not FNR_SHAPE.match(fnr):
        return render(request, "search.html", 400, filters=filters, result=None, link=None, patient_search=True,
                      event_states=EVENT_STATES, message_states=MESSAGE_STATES, fnr_error=True, fnr="")
    key = c.store.patient_key(fnr)
    page_no = _page_no(form.get("side"))
    result = await run_in_threadpool(run_search, c, filters, key, page_no)
    await run_in_threadpool(c.store.audit, operator_name(user), "patient-search", f"patient_key:{key[:16]}",
                            "søk på pasient", f"{result['total']} treff")
    return render(request, "search.html", filters=filters, result=result, link=None, patient_search=True,
                  event_states=EVENT_STATES, message_states=MESSAGE_STATES, fnr_error=False, fnr=fnr)


# --- Detalj ----------------------------------------------------------------------------------------------------------

def event_data(c: Console, key: str) -> dict[str, Any] | None:
    row = c.store.event(key)
    if row is None:
        return None
    register = c.register()
    body = bytes(row["body"]) if row.get("body") is not None else b""
    messages = c.store.messages(row["id"])
    for m in messages:
        party = register.party(m["to_herid"]) if register else None
        m["receiver_name"] = party.name if party else ""
        full = c.store.message(m["msg_id"]) or {}
        m["apprec_status"] = full.get("apprec_status")
    return {"row": row, "history": c.store.history("event", str(row["id"])), "messages": messages,
            "patient": patient_of(body), "body": pretty_body(body) if row["status"] in ("parked", "received") else None,
            "replayable": row["status"] in REPLAYABLE_EVENTS, "apprec_text": apprec_text}


@page()
async def event_page(request: Request, user: User, form: FormData | None) -> Response:
    c = _console(request)
    data = await run_in_threadpool(event_data, c, request.path_params["key"])
    if data is None:
        return render(request, "error.html", 404, message_key="not_found")
    # health data seen by whom: every view of a patient's event is in the audit trail
    await run_in_threadpool(c.store.audit, operator_name(user), "view-event", str(data["row"]["id"]), "innsyn")
    return render(request, "event.html", **data)


def message_data(c: Console, msg_id: str) -> dict[str, Any] | None:
    row = c.store.message(msg_id)
    if row is None:
        return None
    register = c.register()
    party = register.party(row["to_herid"]) if register else None
    event = c.store.event(str(row["event_ref"]))
    return {"row": row, "history": c.store.history("message", msg_id), "xml": pretty_xml(bytes(row["xml"])),
            "errors": apprec_errors(row.get("apprec_errors")), "apprec": apprec_text(row.get("apprec_status")),
            "receiver_name": party.name if party else "", "event": event,
            "replayable": row["status"] in REPLAYABLE_MESSAGES or row["status"] == "acknowledged"}


@page()
async def message_page(request: Request, user: User, form: FormData | None) -> Response:
    data = await run_in_threadpool(message_data, _console(request), request.path_params["msg_id"])
    if data is None:
        return render(request, "error.html", 404, message_key="not_found")
    return render(request, "message.html", **data)


# --- Revisjon --------------------------------------------------------------------------------------------------------

AUDIT_FIELDS = ("bruker", "handling", "gjelder", "fra", "til")


@page()
async def audit_page(request: Request, user: User, form: FormData | None) -> Response:
    c = _console(request)
    q = request.query_params
    filters = {k: str(q.get(k)).strip()[:100] for k in AUDIT_FIELDS if q.get(k)}
    page_no = _page_no(q.get("side"))

    def load() -> tuple[list[dict[str, Any]], int, list[str]]:
        rows, total = c.store.audit_search(operator=filters.get("bruker"), action=filters.get("handling"),
                                           target=filters.get("gjelder"), since=_date(filters.get("fra")),
                                           until=_date(filters.get("til"), 1), limit=PAGE_SIZE,
                                           offset=(page_no - 1) * PAGE_SIZE)
        return rows, total, c.store.audit_actions()

    rows, total, actions = await run_in_threadpool(load)

    def link(n: int) -> str:
        return "/revisjon?" + urlencode({**filters, "side": n})

    return render(request, "audit.html", filters=filters, rows=rows, total=total, actions=actions, link=link,
                  page_no=page_no, first=(page_no - 1) * PAGE_SIZE + 1 if rows else 0,
                  last=(page_no - 1) * PAGE_SIZE + len(rows), has_next=page_no * PAGE_SIZE < total)


# --- Forløp ---------------------------------------------------------------------------------------------------------

@page()
async def pathway_page(request: Request, user: User, form: FormData | None) -> Response:
    """Who is due for the next samhandlingspunkt per kommune, and where contact points are missing: the same
    use-cases as ``gateway forlop`` (gateway.operations.forlop), by pseudonymous key only."""
    c = _console(request)
    kommune = str(request.query_params.get("kommune") or "").strip()[:4] or None

    def load() -> tuple[Any, list[Any]]:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        from gateway.operations.forlop import coverage_report, due

        register = c.register()
        if register is None:
            return None, []
        rules = c.rules()
        lists = due(c.store, register, rules, datetime.now(ZoneInfo("Europe/Oslo")).date(), 30, kommune)
        return lists, [r for r in coverage_report(c.store, register, rules) if r.problems
                       and (kommune is None or r.kommunenummer == kommune)]

    lists, coverage = await run_in_threadpool(load)
    return render(request, "pathway.html", lists=lists, coverage=coverage, kommune=kommune or "")
