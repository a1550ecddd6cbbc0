"""A small typed client for NHN's Meldingstjener ("EDI 2.0") REST API, version 2.

Follows ``schemas/nhn-edi2/msh-api-v2.json`` (OpenAPI 3.0.4, "MSH API v2"). Every call carries the headers the
description requires (``api-version: 2``, ``nhn-source-system``) plus what NHN requires beyond it:
``Authorization: DPoP <token>`` and a ``DPoP`` proof with ``ath`` (the description still declares HTTP Bearer;
NHN's prose and every known client use DPoP).

Errors are mapped to two kinds so that the caller decides with one ``except`` each:

* ``Rejected`` (4xx): the API refused this request; resending it unchanged will not help. It carries the API's
  ``error`` text, ``errorCode``, ``validationErrors`` and ``requestId``. ``Locked`` (423, error code 1210) is a
  ``Rejected`` of its own: another HelseID client owns that HER-id, and only releasing the lock helps.
* ``Transient`` (5xx, timeouts, connection failures, HelseID unreachable): back off and try again.

A 401 is answered once by fetching a new token (it may have expired early or been revoked) and, when the API
sends ``DPoP-Nonce``, by a new proof with that nonce; a second 401 is a ``Rejected``.

**Idempotency — what the API does with a repeated MsgId, and what this client does about it.**
Neither the v2 description nor any NHN page names an idempotency key for ``POST /Messages``
(README §8: "No idempotency key for POST in any source"). ``POST`` answers 201 with a *new* message id each
time; nothing says the Meldingstjener compares the business document's MsgId with earlier posts, so a repeated
POST of the same document is forwarded again and the receiver sees the same MsgId twice. In v2 the sender also
cannot look its own sent message up by MsgId: ``GET /Messages`` lists only unread messages *addressed to* the
caller's HER-ids (its ``BusinessDocumentId`` filter applies to those), and ``/Messages/{id}/…`` needs the API id.

So the guarantee is built on our side, and it is "never two *different* messages under one MsgId", not "never
two copies":

1. The caller stores the business document (bytes) and its MsgId *before* the first POST and always sends
   those stored bytes; a message is never rebuilt for a retry. ``send`` checks that the document's MsgId is the
   one the caller files it under and returns the SHA-256 of the bytes sent, for the caller to keep.
2. The caller records the API id returned by the POST. When it has one (the crash came after the POST and after
   recording), ``send(..., known_api_id=...)`` asks ``GET /Messages/{id}/status`` and does **not** post again.
3. When it has none (the crash came between the POST and the bookkeeping, or the POST timed out), the only
   thing v2 allows is to post the *same bytes* again. The receiver may then get a byte-identical duplicate,
   which EDI receivers discard by MsgId (ebXML/HIS duplicate handling), and both copies' AppRecs name the same
   ``OriginalMsgId`` — so the tracker follows receipts by our MsgId, never by the API id alone.

Posting the same document again is therefore safe by construction; building a new document for an old MsgId
is what must never happen, and this module refuses it when the caller passes the expected digest.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from lxml import etree

from gateway.delivery.edi2.helseid import AccessToken, HelseIdClient, HelseIdError, HelseIdUnavailable

log = logging.getLogger(__name__)

API_VERSION = "2"
MSGHEAD_NS = "http://www.kith.no/xmlstds/msghead/2006-05-24"
MAX_POST_BYTES = 35 * 1024 * 1024  # the description's limit for the whole request
DeliveryState = Literal["Unconfirmed", "Acknowledged", "Rejected"]
AppRecStatus = Literal["Ok", "Rejected", "OkErrorInMessagePart"]


class MshError(Exception):
    """Base of everything this client raises."""


class Transient(MshError):
    """5xx, timeout, connection failure, or HelseID unreachable: the caller waits with the shared backoff."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Rejected(MshError):
    """A 4xx answer: this request will not succeed unchanged. The message is parked with ``error`` as reason.

    ``error`` is the API's own text (``ErrorMessage.error``); it names HER-ids and ids, never patient data."""

    def __init__(self, status: int, error: str, error_code: int | None = None,
                 validation_errors: Sequence[str] = (), request_id: str | None = None) -> None:
        detail = f"; {'; '.join(validation_errors)}" if validation_errors else ""
        super().__init__(f"Meldingstjener refused the request ({status}, errorCode {error_code}): {error}{detail}")
        self.status = status
        self.error = error
        self.error_code = error_code
        self.validation_errors = tuple(validation_errors)
        self.request_id = request_id

    @property
    def reason_code(self) -> str:
        """A short, stable reason for the outbox: ``msh-<status>`` or ``msh-<status>-<errorCode>``."""
        return f"msh-{self.status}" + (f"-{self.error_code}" if self.error_code else "")


