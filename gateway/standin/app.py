"""A local stand-in for NHN's Meldingstjener API v2 and for HelseID's token endpoint, as one ASGI app.

NHN cannot be reached from here, so this app *enforces* what the real services are documented to enforce (see
``docs/transports.md`` and the NHN digest README §9), so that a client passing against it is likely to pass
against NHN:

* HelseID ``POST /connect/token``: client assertion (``private_key_jwt``) and DPoP proof verified, nonce
  handshake (``use_dpop_nonce``), tokens bound to the proof key (``cnf.jkt``), opaque to the client.
* Meldingstjener (``/Messages…``): ``Authorization: DPoP`` only, proof with ``ath`` and matching ``cnf.jkt``,
  every request and response checked against ``msh-api-v2.json`` with openapi-core; business documents decoded
  and validated against the official XSDs; HER-id authorisation (403), locks (423), AppRec rules (1100, 1102).
* A simulated world behind it: EDI receivers answer with transport receipts and AppRecs (OK, Avvist with a
  code, or none) per receiver HER-id; messages for HER-ids of registered API clients wait in their inbox.
* Fault injection through ``/_standin/faults`` (and the constructor): 5xx, slow answers and timeouts, answers
  lost after the work was done, 423 for a HER-id, duplicated listings, gaps.

Admin endpoints live under ``/_standin/`` and are not part of NHN's API (they are not checked against it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from gateway.standin import documents
from gateway.standin.dpop import AssertionVerifier, DPoPVerifier, NonceRequired, ProofInvalid, ReplayCache
from gateway.standin.state import (
    ClientRegistration,
    FailRule,
    StandinConfig,
    StandinState,
    StoredMessage,
)

log = logging.getLogger(__name__)
TOKEN_PATH = "/connect/token"


@dataclass
class IssuedToken:
    client_id: str
    jkt: str
    expires_at: float
    scope: str


class ApiError(Exception):
    """An answer with the API's ``ErrorMessage`` body."""

    def __init__(self, status: int, error: str, error_code: int = 0, validation_errors: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.error_code = error_code
        self.validation_errors = validation_errors
        self.headers = headers or {}


def _error_body(error: ApiError) -> dict[str, Any]:
    return {"error": error.error, "errorCode": error.error_code, "validationErrors": error.validation_errors,
            "stackTrace": None, "requestId": str(uuid.uuid4())}


class Standin:
    """The stand-in's behaviour, independent of HTTP plumbing (``create_app`` wires it into Starlette)."""

    def __init__(self, config: StandinConfig | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config or StandinConfig()
        self.state = StandinState(self.config.state_file)
        self.clock = clock
        self.replay = ReplayCache(clock)
        self.dpop = DPoPVerifier(replay=self.replay, max_age=self.config.proof_max_age, skew=self.config.skew,
                                 clock=clock)
        self.tokens: dict[str, IssuedToken] = {}
        self._nonces: list[str] = [secrets.token_urlsafe(16)]
        self._nonce_born = clock()

    # --- HelseID -------------------------------------------------------------------------------------------

    def current_nonce(self) -> str:
        """Rotated every five minutes; the previous one stays valid so that a retry in flight still works."""
        if self.clock() - self._nonce_born > 300:
            self._nonces = [secrets.token_urlsafe(16), self._nonces[0]]
            self._nonce_born = self.clock()
        return self._nonces[0]

    def token_endpoint(self, form: dict[str, str], proof: str | None, htu: str, authority: str
                       ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.state.count("token_requests")
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}, {}
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return 400, {"error": "invalid_client", "error_description": "client_assertion_type"}, {}
        nonce = self.current_nonce() if self.config.require_token_nonce else None
        try:
            verified = self.dpop.verify(proof, method="POST", htu=htu,
                                        nonce=None if nonce is None else self._accepted_nonce(proof))
        except NonceRequired as exc:
            self.state.count("token_nonce_challenges")
            return 400, {"error": "use_dpop_nonce", "error_description": exc.description}, {"DPoP-Nonce": nonce or ""}
        except ProofInvalid as exc:
            return 400, {"error": "invalid_dpop_proof", "error_description": exc.description}, {}
        verifier = AssertionVerifier(
            authority=self.config.authority or authority,
            client_keys={c.client_id: c.jwks for c in self.config.clients.values()}, replay=self.replay,
            max_assertion_lifetime=self.config.max_assertion_lifetime, skew=self.config.skew, clock=self.clock)
        try:
            client_id = verifier.verify(form.get("client_assertion"), form.get("client_id"))
        except ProofInvalid as exc:
            return 400, {"error": exc.error, "error_description": exc.description}, {}
        scope = form.get("scope") or "nhn:msh/api"
        if scope != "nhn:msh/api":
            return 400, {"error": "invalid_scope", "error_description": "only nhn:msh/api is configured"}, {}
        token = secrets.token_urlsafe(32)
        self.tokens[token] = IssuedToken(client_id=client_id, jkt=verified.jkt,
                                         expires_at=self.clock() + self.config.token_lifetime, scope=scope)
        self.state.count("tokens_issued")
        return 200, {"access_token": token, "expires_in": self.config.token_lifetime, "token_type": "DPoP",
                     "scope": scope}, {}

    def _accepted_nonce(self, proof: str | None) -> str:
        """The nonce the proof must carry: the one it carries if it is current or previous, else the current."""
        from joserfc import jws

        try:
            claims = json.loads(jws.extract_compact((proof or "").encode("ascii")).payload)
        except (JoseError, ValueError, UnicodeEncodeError):
            return self._nonces[0]
        carried = claims.get("nonce") if isinstance(claims, dict) else None
        return carried if carried in self._nonces else self._nonces[0]

    # --- API authentication --------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None, proof: str | None, method: str, htu: str) -> ClientRegistration:
        def refuse(error: str, description: str, extra: dict[str, str] | None = None) -> ApiError:
            header = f'DPoP error="{error}", error_description="{description}", algs="ES256 PS256 RS256"'
            return ApiError(401, description, 0, None, {"WWW-Authenticate": header, **(extra or {})})

        if not authorization:
            raise refuse("invalid_token", "missing Authorization")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "dpop" or not token:
            raise refuse("invalid_token", "a DPoP-bound token is required (Authorization: DPoP ...)")
        issued = self.tokens.get(token)
        if issued is None or issued.expires_at <= self.clock():
            raise refuse("invalid_token", "the access token is unknown or expired")
        nonce = self.current_nonce() if self.config.require_api_nonce else None
        try:
            self.dpop.verify(proof, method=method, htu=htu, access_token=token, jkt=issued.jkt,
                             nonce=None if nonce is None else self._accepted_nonce(proof))
        except NonceRequired as exc:
            raise refuse("use_dpop_nonce", exc.description, {"DPoP-Nonce": nonce or ""}) from None
        except ProofInvalid as exc:
            raise refuse(exc.error, exc.description) from None
        client = self.config.clients.get(issued.client_id)
        if client is None:
            raise refuse("invalid_token", "the client is no longer registered")
        return client

    # --- API operations ------------------------------------------------------------------------------------

    def _authorise(self, client: ClientRegistration, her_ids: list[int] | tuple[int, ...]) -> None:
        refused = [h for h in her_ids if not client.covers(h)]
        if refused:
            raise ApiError(403, f"Not authorized for HerId(s): {', '.join(map(str, refused))}", 0)

    def _unlocked(self, client: ClientRegistration, her_id: int) -> None:
        owner = self.config.faults.locked.get(her_id)
        if owner is not None and owner != client.client_id:
            raise ApiError(423, f"HerId {her_id} is locked by another client", 1210)

    def _visible(self, client: ClientRegistration, message: StoredMessage) -> None:
        if not (client.covers(message.receiver_her_id) or client.covers(message.sender_her_id)):
            raise ApiError(403, f"Not authorized for HerId(s): {message.receiver_her_id}", 0)

    def _get(self, message_id: str) -> StoredMessage:
        message = self.state.messages.get(message_id)
        if message is None:
            raise ApiError(404, "Could not find database document", 1010)
        return message

    def post_message(self, client: ClientRegistration, body: dict[str, Any]) -> StoredMessage:
        try:
            raw = documents.decode(body["businessDocument"], body["contentType"], body["contentTransferEncoding"])
            root = documents.parse(raw)
            address = documents.addressing(root)
        except documents.DocumentRefused as exc:
            raise ApiError(400, "Model validation error occurred", 1000, [str(exc), *exc.validation_errors]) from None
        if not any(client.covers(h) for h in address.sender_her_ids):
            raise ApiError(403, f"Not authorized for HerId(s): {address.sender_her_id}", 1201)
        self._unlocked(client, address.sender_her_id)
        subset = body.get("receiverHerIdsSubset")
        if subset and address.receiver_her_id not in subset:
            raise ApiError(400, "receiverHerIdsSubset names no receiver of the business document", 1200)
        invalid: documents.DocumentInvalid | None = None
        try:
            documents.validate(root)
        except documents.DocumentInvalid as exc:
            if self.config.xsd_failure == "reject":
                raise ApiError(400, "Model validation error occurred", 1000, [str(exc)]) from None
            invalid = exc
        with self.state.lock:
            message = StoredMessage(
                id=str(uuid.uuid4()), sender_her_id=address.sender_her_id, receiver_her_id=address.receiver_her_id,
                msg_id=address.msg_id, gen_date=address.gen_date, is_app_rec=address.is_app_rec,
                document_b64=body["businessDocument"], sha256=hashlib.sha256(raw).hexdigest(),
                posted_by=client.client_id)
            self.state.messages[message.id] = message
            self.state.record_delivery(message)
            self.state.count("posts")
            if address.is_app_rec:
                self._apply_apprec_document(message, address, root)
            elif address.receiver_her_id in self.config.api_user_her_ids():
                message.transport_state = "Acknowledged"  # handed over to the other API user's inbox
            else:
                self._simulate_edi_receiver(message, address, invalid)
            self.state.save()
        return message

    def _simulate_edi_receiver(self, message: StoredMessage, address: documents.Addressing,
                               invalid: documents.DocumentInvalid | None) -> None:
        behaviour = self.config.receivers.get(address.receiver_her_id, self.config.default_receiver)
        message.transport_state = behaviour.transport
        if behaviour.transport != "Acknowledged":
            return
        if invalid is not None:
            self._deliver_apprec(message, address, "2", [(invalid.code, documents.ERROR_TEXT[invalid.code])])
        elif behaviour.apprec == "ok":
            self._deliver_apprec(message, address, "1", [])
        elif behaviour.apprec == "avvist":
            code = behaviour.error_code
            self._deliver_apprec(message, address, "2",
                                 [(code, behaviour.error_text or documents.ERROR_TEXT.get(code, "Annen feil"))])

    def _deliver_apprec(self, original: StoredMessage, address: documents.Addressing, status: str,
                        errors: list[tuple[str, str]]) -> StoredMessage:
        """Store the receiver's AppRec as an unread message for the original sender, and update the status."""
        xml = documents.build_apprec(address, status, errors)
        apprec_address = documents.addressing(documents.parse(xml))
        apprec = StoredMessage(
            id=str(uuid.uuid4()), sender_her_id=original.receiver_her_id, receiver_her_id=original.sender_her_id,
            msg_id=apprec_address.msg_id, gen_date=apprec_address.gen_date, is_app_rec=True,
            document_b64=base64.b64encode(xml).decode("ascii"), sha256=hashlib.sha256(xml).hexdigest(),
            posted_by="standin-receiver", transport_state="Acknowledged", original_id=original.id)
        self.state.messages[apprec.id] = apprec
        original.apprec_status = {"1": "Ok", "2": "Rejected", "3": "OkErrorInMessagePart"}[status]
        original.apprec_errors = [{"errorCode": code, "details": text, "description": None,
                                   "oid": documents.OID_8221} for code, text in errors]
        return apprec

    def _apply_apprec_document(self, message: StoredMessage, address: documents.Addressing, root: Any) -> None:
        """An AppRec posted as XML: update the original it answers, found by OriginalMsgId and the parties."""
        message.transport_state = "Acknowledged"
        for original in self.state.messages.values():
            if (original.msg_id == address.original_msg_id and not original.is_app_rec
                    and original.receiver_her_id == message.sender_her_id):
                status_el = root.find(f"{{{etree_ns(root)}}}Status")
                code = status_el.get("V") if status_el is not None else "1"
                original.apprec_status = {"1": "Ok", "2": "Rejected"}.get(code, "OkErrorInMessagePart")
                message.original_id = original.id

    def get_messages(self, client: ClientRegistration, query: list[tuple[str, str]]) -> list[dict[str, Any]]:
        receivers = [int(v) for k, v in query if k == "ReceiverHerIds"]
        self._authorise(client, receivers)
        params = dict(query)
        sender = int(params["SenderHerId"]) if "SenderHerId" in params else None
        document_id = params.get("BusinessDocumentId")
        metadata = params.get("IncludeMetadata", "false").lower() == "true"
        limit = int(params.get("MessagesToFetch", "10"))
        descending = params.get("OrderBy") in ("Descending", "2")
        with self.state.lock:
            unread = [m for m in self.state.messages.values()
                      if not m.read and m.receiver_her_id in receivers
                      and (sender is None or m.sender_her_id == sender)
                      and (document_id is None or m.msg_id == document_id)]
            unread.sort(key=lambda m: (m.gen_date, m.created), reverse=descending)
            faults = self.config.faults
            if faults.listing_gaps > 0 and unread:
                faults.listing_gaps -= 1
                unread = unread[1:]
            unread = unread[:limit]
            if faults.duplicate_listings > 0:
                faults.duplicate_listings -= 1
                unread = [m for m in unread for _ in (0, 1)][:max(limit, 2)]
        return [self.message_json(m, metadata) for m in unread]

    def message_json(self, message: StoredMessage, metadata: bool = True) -> dict[str, Any]:
        if not metadata:
            return {"id": message.id, "receiverHerId": message.receiver_her_id}
        return {"id": message.id, "contentType": "application/xml", "receiverHerId": message.receiver_her_id,
                "senderHerId": message.sender_her_id, "businessDocumentId": message.msg_id,
                "businessDocumentGenDate": message.gen_date, "isAppRec": message.is_app_rec}

    def get_message(self, client: ClientRegistration, message_id: str) -> dict[str, Any]:
        message = self._get(message_id)
        self._visible(client, message)
        return self.message_json(message)

    def business_document(self, client: ClientRegistration, message_id: str) -> dict[str, Any]:
        message = self._get(message_id)
        self._visible(client, message)
        return {"businessDocument": message.document_b64, "contentType": "application/xml",
                "contentTransferEncoding": "base64"}

    def status(self, client: ClientRegistration, message_id: str) -> list[dict[str, Any]]:
        message = self._get(message_id)
        self._visible(client, message)
        return [{"receiverHerId": message.receiver_her_id, "transportDeliveryState": message.transport_state,
                 "appRecStatus": message.apprec_status}]

    def apprec_info(self, client: ClientRegistration, message_id: str) -> list[dict[str, Any]]:
        message = self._get(message_id)
        self._visible(client, message)
        return [{"receiverHerId": message.receiver_her_id, "appRecStatus": message.apprec_status,
                 "appRecErrorList": message.apprec_errors}]

    def mark_read(self, client: ClientRegistration, message_id: str, her_id: int) -> None:
        message = self._get(message_id)
        self._authorise(client, [her_id])
        self._unlocked(client, her_id)
        if message.receiver_her_id != her_id:
            raise ApiError(400, f"HerId {her_id} is not the receiver of the message", 1000)
        with self.state.lock:
            message.read = True
            self.state.count("marked_read")
            self.state.save()

    def post_apprec(self, client: ClientRegistration, message_id: str, her_id: int, body: dict[str, Any]) -> str:
        message = self._get(message_id)
        self._authorise(client, [her_id])
        self._unlocked(client, her_id)
        if message.is_app_rec:
            raise ApiError(400, "An application receipt cannot be sent for an application receipt", 1100)
        if message.receiver_her_id != her_id:
            raise ApiError(400, f"HerId {her_id} is not a receiver of the message", 1102)
        status = {"Ok": "1", "Rejected": "2", "OkErrorInMessagePart": "3"}[body["appRecStatus"]]
        errors = [(e["errorCode"], e.get("details") or "") for e in (body.get("appRecErrorList") or [])]
        if status != "1" and not errors:
            raise ApiError(400, "Model validation error occurred", 1000,
                           ["AppRecErrorList must be populated if AppRecResult is 'Avvist'"])
        address = documents.addressing(documents.parse(base64.b64decode(message.document_b64)))
        with self.state.lock:
            apprec = self._deliver_apprec(message, address, status, errors)
            self.state.save()
        return apprec.id

    # --- faults --------------------------------------------------------------------------------------------

    def take_fault(self, method: str, path: str) -> FailRule | None:
        for rule in self.config.faults.rules:
            if rule.times > 0 and path.startswith(rule.path) and (rule.method in (None, method)):
                rule.times -= 1
                return rule
        return None

    def set_faults(self, data: dict[str, Any]) -> None:
        faults = self.config.faults
        if "rules" in data:
            faults.rules = [FailRule(**r) for r in data["rules"]]
        if "locked" in data:
            faults.locked = {int(k): str(v) for k, v in data["locked"].items()}
        faults.duplicate_listings = int(data.get("duplicate_listings", faults.duplicate_listings))
        faults.listing_gaps = int(data.get("listing_gaps", faults.listing_gaps))

    def register_client(self, data: dict[str, Any]) -> None:
        jwks = data["jwks"] if "jwks" in data else [data["jwk"]]
        for jwk in jwks:
            if "d" in jwk:
                raise ValueError("register public keys only")
            JWKRegistry.import_key(jwk)
        her_ids = data.get("her_ids")
        self.config.clients[data["client_id"]] = ClientRegistration(
            client_id=data["client_id"], jwks=jwks, her_ids=None if her_ids is None else frozenset(map(int, her_ids)))

    def summary(self) -> dict[str, Any]:
        with self.state.lock:
            return {
                "messages": [{k: v for k, v in asdict(m).items() if k != "document_b64"}
                             for m in self.state.messages.values()],
                "duplicates": self.state.duplicates(),
                "conflicts": self.state.conflicts(),
                "counters": dict(self.state.counters),
            }


def etree_ns(root: Any) -> str:
    tag = str(root.tag)
    return tag[1:].split("}")[0] if tag.startswith("{") else ""
