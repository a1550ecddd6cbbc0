"""The stand-in's configuration and its in-memory state (optionally mirrored to a JSON file).

The state file exists so that a test can stop the stand-in and start it again ("down for minutes") without the
messages, receipts and read marks vanishing, as they would not vanish at NHN. Access tokens, nonces and seen
``jti`` values are *not* persisted: after a restart a client must fetch a new token, as it would after any
token loss, and the stand-in tests that it does.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

AppRecBehaviour = Literal["ok", "avvist", "none"]


@dataclass
class ClientRegistration:
    """A HelseID client: its public keys (JWK dicts) and the HER-ids it may act for (None = all: herid 0)."""

    client_id: str
    jwks: list[dict[str, Any]]
    her_ids: frozenset[int] | None = None

    def covers(self, her_id: int) -> bool:
        return self.her_ids is None or her_id in self.her_ids


@dataclass
class ReceiverBehaviour:
    """How a simulated EDI receiver answers: transport receipt and AppRec (OK, Avvist with a code, or none)."""

    apprec: AppRecBehaviour = "ok"
    error_code: str = "E21"
    error_text: str | None = None
    transport: Literal["Acknowledged", "Unconfirmed", "Rejected"] = "Acknowledged"

    @classmethod
    def parse(cls, value: dict[str, Any] | str) -> ReceiverBehaviour:
        """``"ok"``, ``"none"``, ``"avvist:E35"`` or a dict with the fields."""
        if isinstance(value, str):
            kind, _, code = value.partition(":")
            if kind not in ("ok", "avvist", "none"):
                raise ValueError(f"unknown AppRec behaviour {value!r}")
            return cls(apprec=kind, error_code=code or "E21")  # type: ignore[arg-type]
        return cls(**value)


@dataclass
class FailRule:
    """Answer ``status`` to matching requests, ``times`` times. ``after_processing``: do the work first, then
    fail the answer (a response lost after the POST landed — the crash-between-POST-and-bookkeeping case)."""

    status: int = 503
    method: str | None = None
    path: str = "/"
    times: int = 1
    after_processing: bool = False
    delay: float = 0.0  # seconds to wait before answering (a slow answer or, beyond the client timeout, a timeout)


@dataclass
class Faults:
    rules: list[FailRule] = field(default_factory=list)
    locked: dict[int, str] = field(default_factory=dict)  # HER-id → the client id that holds the lock
    duplicate_listings: int = 0  # the next N GET /Messages list every item twice
    listing_gaps: int = 0  # the next N GET /Messages leave out their first unread item (it comes back later)


@dataclass
class StandinConfig:
    clients: dict[str, ClientRegistration] = field(default_factory=dict)
    receivers: dict[int, ReceiverBehaviour] = field(default_factory=dict)
    default_receiver: ReceiverBehaviour = field(default_factory=ReceiverBehaviour)
    authority: str | None = None  # the HelseID authority (assertion aud); default: the stand-in's own base URL
    token_lifetime: int = 300
    require_token_nonce: bool = True  # HelseID: the first token request gets use_dpop_nonce
    require_api_nonce: bool = False  # no source says the Meldingstjener issues nonces; on for client tests
    proof_max_age: float = 60.0
    skew: float = 5.0
    max_assertion_lifetime: float = 60.0
    xsd_failure: Literal["reject", "apprec"] = "reject"  # 400 on POST, or accept and let the receiver say T02
    extra_response_fields: bool = True  # add an undocumented field to Message replies, as NHN's do
    state_file: Path | None = None
    faults: Faults = field(default_factory=Faults)

    def api_user_her_ids(self) -> set[int]:
        """HER-ids served by a registered API client: they receive through GET /Messages, not as EDI."""
        found: set[int] = set()
        for client in self.clients.values():
            found |= set(client.her_ids or ())
        return found


@dataclass
class StoredMessage:
    id: str
    sender_her_id: int
    receiver_her_id: int
    msg_id: str
    gen_date: str
    is_app_rec: bool
    document_b64: str
    sha256: str
    posted_by: str
    created: float = field(default_factory=time.time)
    read: bool = False
    transport_state: str = "Unconfirmed"
    apprec_status: str | None = None
    apprec_errors: list[dict[str, Any]] = field(default_factory=list)
    original_id: str | None = None  # for an AppRec: the API id of the message it answers


class StandinState:
    """Messages by API id, plus what each receiver saw per MsgId (to prove "one MsgId, one content")."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.messages: dict[str, StoredMessage] = {}
        self.seen: dict[str, list[str]] = {}  # "receiver/msgid" → digests of every copy delivered
        self.counters: dict[str, int] = {}
        if path is not None and path.exists():
            self._load(path)

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def record_delivery(self, message: StoredMessage) -> None:
        key = f"{message.receiver_her_id}/{message.msg_id}"
        self.seen.setdefault(key, []).append(message.sha256)

    def duplicates(self) -> dict[str, int]:
        """Receiver/MsgId pairs delivered more than once (byte-identical or not)."""
        return {k: len(v) for k, v in self.seen.items() if len(v) > 1}

    def conflicts(self) -> list[str]:
        """Receiver/MsgId pairs delivered with two different contents: must always be empty."""
        return sorted(k for k, v in self.seen.items() if len(set(v)) > 1)

    def save(self) -> None:
        if self.path is None:
            return
        data = {"messages": [asdict(m) for m in self.messages.values()], "seen": self.seen,
                "counters": self.counters}
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".standin-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, self.path)  # atomic: a stand-in killed mid-write leaves the old file

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self.messages = {m["id"]: StoredMessage(**m) for m in data.get("messages", [])}
        self.seen = {k: list(v) for k, v in data.get("seen", {}).items()}
        self.counters = dict(data.get("counters", {}))
