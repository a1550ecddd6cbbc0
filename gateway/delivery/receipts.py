"""AppRec tracking: receipts addressed to the gateway's own HER-id arrive on ``{own_herid}_async``
and are matched to our messages by ``OriginalMsgId``. OK (and OK with errors in a part) →
acknowledged; Avvist → rejected, with the 8221 codes and texts kept; an unknown original or an
unreadable receipt is parked. A message with no receipt by the deadline (96 hours, the
standard's rule) becomes overdue, logged once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kombu import Queue
from kombu.message import Message

from gateway.delivery.bus import Publisher, parked_out, receiver_queue_name
from gateway.delivery.policy import FailurePolicy, guard_message, raw_body
from gateway.errors import Reason
from gateway.logs import log
from gateway.messages.apprec import parse_apprec
from gateway.messages.validation import MessageInvalid
from gateway.store import EventLog
from gateway.store.events import oversized_stub


def apprec_queue(own_herid: int) -> Queue:
    return Queue(receiver_queue_name(own_herid), durable=True)


class AppRecTracker:
    def __init__(self, store: EventLog, publisher: Publisher, deadline_hours: float = 96.0, *,
                 policy: FailurePolicy | None = None, max_bytes: int = 1024 * 1024) -> None:
        self.store = store
        self.publisher = publisher
        self.deadline = timedelta(hours=deadline_hours)
        # gateway run passes the consumer's policy, so receipts wait out an outage like the event path does
        self.policy = policy or FailurePolicy()
        self.max_bytes = max_bytes

    def handle(self, body: bytes, message_id: str | None = None) -> str:
        """The outcome: acknowledged, rejected or parked."""
        try:
            receipt = parse_apprec(body)
        except MessageInvalid as exc:
            self._park(body, message_id, Reason.APPREC_INVALID, f"unreadable AppRec: {exc.code} at {exc.path}")
            return "parked"
        errors = [{"code": e.code, "text": e.text, "detail": e.detail} for e in receipt.errors]
        status = self.store.record_apprec(receipt.id, receipt.original_msg_id, receipt.status.value, errors)
        if status is None:
            self._park(body, message_id, Reason.APPREC_UNKNOWN_ORIGINAL,
                       f"AppRec {receipt.id} answers MsgId {receipt.original_msg_id}, which the gateway never sent")
            return "parked"
        log.info("apprec." + status, msg_id=receipt.original_msg_id, apprec_status=receipt.status.text,
                 errors=[e["code"] for e in errors])
        return status

    def _park(self, body: bytes, message_id: str | None, code: str, reason: str) -> None:
        self.publisher.publish_batch([parked_out(body, code, reason, event_id=None, message_id=message_id,
                                                 content_type="application/xml")])
        log.warning("apprec.parked", reason_code=str(code), reason=reason)

    def on_message(self, message: Message) -> None:
        """Under the shared failure policy (gateway.delivery.policy): never raises into the consumer loop."""
        props: dict[str, Any] = message.properties or {}
        body, message_id = raw_body(message), props.get("message_id")
        if len(body) > self.max_bytes:
            size = len(body)
            body = oversized_stub(body)
            guard_message(self.policy, "apprec", lambda: self._park(
                body, message_id, Reason.APPREC_TOO_LARGE,
                f"the AppRec is {size} bytes, more than the limit; kept only as its size and SHA-256"),
                lambda _e: None, message.ack)
            return
        guard_message(self.policy, "apprec", lambda: self.handle(body, message_id),
                      lambda error_type: self._park(body, message_id, Reason.INTERNAL_ERROR,
                                                    f"unexpected {error_type} while reading the AppRec; see the log"),
                      message.ack)

    def check_overdue(self, now: datetime | None = None) -> list[dict[str, Any]]:
        late = self.store.mark_overdue((now or datetime.now(UTC)) - self.deadline)
        for row in late:
            log.warning("message.overdue", msg_id=row["msg_id"], to_herid=row["to_herid"], sent_at=row["sent_at"])
        return late
