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
from datetime import UTC, date, datetime
from typing import Any

from kombu import Connection, Consumer, Queue
from kombu.message import Message
from kombu.mixins import ConsumerMixin

from gateway import metrics
from gateway.delivery.bus import KARTLEGGING_QUEUE, Outgoing, Publisher, melding_out, parked_out
from gateway.delivery.policy import TRANSIENT, FailurePolicy, Periodic, Stopped, no_decoding, raw_body, where
from gateway.delivery.retry import CAP_S
from gateway.domain.history import DEFAULT_WINDOW_DAYS, Tidligere
from gateway.domain.kartlegging import Checks, Kartlegging, event_id_of, parse_event
from gateway.domain.registry import AMQP, Register
from gateway.errors import Parked, Reason
from gateway.logs import log
from gateway.pipeline import PACKAGED, Folders, process_event
from gateway.routing.rules import RuleSet
from gateway.store import END_STATES, EventLog, EventOutcome, Incoming, StoredEvent
from gateway.store.events import oversized_stub, stored_melding

DEFAULT_MAX_EVENT_BYTES = 1024 * 1024  # GATEWAY_MAX_EVENT_BYTES (docs/limits.md)

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
                 folders: Folders = PACKAGED, served: frozenset[int] | None = None,
                 checks: Checks | None = None) -> None:
        self.register = register
        self.served = served  # the sender HER-ids the gateway may send as; None: no check (tools, tests)
        self.checks = checks or Checks()
        self.folders = folders
        self.rules = rules
        self.window_days = window_days
        self.store = store
        self.publisher = publisher
        self.clock = clock

    def _parse(self, delivery: Incoming, stored: StoredEvent, today: date) -> Kartlegging | Parked:
        if stored.conflict_with is not None:
            return Parked(Reason.EVENT_ID_CONFLICT,
                          f"event_id {delivery.event_id} was received before (event {stored.conflict_with}) with a "
                          "different body; this version is kept as its own event and not sent, so no receiver sees "
                          "one MsgId with two contents")
        if delivery.original_size is not None:
            return Parked(Reason.TOO_LARGE,
                          f"the body is {delivery.original_size} bytes, more than the limit; it was not read and "
                          "only its size and SHA-256 are kept")
        if stored.attempts > MAX_ATTEMPTS:
            return Parked(Reason.RETRIES_EXHAUSTED,
                          f"delivered {stored.attempts} times without reaching an end state")
        try:
            return parse_event(delivery.body, self.checks, today=today)
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
                                    self.window_days, self.folders, self.served)
        except Parked as exc:
            return parked(exc.code, exc.reason)
        except TRANSIENT:
            raise  # the registry in the store is unavailable: the batch waits, the event is not parked
        except Exception as exc:  # a bug must park the event, not stop the consumer
            # The type and the line, never the exception's text: it may quote the event (a name, a number).
            log.error("event.internal_error", event_ref=ref, event_id=event_id, error_type=type(exc).__name__,
                      where=where(exc))
            return parked(Reason.INTERNAL_ERROR, f"unexpected {type(exc).__name__} while processing; see the log")
        chosen = outcome.route
        facts = EventOutcome(ref, "routed", samhandlingspunkt=event.samhandlingspunkt,
                             kommunenummer=event.patient.kommunenummer,
                             patient_key=self.store.patient_key(event.patient.fnr),
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
        parsed = [None if s.status in END_STATES or s.status == "parked"
                  or (s.status == "routed" and s.attempts <= MAX_ATTEMPTS)
                  else self._parse(d, s, now.date()) for d, s in zip(deliveries, stored, strict=True)]
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
            if s.status == "parked":  # delivered again after a crash: parked once, its copy published again
                code, why = s.reason_code or str(Reason.INTERNAL_ERROR), s.reason or ""
                outgoing.append(parked_out(delivery.body, code, why, event_id=event_id,
                                           message_id=delivery.amqp_message_id, content_type=delivery.content_type))
                handled.append(Handled(s.ref, event_id, "parked", code, why))
                continue
            if s.status == "routed" and s.attempts <= MAX_ATTEMPTS:
                # The AMQP ones go out again byte for byte; EDI 2.0 ones wait in the store for their outbox.
                stored_meldinger = [stored_melding(row, event_id) for row in self.store.messages(s.ref)]
                outgoing.extend(melding_out(m) for m in stored_meldinger if m.transport == AMQP)
                resend.append((s.ref, [m.msg_id for m in stored_meldinger if m.transport == AMQP]))
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
                                           content_type="application/json" if delivery.original_size is not None
                                           else delivery.content_type))
            outgoing.extend(melding_out(m) for m in outcome.meldinger if m.transport == AMQP)
        if outcomes:
            self.store.record_outcomes(outcomes)
        if outgoing:
            self.publisher.publish_batch(outgoing)
        sent = [(o.ref, [m.msg_id for m in o.meldinger if m.transport == AMQP])
                for o in outcomes if o.status == "routed"] + resend
        if sent:
            done = set(self.store.mark_sent_many(sent))
            waiting = {ref for ref, _ in sent} - done
            # An event whose EDI 2.0 messages wait for their outbox is acked (the store holds them) but not sent.
            handled = [replace(h, status="routed", reason="waiting for the EDI 2.0 outbox")
                       if h.status == "sent" and h.event_ref in waiting else h for h in handled]
        metrics.record_handled(handled)
        for h in handled:
            if h.status == "sent":
                log.info("event.sent", event_ref=h.event_ref, event_id=h.event_id, receivers=list(h.receivers),
                         msg_ids=list(h.msg_ids))
                if h.flags:
                    log.warning("event.flagged", event_ref=h.event_ref, event_id=h.event_id, flags=list(h.flags))
            elif h.status == "parked":
                log.warning("event.parked", event_ref=h.event_ref, event_id=h.event_id, reason_code=h.reason_code,
                            reason=h.reason)
            elif h.status == "routed":
                log.info("event.routed", event_ref=h.event_ref, event_id=h.event_id, receivers=list(h.receivers),
                         msg_ids=list(h.msg_ids), waiting_for="edi2")
            elif h.status in ("not_shared", "declined"):
                log.info(f"event.{h.status}", event_ref=h.event_ref, event_id=h.event_id, why=h.reason)
        return handled


