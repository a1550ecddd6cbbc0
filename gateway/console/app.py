"""The web console: an ASGI app (Starlette, Jinja2 templates, no JavaScript) over the same store as the gateway.

Why server-rendered and script-free: operators open it on locked-down hospital laptops, it must work with a
keyboard and a screen reader, and every state change is a plain form POST that carries a CSRF token and is
audited. Actions call the same use-cases as the CLI (``gateway.operations``), never a copy of them.

Patient data: names and fødselsnumre are shown on an event's detail page only (and each such view is
audited); lists show them masked. A patient is searched for by a POSTed form field, matched through the
store's ``patient_key``, so the number is never in a URL, the browser's history or an access log line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lxml import etree
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from gateway import metrics
from gateway.console.auth import RateLimiter, csrf_ok, new_csrf_token, session_secret, sign_in
from gateway.console.i18n import LANGUAGES, translator
from gateway.delivery.bus import KARTLEGGING_QUEUE, PARKED_QUEUE, AmqpPublisher, Publisher, receiver_queue_name
from gateway.domain.registry import Register, load_register
from gateway.errors import GatewayError
from gateway.logs import log
from gateway.messages.apprec import Status
from gateway.operations.replay import REPLAYABLE_EVENTS, REPLAYABLE_MESSAGES, ReplayError, ReplayPlan, execute, plan
from gateway.pipeline import Folders
from gateway.routing.rules import RuleSet, load_rules
from gateway.settings import Settings
from gateway.store import SqlStore, open_store, patient_key
from gateway.store.registry import StoreRegister
from gateway.store.users import User, UserStore

HERE = Path(__file__).parent
PAGE_SIZE = 50
EVENT_STATES = ("received", "routed", "sent", "not_shared", "declined", "parked")
MESSAGE_STATES = ("built", "sent", "acknowledged", "rejected", "overdue", "superseded")
FNR_SHAPE = re.compile(r"^\d{11}$")
try:
    LOCAL = ZoneInfo("Europe/Oslo")
except ZoneInfoNotFoundError:  # a slim image without tzdata: UTC, and the page says so
    LOCAL = ZoneInfo("UTC")


@dataclass
class Console:
    """What every request needs, built once by ``create_app``."""

    settings: Settings
    store: SqlStore
    users: UserStore
    limiter: RateLimiter
    broker: metrics.BrokerProbe
    publisher_factory: Callable[[], Publisher]
    register_loader: Callable[[], Register]
    templates: Jinja2Templates
    _register: Register | None = field(default=None)

    def register(self) -> Register | None:
        """The registry for receiver names and new conversations; the console still works without it."""
        if self._register is None:
            try:
                self._register = self.register_loader()
            except Exception as exc:
                log.warning("console.registry_unavailable", error_type=type(exc).__name__)
                return None
        return self._register

    def rules(self) -> RuleSet:
        return load_rules(self.settings.routes_dir, self.settings.template_dir)

    def folders(self) -> Folders:
        return Folders(templates=str(self.settings.template_dir), schemas=str(self.settings.schema_dir))


# --- small helpers the templates use -------------------------------------------------------------------------------

def local_time(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def age(iso: str | float | None, lang: str) -> str:
    """'12 min siden' / '3 t' / '2 d': how long ago, for the Oversikt."""
    if iso is None or iso == "":
        return ""
    then = datetime.fromtimestamp(iso, UTC) if isinstance(iso, float) else datetime.fromisoformat(iso)
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if seconds < 120:
        text = f"{seconds} s"
    elif seconds < 2 * 3600:
        text = f"{seconds // 60} min"
    elif seconds < 2 * 86400:
        text = f"{seconds // 3600} t" if lang == "nb" else f"{seconds // 3600} h"
    else:
        text = f"{seconds // 86400} d"
    return f"{text} siden" if lang == "nb" else f"{text} ago"


def mask_fnr(fnr: str | None) -> str:
    """Lists show the first two digits only: enough to tell two rows apart on a call, not to identify."""
    return "" if not fnr else fnr[:2] + "•" * (len(fnr) - 2)


def mask_name(given: str | None, family: str | None) -> str:
    return " ".join(f"{part[0]}." for part in (given, family) if part)


def patient_of(body: bytes | None) -> dict[str, str]:
    """The patient part of an event body (for the detail page, or to be masked for a list)."""
    if not body:
        return {}
    try:
        parsed = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError):
        return {}
    patient = parsed.get("patient") if isinstance(parsed, dict) else None
    if not isinstance(patient, dict):
        return {}
    return {k: str(v) for k, v in patient.items() if isinstance(v, str | int)}


def pretty_body(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), ensure_ascii=False, indent=2)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")


def pretty_xml(xml: bytes) -> str:
    try:
        parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
        return etree.tostring(etree.fromstring(xml, parser), pretty_print=True, encoding="unicode")
    except etree.XMLSyntaxError:
        return xml.decode("utf-8", errors="replace")


def apprec_errors(raw: str | None) -> list[dict[str, Any]]:
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return []
    return found if isinstance(found, list) else []


def apprec_text(status: str | None) -> str:
    try:
        return Status(status).text if status else ""
    except ValueError:
        return status or ""


def _int(value: str | None, low: int | None = None, high: int | None = None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    number = int(value.strip())
    if (low is not None and number < low) or (high is not None and number > high):
        return None
    return number


def _date(value: str | None, shift: int = 0) -> str | None:
    """A form's date as the store's ISO text (UTC dates); ``shift=1`` makes an inclusive 'to' date exclusive."""
    if not value:
        return None
    try:
        return (date.fromisoformat(value.strip()) + timedelta(days=shift)).isoformat()
    except ValueError:
        return None


def _text(value: object, limit: int = 200) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]


# --- the request cycle: who is signed in, CSRF, rendering ----------------------------------------------------------

def _console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def language(request: Request) -> str:
    lang = request.session.get("lang")
    return lang if lang in LANGUAGES else _console(request).settings.console_language


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = new_csrf_token()
        request.session["csrf"] = token
    return token


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    c = _console(request)
    lang = language(request)
    user: User | None = request.scope.get("console_user")
    context.update(request=request, t=translator(lang), lang=lang, user=user, csrf=csrf_token(request),
                   local_time=local_time, age=lambda v: age(v, lang), path=request.url.path,
                   tz=str(LOCAL))
    return c.templates.TemplateResponse(request, template, context, status_code=status)


def _signed_in(request: Request) -> User | None:
    """The session's user, if the session is fresh and the user still active; a stale session is ended."""
    c = _console(request)
    name = request.session.get("user")
    seen = request.session.get("seen")
    if not isinstance(name, str) or not isinstance(seen, int | float):
        return None
    now = datetime.now(UTC).timestamp()
    if now - seen > c.settings.console_session_minutes * 60:
        lang = request.session.get("lang")
        request.session.clear()
        request.session["idle"] = True
        if lang:
            request.session["lang"] = lang
        return None
    user = c.users.get(name)
    if user is None or not user.active:
        request.session.clear()
        return None
    request.session["seen"] = int(now)
    return user


