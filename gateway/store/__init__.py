"""The message store: every event as received and every message built from it, with the history of
their states, on SQLite (embedded default) or PostgreSQL (shared by replicas).

``db`` is the database under it (backends, transactions, migrations); ``events`` the hot path the
consumer and the receipt tracker use; ``queries`` what operators ask; ``registry`` the
contact-point registry kept in the same database. ``SqlStore`` is all of them on one connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from gateway.domain.history import Tidligere
from gateway.messages.outbound import Melding
from gateway.store.db import Database, open_database
from gateway.store.events import END_STATES, EventOutcome, EventStore, Incoming, StoredEvent
from gateway.store.inbound import InboundRecord, InboundStore
from gateway.store.outbox import OutboxStore
from gateway.store.queries import OperatorQueries
from gateway.store.receipts import ReceiptStore
from gateway.store.repairs import RepairStore
from gateway.store.status import StatusChanges

__all__ = ["END_STATES", "EventLog", "EventOutcome", "InboundRecord", "Incoming", "SqlStore", "Store", "StoredEvent",
           "open_store"]


class EventLog(Protocol):
    """What the consumer and the receipt tracker need: the hot path."""

    def record_events(self, items: Sequence[Incoming]) -> list[StoredEvent]: ...

    def record_outcomes(self, outcomes: Sequence[EventOutcome]) -> None: ...

    def mark_sent_many(self, sent: Sequence[tuple[int, Sequence[str]]]) -> list[int]: ...

    def messages(self, ref: int | None = None) -> list[dict[str, Any]]: ...

    def record_apprec(self, apprec_id: str, original_msg_id: str, status: str, errors: list[dict[str, Any]],
                      sender_herids: Sequence[str] = (), receiver_herids: Sequence[str] = ()) -> str | None: ...

    def record_inbound(self, item: InboundRecord) -> int: ...

    def mark_overdue(self, sent_before: datetime) -> list[dict[str, Any]]: ...

    def kartlegginger(self, fnrs: Iterable[str]) -> dict[str, list[Tidligere]]: ...

    def patient_key(self, fnr: str) -> str: ...


class Store(EventLog, Protocol):
    """The whole store: the hot path and what operators ask."""

    db: Database

    def find_messages(self, *, status: str | None = None, receiver: int | None = None, kommune: str | None = None,
                      samhandlingspunkt: int | None = None, since: str | None = None, until: str | None = None,
                      flag: str | None = None, limit: int = 1000) -> list[dict[str, Any]]: ...

    def find_events(self, *, status: str | None = None, reason_code: str | None = None, since: str | None = None,
                    until: str | None = None, flag: str | None = None, limit: int = 1000) -> list[dict[str, Any]]: ...

    def event(self, key: str) -> dict[str, Any] | None: ...

    def message(self, msg_id: str) -> dict[str, Any] | None: ...

    def add_resend(self, original_msg_id: str, melding: Melding | None, operator: str, reason: str) -> None: ...

    def audit(self, operator: str, action: str, target: str, reason: str, detail: str | None = None,
              outcome: str = "done") -> None: ...

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]: ...

    def events(self) -> list[dict[str, Any]]: ...

    def inbound(self, *, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]: ...

    def inbound_item(self, ref: int) -> dict[str, Any] | None: ...

    def history(self, entity: str, ref: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class SqlStore(EventStore, ReceiptStore, OutboxStore, InboundStore, OperatorQueries, StatusChanges, RepairStore):
    """The store on one database connection (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, secret: bytes | None = None) -> None:
        """``secret``: the installation's (gateway.store.secret), checked against the store's fingerprint.
        Without it (tools, tests, the demo) the store keys patients with a secret of this process only: it finds
        the patients this process recorded, and ``gateway run`` re-keys the rest on its next start."""
        self.db = db
        self.secret = secrets.token_bytes(32)
        if secret is not None:
            self.bind_secret(secret)

    def close(self) -> None:
        self.db.close()


def open_store(url: str, *, create: bool = True, secret: bytes | None = None) -> SqlStore:
    """The store at ``url`` (see ``open_database``); ``create=False`` for commands that only read. ``secret``:
    the installation's secret for the keyed patient hash (see ``SqlStore``)."""
    db = open_database(url, create=create)
    try:
        return SqlStore(db, secret)
    except BaseException:
        db.close()
        raise
