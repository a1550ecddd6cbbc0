"""The stand-in as a separate process (``python -m gateway.standin``, uvicorn) and our clients over real HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import ECKey

from gateway.delivery.edi2.helseid import HelseIdClient
from gateway.delivery.edi2.msh import MshClient, Transient, msg_id_of
from gateway.standin.samples import dialogmelding

US = (8100001, 8100002)
RECEIVER = (8200001, 8200002)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    key = ECKey.generate_key("P-256", private=True)
    key_path = tmp_path / "key.jwk.json"
    key_path.write_text(json.dumps(key.as_dict(private=True)))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "standin.json"
    config.write_text(json.dumps({
        "clients": [{"client_id": "gw", "jwk": dict(key.as_dict(private=False)), "her_ids": list(US)}],
        "receivers": {str(RECEIVER[1]): "avvist:E35"}, "authority": base}))
    process = subprocess.Popen([sys.executable, "-m", "gateway.standin", "--port", str(port), "--config", str(config),
                                "--state-file", str(tmp_path / "state.json")])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/_standin/state", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the stand-in did not start")
        yield base, key_path
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_round_trip_over_http(standin: tuple[str, Path]) -> None:
    base, key_path = standin
    http = httpx.Client(timeout=5)
    helseid = HelseIdClient(token_url=f"{base}/connect/token", client_id="gw", key_path=key_path, http=http)
    msh = MshClient(base_url=base, source_system="pakkeforlop-gateway, test", helseid=helseid, http=http)
    document = dialogmelding(sender_her_ids=US, receiver_her_ids=RECEIVER)
    posted = msh.send(document, msg_id_of(document))
    [info] = msh.get_apprec_info(posted.api_id)
    assert info.app_rec_status == "Rejected" and info.errors[0].error_code == "E35"
    [apprec] = msh.get_messages([US[1]])
    assert apprec.is_app_rec
    msh.mark_read(apprec.id, US[1])
    assert msh.get_messages([US[1]]) == []
    state = httpx.get(f"{base}/_standin/state").json()
    assert state["conflicts"] == [] and state["counters"]["posts"] == 1
    assert "openapi_response_errors" not in state["counters"]

    # A slow answer beyond the client's timeout is a Transient, and the client recovers afterwards.
    httpx.post(f"{base}/_standin/faults", json={"rules": [{"status": 200, "path": "/Messages", "delay": 2.0}]})
    slow = MshClient(base_url=base, source_system="pakkeforlop-gateway, test", helseid=helseid,
                     http=httpx.Client(timeout=0.5))
    with pytest.raises(Transient, match="timed out"):
        slow.get_messages([US[1]])
    assert msh.get_messages([US[1]]) == []
