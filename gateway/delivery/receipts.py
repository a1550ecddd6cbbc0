"""AppRec tracking. The gateway is the messaging system for the HER-ids it serves (GATEWAY_SERVED_HERIDS),
so a receiver's AppRec, addressed to the message's MsgHead/Sender, arrives on that party's
``{herid}_async`` queue, which the gateway consumes (gateway.delivery.inbound hands receipts here).

A receipt is matched to our message by ``OriginalMsgId`` (case-insensitively) and checked: its Sender must
be the receiver the message went to and its Receiver the message's sender, else it is parked (one receiver
must not mark another's message). OK (and OK with errors in a part) → acknowledged; Avvist → rejected, with
the error codes, texts and code lists kept. Only a ``sent`` or ``overdue`` message takes a final status; a
later receipt is kept in the history, a repeated one (same AppRec Id) is recorded once. An unknown original
or an unreadable receipt (an unknown Status too) is parked. A message with no receipt by the deadline
(96 hours, the standard's rule) becomes overdue, logged once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.delivery.bus import Publisher, parked_out
from gateway.delivery.policy import FailurePolicy
from gateway.errors import Reason
from gateway.logs import log
from gateway.messages.apprec import parse_apprec
from gateway.messages.validation import MessageInvalid
from gateway.store import EventLog


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
        """The outcome: acknowledged, rejected, late, duplicate or parked. Never raises for a bad receipt."""
        try:
            receipt = parse_apprec(body)
        except MessageInvalid as exc:
            self._park(body, message_id, Reason.APPREC_INVALID, f"unreadable AppRec: {exc.code} at {exc.path}")
            return "parked"
        errors = [{"code": e.code, "text": e.text, "detail": e.detail, "system": e.system} for e in receipt.errors]
        outcome = self.store.record_apprec(receipt.id, receipt.original_msg_id, receipt.status.value, errors,
                                          receipt.sender_herids, receipt.receiver_herids)
        if outcome is None:
            self._park(body, message_id, Reason.APPREC_UNKNOWN_ORIGINAL,
                       f"AppRec {receipt.id} answers MsgId {receipt.original_msg_id}, which the gateway never sent")
            return "parked"
        if outcome == "wrong_party":
            self._park(body, message_id, Reason.APPREC_WRONG_PARTY,
                       f"AppRec {receipt.id} for MsgId {receipt.original_msg_id} comes from HER-id(s) "
                       f"{', '.join(receipt.sender_herids) or 'none'} to {', '.join(receipt.receiver_herids) or 'none'}"
                       ", not from the message's receiver to its sender")
            return "parked"
        # A rejection needs a person to act on it; the rest is bookkeeping.
        level = log.warning if outcome == "rejected" else log.info
        level("apprec." + outcome, msg_id=receipt.original_msg_id.lower(), apprec_id=receipt.id,
              apprec_status=receipt.status.text, errors=[e["code"] for e in errors])
        return outcome

    def _park(self, body: bytes, message_id: str | None, code: str, reason: str) -> None:
        self.publisher.publish_batch([parked_out(body, code, reason, event_id=None, message_id=message_id,
                                                 content_type="application/xml")])
        log.warning("apprec.parked", reason_code=str(code), reason=reason)

    def check_overdue(self, now: datetime | None = None) -> list[dict[str, Any]]:
        late = self.store.mark_overdue((now or datetime.now(UTC)) - self.deadline)
        for row in late:
            log.warning("message.overdue", msg_id=row["msg_id"], to_herid=row["to_herid"], sent_at=row["sent_at"])
        return late
