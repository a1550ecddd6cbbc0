"""RabbitMQ topology and the publisher, through kombu.

Names are the contract with hospitals and receivers: events arrive on the topic exchange
``kartlegging`` (routing key ``kartlegging.completed``) into ``gateway.kartlegging``;
messages leave for ``{receiver_herid}_async`` (NHN's naming); what cannot go on is parked
on ``gateway.parked`` with its body unchanged.

How the queues are declared (classic or quorum, the delivery limit, a queue of another type) is in
``delivery.topology``, re-exported here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kombu import Connection, Producer, Queue

from gateway.delivery.retry import backoff
from gateway.delivery.topology import (
    CLASSIC,
    EXCHANGE,
    KARTLEGGING_QUEUE,
    PARKED_QUEUE,
    ROUTING_KEY,
    Topology,
    connect,
    declare_queue,
    declare_topology,
    mismatch_advice,
    parked_reason,
    probe_type,
)
from gateway.errors import GatewayError, PublishFailed
from gateway.logs import log
from gateway.messages.outbound import Melding

__all__ = ["CLASSIC", "EXCHANGE", "KARTLEGGING_QUEUE", "PARKED_QUEUE", "ROUTING_KEY", "AmqpPublisher",
           "MemoryPublisher", "Outgoing", "PublishFailed", "Publisher", "Topology", "configure_parked_ttl",
           "connect", "declare_queue", "declare_topology", "melding_out", "parked_out", "parked_reason",
           "queue_depth", "receiver_queue", "receiver_queue_name"]


def receiver_queue_name(herid: int | str) -> str:
    """NHN's naming of a party's inbound queue; the one place it is spelled."""
    return f"{herid}_async"


def receiver_queue(name: str) -> Queue:
    """A classic receiver queue (the queue as the single-node gateway always declared it)."""
    return Queue(name, durable=True)


def queue_depth(connection: Connection, name: str) -> int:
    """Messages waiting on ``name``; a queue that does not exist holds none (its refusal closes only the
    channel this opened)."""
    channel = connection.channel()
    try:
        return int(receiver_queue(name)(channel).queue_declare(passive=True).message_count)
    except connection.channel_errors:
        return 0
    finally:
        with contextlib.suppress(Exception):
            channel.close()


@dataclass(frozen=True)
class Outgoing:
    """One AMQP message: to a queue through the default exchange (``exchange`` empty: ``queue`` is the queue,
    declared and published mandatory, so it cannot vanish), or to a named exchange with ``queue`` as the
    routing key (status events: whoever binds hears them; nobody binding is no error)."""

    queue: str
    body: bytes
    properties: dict[str, Any]
    exchange: str = ""


def melding_out(melding: Melding) -> Outgoing:
    return Outgoing(receiver_queue_name(melding.to_herid), melding.xml, {
        "content_type": "application/xml",
        "content_encoding": "utf-8",
        "message_id": melding.msg_id,
        "correlation_id": melding.event_id,
        "type": melding.msg_type,
        "headers": {
            "fromHerId": str(melding.from_herid),
            "toHerId": str(melding.to_herid),
            "applicationTimeStamp": melding.generated_at,
        },
    })


PARKED_TTL: dict[str, float | None] = {"seconds": 7 * 24 * 3600.0}


def configure_parked_ttl(hours: float) -> None:
    """GATEWAY_PARKED_TTL_HOURS (issue 15, docs/decisions.md "gateway.parked is a notification stream"): the store
    is the truth about what is parked; a copy on gateway.parked tells whoever watches the queue, and expires
    so that the queue does not grow with copies of events that were replayed long ago. 0: no expiry. A
    per-message expiration rather than a queue argument: an existing queue's arguments cannot change."""
    PARKED_TTL["seconds"] = hours * 3600 or None


def parked_out(body: bytes, code: str, reason: str, *, event_id: str | None, message_id: str | None,
               content_type: str | None) -> Outgoing:
    headers = {"x-reason-code": code, "x-reason": reason}
    if event_id:
        headers["x-event-id"] = event_id
    properties: dict[str, Any] = {
        "content_type": content_type or "application/octet-stream",
        "content_encoding": "binary",
        "message_id": message_id,
        "headers": headers,
    }
    if PARKED_TTL["seconds"]:
        properties["expiration"] = PARKED_TTL["seconds"]  # kombu takes seconds and sends milliseconds
    return Outgoing(PARKED_QUEUE.name, body, properties)


