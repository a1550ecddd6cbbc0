"""``gateway run`` started while the broker is down waits for it (an outage makes the gateway wait, not
exit), and goes to work by itself once the broker answers."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from tests.conftest import ROOT, Rabbit, free_port


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.close()


def forward(port: int, target: tuple[str, int], stop: threading.Event) -> None:
    """A plain TCP forwarder from 127.0.0.1:port to the real broker: the broker 'comes up' when it starts."""
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(0.2)
    while not stop.is_set():
        try:
            client, _ = server.accept()
        except TimeoutError:
            continue
        upstream = socket.create_connection(target)
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
    server.close()


def test_run_waits_for_a_broker_that_is_down_then_starts(rabbit: Rabbit, gateway_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    real = urlparse(gateway_env["GATEWAY_BROKER_URL"])
    port = free_port()
    env = {**gateway_env, "GATEWAY_BROKER_URL": real._replace(netloc=f"guest:guest@127.0.0.1:{port}").geturl(),
           "GATEWAY_RETRY_CAP_SECONDS": "1"}
    log = tmp_path / "g.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "run"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)
    stop = threading.Event()
    try:
        time.sleep(6)
        assert proc.poll() is None, "the gateway waits for the broker instead of exiting:\n" + log.read_text()
        assert '"broker.unavailable"' in log.read_text()
        threading.Thread(target=forward, args=(port, (real.hostname or "127.0.0.1", real.port or 5672), stop),
                         daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and rabbit.consumer_count("gateway.kartlegging") < 1:
            time.sleep(0.2)
        assert rabbit.consumer_count("gateway.kartlegging") >= 1, "consuming once the broker answers"
        assert proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        stop.set()