Handler = Callable[[Request, User, FormData | None], Awaitable[Response]]


def page(*, post: bool = False, act: bool = False) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wraps a page: signed in (or off to the sign-in page), a valid CSRF token on every POST, and the role
    'drift' for anything that acts. The refusals are checked before the handler sees the form."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            user = await run_in_threadpool(_signed_in, request)
            if user is None:
                if post:
                    return render(request, "error.html", 403, message_key="csrf_refused")
                return RedirectResponse("/logg-inn", status_code=303)
            request.scope["console_user"] = user
            form = None
            if post:
                form = await request.form()
                if not csrf_ok(request.session.get("csrf"), form.get("csrf")):
                    log.warning("console.csrf_refused", user=user.username, path=request.url.path)
                    return render(request, "error.html", 403, message_key="csrf_refused")
            if act and not user.may_act:
                log.warning("console.forbidden", user=user.username, path=request.url.path)
                return render(request, "error.html", 403, message_key="forbidden")
            return await handler(request, user, form)

        return endpoint

    return wrap


def operator_name(user: User) -> str:
    """How a console user appears in the audit trail, beside the CLI's OS logins."""
    return f"{user.username} (konsoll)"


# --- sign-in and sign-out -----------------------------------------------------------------------------------------

async def signin_page(request: Request) -> Response:
    idle = request.session.pop("idle", False)
    return render(request, "signin.html", message_key="signed_out_idle" if idle else None)


