"""The stand-in as an ASGI app: HTTP in and out, every request and answer checked against the OpenAPI
description; the behaviour itself is ``Standin`` in ``app``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from joserfc.errors import JoseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from werkzeug.datastructures import Headers

from gateway.standin.app import TOKEN_PATH, ApiError, Standin, _error_body
from gateway.standin.openapi import CheckedRequest, CheckedResponse, request_errors, response_errors
from gateway.standin.state import (
    ClientRegistration,
    ReceiverBehaviour,
    StandinConfig,
)

log = logging.getLogger(__name__)


def _as_described(answer: Any) -> Any:
    """A copy of an answer as the description's strict reading wants it, for the check only.

    * ``businessDocumentGenDate`` without a UTC offset (NHN sends local time, KS fixture
      ``get-message-response.json``) gets ``+01:00``: OpenAPI's ``date-time`` demands an offset.
    * ``appRecStatus: null`` (NHN, ``get-status.json``) is dropped: the description marks it ``nullable`` next to
      an ``allOf`` reference, which OpenAPI 3.0 validators read as "the enum only"; absent means the same."""
    if isinstance(answer, list):
        return [_as_described(item) for item in answer]
    if not isinstance(answer, dict):
        return answer
    copy = {k: v for k, v in answer.items() if not (k == "appRecStatus" and v is None)}
    value = copy.get("businessDocumentGenDate")
    if isinstance(value, str) and not value.endswith("Z") and "+" not in value[10:] and "-" not in value[10:]:
        copy["businessDocumentGenDate"] = value + "+01:00"
    return copy


# --- HTTP wiring -------------------------------------------------------------------------------------------

def _htu(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{request.url.path}"


def create_app(config: StandinConfig | None = None, *, standin: Standin | None = None) -> Starlette:
    """The ASGI app. ``app.state.standin`` is the ``Standin`` (tests reach its state and faults directly)."""
    core = standin or Standin(config)

    async def token(request: Request) -> Response:
        rule = core.take_fault("POST", TOKEN_PATH)
        if rule is not None:
            await asyncio.sleep(rule.delay)
            if rule.status >= 400:
                return JSONResponse({"error": "server_error"}, status_code=rule.status)
        body = (await request.body()).decode("utf-8", "replace")
        form = dict(parse_qsl(body, keep_blank_values=True))
        authority = f"{request.url.scheme}://{request.url.netloc}"
        status, answer, headers = core.token_endpoint(form, request.headers.get("DPoP"), _htu(request), authority)
        return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store", **headers})

    def api(handler: Callable[[ClientRegistration, Request, bytes], Awaitable[tuple[int, Any]]]
            ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            method = request.method
            body = await request.body()
            rule = core.take_fault(method, request.url.path)
            if rule is not None and rule.delay:
                await asyncio.sleep(rule.delay)
            if rule is not None and not rule.after_processing and rule.status >= 400:
                return _answer(request, body, ApiError(rule.status, "An unknown error occurred (injected)", 0))
            try:
                client = core.authenticate(request.headers.get("Authorization"), request.headers.get("DPoP"),
                                           method, _htu(request))
                checked = _checked(request, body)
                errors = request_errors(checked)
                if errors:
                    core.state.count("openapi_request_errors")
                    raise ApiError(400, "Model validation error occurred", 1000, errors)
                if request.headers.get("api-version") != "2":
                    raise ApiError(400, "This stand-in speaks api-version 2 only", 1000)
                status, answer = await handler(client, request, body)
            except ApiError as exc:
                return _answer(request, body, exc)
            if rule is not None and rule.after_processing and rule.status >= 400:
                return _answer(request, body, ApiError(rule.status, "An unknown error occurred (injected)", 0))
            return _answer(request, body, status, answer)

        return endpoint

    def _answer(request: Request, body: bytes, status: ApiError | int, answer: Any = None) -> Response:
        headers: dict[str, str] = {}
        if isinstance(status, ApiError):
            headers = status.headers
            answer = _error_body(status)
            status = status.status
        data = b"" if status == 204 else json.dumps(answer).encode("utf-8")
        content_type = "" if status == 204 else "application/json; charset=utf-8"
        # Two places where NHN's real answers (KS fixtures) differ from a strict reading of the description: the
        # check sees them adjusted, the client gets what NHN sends (see _as_described).
        checked_data = b"" if status == 204 else json.dumps(_as_described(answer)).encode("utf-8")
        problems = response_errors(_checked(request, body), CheckedResponse(
            status, checked_data or None, content_type.split(";")[0], Headers(headers)))
        if problems:
            # The stand-in's own bug: say so loudly rather than teach a client a shape NHN never sends.
            core.state.count("openapi_response_errors")
            log.error("stand-in answer does not match the API description: %s", problems)
            data = json.dumps(_error_body(ApiError(500, "stand-in produced an undocumented answer", 0, problems)))\
                .encode("utf-8")
            status, content_type = 500, "application/json; charset=utf-8"
        elif core.config.extra_response_fields and status == 200 and isinstance(answer, dict) and "id" in answer:
            data = json.dumps({**answer, "standinUndocumentedField": "ignore me"}).encode("utf-8")
        if status == 201 and isinstance(answer, str):
            headers = {**headers, "Location": f"/Messages/{answer}"}
        return Response(data, status_code=status, media_type=content_type or None, headers=headers)

    def _checked(request: Request, body: bytes) -> CheckedRequest:
        return CheckedRequest(host_url=f"{request.url.scheme}://{request.url.netloc}", path=request.url.path,
                              method=request.method.lower(), query=list(request.query_params.multi_items()),
                              headers=dict(request.headers), body=body or None,
                              content_type=request.headers.get("content-type", "").split(";")[0].lower())

    def _json(body: bytes) -> dict[str, Any]:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ApiError(400, "Model validation error occurred", 1000, ["the body must be a JSON object"])
        return data

    async def post_messages(client: ClientRegistration, request: Request, body: bytes) -> tuple[int, Any]:
        return 201, core.post_message(client, _json(body)).id

    async def get_messages(client: ClientRegistration, request: Request, body: bytes) -> tuple[int, Any]:
        return 200, core.get_messages(client, list(request.query_params.multi_items()))

    async def get_message(client: ClientRegistration, request: Request, body: bytes) -> tuple[int, Any]:
        return 200, core.get_message(client, request.path_params["id"])

    async def business_document(client: ClientRegistration, request: Request, body: bytes) -> tuple[int, Any]:
        return 200, core.business_document(client, request.path_params["id"])

    async def status(client: ClientRegistration, request: Request, body: bytes) -> tuple[int, Any]:
        return 200, core.status(client, request.path_params["id"])

    async def apprec_info(client: ClientRegistration, request: Request, body: bytes) -> tuple[int, Any]:
        return 200, core.apprec_info(client, request.path_params["id"])

    async def post_apprec(client: ClientRegistration, request: Request, body: bytes) -> tuple[int, Any]:
        return 201, core.post_apprec(client, request.path_params["id"], int(request.path_params["her"]), _json(body))

    async def mark_read(client: ClientRegistration, request: Request, body: bytes) -> tuple[int, Any]:
        core.mark_read(client, request.path_params["id"], int(request.path_params["her"]))
        return 204, None

    async def admin_state(request: Request) -> Response:
        return JSONResponse(core.summary())

    async def admin_faults(request: Request) -> Response:
        core.set_faults(await request.json())
        return JSONResponse({"ok": True})

    async def admin_receivers(request: Request) -> Response:
        data = await request.json()
        for her_id, value in data.items():
            core.config.receivers[int(her_id)] = ReceiverBehaviour.parse(value)
        return JSONResponse({"ok": True})

    async def admin_delivered(request: Request) -> Response:
        """What the simulated EDI receivers were handed (the receiver's side of the network, for tests): every
        non-AppRec business document to ``receiver``, base64, oldest first."""
        receiver = int(request.query_params.get("receiver", "0"))
        with core.state.lock:
            found = [{"id": m.id, "msg_id": m.msg_id, "sender_her_id": m.sender_her_id, "sha256": m.sha256,
                      "document_b64": m.document_b64}
                     for m in sorted(core.state.messages.values(), key=lambda m: m.created)
                     if m.receiver_her_id == receiver and not m.is_app_rec]
        return JSONResponse(found)

    async def admin_clients(request: Request) -> Response:
        try:
            core.register_client(await request.json())
        except (ValueError, KeyError, JoseError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})

    routes = [
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route("/Messages", api(post_messages), methods=["POST"]),
        Route("/Messages", api(get_messages), methods=["GET"]),
        Route("/Messages/{id}", api(get_message), methods=["GET"]),
        Route("/Messages/{id}/business-document", api(business_document), methods=["GET"]),
        Route("/Messages/{id}/status", api(status), methods=["GET"]),
        Route("/Messages/{id}/apprec", api(apprec_info), methods=["GET"]),
        Route("/Messages/{id}/apprec/{her}", api(post_apprec), methods=["POST"]),
        Route("/Messages/{id}/read/{her}", api(mark_read), methods=["PUT"]),
        Route("/_standin/state", admin_state, methods=["GET"]),
        Route("/_standin/faults", admin_faults, methods=["POST"]),
        Route("/_standin/receivers", admin_receivers, methods=["POST"]),
        Route("/_standin/clients", admin_clients, methods=["POST"]),
        Route("/_standin/delivered", admin_delivered, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.standin = core
    return app
