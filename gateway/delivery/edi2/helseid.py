"""HelseID client: client credentials with a ``private_key_jwt`` assertion and DPoP-bound access tokens.

Why this shape:

* NHN's Meldingstjener accepts only DPoP-bound HelseID tokens (``Authorization: DPoP …`` plus a ``DPoP`` proof
  on every call), so the token endpoint is called with a DPoP proof too (RFC 9449 §5) and the token is bound
  to the DPoP key (``cnf.jkt``).
* The client authenticates with a signed JWT (RFC 7523, ``private_key_jwt``), never a shared secret; the key is
  read from a file (JWK JSON or PEM) whose path comes from the settings (``GATEWAY_HELSEID_KEY``). This module
  reads no environment variable itself.
* HelseID demands a server nonce in the proof: the first token request without one is answered
  ``400 {"error": "use_dpop_nonce"}`` with a ``DPoP-Nonce`` header, and is repeated once with a fresh
  assertion and proof (new ``jti``s, since HelseID refuses a ``jti`` it has seen).
* Tokens are cached until ``refresh_margin`` seconds before expiry: one token request per token lifetime, not
  per message.
* Keys and tokens never reach a log line or a ``repr``: the classes below hide them, and no log call here
  formats a token, an assertion, a proof or a key.

All JOSE work (signing, JWK thumbprints) is done by ``joserfc``; all HTTP by ``httpx``. No crypto is
hand-written here; the only digest computed directly is the ``ath`` hash (SHA-256 via ``hashlib``), which
RFC 9449 §4.2 defines as a plain hash of the token's ASCII bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_SCOPE = "nhn:msh/api"
AsymmetricKey = RSAKey | ECKey | OKPKey


class HelseIdError(Exception):
    """The token endpoint refused us (4xx other than the nonce handshake): configuration, not a passing fault.

    ``error`` and ``description`` are HelseID's own ``error``/``error_description`` fields; they never contain
    the assertion or the key."""

    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        super().__init__(f"HelseID token request refused ({status}): {error}"
                         + (f" — {description}" if description else ""))
        self.status = status
        self.error = error
        self.description = description


class HelseIdUnavailable(HelseIdError):
    """5xx, timeout or connection failure at the token endpoint: the caller backs off and tries again."""


@dataclass(frozen=True)
class AccessToken:
    """A DPoP-bound access token. ``value`` is excluded from ``repr`` so that a logged object leaks nothing."""

    value: str = field(repr=False)
    expires_at: float
    token_type: str = "DPoP"
    scope: str | None = None

    def ath(self) -> str:
        """The ``ath`` claim for proofs sent with this token: base64url(SHA-256(ASCII token)), RFC 9449 §4.2."""
        return b64url(hashlib.sha256(self.value.encode("ascii")).digest())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def htu_of(url: str | httpx.URL) -> str:
    """The ``htu`` claim: scheme://host[:port]/path with no query and no fragment (RFC 9449 §4.2; NHN refuses
    a query in ``htu``)."""
    return str(httpx.URL(str(url)).copy_with(query=None, fragment=None))


def _alg_for(key: AsymmetricKey, rsa_alg: str) -> str:
    if isinstance(key, RSAKey):
        return rsa_alg
    if isinstance(key, ECKey):
        curve = key.curve_name
        return {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[curve]
    return "EdDSA"


def load_private_key(path: str | Path) -> AsymmetricKey:
    """Read a private key from a JWK JSON file or a PEM file.

    A public-only or symmetric key is refused with a message that names the file but never its contents."""
    raw = Path(path).read_bytes()
    key: Any
    if raw.lstrip().startswith(b"{"):
        try:
            data = json.loads(raw)
        except ValueError:
            raise ValueError(f"{path}: not valid JWK JSON") from None
        if not isinstance(data, dict) or "d" not in data:
            raise ValueError(f"{path}: the JWK has no private part ('d')")
        key = JWKRegistry.import_key(data)
    else:
        key = None
        for key_type in ("RSA", "EC", "OKP"):
            try:
                key = JWKRegistry.import_key(raw, key_type)
                break
            except Exception:  # try the next key type; the message below says what failed
                continue
        if key is None:
            raise ValueError(f"{path}: not a PEM private key of type RSA, EC or OKP")
    if not isinstance(key, RSAKey | ECKey | OKPKey) or not key.is_private:
        raise ValueError(f"{path}: an asymmetric private key is required")
    return key


class DPoPKey:
    """A DPoP key pair and the proofs it signs. ``repr`` shows the public thumbprint only."""

    def __init__(self, key: AsymmetricKey, *, rsa_alg: str = "PS256") -> None:
        if not key.is_private:
            raise ValueError("a DPoP key must be a private key")
        self._key = key
        self.alg = _alg_for(key, rsa_alg)
        self.public_jwk: dict[str, Any] = dict(key.as_dict(private=False))
        self.thumbprint: str = key.thumbprint()

    @classmethod
    def generate(cls) -> DPoPKey:
        """An ephemeral P-256 key: tokens bound to it live in memory only, so it need not be stored."""
        return cls(ECKey.generate_key("P-256"))

    def __repr__(self) -> str:
        return f"DPoPKey(alg={self.alg!r}, jkt={self.thumbprint!r})"

    def proof(self, method: str, url: str | httpx.URL, *, nonce: str | None = None,
              access_token: AccessToken | None = None, now: float | None = None) -> str:
        """A DPoP proof JWT for one request: new ``jti`` each time, ``ath`` when a token is presented."""
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "htm": method.upper(),
            "htu": htu_of(url),
            "iat": int(time.time() if now is None else now),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["ath"] = access_token.ath()
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk}
        return jwt.encode(header, claims, self._key, algorithms=[self.alg])


class HelseIdClient:
    """Fetches and caches DPoP-bound access tokens from HelseID with a ``private_key_jwt`` assertion.

    ``token_url`` is the token endpoint (``GATEWAY_HELSEID_TOKEN_URL``); the assertion's ``aud`` is the
    authority, which is ``token_url`` without ``/connect/token`` unless given. ``key_path`` is the client's
    private key file (``GATEWAY_HELSEID_KEY``). Thread-safe: one token request at a time, others wait for it.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        key_path: str | Path,
        authority: str | None = None,
        scope: str | None = DEFAULT_SCOPE,
        http: httpx.Client | None = None,
        dpop_key: DPoPKey | None = None,
        rsa_alg: str = "PS256",
        refresh_margin: float = 60.0,
        assertion_lifetime: float = 10.0,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.authority = authority or token_url.removesuffix("/").removesuffix("/connect/token")
        self.scope = scope
        self._key = load_private_key(key_path)
        self._alg = _alg_for(self._key, rsa_alg)
        self._kid = self._key.kid or self._key.thumbprint()
        self.dpop = dpop_key or DPoPKey.generate()
        self._http = http or httpx.Client(timeout=timeout)
        self._refresh_margin = refresh_margin
        self._assertion_lifetime = assertion_lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._nonce: str | None = None  # HelseID's last DPoP-Nonce; reused until it is refused
        self.token_requests = 0  # how many times the token endpoint was called (for tests and metrics)

    def __repr__(self) -> str:
        return f"HelseIdClient(client_id={self.client_id!r}, authority={self.authority!r}, dpop={self.dpop!r})"

    def client_assertion(self) -> str:
        """A fresh RFC 7523 client assertion: short-lived, unique ``jti``, ``iss`` = ``sub`` = client id."""
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.authority,
            "iat": now,
            "nbf": now,
            "exp": now + int(self._assertion_lifetime),
            "jti": str(uuid.uuid4()),
        }
        header = {"typ": "client-authentication+jwt", "alg": self._alg, "kid": self._kid}
        return jwt.encode(header, claims, self._key, algorithms=[self._alg])

    def token(self) -> AccessToken:
        """The cached token, or a new one when it is within ``refresh_margin`` of expiry."""
        with self._lock:
            token = self._token
            if token is not None and token.expires_at - self._refresh_margin > self._clock():
                return token
            self._token = self._fetch()
            return self._token

    def invalidate(self, token: AccessToken | None = None) -> None:
        """Forget the cached token (after a 401 from the API), unless a newer one has replaced it already."""
        with self._lock:
            if token is None or self._token is token:
                self._token = None

    def proof(self, method: str, url: str | httpx.URL, token: AccessToken, nonce: str | None = None) -> str:
        """A DPoP proof for an API call with ``token`` (carries ``ath``)."""
        return self.dpop.proof(method, url, access_token=token, nonce=nonce, now=self._clock())

    def _fetch(self) -> AccessToken:
        for attempt in range(2):
            response = self._post_token_request(self._nonce)
            if response.status_code == 200:
                return self._parse_token(response)
            error, description = _oauth_error(response)
            nonce = response.headers.get("DPoP-Nonce")
            if response.status_code == 400 and error == "use_dpop_nonce" and nonce and attempt == 0:
                self._nonce = nonce  # new assertion and proof (new jtis) on the retry
                continue
            if response.status_code >= 500:
                raise HelseIdUnavailable(response.status_code, error, description)
            raise HelseIdError(response.status_code, error, description)
        raise HelseIdError(400, "use_dpop_nonce", "HelseID asked for a new nonce twice in a row")

    def _post_token_request(self, nonce: str | None) -> httpx.Response:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.client_assertion(),
        }
        if self.scope:
            form["scope"] = self.scope
        headers = {"DPoP": self.dpop.proof("POST", self.token_url, nonce=nonce, now=self._clock())}
        self.token_requests += 1
        try:
            return self._http.post(self.token_url, data=form, headers=headers)
        except httpx.TransportError as exc:  # timeouts, refused connections, broken TLS
            raise HelseIdUnavailable(0, type(exc).__name__, "token endpoint not reachable") from None

    def _parse_token(self, response: httpx.Response) -> AccessToken:
        try:
            body = response.json()
            value = body["access_token"]
            expires_in = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise HelseIdError(response.status_code, "invalid_response", "no access_token in the answer") from None
        token_type = str(body.get("token_type", "DPoP"))
        if token_type.lower() != "dpop":
            # A Bearer token would be refused by the Meldingstjener on every call; fail here, clearly.
            raise HelseIdError(response.status_code, "invalid_token_type", f"expected DPoP, got {token_type}")
        log.info("helseid token obtained", extra={"expires_in": expires_in, "jkt": self.dpop.thumbprint})
        return AccessToken(value=str(value), expires_at=self._clock() + expires_in, token_type="DPoP",
                           scope=body.get("scope"))


def _oauth_error(response: httpx.Response) -> tuple[str, str | None]:
    try:
        body = response.json()
    except ValueError:
        return f"http_{response.status_code}", None
    if not isinstance(body, dict):
        return f"http_{response.status_code}", None
    description = body.get("error_description")
    return str(body.get("error") or f"http_{response.status_code}"), str(description) if description else None
