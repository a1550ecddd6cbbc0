"""What every console page shares: the ``Console`` (built once), the request cycle (who is signed in, the CSRF
token, rendering in the user's language) and the small formatting helpers the templates use.

Why a ``page`` wrapper rather than per-route checks: sign-in, CSRF on every POST and the role for actions are
refused in one place before any handler runs, so a new page cannot forget them."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from gateway import metrics
from gateway.console.auth import RateLimiter, csrf_ok, new_csrf_token
from gateway.console.i18n import LANGUAGES, translator
from gateway.delivery.bus import Publisher
from gateway.domain.registry import Register
from gateway.logs import log
from gateway.messages.apprec import Status
from gateway.pipeline import Folders
from gateway.routing.rules import RuleSet, load_rules
from gateway.settings import Settings
from gateway.store import SqlStore
from gateway.store.queries import patient_part
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


patient_of = patient_part  # the patient part of an event body (for the detail page, or masked for a list)


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


