"""What the gateway does with everything that arrives on the queues of the parties it serves.

The gateway is the messaging system for its served HER-ids (GATEWAY_SERVED_HERIDS; docs/decisions.md):
they are the MsgHead/Sender of every message it builds, so receivers answer them, and NHN's network (here:
our RabbitMQ, same queue names) delivers to ``{herid}_async``. Everything found there is handled and acked
only after it is stored, so nothing is dropped:

- an AppRec → the receipt tracker (gateway.delivery.receipts);
- a readable MsgHead message (a reply, a "Tilbakemelding om feil i mottatt melding", a message from another
  party) → recorded and handed on, unchanged, to the hospital system on ``gateway.inbound`` (AMQP ``type``
  is the MsgInfo/Type, headers name the parties), since answering it is a clinician's job, not the gateway's;
- anything else (not XML, not a MsgHead, no MsgId) → recorded and parked (``INBOUND_UNREADABLE``).

Only the envelope is read (type, MsgId, HER-ids); a message's content never reaches a log line or header.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kombu import Queue
from kombu.message import Message
from lxml import etree

from gateway.delivery.bus import Outgoing, Publisher, parked_out, receiver_queue, receiver_queue_name
from gateway.delivery.policy import guard_message, raw_body
from gateway.delivery.receipts import AppRecTracker
from gateway.errors import Reason
from gateway.logs import log
from gateway.messages.apprec import APPREC_NS
from gateway.messages.validation import MSGHEAD_NS, MessageInvalid, parse_untrusted
from gateway.store import InboundRecord, Store
from gateway.store.events import oversized_stub

INBOUND_QUEUE = "gateway.inbound"  # the hospital system reads what arrived for its HER-ids here
_APPREC_TAGS = {f"{{{ns}}}AppRec" for ns in APPREC_NS.values()}
_M = {"mh": MSGHEAD_NS}


def served_queues(herids: Iterable[int]) -> list[Queue]:
    """The queues the gateway consumes: one per served HER-id, named as NHN names them."""
    return [receiver_queue(receiver_queue_name(h)) for h in herids]


def _herid(info: etree._Element, party: str) -> str | None:
    """The most specific HER-id of a MsgHead party (person, then sub-organisation, then organisation)."""
    for path in (f"mh:{party}/mh:Organisation/mh:HealthcareProfessional", f"mh:{party}/mh:Organisation/mh:Organisation",
                 f"mh:{party}/mh:Organisation"):
        for el in info.iterfind(path, _M):
            for ident in el.iterfind("mh:Ident", _M):
                type_id = ident.find("mh:TypeId", _M)
                if type_id is not None and (type_id.get("V") or "").strip() == "HER":
                    return (ident.findtext("mh:Id", namespaces=_M) or "").strip() or None
    return None


class InboundHandler:
    def __init__(self, store: Store, publisher: Publisher, tracker: AppRecTracker) -> None:
        self.store = store
        self.publisher = publisher
        self.tracker = tracker

    def handle(self, body: bytes, queue: str, message_id: str | None = None,
               headers: dict[str, Any] | None = None, correlation_id: str | None = None) -> str:
        """The outcome: the tracker's for a receipt, else ``handed_on`` or ``parked``. ``headers`` are the
        arriving AMQP headers (e.g. applicationTimeStamp), passed on with the parties read from the envelope."""
        try:
            root = parse_untrusted(body)
        except MessageInvalid as exc:
            return self._park(body, queue, message_id, f"not readable XML ({exc.code})")
        if root.tag in _APPREC_TAGS or etree.QName(root).localname == "AppRec":
            return self.tracker.handle(body, message_id)  # a broken one is parked there as APPREC_INVALID
        info = root.find("mh:MsgInfo", _M) if root.tag == f"{{{MSGHEAD_NS}}}MsgHead" else None
        msg_id = (info.findtext("mh:MsgId", namespaces=_M) or "").strip() if info is not None else ""
        if info is None or not msg_id:
            return self._park(body, queue, message_id, f"not a MsgHead message with a MsgId "
                              f"(root element {etree.QName(root).localname[:40]})")
        type_el = info.find("mh:Type", _M)
        msg_type = (type_el.get("V") or "").strip() if type_el is not None else ""
        record = InboundRecord(queue, body, "handed_on", message_id, msg_type or None, msg_id,
                               _herid(info, "Sender"), _herid(info, "Receiver"))
        ref = self.store.record_inbound(record)
        self.publisher.publish_batch([Outgoing(INBOUND_QUEUE, body, {
            "content_type": "application/xml", "message_id": msg_id, "type": msg_type,
            **({"correlation_id": correlation_id} if correlation_id else {}),
            "headers": {**(headers or {}), "fromHerId": record.from_herid or "", "toHerId": record.to_herid or "",
                        "x-inbound-queue": queue, "x-inbound-ref": str(ref)}})])
        log.info("inbound.handed_on", inbound_ref=ref, queue=queue, msg_type=msg_type, msg_id=msg_id,
                 from_herid=record.from_herid, to_herid=record.to_herid)
        return "handed_on"

    def _park(self, body: bytes, queue: str, message_id: str | None, reason: str) -> str:
        ref = self.store.record_inbound(InboundRecord(queue, body, "parked", message_id,
                                                      reason_code=Reason.INBOUND_UNREADABLE, reason=reason))
        self.publisher.publish_batch([parked_out(body, Reason.INBOUND_UNREADABLE, reason, event_id=None,
                                                 message_id=message_id, content_type="application/octet-stream")])
        log.warning("inbound.parked", inbound_ref=ref, queue=queue, reason_code=str(Reason.INBOUND_UNREADABLE),
                    reason=reason)
        return "parked"

    def on_message(self, message: Message) -> None:
        """Under the shared failure policy (gateway.delivery.policy): acked only after the arrival is stored and
        handed on (or parked); store or broker trouble waits; nothing raises into the consumer loop."""
        props: dict[str, Any] = message.properties or {}
        body, message_id = raw_body(message), props.get("message_id")
        queue = (message.delivery_info or {}).get("routing_key") or "?"
        policy = self.tracker.policy
        if len(body) > self.tracker.max_bytes:
            size = len(body)
            stub = oversized_stub(body)
            guard_message(policy, "inbound", lambda: self.tracker._park(
                stub, message_id, Reason.APPREC_TOO_LARGE,
                f"{size} bytes arrived on {queue}, more than the limit; kept only as its size and SHA-256"),
                lambda _e: None, message.ack)
            return
        guard_message(policy, "inbound", lambda: self.handle(body, queue, message_id, dict(message.headers or {}),
                                                             props.get("correlation_id")),
                      lambda error_type: self._park_quietly(body, queue, message_id, error_type), message.ack)

    def _park_quietly(self, body: bytes, queue: str, message_id: str | None, error_type: str) -> None:
        self._park(body, queue, message_id, f"unexpected {error_type} while reading it; see the log")
