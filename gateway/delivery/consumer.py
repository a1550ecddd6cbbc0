"""The consumer: takes events off ``gateway.kartlegging`` in batches, records them, walks each
along the path, publishes the results in one broker transaction and only then acks.

Nothing is lost: every event is in the store before it is acked; it ends ``sent``, ``not_shared``,
``declined`` or ``parked`` (on ``gateway.parked`` with a reason code). A broker or store failure leaves the
batch unacked: the consumer waits with bounded, jittered backoff and tries again, and RabbitMQ
delivers again whatever a crash left unacked. A redelivered event gets the same MsgIds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Consumer, Queue
from kombu.message import Message
from kombu.mixins import ConsumerMixin

from gateway.delivery.bus import KARTLEGGING_QUEUE, Outgoing, Publisher, PublishFailed, melding_out, parked_out
from gateway.delivery.retry import backoff
from gateway.domain.history import DEFAULT_WINDOW_DAYS, Tidligere
from gateway.domain.kartlegging import Kartlegging, event_id_of, parse_event
from gateway.domain.registry import Register
from gateway.errors import Parked, Reason, StoreUnavailable
from gateway.logs import log
from gateway.pipeline import PACKAGED, Folders, process_event
from gateway.routing.rules import RuleSet
from gateway.store import END_STATES, EventLog, EventOutcome, Incoming, patient_key
from gateway.store.events import stored_melding

# An event delivered this many times without reaching an end state is parked: something
# about it keeps failing (a receiver queue that refuses it, a crash it causes).
MAX_ATTEMPTS = 10


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
    flags: tuple[str, ...] = ()


class EventHandler:
    def __init__(self, register: Register, store: EventLog, publisher: Publisher,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC).astimezone(),
                 rules: RuleSet | None = None, window_days: int = DEFAULT_WINDOW_DAYS,
                 folders: Folders = PACKAGED) -> None:
        self.register = register
        self.folders = folders
        self.rules = rules
        self.window_days = window_days
        self.store = store
        self.publisher = publisher
        self.clock = clock

    def _parse(self, delivery: Incoming, attempts: int) -> Kartlegging | Parked:
        if attempts > MAX_ATTEMPTS:
            return Parked(Reason.RETRIES_EXHAUSTED, f"delivered {attempts} times without reaching an end state")
        try:
            return parse_event(delivery.body)
        except Parked as exc:
            return exc

    def _decide(self, parsed: Kartlegging | Parked, event_id: str | None, ref: int, now: datetime,
                history: dict[str, list[Tidligere]]) -> tuple[EventOutcome, Handled]:
        def parked(code: str, reason: str) -> tuple[EventOutcome, Handled]:
            return (EventOutcome(ref, "parked", code, reason),
                    Handled(ref, event_id, "parked", code, reason))

        if isinstance(parsed, Parked):
            return parked(parsed.code, parsed.reason)
        event = parsed
        try:
            outcome = process_event(event, self.register, now, self.rules, lambda fnr: history.get(fnr, ()),
                                    self.window_days, self.folders)
        except Parked as exc:
            return parked(exc.code, exc.reason)
        except Exception as exc:  # a bug must park the event, not stop the consumer
            log.exception("event.internal_error", event_ref=ref, event_id=event_id, error_type=type(exc).__name__)
            return parked(Reason.INTERNAL_ERROR, f"unexpected {type(exc).__name__} while processing; see the log")
        chosen = outcome.route
        facts = EventOutcome(ref, "routed", samhandlingspunkt=event.samhandlingspunkt,
                             kommunenummer=event.patient.kommunenummer, patient_key=patient_key(event.patient.fnr),
                             sender_herid=event.sender.herid, performed_on=event.assessment.performed_on.isoformat(),
                             flags=chosen.flags, sender_contact=event.sender.contact)
        if not outcome.meldinger:
            status = "declined" if chosen.declined else "not_shared"
            why = chosen.why_none or "no receivers"
            return (replace(facts, status=status, reason=why), Handled(ref, event_id, status, None, why))
        # later events of the same batch see this one as the patient's history
        history.setdefault(event.patient.fnr, []).insert(0, Tidligere(
            event.event_id, event.samhandlingspunkt, event.sender.herid, event.assessment.performed_on,
            event.sender.contact))
        return (replace(facts, meldinger=outcome.meldinger),
                Handled(ref, event_id, "sent", None, None, tuple(m.to_herid for m in outcome.meldinger),
                        tuple(m.msg_id for m in outcome.meldinger), chosen.flags))

    def handle_batch(self, deliveries: Sequence[Incoming]) -> list[Handled]:
        """Store, decide, publish, mark: three store transactions and one broker transaction a batch.
        Raises StoreUnavailable or PublishFailed, leaving the batch for another try."""
        ids = [d.event_id for d in deliveries]
        stored = self.store.record_events(deliveries)
        now = self.clock()
        parsed = [None if s.status in END_STATES or (s.status == "routed" and s.attempts <= MAX_ATTEMPTS)
                  else self._parse(d, s.attempts) for d, s in zip(deliveries, stored, strict=True)]
        history = self.store.kartlegginger({p.patient.fnr for p in parsed if isinstance(p, Kartlegging)})
        outcomes: list[EventOutcome] = []
        handled: list[Handled] = []
        outgoing: list[Outgoing] = []
        resend: list[tuple[int, list[str]]] = []
        for delivery, event_id, s, p in zip(deliveries, ids, stored, parsed, strict=True):
            if s.status in END_STATES:
                log.info("event.duplicate", event_ref=s.ref, event_id=event_id, status=s.status)
                handled.append(Handled(s.ref, event_id, s.status, None, "duplicate: already " + s.status))
                continue
            if s.status == "routed" and s.attempts <= MAX_ATTEMPTS:
                stored_meldinger = [stored_melding(row, event_id) for row in self.store.messages(s.ref)]
                outgoing.extend(melding_out(m) for m in stored_meldinger)
                resend.append((s.ref, [m.msg_id for m in stored_meldinger]))
                handled.append(Handled(s.ref, event_id, "sent", None, "re-sent after a redelivery",
                                       tuple(m.to_herid for m in stored_meldinger),
                                       tuple(m.msg_id for m in stored_meldinger)))
                continue
            assert p is not None
            outcome, result = self._decide(p, event_id, s.ref, now, history)
            outcomes.append(outcome)
            handled.append(result)
            if outcome.status == "parked":
                outgoing.append(parked_out(delivery.body, str(outcome.reason_code), outcome.reason or "",
                                           event_id=event_id, message_id=delivery.amqp_message_id,
                                           content_type=delivery.content_type))
            outgoing.extend(melding_out(m) for m in outcome.meldinger)
        if outcomes:
            self.store.record_outcomes(outcomes)
        if outgoing:
            self.publisher.publish_batch(outgoing)
        sent = [(o.ref, [m.msg_id for m in o.meldinger]) for o in outcomes if o.status == "routed"] + resend
        if sent:
            self.store.mark_sent_many(sent)
        for h in handled:
            if h.status == "sent":
                log.info("event.sent", event_ref=h.event_ref, event_id=h.event_id, receivers=list(h.receivers),
                         msg_ids=list(h.msg_ids))
                if h.flags:
                    log.warning("event.flagged", event_ref=h.event_ref, event_id=h.event_id, flags=list(h.flags))
            elif h.status == "parked":
                log.warning("event.parked", event_ref=h.event_ref, event_id=h.event_id, reason_code=h.reason_code,
                            reason=h.reason)
            elif h.status in ("not_shared", "declined"):
                log.info(f"event.{h.status}", event_ref=h.event_ref, event_id=h.event_id, why=h.reason)
        return handled


def _delivery(message: Message) -> Incoming:
    props: dict[str, Any] = message.properties or {}
    body = message.body
    if isinstance(body, str):  # py-amqp decodes bodies that carry a content_encoding; we want the bytes
        body = body.encode(message.content_encoding or "utf-8", errors="surrogateescape")
    return Incoming(body, event_id_of(body), props.get("message_id"), message.content_type)


class Batcher:
    """Holds unacked messages until a batch is full or the queue has gone quiet for ``linger``
    seconds, then hands them to the handler, retrying transient failures with backoff."""

    def __init__(self, handler: EventHandler, batch_size: int, linger: float,
                 on_handled: Callable[[Handled], None] | None = None,
                 keepalive: Callable[[], None] | None = None) -> None:
        self.handler = handler
        self.batch_size = batch_size
        self.linger = linger
        self.on_handled = on_handled
        self.keepalive = keepalive
        self.pending: list[Message] = []
        self.first_at = 0.0
        self.should_stop = False

    def add(self, message: Message) -> None:
        if not self.pending:
            self.first_at = time.monotonic()
        self.pending.append(message)

    def due(self) -> bool:
        """A full batch goes at once; a partial one when its oldest event has waited ``linger``, so a
        steady trickle is never held back waiting for the queue to go quiet."""
        return bool(self.pending) and (len(self.pending) >= self.batch_size
                                       or time.monotonic() - self.first_at >= self.linger)

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.should_stop:
            if self.keepalive:
                self.keepalive()
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        attempt = 0
        while True:
            try:
                results = self.handler.handle_batch([_delivery(m) for m in batch])
                break
            except (StoreUnavailable, PublishFailed) as exc:
                pause = backoff(attempt)
                log.error("batch.deferred", events=len(batch), error_type=type(exc).__name__, error=str(exc)[:200],
                          attempt=attempt + 1, retry_in_s=round(pause, 2))
                if self.should_stop:
                    return  # unacked: the broker delivers them again
                self._wait(pause)
                attempt += 1
            except Exception as exc:  # a bug outside the per-event path: find the event that causes it
                log.exception("batch.internal_error", events=len(batch), error_type=type(exc).__name__)
                if len(batch) > 1:
                    for message in batch:
                        self.pending = [message]
                        self.flush()
                else:
                    self._park_unprocessable(batch[0], type(exc).__name__)
                return
        for message in batch:
            message.ack()
        if self.on_handled:
            for result in results:
                self.on_handled(result)

    def _park_unprocessable(self, message: Message, error_type: str) -> None:
        """Last resort for an event the gateway cannot even record: onto gateway.parked, unchanged."""
        raw = message.body if isinstance(message.body, bytes) else str(message.body).encode("utf-8", "replace")
        props: dict[str, Any] = message.properties or {}
        self.handler.publisher.publish_batch([parked_out(
            raw, Reason.INTERNAL_ERROR, f"unexpected {error_type} before the event could be recorded; see the log",
            event_id=None, message_id=props.get("message_id"), content_type=message.content_type)])
        message.ack()


@dataclass
class Periodic:
    """A task the consumer loop runs every ``interval`` seconds (the overdue check)."""

    interval: float
    task: Callable[[], object]
    last: float = 0.0


class KartleggingConsumer(ConsumerMixin):
    """Runs until stopped; kombu's mixin reconnects after a broker restart."""

    def __init__(self, connection: Connection, handler: EventHandler, prefetch: int, *,
                 batch_size: int | None = None, linger: float = 0.01,
                 periodic: Sequence[tuple[float, Callable[[], object]]] = (),
                 extra_consumers: Callable[[Any, Any], list[Any]] | None = None,
                 queue: Queue = KARTLEGGING_QUEUE) -> None:
        self.connection = connection
        self.queue = queue  # declared as the topology says (classic or quorum), or the consume is refused
        self.prefetch = prefetch
        self.batcher = Batcher(handler, batch_size or max(1, prefetch // 2), linger)
        self.periodic = [Periodic(interval, task) for interval, task in periodic]
        self.extra_consumers = extra_consumers

    def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
        consumers = [Consumer(queues=[self.queue], on_message=self.batcher.add, prefetch_count=self.prefetch)]
        if self.extra_consumers:
            consumers += self.extra_consumers(Consumer, channel)
        return consumers

    def on_connection_revived(self) -> None:
        # Unacked messages of a lost connection are redelivered on the new one.
        if self.batcher.pending or getattr(self, "_connected_once", False):
            log.warning("broker.reconnected", dropped_unacked=len(self.batcher.pending))
        self._connected_once = True
        self.batcher.pending.clear()

    def on_consume_ready(self, connection: Any, channel: Any, consumers: Any, **kwargs: Any) -> None:
        self.batcher.keepalive = connection.heartbeat_check
        log.info("consumer.ready", queue=self.queue.name, prefetch=self.prefetch,
                 batch_size=self.batcher.batch_size)

    def on_iteration(self) -> None:
        self.batcher.should_stop = self.should_stop
        if self.batcher.due():
            self.batcher.flush()
        now = time.monotonic()
        for entry in self.periodic:
            if now - entry.last >= entry.interval:
                entry.last = now
                entry.task()

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        log.warning("broker.connection_error", error=str(exc), retry_in_s=interval)

    def run_forever(self) -> None:
        self.run(safety_interval=self.batcher.linger / 2)
        if self.batcher.pending and not self.should_stop:
            self.batcher.flush()


def drain_until_idle(connection: Connection, handler: EventHandler, prefetch: int, idle_seconds: float = 0.5,
                     on_handled: Callable[[Handled], None] | None = None) -> None:
    """Consume until the queue has been quiet for ``idle_seconds``; for the demo."""
    batcher = Batcher(handler, max(1, prefetch // 2), 0.0, on_handled)
    channel = connection.channel()
    with Consumer(channel, queues=[KARTLEGGING_QUEUE], on_message=batcher.add, prefetch_count=prefetch):
        while True:
            try:
                connection.drain_events(timeout=0.05)
            except TimeoutError:
                if batcher.pending:
                    batcher.flush()
                    continue
                try:  # quiet: make sure it stays quiet
                    connection.drain_events(timeout=idle_seconds)
                except TimeoutError:
                    break
            if len(batcher.pending) >= batcher.batch_size:
                batcher.flush()
    channel.close()