class Locked(Rejected):
    """423 Locked: another HelseID client has locked this HER-id (``clientLocked``, error code 1210).

    Not retryable and not a data error: an operator must get the lock released (or use the owning client)."""

    def __init__(self, status: int, error: str, error_code: int | None = None,
                 validation_errors: Sequence[str] = (), request_id: str | None = None) -> None:
        super().__init__(status, error, error_code, validation_errors, request_id)
        self.args = (f"HER-id locked by another HelseID client (423, errorCode {error_code}): {error} — "
                     "release the lock in the Meldingstjener configuration or send with the owning client",)


class DocumentMismatch(MshError):
    """The bytes to send are not the document filed under this MsgId: sending them would give the receiver
    two different messages with one MsgId."""


@dataclass(frozen=True)
class Message:
    """``Message`` of the description; only ``id`` and ``receiver_her_id`` are present without metadata."""

    id: str
    receiver_her_id: int | None
    sender_her_id: int | None = None
    business_document_id: str | None = None
    business_document_gen_date: str | None = None  # as sent: often without a UTC offset (Europe/Oslo)
    is_app_rec: bool | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class BusinessDocument:
    """The decoded business document (MsgHead or AppRec XML bytes) of a message."""

    content: bytes = field(repr=False)
    content_type: str
    content_transfer_encoding: str


@dataclass(frozen=True)
class StatusInfo:
    receiver_her_id: int
    transport_delivery_state: DeliveryState
    app_rec_status: AppRecStatus | None


@dataclass(frozen=True)
class AppRecError:
    error_code: str | None
    details: str | None
    description: str | None = None
    oid: str | None = None


@dataclass(frozen=True)
class ApprecInfo:
    receiver_her_id: int
    app_rec_status: AppRecStatus | None
    errors: tuple[AppRecError, ...] = ()


@dataclass(frozen=True)
class PostedMessage:
    """What the caller records after a send: the API id, our MsgId, the digest of the bytes sent, and whether
    this call actually posted (False when ``known_api_id`` was confirmed by the API instead)."""

    api_id: str
    msg_id: str
    sha256: str
    posted: bool


