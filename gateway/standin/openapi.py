"""Every request and response of the stand-in checked against ``msh-api-v2.json`` with openapi-core.

The file is loaded from the package resources (``gateway/resources/schemas/nhn-edi2/msh-api-v2.json``, a
byte-exact copy of NHN's description as kept by KS). Two things are changed in the in-memory copy only, and
both are deliberate:

* ``servers`` lists only NHN's production host; the stand-in runs on localhost, so it is replaced by ``/``
  (path matching is what matters).
* ``security`` declares HTTP Bearer, while NHN requires ``Authorization: DPoP`` (README §3, §9.2): openapi-core
  would refuse every correct DPoP request. The requirement is dropped here and the stand-in enforces DPoP itself
  (``gateway.standin.dpop``), more strictly than the declaration would.

Statuses the description does not declare (401 from the auth layer, 423 from the v3 lock, 502–504 from a
gateway in front) cannot be checked against an operation; their bodies are checked against the
``ErrorMessage`` component instead, so the stand-in still never emits a shape NHN does not document.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from typing import Any

from jsonschema_path import SchemaPath
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict

UNDECLARED_STATUSES = frozenset({401, 423, 502, 503, 504})


def spec_text() -> str:
    """The description as shipped in the package resources."""
    resource = files("gateway") / "resources" / "schemas" / "nhn-edi2" / "msh-api-v2.json"
    return resource.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def spec_dict() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(spec_text())
    return data


@lru_cache(maxsize=1)
def openapi() -> OpenAPI:
    """The description as openapi-core sees it, with the two documented in-memory changes."""
    data = copy.deepcopy(spec_dict())
    data["servers"] = [{"url": "/"}]
    data.pop("security", None)
    return OpenAPI.from_dict(data)


@lru_cache(maxsize=1)
def _error_validator() -> OAS30Validator:
    data = spec_dict()
    schema = {"$ref": "#/components/schemas/ErrorMessage", "components": data["components"]}
    return OAS30Validator(schema)


@dataclass
class CheckedRequest:
    """openapi-core's request protocol over a request the stand-in has already read."""

    host_url: str
    path: str
    method: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None
    content_type: str
    parameters: RequestParameters = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = RequestParameters(query=ImmutableMultiDict(self.query), header=Headers(self.headers),
                                            cookie=ImmutableMultiDict())


@dataclass
class CheckedResponse:
    status_code: int
    data: bytes | None
    content_type: str
    headers: Headers


def request_errors(request: CheckedRequest) -> list[str]:
    """Every way the request departs from the description (empty when it conforms)."""
    return [_flatten(e) for e in openapi().iter_request_errors(request)]


def response_errors(request: CheckedRequest, response: CheckedResponse) -> list[str]:
    """Every way the response departs from the description (empty when it conforms)."""
    if response.status_code in UNDECLARED_STATUSES:
        try:
            body = json.loads(response.data or b"null")
        except ValueError:
            return ["the body is not JSON"]
        return [e.message for e in _error_validator().iter_errors(body)]
    return [_flatten(e) for e in openapi().iter_response_errors(request, response)]


def _flatten(error: BaseException) -> str:
    """openapi-core nests the schema errors under ``__cause__``; the leaves say what actually failed.

    Kept short: these texts go back to the client in ``validationErrors`` and must not echo a document."""
    leaves: list[str] = []
    cause: BaseException | None = error
    while cause is not None:
        details = getattr(cause, "schema_errors", None)
        if details:
            leaves = [str(getattr(d, "message", d)) for d in details]
        cause = cause.__cause__
    if leaves:  # the leaves name the failing field; the top message repeats the whole value (maybe a document)
        return f"{type(error).__name__}: {'; '.join(leaves)}"[:500]
    return str(error)[:500]


__all__ = ["CheckedRequest", "CheckedResponse", "SchemaPath", "request_errors", "response_errors", "spec_dict"]