class Publisher(Protocol):
    """What the consumer, the receipt tracker and operators' use-cases publish through."""

    def publish_batch(self, items: Sequence[Outgoing]) -> None: ...

    def publish_event(self, body: bytes, event_id: str) -> None: ...

    def close(self) -> None: ...


class MemoryPublisher:
    """A publisher that keeps what it is given, for tests and tools that need no broker. ``fail`` makes the
    next publishes raise PublishFailed, as a broker outage would."""

    def __init__(self) -> None:
        self.batches: list[list[Outgoing]] = []
        self.events: list[tuple[bytes, str]] = []
        self.fail = False

    def publish_batch(self, items: Sequence[Outgoing]) -> None:
        if self.fail:
            raise PublishFailed("broker unavailable (MemoryPublisher.fail is set)")
        self.batches.append(list(items))

    def publish_event(self, body: bytes, event_id: str) -> None:
        if self.fail:
            raise PublishFailed("broker unavailable (MemoryPublisher.fail is set)")
        self.events.append((body, event_id))

    def published(self) -> list[Outgoing]:
        return [item for batch in self.batches for item in batch]

    def close(self) -> None:
        """Nothing to release."""


class Unconfirmed(GatewayError):
    """The broker nacked a message of the batch or did not confirm it in time: publish the batch again."""


