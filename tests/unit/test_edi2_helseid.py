"""HelseID client against the stand-in's token endpoint: assertion, DPoP proof, nonce retry, cache, secrecy."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, JWKRegistry, RSAKey

from gateway.delivery.edi2.helseid import AccessToken, HelseIdClient, HelseIdError, htu_of, load_private_key
from tests.unit.edi2_world import BASE, CLIENT_ID, make_world


class Clock:
    def __init__(self) -> None:
        self.now = time.time()  # the stand-in checks iat against its own (real) clock

    def __call__(self) -> float:
        return self.now


def test_nonce_handshake_then_token(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    token = world.helseid.token()
    assert token.token_type == "DPoP"
    assert world.helseid.token_requests == 2  # first refused with use_dpop_nonce, then issued
    assert world.standin.state.counters["token_nonce_challenges"] == 1
    issued = world.standin.tokens[token.value]
    assert issued.jkt == world.helseid.dpop.thumbprint  # bound to our DPoP key (cnf.jkt)
    assert issued.client_id == CLIENT_ID


def test_token_cached_until_shortly_before_expiry(tmp_path: Path) -> None:
    world = make_world(tmp_path, token_lifetime=300)
    first = world.helseid.token()
    assert world.helseid.token() is first
    assert world.helseid.token_requests == 2  # the nonce handshake only, no second token
    # Expiry on a controlled clock, against a token endpoint that always issues (the cache logic alone).
    issued: list[str] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        issued.append(f"token-{len(issued)}")
        return httpx.Response(200, json={"access_token": issued[-1], "expires_in": 300, "token_type": "DPoP"})

    clock = Clock()
    helseid = HelseIdClient(token_url=f"{BASE}/connect/token", client_id=CLIENT_ID, key_path=world.key_path,
                            http=httpx.Client(transport=httpx.MockTransport(endpoint)), clock=clock)
    token = helseid.token()
    assert helseid.token() is token
    clock.now += 239  # 61 s left: still outside the 60 s margin
    assert helseid.token() is token
    clock.now += 2  # 59 s left: fetched again
    assert helseid.token() is not token
    assert issued == ["token-0", "token-1"]


def test_bearer_token_type_refused(tmp_path: Path) -> None:
    world = make_world(tmp_path)

    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "x", "expires_in": 300, "token_type": "Bearer"})

    helseid = HelseIdClient(token_url=f"{BASE}/connect/token", client_id=CLIENT_ID, key_path=world.key_path,
                            http=httpx.Client(transport=httpx.MockTransport(endpoint)))
    with pytest.raises(HelseIdError, match="DPoP"):
        helseid.token()


def test_client_assertion_claims(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    key = load_private_key(world.key_path)
    one, two = world.helseid.client_assertion(), world.helseid.client_assertion()
    decoded = jwt.decode(one, key)
    assert decoded.header["typ"] == "client-authentication+jwt"
    assert decoded.claims["iss"] == decoded.claims["sub"] == CLIENT_ID
    assert decoded.claims["aud"] == BASE  # the authority, not the token endpoint
    assert 0 < decoded.claims["exp"] - decoded.claims["iat"] <= 10
    assert decoded.claims["jti"] != jwt.decode(two, key).claims["jti"]


def test_dpop_proof_shape() -> None:
    client_key = ECKey.generate_key("P-256", private=True)
    from gateway.delivery.edi2.helseid import DPoPKey

    dpop = DPoPKey(client_key)
    token = AccessToken(value="abc.def", expires_at=0)
    proof = dpop.proof("get", "https://h.example/Messages?ReceiverHerIds=1", access_token=token, nonce="n1")
    decoded = jwt.decode(proof, JWKRegistry.import_key(dpop.public_jwk))
    assert decoded.header["typ"] == "dpop+jwt"
    assert "d" not in decoded.header["jwk"]
    assert decoded.claims["htm"] == "GET"
    assert decoded.claims["htu"] == "https://h.example/Messages"
    assert decoded.claims["nonce"] == "n1"
    assert decoded.claims["ath"] == token.ath()
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"abc.def").digest()).rstrip(b"=").decode()
    assert token.ath() == expected


def test_forged_assertion_refused(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    forged = tmp_path / "forged.jwk.json"
    forged.write_text(json.dumps(ECKey.generate_key("P-256", private=True).as_dict(private=True)))
    impostor = HelseIdClient(token_url=f"{BASE}/connect/token", client_id=CLIENT_ID, key_path=forged,
                             http=world.http)
    with pytest.raises(HelseIdError) as caught:
        impostor.token()
    assert caught.value.error == "invalid_client"
    assert "signature" in (caught.value.description or "")


def test_replayed_assertion_jti_refused(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.helseid.token()
    assertion = world.helseid.client_assertion()
    nonce = world.standin.current_nonce()

    def form() -> dict[str, str]:
        return {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_assertion": assertion,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}

    first = world.http.post("/connect/token", data=form(),
                            headers={"DPoP": world.helseid.dpop.proof("POST", f"{BASE}/connect/token", nonce=nonce)})
    second = world.http.post("/connect/token", data=form(),
                             headers={"DPoP": world.helseid.dpop.proof("POST", f"{BASE}/connect/token", nonce=nonce)})
    assert first.status_code == 200
    assert second.status_code == 400
    assert "used before" in second.json()["error_description"]


def test_wrong_audience_refused(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    wrong = HelseIdClient(token_url=f"{BASE}/connect/token", client_id=CLIENT_ID, key_path=world.key_path,
                          authority="https://helseid-sts.test.nhn.no", http=world.http)
    with pytest.raises(HelseIdError, match="aud"):
        wrong.token()


def test_secrets_never_in_repr(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    token = world.helseid.token()
    private_d = json.loads(world.key_path.read_text())["d"]
    for text in (repr(token), repr(world.helseid), repr(world.helseid.dpop), repr(world.msh), str(vars(token))):
        assert private_d not in text
    assert token.value not in repr(token)
    assert token.value not in repr(world.helseid)


def test_key_files_jwk_and_pem(tmp_path: Path) -> None:
    rsa = RSAKey.generate_key(2048, private=True)
    pem = tmp_path / "key.pem"
    pem.write_bytes(rsa.as_pem(private=True))
    assert load_private_key(pem).thumbprint() == rsa.thumbprint()
    public = tmp_path / "public.jwk.json"
    public.write_text(json.dumps(rsa.as_dict(private=False)))
    with pytest.raises(ValueError, match="private"):
        load_private_key(public)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError) as caught:
        load_private_key(garbage)
    assert "not a key" not in str(caught.value)


def test_rsa_key_signs_ps256_and_is_accepted(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    rsa = RSAKey.generate_key(2048, private=True)
    path = tmp_path / "rsa.pem"
    path.write_bytes(rsa.as_pem(private=True))
    world.standin.register_client({"client_id": "rsa-client", "jwk": dict(rsa.as_dict(private=False)),
                                   "her_ids": [8100002]})
    client = HelseIdClient(token_url=f"{BASE}/connect/token", client_id="rsa-client", key_path=path, http=world.http)
    assert jwt.decode(client.client_assertion(), rsa, algorithms=["PS256"]).header["alg"] == "PS256"
    assert client.token().value


def test_htu_strips_query_and_fragment() -> None:
    assert htu_of("https://api.example/Messages?ReceiverHerIds=1#x") == "https://api.example/Messages"
