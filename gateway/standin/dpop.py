"""Verification of DPoP proofs (RFC 9449) and client assertions (RFC 7523), as HelseID and NHN do it.

What is checked, and why each check exists (README §4, §9):

* proofs: ``typ=dpop+jwt``; an asymmetric ``alg`` (never ``none`` or ``HS*``); a *public* ``jwk`` in the header
  (a private part is refused); the signature against that ``jwk``; ``htm`` equal to the request method; ``htu``
  equal to scheme://host+path of the request, with no query; ``iat`` inside a window (``max_age`` back,
  ``skew`` forward); a ``jti`` not seen before; ``nonce`` equal to the current server nonce when one is demanded;
  ``ath`` = base64url(SHA-256(token)) when a token is presented, and the ``jwk`` thumbprint equal to the token's
  ``cnf.jkt``.
* assertions: ``typ=client-authentication+jwt`` (``JWT`` is accepted for old clients, as the README notes the
  older documentation), signature against the client's registered public key, ``iss`` = ``sub`` = client id,
  ``aud`` = the authority, ``exp`` in the future and at most ``max_assertion_lifetime`` after ``iat``, ``jti``
  single use.

Signature checking is joserfc's; this module only compares claims.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

ASYMMETRIC_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                             "EdDSA"})


class ProofInvalid(Exception):
    """The proof or assertion is refused; ``error`` is the OAuth error code to answer with."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class NonceRequired(ProofInvalid):
    """No nonce, or a stale one: answer ``use_dpop_nonce`` with a fresh ``DPoP-Nonce``."""

    def __init__(self, description: str) -> None:
        super().__init__("use_dpop_nonce", description)


