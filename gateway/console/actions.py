"""Handlinger: replay from the console, through the CLI's own use-case (``gateway.operations.replay``): a dry
run first, then a reason and a confirmation, executed as the signed-in user (the audit trail says who).
Re-route (``gateway.operations.reroute``) likewise: the difference first, then a reason and a confirmation."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from gateway import metrics
from gateway.console.web import Console, _console, _text, operator_name, page, render
from gateway.domain.kartlegging import Checks
from gateway.errors import GatewayError
from gateway.logs import log
from gateway.operations.replay import ReplayError, ReplayPlan, execute, plan
from gateway.operations.reroute import RerouteError, ReroutePlan, RerouteResult, execute_reroute, plan_reroute
from gateway.routing.rules import RuleError
from gateway.store.users import User

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




# --- Handlinger: re-route (issue 15), the CLI's use-case gateway.operations.reroute -----------------------------------

def _reroute_plan(c: Console, key: str) -> tuple[ReroutePlan | None, str | None]:
    register = c.register()
    if register is None:
        return None, "the registry cannot be read; see the log"
    try:
        return plan_reroute(c.store, key, register, c.rules(), window_days=c.settings.two_hospitals_window_days,
                            checks=Checks(accept_synthetic=c.settings.synthetic_fnr == "accept",
                                          max_age_years=c.settings.max_age_years,
                                          max_past_days=c.settings.max_past_days,
                                          future_days=c.settings.max_future_days)), None
    except (RerouteError, RuleError) as exc:
        return None, str(exc)


@page(post=True, act=True)
async def reroute_plan(request: Request, user: User, form: FormData | None) -> Response:
    """The dry run of a re-route: then and today side by side; nothing is written."""
    assert form is not None
    c = _console(request)
    key = (_keys(form) or [""])[0]
    found, error = await run_in_threadpool(_reroute_plan, c, key)
    return render(request, "reroute_plan.html", plan=found, refused=error, key=key, error=None, reason="",
                  result=None)


def _reroute_execute(c: Console, user: User, key: str, reason: str) -> tuple[ReroutePlan | None, str | None,
                                                                             RerouteResult | None]:
    """Plans again (the registry may have changed since the dry run) and executes as the signed-in user."""
    found, error = _reroute_plan(c, key)
    if found is None:
        return None, error, None
    publisher = c.publisher_factory()
    try:
        result = execute_reroute(found, c.store, publisher, operator=operator_name(user), reason=reason,
                                 folders=c.folders())
        metrics.CONSOLE_ACTIONS.labels("reroute").inc()
        log.info("console.rerouted", user=user.username, target=found.ref)
        return found, None, result
    except GatewayError as exc:
        return found, str(exc), None
    finally:
        close = getattr(publisher, "close", None)
        if close:
            close()


@page(post=True, act=True)
async def reroute_execute(request: Request, user: User, form: FormData | None) -> Response:
    assert form is not None
    c = _console(request)
    key = (_keys(form) or [""])[0]
    reason = _text(form.get("reason"), 500)
    if not reason or form.get("confirm") != "ja":
        found, error = await run_in_threadpool(_reroute_plan, c, key)
        return render(request, "reroute_plan.html", 400, plan=found, refused=error, key=key,
                      error="reason_required", reason=reason or "", result=None)
    found, error, result = await run_in_threadpool(_reroute_execute, c, user, key, reason)
    return render(request, "reroute_plan.html", plan=found, refused=error, key=key, error=None, reason=reason,
                  result=result)