def msg_id_of(document: bytes) -> str:
    """The MsgHead ``MsgInfo/MsgId`` of a business document (safe parse: no DTD, no entities, no network)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as exc:
        raise DocumentMismatch(f"the business document is not well-formed XML: {exc.msg}") from None
    if root.getroottree().docinfo.doctype:
        raise DocumentMismatch("the business document has a DOCTYPE")
    found = root.findtext(f"{{{MSGHEAD_NS}}}MsgInfo/{{{MSGHEAD_NS}}}MsgId")
    if not found:
        raise DocumentMismatch("the business document is not a MsgHead with MsgInfo/MsgId")
    return found.strip()


def sha256_hex(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()


class MshClient:
    """Meldingstjener API v2 client over a synchronous ``httpx.Client``.

    ``base_url`` is ``GATEWAY_MSH_URL``; ``source_system`` is ``GATEWAY_MSH_SOURCE_SYSTEM`` (the
    ``nhn-source-system`` header). ``http`` may be any ``httpx.Client`` (tests pass one wired to the stand-in).
    """

    def __init__(self, *, base_url: str, source_system: str, helseid: HelseIdClient,
                 http: httpx.Client | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.source_system = source_system
        self.helseid = helseid
        self._http = http or httpx.Client(timeout=timeout)
        self._nonce: str | None = None  # an API-issued DPoP nonce, if the API ever sends one

    def __repr__(self) -> str:
        return f"MshClient(base_url={self.base_url!r}, source_system={self.source_system!r})"

    # --- sending -------------------------------------------------------------------------------------------

    def send(self, document: bytes, msg_id: str, *, known_api_id: str | None = None,
             expected_sha256: str | None = None, receiver_her_ids_subset: Sequence[int] | None = None
             ) -> PostedMessage:
        """Send a stored MsgHead document once (see the module docstring for why this is safe to repeat).

        ``msg_id`` is the MsgId the caller files the message under; ``expected_sha256`` the digest it recorded
        before an earlier attempt, if any. With ``known_api_id`` the API is asked for that message's status
        instead of posting again; only a 404 there leads to a new POST (of the same bytes)."""
        digest = sha256_hex(document)
        if msg_id_of(document) != msg_id:
            raise DocumentMismatch(f"the document's MsgId is not {msg_id}")
        if expected_sha256 is not None and expected_sha256 != digest:
            raise DocumentMismatch(f"the document filed under MsgId {msg_id} has changed since it was first sent")
        if known_api_id is not None:
            try:
                self.get_status(known_api_id)
                return PostedMessage(api_id=known_api_id, msg_id=msg_id, sha256=digest, posted=False)
            except Rejected as exc:
                if exc.status != 404:
                    raise
        api_id = self.post_message(document, receiver_her_ids_subset=receiver_her_ids_subset)
        return PostedMessage(api_id=api_id, msg_id=msg_id, sha256=digest, posted=True)

    def post_message(self, document: bytes, *, receiver_her_ids_subset: Sequence[int] | None = None) -> str:
        """``POST /Messages``: the document base64-encoded, ``application/xml``; returns the new API id."""
        body: dict[str, Any] = {
            "businessDocument": base64.b64encode(document).decode("ascii"),
            "contentType": "application/xml",
            "contentTransferEncoding": "base64",
        }
        if receiver_her_ids_subset:
            body["receiverHerIdsSubset"] = [int(h) for h in receiver_her_ids_subset]
        if len(body["businessDocument"]) > MAX_POST_BYTES:
            raise Rejected(413, f"the request would exceed the API's {MAX_POST_BYTES} byte limit")
        answer = self._call("POST", "/Messages", json_body=body, expect=(201,))
        return _uuid_string(answer.json())

    def post_apprec(self, message_id: str, sender_her_id: int, status: AppRecStatus,
                    errors: Sequence[AppRecError] = ()) -> str:
        """``POST /Messages/{id}/apprec/{appRecSenderHerId}``: our AppRec for a received message."""
        if status != "Ok" and not errors:
            raise ValueError("an AppRec that is not Ok needs at least one error (8221 code)")
        body: dict[str, Any] = {"appRecStatus": status}
        if errors:
            body["appRecErrorList"] = [
                {"errorCode": e.error_code, "details": e.details or "", "description": e.description, "oid": e.oid}
                for e in errors]
        answer = self._call("POST", f"/Messages/{message_id}/apprec/{int(sender_her_id)}", json_body=body,
                            expect=(201,))
        return _uuid_string(answer.json())

    # --- receiving and following up ------------------------------------------------------------------------

    def get_messages(self, receiver_her_ids: Sequence[int], *, sender_her_id: int | None = None,
                     business_document_id: str | None = None, include_metadata: bool = True,
                     messages_to_fetch: int = 10, order_by: Literal["Ascending", "Descending"] = "Ascending"
                     ) -> list[Message]:
        """``GET /Messages``: unread messages (incl. AppRecs) for our HER-ids, until each is marked read."""
        if not receiver_her_ids:
            raise ValueError("at least one receiver HER-id is required")
        params: list[tuple[str, str]] = [("ReceiverHerIds", str(int(h))) for h in receiver_her_ids]
        if sender_her_id is not None:
            params.append(("SenderHerId", str(int(sender_her_id))))
        if business_document_id is not None:
            params.append(("BusinessDocumentId", business_document_id))
        params += [("IncludeMetadata", "true" if include_metadata else "false"),
                   ("MessagesToFetch", str(messages_to_fetch)), ("OrderBy", order_by)]
        answer = self._call("GET", "/Messages", params=params, expect=(200,))
        return [_message(item) for item in _list(answer)]

    def get_message(self, message_id: str) -> Message:
        return _message(self._call("GET", f"/Messages/{message_id}", expect=(200,)).json())

    def get_business_document(self, message_id: str) -> BusinessDocument:
        body = self._call("GET", f"/Messages/{message_id}/business-document", expect=(200,)).json()
        if str(body.get("contentTransferEncoding", "")).lower() != "base64":
            raise Rejected(200, f"unexpected contentTransferEncoding {body.get('contentTransferEncoding')!r}")
        try:
            content = base64.b64decode(body["businessDocument"], validate=True)
        except (ValueError, KeyError, TypeError):
            raise Rejected(200, "the business document is not valid base64") from None
        return BusinessDocument(content=content, content_type=str(body.get("contentType")),
                                content_transfer_encoding="base64")

    def mark_read(self, message_id: str, her_id: int) -> None:
        """``PUT /Messages/{id}/read/{herId}``: only after the message is stored and handed on."""
        self._call("PUT", f"/Messages/{message_id}/read/{int(her_id)}", expect=(204,))

    def get_status(self, message_id: str) -> list[StatusInfo]:
        answer = self._call("GET", f"/Messages/{message_id}/status", expect=(200,))
        return [StatusInfo(receiver_her_id=int(s["receiverHerId"]),
                           transport_delivery_state=s["transportDeliveryState"],
                           app_rec_status=s.get("appRecStatus")) for s in _list(answer)]

    def get_apprec_info(self, message_id: str) -> list[ApprecInfo]:
        answer = self._call("GET", f"/Messages/{message_id}/apprec", expect=(200,))
        return [ApprecInfo(receiver_her_id=int(a["receiverHerId"]), app_rec_status=a.get("appRecStatus"),
                           errors=tuple(AppRecError(error_code=e.get("errorCode"), details=e.get("details"),
                                                    description=e.get("description"), oid=e.get("oid"))
                                        for e in (a.get("appRecErrorList") or ())))
                for a in _list(answer)]

    # --- transport -----------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, params: Sequence[tuple[str, str]] | None = None,
              json_body: Mapping[str, Any] | None = None, expect: tuple[int, ...]) -> httpx.Response:
        url = self.base_url + path
        refreshed = False
        nonce_retried = False
        while True:
            token = self._token()
            headers = {
                "api-version": API_VERSION,
                "nhn-source-system": self.source_system,
                "Authorization": f"DPoP {token.value}",
                "DPoP": self.helseid.proof(method, url, token, nonce=self._nonce),
                "Accept": "application/json",
            }
            try:
                response = self._http.request(method, url, params=httpx.QueryParams(list(params or ())), json=json_body,
                                              headers=headers)
            except httpx.TimeoutException:
                raise Transient(f"{method} {path}: timed out") from None
            except httpx.TransportError as exc:
                raise Transient(f"{method} {path}: {type(exc).__name__}") from None
            if response.status_code in expect:
                return response
            if response.status_code == 401:
                nonce = response.headers.get("DPoP-Nonce")
                if nonce and "use_dpop_nonce" in response.headers.get("WWW-Authenticate", "") and not nonce_retried:
                    self._nonce, nonce_retried = nonce, True
                    continue
                if not refreshed:
                    self.helseid.invalidate(token)
                    refreshed = True
                    continue
            raise _error(method, path, response)

    def _token(self) -> AccessToken:
        try:
            return self.helseid.token()
        except HelseIdUnavailable as exc:
            raise Transient(str(exc), exc.status or None) from None
        except HelseIdError as exc:
            raise Rejected(exc.status, str(exc)) from None


def _error(method: str, path: str, response: httpx.Response) -> MshError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    error = str(body.get("error") or response.reason_phrase or f"HTTP {status}")
    code = body.get("errorCode")
    validation = [str(v) for v in (body.get("validationErrors") or [])]
    request_id = body.get("requestId")
    log.warning("meldingstjener refused a request",
                extra={"method": method, "path_template": _template(path), "status": status, "error_code": code,
                       "request_id": request_id})
    if status >= 500 or status in (408, 429):
        return Transient(f"{method} {_template(path)}: {status} {error}", status)
    cls = Locked if status == 423 else Rejected
    return cls(status, error, int(code) if isinstance(code, int) else None, validation,
               str(request_id) if request_id else None)


def _template(path: str) -> str:
    """A path without ids, for log lines: ``/Messages/{id}/read/{herId}``."""
    parts = path.split("/")
    return "/".join("{id}" if len(p) == 36 and p.count("-") == 4 else ("{herId}" if p.isdigit() else p)
                    for p in parts)


def _list(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    if not isinstance(body, list):
        raise Transient(f"expected a JSON array from {response.request.url.path}", response.status_code)
    return [item for item in body if isinstance(item, dict)]


def _uuid_string(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 36:
        raise Transient("the API did not answer with a message id")
    return value


def _message(item: Mapping[str, Any]) -> Message:
    """Unknown fields are ignored on purpose: NHN adds fields without a version bump (KS fixtures)."""
    return Message(
        id=str(item["id"]),
        receiver_her_id=_int_or_none(item.get("receiverHerId")),
        sender_her_id=_int_or_none(item.get("senderHerId")),
        business_document_id=item.get("businessDocumentId"),
        business_document_gen_date=item.get("businessDocumentGenDate"),
        is_app_rec=item.get("isAppRec"),
        content_type=item.get("contentType"),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
