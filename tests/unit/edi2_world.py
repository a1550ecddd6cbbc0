"""Shared set-up for the EDI 2.0 tests: a stand-in, a registered client with a key file, and the two clients.

Synthetic identities only: HER-ids 81000xx (us), 82000xx (an EDI receiver answering OK), 83000xx (Avvist
E35), 84000xx (no AppRec), 85000xx (another API user); the patient number is synthetic (month + 80).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import ECKey
from starlette.testclient import TestClient

from gateway.delivery.edi2.helseid import HelseIdClient
from gateway.delivery.edi2.msh import MshClient
from gateway.standin import ReceiverBehaviour, Standin, StandinConfig, create_app
from gateway.standin.state import ClientRegistration

BASE = "https://standin.test"
CLIENT_ID = "pakkeforlop-gateway-test"
US = (8100001, 8100002)
RECEIVER_OK = (8200001, 8200002)
RECEIVER_AVVIST = (8300001, 8300002)
RECEIVER_SILENT = (8400001, 8400002)
OTHER_API_USER = (8500001, 8500002)


@dataclass
class World:
    standin: Standin
    http: TestClient
    helseid: HelseIdClient
    msh: MshClient
    key_path: Path


def make_world(tmp_path: Path, **config_options: object) -> World:
    key = ECKey.generate_key("P-256", private=True)
    key_path = tmp_path / "helseid-key.jwk.json"
    key_path.write_text(json.dumps(key.as_dict(private=True)), encoding="utf-8")
    config = StandinConfig(
        clients={
            CLIENT_ID: ClientRegistration(CLIENT_ID, [dict(key.as_dict(private=False))], frozenset(US)),
        },
        receivers={RECEIVER_OK[1]: ReceiverBehaviour("ok"), RECEIVER_AVVIST[1]: ReceiverBehaviour("avvist", "E35"),
                   RECEIVER_SILENT[1]: ReceiverBehaviour("none")},
        **config_options,  # type: ignore[arg-type]
    )
    standin = Standin(config)
    http = TestClient(create_app(standin=standin), base_url=BASE)
    helseid = HelseIdClient(token_url=f"{BASE}/connect/token", client_id=CLIENT_ID, key_path=key_path, http=http)
    msh = MshClient(base_url=BASE, source_system="pakkeforlop-gateway, 0.1.0-test", helseid=helseid, http=http)
    return World(standin=standin, http=http, helseid=helseid, msh=msh, key_path=key_path)
