"""The consumer: takes each event off ``gateway.kartlegging``, records it, walks it along the
path, publishes the result and only then acks it.

Nothing is lost: an event is in the store before it is acked; it ends ``sent``,
``not_shared`` or ``parked`` (on ``gateway.parked`` with a reason code); a broker or store
failure leaves it unacked, so RabbitMQ delivers it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Consumer
from kombu.message import Message
from kombu.mixins import ConsumerMixin

from gateway.adresseregister import Register
from gateway.bus import KARTLEGGING_QUEUE, Publisher
from gateway.kartlegging import event_id_of
from gateway.logs import log
from gateway.pipeline import process
from gateway.reasons import Parked, Reason
from gateway.store import Store, StoreUnavailable

RETRY_PAUSE_S = 1.0


@dataclass(frozen=True)
class Handled:
    """What became of one delivery; the demo prints these, tests assert on them."""

    event_ref: int
    event_id: str | None
    status: str
    reason_code: str | None = None
    reason: str | None = None
    receivers: tuple[int, ...] = ()
    msg_ids: tuple[str, ...] = ()


class EventHandler:
    def __init__(self, register: Register, store: Store, publisher: Publisher,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC).astimezone()) -> None:
        self.register = register
        self.store = store
        self.publisher = publisher
        self.clock = clock

    def handle(self, body: bytes, amqp_message_id: str | None, content_type: str | None) -> Handled:
        event_id = event_id_of(body)
        stored = self.store.record_event(body, event_id, amqp_message_id)
        bound = log.bind(event_ref=stored.ref, event_id=event_id)
        if stored.status in ("sent", "not_shared"):
            bound.info("event.duplicate", status=stored.status)
            return Handled(stored.ref, event_id, stored.status)
        try:
            outcome = process(body, self.register, self.clock())
        except Parked as parked:
            return self._park(stored.ref, event_id, body, amqp_message_id, content_type, parked.code, parked.reason)
        except Exception as exc:  # a bug must park the event, not stop the consumer
            bound.exception("event.internal_error", error_type=type(exc).__name__)
            return self._park(stored.ref, event_id, body, amqp_message_id, content_type, Reason.INTERNAL_ERROR,
                              f"unexpected {type(exc).__name__} while processing; see the gateway log")
        event = outcome.event
        if not outcome.meldinger:
            why = outcome.route.why_none or "no receivers"
            self.store.mark_not_shared(stored.ref, why)
            bound.info("event.not_shared", samhandlingspunkt=event.samhandlingspunkt, why=why)
            return Handled(stored.ref, event_id, "not_shared", None, why)
        self.store.record_route(stored.ref, event.samhandlingspunkt, event.patient.kommunenummer, outcome.meldinger)
        for melding in outcome.meldinger:
            self.publisher.publish_melding(melding)
        self.store.mark_sent(stored.ref, [m.msg_id for m in outcome.meldinger])
        bound.info(
            "event.sent",
            samhandlingspunkt=event.samhandlingspunkt,
            kommunenummer=event.patient.kommunenummer,
            receivers=[m.to_herid for m in outcome.meldinger],
            msg_ids=[m.msg_id for m in outcome.meldinger],
        )
        return Handled(stored.ref, event_id, "sent", None, None,
                       tuple(m.to_herid for m in outcome.meldinger), tuple(m.msg_id for m in outcome.meldinger))

    def _park(self, ref: int, event_id: str | None, body: bytes, message_id: str | None,
              content_type: str | None, code: str, reason: str) -> Handled:
        self.publisher.publish_parked(body, code, reason, event_id=event_id, message_id=message_id,
                                      content_type=content_type)
        self.store.park_event(ref, code, reason)
        log.warning("event.parked", event_ref=ref, event_id=event_id, reason_code=str(code), reason=reason)
        return Handled(ref, event_id, "parked", str(code), reason)

    def on_message(self, message: Message) -> Handled | None:
        """kombu callback: ack only after the event is stored and its outcome published."""
        props: dict[str, Any] = message.properties or {}
        try:
            handled = self.handle(message.body, props.get("message_id"), message.content_type)
        except StoreUnavailable as exc:
            log.error("store.unavailable", error=str(exc), retry_in_s=RETRY_PAUSE_S)
            time.sleep(RETRY_PAUSE_S)
            message.requeue()
            return None
        except Exception as exc:
            # Everything the path itself can raise is handled in handle(); what escapes is the
            # broker or the store. The event stays on the queue and comes back.
            log.error("event.deferred", error_type=type(exc).__name__, retry_in_s=RETRY_PAUSE_S)
            time.sleep(RETRY_PAUSE_S)
            message.requeue()
            return None
        message.ack()
        return handled


class KartleggingConsumer(ConsumerMixin):
    """Runs until stopped; kombu's mixin reconnects after a broker restart."""

    def __init__(self, connection: Connection, handler: EventHandler, prefetch: int) -> None:
        self.connection = connection
        self.handler = handler
        self.prefetch = prefetch

    def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
        return [Consumer(queues=[KARTLEGGING_QUEUE], on_message=self.handler.on_message,
                         prefetch_count=self.prefetch)]

    def on_consume_ready(self, connection: Any, channel: Any, consumers: Any, **kwargs: Any) -> None:
        log.info("consumer.ready", queue=KARTLEGGING_QUEUE.name, prefetch=self.prefetch)

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        log.warning("broker.connection_error", error=str(exc), retry_in_s=interval)


def drain_until_idle(connection: Connection, handler: EventHandler, prefetch: int, idle_seconds: float = 0.5,
                     on_handled: Callable[[Handled], None] | None = None) -> int:
    """Consume until the queue has been quiet for ``idle_seconds``; for the demo and ``run --once``."""
    count = 0

    def callback(message: Message) -> None:
        nonlocal count
        handled = handler.on_message(message)
        if handled is not None:
            count += 1
            if on_handled:
                on_handled(handled)

    channel = connection.channel()
    consumer = Consumer(channel, queues=[KARTLEGGING_QUEUE], on_message=callback,
                                   prefetch_count=prefetch)
    with consumer:
        while True:
            try:
                connection.drain_events(timeout=idle_seconds)
            except TimeoutError:
                break
    channel.close()
    return count
