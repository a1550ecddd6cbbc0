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
from gateway.errors import Reason
from gateway.logs import log
from gateway.messages.apprec import parse_apprec
from gateway.messages.validation import MessageInvalid
from gateway.store import EventLog


def apprec_queue(own_herid: int) -> Queue:
    return Queue(receiver_queue_name(own_herid), durable=True)


class AppRecTracker:
    def __init__(self, store: EventLog, publisher: Publisher, deadline_hours: float = 96.0) -> None:
        self.store = store
        self.publisher = publisher
        self.deadline = timedelta(hours=deadline_hours)

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
        props: dict[str, Any] = message.properties or {}
        self.handle(message.body, props.get("message_id"))
        message.ack()

    def check_overdue(self, now: datetime | None = None) -> list[dict[str, Any]]:
        late = self.store.mark_overdue((now or datetime.now(UTC)) - self.deadline)
        for row in late:
            log.warning("message.overdue", msg_id=row["msg_id"], to_herid=row["to_herid"], sent_at=row["sent_at"])
        return late
