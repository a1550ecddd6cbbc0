"""Local stand-in for NHN's Meldingstjener (EDI 2.0 API v2) and HelseID: an ASGI app that enforces what they do.

``create_app(StandinConfig(...))`` for tests (``starlette.testclient.TestClient`` or httpx), or
``python -m gateway.standin --port N`` for a separate process (uvicorn).
"""

from gateway.standin.app import Standin
from gateway.standin.asgi import create_app
from gateway.standin.state import ClientRegistration, FailRule, Faults, ReceiverBehaviour, StandinConfig

__all__ = ["ClientRegistration", "FailRule", "Faults", "ReceiverBehaviour", "Standin", "StandinConfig", "create_app"]