async def signin_post(request: Request) -> Response:
    c = _console(request)
    form = await request.form()
    if not csrf_ok(request.session.get("csrf"), form.get("csrf")):
        return render(request, "error.html", 403, message_key="csrf_refused")
    username = str(form.get("username") or "")[:100]
    password = str(form.get("password") or "")[:1000]
    client = request.client.host if request.client else "unknown"
    result = await run_in_threadpool(sign_in, c.users, c.limiter, username, password, client,
                                     c.settings.console_max_failed_signins)
    if result.user is None:
        metrics.CONSOLE_SIGNINS.labels(result.refusal or "bad").inc()
        # Only a name that is a user's is written down: whatever else was typed (a password in the wrong
        # field, a patient's number) must not reach the log or the audit trail.
        known = await run_in_threadpool(c.users.get, username)
        who = known.username if known else "(ukjent)"
        log.warning("console.signin_refused", user=who, refusal=result.refusal)
        await run_in_threadpool(c.store.audit, who, "sign-in-refused", "console", result.refusal or "bad")
        key = "signin_locked" if result.refusal in ("locked", "limited") else "signin_bad"
        return render(request, "signin.html", 401 if key == "signin_bad" else 429, message_key=key,
                      username=username)
    lang = request.session.get("lang")
    request.session.clear()  # a new session at sign-in: nothing from before it survives (no fixation)
    request.session.update(user=result.user.username, seen=int(datetime.now(UTC).timestamp()),
                           csrf=new_csrf_token())
    if lang:
        request.session["lang"] = lang
    metrics.CONSOLE_SIGNINS.labels("ok").inc()
    log.info("console.signed_in", user=result.user.username, role=result.user.role)
    await run_in_threadpool(c.store.audit, operator_name(result.user), "sign-in", "console", "signed in")
    return RedirectResponse("/", status_code=303)


@page(post=True)
async def signout(request: Request, user: User, form: FormData | None) -> Response:
    c = _console(request)
    await run_in_threadpool(c.store.audit, operator_name(user), "sign-out", "console", "signed out")
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
    return RedirectResponse("/logg-inn", status_code=303)


async def switch_language(request: Request) -> Response:
    lang = request.path_params["lang"]
    if lang in LANGUAGES:
        request.session["lang"] = lang
    target = request.query_params.get("neste", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    return RedirectResponse(target, status_code=303)


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
    key = patient_key(fnr)
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


# --- Handlinger: replay (re-route comes later as its own operation) ---------------------------------------------------

def _keys(form: FormData) -> list[str]:
    keys = [str(k).strip() for k in form.getlist("key") if str(k).strip()]
    return list(dict.fromkeys(keys))[:500]


def make_plans(c: Console, keys: Sequence[str], new_conversation: bool
               ) -> tuple[list[ReplayPlan], list[tuple[str, str]]]:
    plans: list[ReplayPlan] = []
    refused: list[tuple[str, str]] = []
    for key in keys:
        try:
            plans.append(plan(c.store, key, new_conversation=new_conversation))
        except ReplayError as exc:
            refused.append((key, str(exc)))
    return plans, refused


@page(post=True, act=True)
async def replay_plan(request: Request, user: User, form: FormData | None) -> Response:
    """The dry run: what would happen, before anything does. Nothing is published or written here."""
    assert form is not None
    c = _console(request)
    new_conversation = form.get("new_conversation") == "ja"
    plans, refused = await run_in_threadpool(make_plans, c, _keys(form), new_conversation)
    return render(request, "replay_plan.html", plans=plans, refused=refused, new_conversation=new_conversation,
                  error=None, reason="")


def carry_out(c: Console, user: User, keys: Sequence[str], new_conversation: bool, reason: str
              ) -> tuple[list[tuple[ReplayPlan, str]], list[tuple[str, str]]]:
    """Plans again (the state may have changed since the dry run) and executes with the CLI's use-case;
    ``execute`` writes the audit trail with the signed-in user."""
    plans, refused = make_plans(c, keys, new_conversation)
    done: list[tuple[ReplayPlan, str]] = []
    if not plans:
        return done, refused
    register = c.register() if new_conversation else None
    rules = c.rules() if new_conversation else None
    publisher = c.publisher_factory()
    try:
        for p in plans:
            try:
                what = execute(p, c.store, publisher, register, operator=operator_name(user), reason=reason,
                               window_days=c.settings.two_hospitals_window_days, rules=rules, folders=c.folders())
                done.append((p, what))
                metrics.CONSOLE_ACTIONS.labels("replay").inc()
                log.info("console.replayed", user=user.username, kind=p.kind, target=p.target)
            except GatewayError as exc:
                refused.append((p.target, str(exc)))
    finally:
        close = getattr(publisher, "close", None)
        if close:
            close()
    return done, refused


@page(post=True, act=True)
async def replay_execute(request: Request, user: User, form: FormData | None) -> Response:
    assert form is not None
    c = _console(request)
    keys = _keys(form)
    new_conversation = form.get("new_conversation") == "ja"
    reason = _text(form.get("reason"), 500)
    if not reason or form.get("confirm") != "ja":
        plans, refused = await run_in_threadpool(make_plans, c, keys, new_conversation)
        return render(request, "replay_plan.html", 400, plans=plans, refused=refused,
                      new_conversation=new_conversation, error="reason_required", reason=reason or "")
    done, refused = await run_in_threadpool(carry_out, c, user, keys, new_conversation, reason)
    return render(request, "replay_done.html", done=done, refused=refused, reason=reason)


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


# --- unauthenticated: probes and metrics (no patient data in either) -------------------------------------------------

async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def metrics_endpoint(request: Request) -> Response:
    body = await run_in_threadpool(metrics.metrics_text)
    return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)


