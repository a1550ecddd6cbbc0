"""The stand-in's DPoP verifier against proofs made by our client, and against broken or hostile proofs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from gateway.delivery.edi2.helseid import AccessToken, DPoPKey
from gateway.standin.dpop import DPoPVerifier, NonceRequired, ProofInvalid, ReplayCache

URL = "https://api.example/Messages"
TOKEN = AccessToken(value="token-value", expires_at=0)


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey(ECKey.generate_key("P-256", private=True))


@pytest.fixture
def verifier() -> DPoPVerifier:
    return DPoPVerifier(replay=ReplayCache())


def verify(verifier: DPoPVerifier, proof: str, **overrides: Any) -> None:
    options: dict[str, Any] = {"method": "GET", "htu": URL, "access_token": TOKEN.value}
    options.update(overrides)
    verifier.verify(proof, **options)


def test_our_proof_is_accepted(key: DPoPKey, verifier: DPoPVerifier) -> None:
    proof = key.proof("GET", URL + "?ReceiverHerIds=8100002", access_token=TOKEN)
    verified = verifier.verify(proof, method="GET", htu=URL, access_token=TOKEN.value, jkt=key.thumbprint)
    assert verified.jkt == key.thumbprint


def test_replayed_jti_refused(key: DPoPKey, verifier: DPoPVerifier) -> None:
    proof = key.proof("GET", URL, access_token=TOKEN)
    verify(verifier, proof)
    with pytest.raises(ProofInvalid, match="used before"):
        verify(verifier, proof)


@pytest.mark.parametrize(("override", "message"), [
    ({"method": "POST"}, "htm"),
    ({"htu": "https://api.example/Messages/other"}, "htu"),
    ({"access_token": "another-token"}, "ath"),
    ({"jkt": "not-our-thumbprint"}, "cnf.jkt"),
    ({"nonce": "server-nonce"}, "nonce"),
])
def test_mismatches_refused(key: DPoPKey, verifier: DPoPVerifier, override: dict[str, Any], message: str) -> None:
    with pytest.raises(ProofInvalid, match=message):
        verify(verifier, key.proof("GET", URL, access_token=TOKEN), **override)


def test_missing_nonce_asks_for_one(key: DPoPKey, verifier: DPoPVerifier) -> None:
    with pytest.raises(NonceRequired) as caught:
        verify(verifier, key.proof("GET", URL, access_token=TOKEN), nonce="n-1")
    assert caught.value.error == "use_dpop_nonce"
    verify(verifier, key.proof("GET", URL, access_token=TOKEN, nonce="n-1"), nonce="n-1")


def test_stale_iat_refused(key: DPoPKey, verifier: DPoPVerifier) -> None:
    with pytest.raises(ProofInvalid, match="iat"):
        verify(verifier, key.proof("GET", URL, access_token=TOKEN, now=time.time() - 3600))
    with pytest.raises(ProofInvalid, match="iat"):
        verify(verifier, key.proof("GET", URL, access_token=TOKEN, now=time.time() + 60))


def test_forged_signature_refused(key: DPoPKey, verifier: DPoPVerifier) -> None:
    """A proof signed by another key but carrying our public jwk in its header."""
    other = ECKey.generate_key("P-256", private=True)
    claims = {"jti": "j-forged", "htm": "GET", "htu": URL, "iat": int(time.time()), "ath": TOKEN.ath()}
    forged = jwt.encode({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}, claims, other)
    with pytest.raises(ProofInvalid, match="signature"):
        verify(verifier, forged)
    head, payload, signature = key.proof("GET", URL, access_token=TOKEN).split(".")
    tampered_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    with pytest.raises(ProofInvalid):
        verify(verifier, f"{head}.{tampered_payload}.{signature}")


def test_symmetric_and_private_header_keys_refused(key: DPoPKey, verifier: DPoPVerifier) -> None:
    claims = {"jti": "j-hs", "htm": "GET", "htu": URL, "iat": int(time.time()), "ath": TOKEN.ath()}
    secret = OctKey.generate_key(256)
    hs = jwt.encode({"typ": "dpop+jwt", "alg": "HS256", "jwk": secret.as_dict()}, claims, secret)
    with pytest.raises(ProofInvalid, match="alg"):
        verify(verifier, hs)
    private = ECKey.generate_key("P-256", private=True)
    leaked = jwt.encode({"typ": "dpop+jwt", "alg": "ES256", "jwk": private.as_dict(private=True)}, claims, private)
    with pytest.raises(ProofInvalid, match="private"):
        verify(verifier, leaked)


def test_wrong_typ_and_query_in_htu_refused(key: DPoPKey, verifier: DPoPVerifier) -> None:
    private = ECKey.generate_key("P-256", private=True)
    public = DPoPKey(private).public_jwk
    claims = {"jti": "j-typ", "htm": "GET", "htu": URL, "iat": int(time.time()), "ath": TOKEN.ath()}
    with pytest.raises(ProofInvalid, match="typ"):
        verify(verifier, jwt.encode({"typ": "JWT", "alg": "ES256", "jwk": public}, claims, private))
    with_query = {**claims, "jti": "j-q", "htu": URL + "?ReceiverHerIds=1"}
    with pytest.raises(ProofInvalid, match="query"):
        verify(verifier, jwt.encode({"typ": "dpop+jwt", "alg": "ES256", "jwk": public}, with_query, private))


def test_refused_proof_does_not_spend_its_jti(key: DPoPKey, verifier: DPoPVerifier) -> None:
    proof = key.proof("GET", URL, access_token=TOKEN)
    with pytest.raises(ProofInvalid):
        verify(verifier, proof, method="POST")
    verify(verifier, proof)  # the same proof, now for the right request