def b64url_sha256(value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class VerifiedProof:
    jkt: str
    claims: dict[str, Any]


class ReplayCache:
    """``jti`` values seen within their validity window; refused when seen again. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def use(self, namespace: str, jti: str, keep_until: float) -> bool:
        """Record ``jti``; False when it was seen already (a replay)."""
        key = f"{namespace}:{jti}"
        now = self._clock()
        with self._lock:
            if len(self._seen) > 10000:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            if key in self._seen and self._seen[key] > now:
                return False
            self._seen[key] = keep_until
            return True


def _import_public(jwk_data: Any) -> RSAKey | ECKey | OKPKey:
    if not isinstance(jwk_data, dict):
        raise ProofInvalid("invalid_dpop_proof", "the header has no jwk object")
    if any(private in jwk_data for private in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise ProofInvalid("invalid_dpop_proof", "the header jwk contains private or symmetric key material")
    try:
        key = JWKRegistry.import_key(jwk_data)
    except (JoseError, ValueError, TypeError, KeyError):
        raise ProofInvalid("invalid_dpop_proof", "the header jwk is not a usable public key") from None
    if not isinstance(key, RSAKey | ECKey | OKPKey):
        raise ProofInvalid("invalid_dpop_proof", "the header jwk is not an asymmetric key")
    return key


def _header(token: str, what: str) -> dict[str, Any]:
    try:
        return dict(jws.extract_compact(token.encode("ascii")).headers())
    except (JoseError, ValueError, UnicodeEncodeError):
        raise ProofInvalid(f"invalid_{what}", f"the {what.replace('_', ' ')} is not a compact JWS") from None


class DPoPVerifier:
    """Verifies DPoP proofs for the token endpoint and for API calls."""

    def __init__(self, *, replay: ReplayCache, max_age: float = 60.0, skew: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.replay = replay
        self.max_age = max_age
        self.skew = skew
        self.clock = clock

    def verify(self, proof: str | None, *, method: str, htu: str, nonce: str | None = None,
               access_token: str | None = None, jkt: str | None = None) -> VerifiedProof:
        """Check everything listed in the module docstring; raise ``ProofInvalid`` (or ``NonceRequired``)."""
        if not proof:
            raise ProofInvalid("invalid_dpop_proof", "the DPoP header is missing")
        if "," in proof:
            raise ProofInvalid("invalid_dpop_proof", "exactly one DPoP proof is allowed")
        header = _header(proof, "dpop_proof")
        if header.get("typ") != "dpop+jwt":
            raise ProofInvalid("invalid_dpop_proof", "typ must be dpop+jwt")
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGS:
            raise ProofInvalid("invalid_dpop_proof", f"alg {alg!r} is not an allowed asymmetric algorithm")
        key = _import_public(header.get("jwk"))
        try:
            claims = dict(jwt.decode(proof, key, algorithms=[str(alg)]).claims)
        except (JoseError, ValueError):
            raise ProofInvalid("invalid_dpop_proof", "the proof signature does not verify") from None
        for name in ("jti", "htm", "htu", "iat"):
            if name not in claims:
                raise ProofInvalid("invalid_dpop_proof", f"the proof has no {name}")
        if claims["htm"] != method.upper():
            raise ProofInvalid("invalid_dpop_proof", f"htm {claims['htm']!r} is not {method.upper()!r}")
        if "?" in str(claims["htu"]) or "#" in str(claims["htu"]):
            raise ProofInvalid("invalid_dpop_proof", "htu must not contain a query or fragment")
        if str(claims["htu"]).rstrip("/") != htu.rstrip("/"):
            raise ProofInvalid("invalid_dpop_proof", f"htu {claims['htu']!r} is not {htu!r}")
        now = self.clock()
        iat = claims["iat"]
        if not isinstance(iat, int | float) or iat > now + self.skew or iat < now - self.max_age:
            raise ProofInvalid("invalid_dpop_proof", "iat is outside the accepted window")
        if nonce is not None and claims.get("nonce") != nonce:
            raise NonceRequired("a DPoP nonce is required" if "nonce" not in claims else "the DPoP nonce is stale")
        if access_token is not None and claims.get("ath") != b64url_sha256(access_token):
            raise ProofInvalid("invalid_dpop_proof", "ath does not match the access token")
        thumbprint = key.thumbprint()
        if jkt is not None and thumbprint != jkt:
            raise ProofInvalid("invalid_token", "the token is bound to a different DPoP key (cnf.jkt)")
        # The jti is spent only once everything else holds: a refused proof must not burn a client's jti.
        if not self.replay.use("dpop", str(claims["jti"]), now + self.max_age + self.skew):
            raise ProofInvalid("invalid_dpop_proof", "the proof jti was used before")
        return VerifiedProof(jkt=thumbprint, claims=claims)


class AssertionVerifier:
    """Verifies ``private_key_jwt`` client assertions against the registered public keys of each client."""

    def __init__(self, *, authority: str, client_keys: dict[str, list[dict[str, Any]]], replay: ReplayCache,
                 max_assertion_lifetime: float = 60.0, skew: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.authority = authority
        self.client_keys = client_keys
        self.replay = replay
        self.max_lifetime = max_assertion_lifetime
        self.skew = skew
        self.clock = clock

    def verify(self, assertion: str | None, client_id: str | None) -> str:
        """The client id the assertion authenticates; ``ProofInvalid('invalid_client', …)`` otherwise."""
        if not assertion or not client_id:
            raise ProofInvalid("invalid_client", "client_id and client_assertion are required")
        registered = self.client_keys.get(client_id)
        if not registered:
            raise ProofInvalid("invalid_client", "unknown client")
        header = _header(assertion, "client")
        if header.get("typ") not in ("client-authentication+jwt", "JWT"):
            raise ProofInvalid("invalid_client", "typ must be client-authentication+jwt")
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGS:
            raise ProofInvalid("invalid_client", f"alg {alg!r} is not an allowed asymmetric algorithm")
        claims: dict[str, Any] | None = None
        for jwk_data in registered:
            try:
                key = JWKRegistry.import_key(jwk_data)
                claims = dict(jwt.decode(assertion, key, algorithms=[str(alg)]).claims)
                break
            except (JoseError, ValueError, TypeError):
                continue
        if claims is None:
            raise ProofInvalid("invalid_client", "the assertion signature does not verify with a registered key")
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise ProofInvalid("invalid_client", "iss and sub must both be the client id")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.authority.rstrip("/") not in [str(a).rstrip("/") for a in audiences]:
            raise ProofInvalid("invalid_client", "aud must be the HelseID authority")
        now = self.clock()
        exp, iat = claims.get("exp"), claims.get("iat", claims.get("nbf"))
        if not isinstance(exp, int | float) or exp <= now - self.skew:
            raise ProofInvalid("invalid_client", "the assertion has expired (or has no exp)")
        if not isinstance(iat, int | float) or iat > now + self.skew or exp - iat > self.max_lifetime:
            raise ProofInvalid("invalid_client", f"the assertion must live at most {self.max_lifetime:g} s")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + self.skew:
            raise ProofInvalid("invalid_client", "the assertion is not valid yet (nbf)")
        jti = claims.get("jti")
        if not jti:
            raise ProofInvalid("invalid_client", "the assertion has no jti")
        if not self.replay.use("assertion", str(jti), float(exp) + self.skew):
            raise ProofInvalid("invalid_client", "the assertion jti was used before")
        return client_id