class SecurityHeaders(BaseHTTPMiddleware):
    """No framing, no inline script, no caching of pages with health data, no referrer leaking a path."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; script-src 'none'; form-action 'self'; "
                                    "frame-ancestors 'none'; base-uri 'none'")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _registry_loader(settings: Settings, store: SqlStore) -> Callable[[], Register]:
    def load() -> Register:
        if settings.registry_in_store:
            return StoreRegister(store.db)
        return load_register(Path(str(settings.registry)))

    return load


def create_app(settings: Settings, *, store: SqlStore | None = None,
               publisher_factory: Callable[[], Publisher] | None = None,
               register_loader: Callable[[], Register] | None = None) -> Starlette:
    """The console for ``settings``; tests hand in a store or a publisher of their own."""
    store = store or open_store(settings.store_url, create=True)
    own = receiver_queue_name(settings.own_herid)

    def queues() -> list[str]:
        week = (datetime.now(UTC) - timedelta(days=7)).isoformat(timespec="milliseconds")
        return [KARTLEGGING_QUEUE.name, PARKED_QUEUE.name, own,
                *(receiver_queue_name(h) for h in store.recent_receivers(week))]

    broker = metrics.BrokerProbe(settings.broker_url, queues)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    console = Console(
        settings=settings, store=store, users=UserStore(store.db),
        limiter=RateLimiter(settings.console_max_failed_signins), broker=broker,
        publisher_factory=publisher_factory or (lambda: AmqpPublisher(settings.broker_url)),
        register_loader=register_loader or _registry_loader(settings, store), templates=templates)
    metrics.register_collector(metrics.GatewayCollector(
        store, broker, None if settings.registry_in_store else Path(str(settings.registry))))
    routes = [
        Route("/", overview),
        Route("/logg-inn", signin_page, methods=["GET"]),
        Route("/logg-inn", signin_post, methods=["POST"]),
        Route("/logg-ut", signout, methods=["POST"]),
        Route("/sprak/{lang}", switch_language),
        Route("/sok", search_get, methods=["GET"]),
        Route("/sok", search_post, methods=["POST"]),
        Route("/hendelser/{key}", event_page),
        Route("/meldinger/{msg_id}", message_page),
        Route("/handlinger/spill-av", replay_plan, methods=["POST"]),
        Route("/handlinger/spill-av/utfor", replay_execute, methods=["POST"]),
        # RE-ROUTE: the lead adds gateway.operations.reroute (plan/execute, as replay); its two routes go here,
        # "/handlinger/rut-pa-nytt" (dry run) and "/handlinger/rut-pa-nytt/utfor", with act=True like replay.
        Route("/revisjon", audit_page),
        Route("/healthz", healthz),
        Route("/metrics", metrics_endpoint),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=session_secret(settings.console_secret_file),
                   session_cookie="gateway_console", max_age=None, same_site="strict",
                   https_only=settings.console_secure_cookies),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.console = console
    return app