class AmqpPublisher:
    """Publishes on its own connection, a whole batch with publisher confirms awaited together: the batch
    counts as published only when the broker has confirmed every persistent message as safely in its queue
    (for a quorum queue: committed by a majority of its nodes), one wait per batch instead of one per
    message (measured on this kind of machine: about 1,000 messages a second with a synchronous confirm per
    message, 5-10 times that batched; see BENCHMARKS.md).

    Why confirms and not one AMQP transaction per batch, as before: on RabbitMQ 3.10 a transaction's
    commit-ok does not wait for quorum queues. With the leader of the receivers' quorum queues killed
    (SIGKILL) mid-run, 672 of 6,000 messages whose commit had been acknowledged were missing afterwards;
    the same run with batched confirms lost none (tests/cluster). Confirms are what RabbitMQ guarantees
    for every queue type. A message the broker nacks, or a batch not confirmed in time, is published again
    (same MsgId, same bytes: a duplicate a receiver recognises, never a loss).

    Messages are mandatory: one that no queue takes comes back, its queue is declared again and the
    message re-sent, so a deleted queue cannot swallow a message."""

    def __init__(self, url: str, *, max_retries: int = 5, topology: Topology = CLASSIC) -> None:
        self.url = url
        self.max_retries = max_retries
        self.topology = topology
        self._returned: list[str] = []
        self._connect()

    def _connect(self) -> None:
        self.connection = connect(self.url)
        self.connection.ensure_connection(max_retries=self.max_retries, interval_start=0.5, interval_step=1,
                                          interval_max=5)
        self.channel = self.connection.channel()
        self.confirming = hasattr(self.channel, "confirm_select")  # the in-memory transport has no confirms
        self._published = 0
        self._first = 1  # the first sequence number of the batch being awaited
        self._acked: set[int] = set()
        self._nacked: set[int] = set()
        if self.confirming:
            self._confirm_mode()
        self.producer = Producer(self.channel, on_return=self._on_return)
        self._declared: set[str] = set()
        self._errors = self.connection.connection_errors + self.connection.channel_errors

    def _declare_receiver(self, name: str) -> None:
        """Receivers' queues are not the gateway's alone: one that exists with another type (made before the
        move to a cluster, or by the receiver's side) is used as it is, with a warning naming the way out,
        rather than holding up every message to it. Its refusal closes the channel, so a new one is opened."""
        try:
            self.topology.receiver_queue(name)(self.channel).declare()
        except self.connection.channel_errors as exc:
            advice = mismatch_advice(str(exc), self.topology, probe_type(self.connection, name))
            if advice is None:
                raise
            log.warning("queue.type_mismatch", queue=name, advice=advice)
            self.channel = self.connection.channel()
            if self.confirming:
                self._confirm_mode()
            self.producer = Producer(self.channel, on_return=self._on_return)
            Queue(name, durable=True)(self.channel).queue_declare(passive=True)

    def _confirm_mode(self) -> None:
        """Confirms on the current channel; their sequence numbers start again at 1 on each channel."""
        self._published = 0
        self._first = 1
        self._acked, self._nacked = set(), set()
        self.channel.confirm_select()
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)

    def _answered(self, tag: int, multiple: bool) -> range | tuple[int]:
        """The sequence numbers one ack or nack answers. Only the batch being awaited matters (an earlier
        batch was answered in full before it counted as published), so a ``multiple`` answer covers the
        current batch's numbers up to ``tag``, not every number since the channel opened: that made each
        answer cost O(messages published so far) and kept a set of all of them (quadratic over a drain)."""
        return range(self._first, tag + 1) if multiple else (tag,)

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._acked.update(self._answered(tag, multiple))

    def _on_nack(self, tag: int, multiple: bool, *_args: Any) -> None:
        self._nacked.update(self._answered(tag, multiple))

    def _start_batch(self) -> int:
        """A new batch's first sequence number; the answers to earlier batches are forgotten (all were in)."""
        self._first = self._published + 1
        self._acked.clear()
        self._nacked.clear()
        return self._first

    def _await_confirms(self, first: int, timeout: float = 30.0) -> None:
        """Until the broker has answered for messages ``first``…last published; a nack or silence is an error
        that makes the caller publish the batch again."""
        wanted = set(range(first, self._published + 1))
        deadline = time.monotonic() + timeout
        while not wanted <= self._acked | self._nacked:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unconfirmed(f"{len(wanted - self._acked)} message(s) not confirmed within {timeout:.0f} s")
            with contextlib.suppress(TimeoutError):
                self.connection.drain_events(timeout=min(1.0, left))
        if wanted & self._nacked:
            raise Unconfirmed(f"the broker refused {len(wanted & self._nacked)} message(s) (nack)")

    def _on_return(self, exception: Exception, exchange: str, routing_key: str, message: Any) -> None:
        self._returned.append(routing_key)

    def _publish_once(self, items: Sequence[Outgoing]) -> list[Outgoing]:
        self._returned.clear()
        # every queue first: a refused declaration closes the channel and with it the confirms' numbering
        for name in dict.fromkeys(item.queue for item in items if not item.exchange):
            if name not in self._declared:
                self._declare_receiver(name)
                self._declared.add(name)
        first = self._start_batch()
        for item in items:
            if item.exchange:  # a status event: whoever binds hears it; confirmed like the rest
                self.producer.publish(item.body, exchange=item.exchange, routing_key=item.queue, delivery_mode=2,
                                      mandatory=False, **item.properties)
                self._published += 1
                continue
            self.producer.publish(item.body, exchange="", routing_key=item.queue, delivery_mode=2,
                                  mandatory=self.confirming, **item.properties)
            self._published += 1
        if self.confirming:
            self._await_confirms(first)
        returned = set(self._returned)
        self._declared -= returned
        return [item for item in items if item.queue in returned and not item.exchange]

    def publish_batch(self, items: Sequence[Outgoing]) -> None:
        pending = list(items)
        for attempt in range(self.max_retries + 1):
            try:
                pending = self._publish_once(pending)
                if not pending:
                    return
                continue  # returned messages: their queues were declared again, send them again
            except (*self._errors, Unconfirmed) as exc:
                if attempt == self.max_retries:
                    raise PublishFailed(f"broker unavailable after {attempt + 1} tries: {exc}") from exc
                time.sleep(backoff(attempt))
                self.close()
                try:
                    self._connect()
                except self._errors:
                    continue
        raise PublishFailed(f"{len(pending)} message(s) kept coming back unroutable")

    def publish_event(self, body: bytes, event_id: str) -> None:
        """What a hospital system does; used by ``gateway publish`` and the demo."""
        EXCHANGE(self.channel).declare()
        self.topology.kartlegging_queue()(self.channel).declare()
        first = self._start_batch()
        self.producer.publish(body, exchange=EXCHANGE, routing_key=ROUTING_KEY, delivery_mode=2,
                              content_type="application/json", content_encoding="utf-8", message_id=event_id)
        self._published += 1
        if self.confirming:
            self._await_confirms(first)

    def close(self) -> None:
        # Closing a dead connection must not hide the error that killed it.
        with contextlib.suppress(Exception):
            self.connection.release()