def _delivery(message: Message, max_bytes: int) -> Incoming:
    """One delivery for the handler. A body over ``max_bytes`` is not parsed at all: the store and the parked
    queue get a stub with its size and SHA-256 (docs/limits.md), and its event_id, for bookkeeping, comes from
    the top level of its first 64 kB only."""
    props: dict[str, Any] = message.properties or {}
    body = raw_body(message)
    redelivered = bool((message.delivery_info or {}).get("redelivered"))
    if len(body) > max_bytes:
        return Incoming(oversized_stub(body), event_id_of(body), props.get("message_id"), message.content_type,
                        original_size=len(body), redelivered=redelivered)
    return Incoming(body, event_id_of(body), props.get("message_id"), message.content_type, redelivered=redelivered)


class Batcher:
    """Holds unacked messages until a batch is full or the queue has gone quiet for ``linger``
    seconds, then hands them to the handler, retrying transient failures under the shared
    ``FailurePolicy`` (gateway.delivery.policy)."""

    def __init__(self, handler: EventHandler, batch_size: int, linger: float,
                 on_handled: Callable[[Handled], None] | None = None,
                 keepalive: Callable[[], None] | None = None, *,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, retry_cap: float = CAP_S) -> None:
        self.handler = handler
        self.batch_size = batch_size
        self.linger = linger
        self.on_handled = on_handled
        self.max_event_bytes = max_event_bytes
        self.pending: list[Message] = []
        self.first_at = 0.0
        self.should_stop = False
        self.policy = FailurePolicy(cap=retry_cap, keepalive=keepalive, should_stop=lambda: self.should_stop)

    @property
    def keepalive(self) -> Callable[[], None] | None:
        return self.policy.keepalive

    @keepalive.setter
    def keepalive(self, value: Callable[[], None] | None) -> None:
        self.policy.keepalive = value

    def add(self, message: Message) -> None:
        if not self.pending:
            self.first_at = time.monotonic()
        self.pending.append(message)

    def due(self) -> bool:
        """A full batch goes at once; a partial one when its oldest event has waited ``linger``, so a
        steady trickle is never held back waiting for the queue to go quiet."""
        return bool(self.pending) and (len(self.pending) >= self.batch_size
                                       or time.monotonic() - self.first_at >= self.linger)

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        try:
            results = self.policy.retry(
                "batch", lambda: self.handler.handle_batch([_delivery(m, self.max_event_bytes) for m in batch]),
                events=len(batch))
        except Stopped:
            return  # unacked: the broker delivers them again
        except Exception as exc:  # a bug outside the per-event path: find the event that causes it
            log.error("batch.internal_error", events=len(batch), error_type=type(exc).__name__, where=where(exc))
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
        """Last resort for an event the gateway cannot even record: onto gateway.parked, unchanged (or, when
        over the size limit, as its stub)."""
        delivery = _delivery(message, self.max_event_bytes)
        item = parked_out(delivery.body, Reason.INTERNAL_ERROR,
                          f"unexpected {error_type} before the event could be recorded; see the log",
                          event_id=None, message_id=delivery.amqp_message_id, content_type=message.content_type)
        try:
            self.policy.retry("batch.park", lambda: self.handler.publisher.publish_batch([item]))
        except Stopped:
            return
        message.ack()


