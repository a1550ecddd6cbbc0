"""The web console: an ASGI app (Starlette, Jinja2 templates, no JavaScript) over the same store as the gateway.

Why server-rendered and script-free: operators open it on locked-down hospital laptops, it must work with a
keyboard and a screen reader, and every state change is a plain form POST that carries a CSRF token and is
audited. Actions call the same use-cases as the CLI (``gateway.operations``), never a copy of them. This module
holds sign-in, the probes and the app's assembly; ``pages`` the reading pages, ``actions`` the replay.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
from gateway.console.actions import replay_execute, replay_plan, reroute_execute, reroute_plan
from gateway.console.auth import RateLimiter, csrf_ok, new_csrf_token, session_secret, sign_in
from gateway.console.i18n import LANGUAGES
from gateway.console.pages import (
    audit_page,
    event_page,
    message_page,
    overview,
    pathway_page,
    search_get,
    search_post,
)
from gateway.console.web import HERE, Console, _console, operator_name, page, render
from gateway.delivery.bus import KARTLEGGING_QUEUE, PARKED_QUEUE, AmqpPublisher, Publisher, receiver_queue_name
from gateway.domain.registry import Register, load_register
from gateway.logs import log
from gateway.settings import Settings
from gateway.store import SqlStore, open_store
from gateway.store.registry import StoreRegister
from gateway.store.users import User, UserStore

__all__ = ["HERE", "create_app"]

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
    own = [receiver_queue_name(h) for h in settings.served_herids]

    def queues() -> list[str]:
        week = (datetime.now(UTC) - timedelta(days=7)).isoformat(timespec="milliseconds")
        return [KARTLEGGING_QUEUE.name, PARKED_QUEUE.name, *own,
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
        Route("/handlinger/rut-pa-nytt", reroute_plan, methods=["POST"]),
        Route("/handlinger/rut-pa-nytt/utfor", reroute_execute, methods=["POST"]),
        Route("/revisjon", audit_page),
        Route("/forlop", pathway_page),
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
