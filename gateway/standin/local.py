"""The stand-in wired to the gateway's own clients in one process, for the demo and the tests: a fresh
HelseID client key, the stand-in knowing its public half and the HER-ids it may act for, and an
``MshClient`` that talks to the stand-in's ASGI app without a network (Starlette's test client).

The same clients talk to the real Meldingstjener in production; only the base URL and the key differ."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import ECKey

with warnings.catch_warnings():  # Starlette announces a future move of its test client to another HTTP library
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from gateway import __version__
from gateway.delivery.edi2.helseid import HelseIdClient
from gateway.delivery.edi2.msh import MshClient
from gateway.standin.app import Standin
from gateway.standin.asgi import create_app
from gateway.standin.state import ClientRegistration, ReceiverBehaviour, StandinConfig

BASE_URL = "https://meldingstjener.local"
CLIENT_ID = "pakkeforlop-gateway-local"


@dataclass
class LocalMeldingstjener:
    standin: Standin
    http: TestClient
    msh: MshClient

    def close(self) -> None:
        self.http.close()


def write_client_key(path: Path) -> dict[str, object]:
    """A new P-256 private key as a JWK file readable by its owner only; returns the public half."""
    key = ECKey.generate_key("P-256", private=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(key.as_dict(private=True)), encoding="utf-8")
    return dict(key.as_dict(private=False))


def local_meldingstjener(served: Iterable[int], key_path: Path, *,
                         receivers: Mapping[int, ReceiverBehaviour] | None = None) -> LocalMeldingstjener:
    """A stand-in that lets our client act for ``served`` and answers as ``receivers`` say (default: OK)."""
    public = write_client_key(key_path)
    config = StandinConfig(clients={CLIENT_ID: ClientRegistration(CLIENT_ID, [public], frozenset(served))},
                           receivers=dict(receivers or {}))
    standin = Standin(config)
    http = TestClient(create_app(standin=standin), base_url=BASE_URL)
    helseid = HelseIdClient(token_url=f"{BASE_URL}/connect/token", client_id=CLIENT_ID, key_path=key_path, http=http)
    msh = MshClient(base_url=BASE_URL, source_system=f"pakkeforlop-gateway, {__version__}", helseid=helseid,
                    http=http)
    return LocalMeldingstjener(standin, http, msh)