class KartleggingConsumer(ConsumerMixin):
    """Runs until stopped; kombu's mixin reconnects after a broker restart. Every callback it runs (the
    batcher, the extra consumers such as the receipt tracker, the periodic tasks) follows the one
    ``FailurePolicy``: nothing raised in them reaches kombu's loop and stops the process."""

    def __init__(self, connection: Connection, handler: EventHandler, prefetch: int, *,
                 batch_size: int | None = None, linger: float = 0.01,
                 periodic: Sequence[tuple[float, Callable[[], object]]] = (),
                 extra_consumers: Callable[[Any, Any], list[Any]] | None = None,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, retry_cap: float = CAP_S,
                 queue: Queue = KARTLEGGING_QUEUE) -> None:
        self.connection = connection
        self.queue = queue  # declared as the topology says (classic or quorum), or the consume is refused
        self.prefetch = prefetch
        self.batcher = Batcher(handler, batch_size or max(1, prefetch // 2), linger,
                               max_event_bytes=max_event_bytes, retry_cap=retry_cap)
        self.periodic = [Periodic(interval, task, getattr(task, "__name__", "periodic").strip("_"))
                         for interval, task in periodic]
        self.extra_consumers = extra_consumers

    @property
    def policy(self) -> FailurePolicy:
        """The policy the extra consumers share with the batcher (same backoff, heartbeat and stop)."""
        return self.batcher.policy

    def get_consumers(self, Consumer: Any, channel: Any) -> list[Any]:
        no_decoding(channel)
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
            entry.run_if_due(self.policy, now)

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        log.warning("broker.connection_error", error=str(exc)[:200], retry_in_s=interval)

    def run_forever(self) -> None:
        self.run(safety_interval=self.batcher.linger / 2)
        if self.batcher.pending and not self.should_stop:
            self.batcher.flush()


def drain_until_idle(connection: Connection, handler: EventHandler, prefetch: int, idle_seconds: float = 0.5,
                     on_handled: Callable[[Handled], None] | None = None) -> None:
    """Consume until the queue has been quiet for ``idle_seconds``; for the demo."""
    batcher = Batcher(handler, max(1, prefetch // 2), 0.0, on_handled)
    channel = connection.channel()
    no_decoding(channel)
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
