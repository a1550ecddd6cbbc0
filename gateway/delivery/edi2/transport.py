"""The EDI 2.0 transport: an outbox that hands stored messages to NHN's Meldingstjener, and an inbox that
fetches what the Meldingstjener holds for the HER-ids the gateway serves (AppRecs and other messages).

One outbox, two transports: the consumer stores every message once, publishes the AMQP ones in its broker
transaction and leaves the EDI 2.0 ones ``built`` in the store. ``Edi2Outbox.send_pending`` takes them oldest
first and posts each stored document (never a rebuilt one: see ``msh``'s module docstring), records the API's
id at once, then marks the message sent; an event is ``sent`` when none of its messages waits any more.

Failures follow the gateway's one policy: a 4xx parks the message with a stable reason code and the API's
text (``TRANSPORT_EDI2_REJECTED``; ``TRANSPORT_EDI2_LOCKED`` for 423, when another client owns the HER-id);
5xx, timeouts and HelseID trouble leave it ``built`` and the outbox waits with the shared bounded backoff.

The inbox follows receipts the way API v2 delivers them: an AppRec is an unread message to the original
sender. Each unread message is downloaded, given to ``on_document`` (the receipt tracker: it records an AppRec,
or stores and hands on anything else, or parks it), and only then marked read, so a crash re-reads it rather
than losing it; the tracker records a repeated AppRec once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.delivery.edi2.msh import DocumentMismatch, Locked, MshClient, Rejected, Transient
from gateway.delivery.retry import backoff
from gateway.domain.registry import EDI2
from gateway.errors import Reason, StoreUnavailable
from gateway.logs import log


class OutboxStore(Protocol):
    """What the EDI 2.0 transport needs of the store."""

    def pending(self, transport: str, limit: int = 100) -> list[dict[str, Any]]: ...

    def record_posted(self, msg_id: str, api_id: str) -> None: ...

    def mark_sent_many(self, sent: Sequence[tuple[int, Sequence[str]]]) -> list[int]: ...

    def park_message(self, msg_id: str, code: str, reason: str) -> None: ...


@dataclass
class OutboxRun:
    """What one pass did, for logs, metrics and the demo."""

    sent: int = 0
    parked: int = 0
    waiting: int = 0
    error: str | None = None


class Edi2Outbox:
    """Posts the stored EDI 2.0 messages; call ``send_pending`` periodically (``gateway run`` does)."""

    def __init__(self, store: OutboxStore, msh: MshClient, *, batch: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.msh = msh
        self.batch = batch
        self.clock = clock
        self._attempt = 0
        self._not_before = 0.0

    def send_pending(self) -> OutboxRun:
        """One pass over the outbox. Transient trouble ends the pass and sets the next try after a backoff."""
        run = OutboxRun()
        if self.clock() < self._not_before:
            return run
        try:
            rows = self.store.pending(EDI2, self.batch)
        except StoreUnavailable as exc:
            return self._wait(run, f"store: {exc}")
        for i, row in enumerate(rows):
            msg_id = row["msg_id"]
            try:
                posted = self.msh.send(bytes(row["xml"]), msg_id, known_api_id=row.get("api_id"))
                if posted.posted:
                    self.store.record_posted(msg_id, posted.api_id)
                self.store.mark_sent_many([(row["event_ref"], [msg_id])])
                run.sent += 1
                log.info("edi2.sent", msg_id=msg_id, to_herid=row["to_herid"], api_id=posted.api_id,
                         reposted=posted.posted and row.get("api_id") is not None)
            except Locked as exc:
                self._park(row, Reason.EDI2_LOCKED, f"{exc.args[0]}", run)
            except (Rejected, DocumentMismatch) as exc:
                code = Reason.EDI2_REJECTED
                text = (f"the Meldingstjener refused the message ({exc.status}, errorCode {exc.error_code}): "
                        f"{exc.error}" if isinstance(exc, Rejected) else str(exc))
                self._park(row, code, text, run)
            except (Transient, StoreUnavailable) as exc:
                run.waiting = len(rows) - i
                return self._wait(run, str(exc))
        self._attempt = 0
        return run

    def _park(self, row: dict[str, Any], code: Reason, reason: str, run: OutboxRun) -> None:
        self.store.park_message(row["msg_id"], str(code), reason[:500])
        run.parked += 1
        log.warning("edi2.parked", msg_id=row["msg_id"], to_herid=row["to_herid"], reason_code=str(code),
                    reason=reason[:500])

    def _wait(self, run: OutboxRun, error: str) -> OutboxRun:
        pause = backoff(self._attempt)
        self._attempt += 1
        self._not_before = self.clock() + pause
        run.error = error[:300]
        log.warning("edi2.deferred", error=run.error, attempt=self._attempt, retry_in_s=round(pause, 2))
        return run


@dataclass
class InboxRun:
    read: int = 0
    error: str | None = None


class Edi2Inbox:
    """Fetches unread messages for the served HER-ids, hands each document on, then marks it read."""

    def __init__(self, msh: MshClient, served: Sequence[int], on_document: Callable[[bytes, str], object], *,
                 batch: int = 50, clock: Callable[[], float] = time.monotonic) -> None:
        self.msh = msh
        self.served = list(served)
        self.on_document = on_document
        self.batch = batch
        self.clock = clock
        self._attempt = 0
        self._not_before = 0.0

    def poll(self) -> InboxRun:
        run = InboxRun()
        if not self.served or self.clock() < self._not_before:
            return run
        try:
            messages = self.msh.get_messages(self.served, messages_to_fetch=self.batch)
            seen: set[str] = set()
            for message in messages:
                if message.id in seen:  # a listing may repeat an entry; one hand-on per message
                    continue
                seen.add(message.id)
                document = self.msh.get_business_document(message.id)
                self.on_document(document.content, message.id)  # stores, hands on or parks; raises if it cannot
                her_id = message.receiver_her_id if message.receiver_her_id is not None else self.served[0]
                self.msh.mark_read(message.id, her_id)
                run.read += 1
        except (Transient, StoreUnavailable) as exc:
            pause = backoff(self._attempt)
            self._attempt += 1
            self._not_before = self.clock() + pause
            run.error = str(exc)[:300]
            log.warning("edi2.inbox_deferred", error=run.error, attempt=self._attempt, retry_in_s=round(pause, 2))
            return run
        except Rejected as exc:  # our request is wrong (e.g. a HER-id we may not read): say so, try later
            run.error = str(exc)[:300]
            self._not_before = self.clock() + 60
            log.error("edi2.inbox_refused", error=run.error)
            return run
        self._attempt = 0
        return run
