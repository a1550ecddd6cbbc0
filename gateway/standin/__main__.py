"""``python -m gateway.standin --port N [--config standin.json] [--state-file state.json]``.

The config file registers HelseID clients (public keys only) and receiver behaviours::

    {"clients": [{"client_id": "pakkeforlop-test", "jwk": {...public JWK...}, "her_ids": [8100002]}],
     "receivers": {"8200002": "ok", "8300002": "avvist:E35", "8400002": "none"},
     "authority": "http://127.0.0.1:8765"}

Serves on 127.0.0.1 by default: the stand-in is for tests and compose networks, never a public interface.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import uvicorn

from gateway.standin.app import Standin
from gateway.standin.asgi import create_app
from gateway.standin.state import ReceiverBehaviour, StandinConfig


def config_from_file(path: Path | None, state_file: Path | None) -> StandinConfig:
    config = StandinConfig(state_file=state_file)
    if path is None:
        return config
    data = json.loads(path.read_text(encoding="utf-8"))
    config.authority = data.get("authority")
    config.receivers = {int(k): ReceiverBehaviour.parse(v) for k, v in data.get("receivers", {}).items()}
    if "default_receiver" in data:
        config.default_receiver = ReceiverBehaviour.parse(data["default_receiver"])
    config.require_api_nonce = bool(data.get("require_api_nonce", False))
    standin = Standin(config)  # validates the client keys the same way the admin endpoint does
    for client in data.get("clients", []):
        standin.register_client(client)
    return config


def _client_key(path: Path) -> dict[str, object]:
    """The public half of the gateway's client key at ``path``, making the key first when there is none."""
    if not path.exists():
        from gateway.standin.local import write_client_key

        return write_client_key(path)
    from joserfc.jwk import JWKRegistry

    key = JWKRegistry.import_key(json.loads(path.read_text(encoding="utf-8")))
    return dict(key.as_dict(private=False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.standin", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--config", type=Path, help="JSON file: clients, receivers, authority")
    parser.add_argument("--state-file", type=Path, help="keep messages and receipts across restarts")
    parser.add_argument("--client-key", type=Path,
                        help="a HelseID client key file for the gateway: made (private JWK, 0600) if missing, and "
                             "its public half registered as client 'pakkeforlop-gateway' for every HER-id "
                             "(docker-compose shares the file with the gateway)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    config = config_from_file(args.config, args.state_file)
    if args.client_key is not None:
        Standin(config).register_client({"client_id": "pakkeforlop-gateway", "jwk": _client_key(args.client_key)})
    app = create_app(config)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
