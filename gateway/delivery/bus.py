"""RabbitMQ topology and the publisher, through kombu.

Names are the contract with hospitals and receivers: events arrive on the topic exchange
``kartlegging`` (routing key ``kartlegging.completed``) into ``gateway.kartlegging``;
messages leave for ``{receiver_herid}_async`` (NHN's naming); what cannot go on is parked
on ``gateway.parked`` with its body unchanged.

Queue types are configuration (``Topology``): classic queues live on one node, which is all a single broker
has; quorum queues are replicated by Raft over a cluster's nodes and survive the loss of a minority of them.
RabbitMQ never changes the type (or any argument) of an existing queue: declaring it differently is refused
with PRECONDITION_FAILED. The gateway turns that into a ConfigurationError that names the queue and the way
out, instead of failing deep in kombu, and it never deletes a queue to redeclare it (that would drop the
events in it).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kombu import Connection, Exchange, Producer, Queue

from gateway.delivery.retry import backoff
from gateway.errors import ConfigurationError, PublishFailed, Reason
from gateway.logs import log
from gateway.messages.outbound import Melding

EXCHANGE = Exchange("kartlegging", type="topic", durable=True)
ROUTING_KEY = "kartlegging.completed"
KARTLEGGING_QUEUE = Queue("gateway.kartlegging", EXCHANGE, routing_key=ROUTING_KEY, durable=True)
PARKED_QUEUE = Queue("gateway.parked", durable=True)


def receiver_queue_name(herid: int | str) -> str:
    """NHN's naming of a party's inbound queue; the one place it is spelled."""
    return f"{herid}_async"


def receiver_queue(name: str) -> Queue:
    """A classic receiver queue (the queue as the single-node gateway always declared it)."""
    return Queue(name, durable=True)


@dataclass(frozen=True)
class Topology:
    """How the gateway's queues are declared: ``queue_type`` classic or quorum, and for quorum the inbound
    queue's ``delivery_limit`` (0: none).

    The delivery limit is the broker's own poison-message guard, a second line behind the gateway's attempt
    counting (``MAX_ATTEMPTS`` in delivery/consumer.py, counted in the store when a batch is recorded). The
    gateway parks an event on its 11th recorded delivery, with a reason code; the broker counts every
    redelivery, also of events that sat in a consumer's prefetch when its connection died and were never
    recorded, so its count runs ahead of the gateway's. Set well above the gateway's limit, it acts only when
    the gateway cannot: an event that kills the process before it is recorded, or replicas crash-looping.
    Then the broker dead-letters the body unchanged to ``gateway.parked`` (at-least-once dead-lettering, so
    the move itself cannot lose it) with ``x-first-death-reason: delivery_limit``, which ``parked_reason``
    reads as ``BROKER_DELIVERY_LIMIT``."""

    queue_type: str = "classic"
    delivery_limit: int = 0

    @property
    def quorum(self) -> bool:
        return self.queue_type == "quorum"

    def _args(self) -> dict[str, Any] | None:
        return {"x-queue-type": "quorum"} if self.quorum else None

    def kartlegging_queue(self) -> Queue:
        args = self._args()
        if args is not None and self.delivery_limit > 0:
            args |= {"x-delivery-limit": self.delivery_limit, "x-dead-letter-exchange": "",
                     "x-dead-letter-routing-key": PARKED_QUEUE.name,
                     "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
        return Queue(KARTLEGGING_QUEUE.name, EXCHANGE, routing_key=ROUTING_KEY, durable=True, queue_arguments=args)

    def parked_queue(self) -> Queue:
        return Queue(PARKED_QUEUE.name, durable=True, queue_arguments=self._args())

    def receiver_queue(self, name: str) -> Queue:
        """A receiver's ``{herid}_async`` queue, or the gateway's own inbound one."""
        return Queue(name, durable=True, queue_arguments=self._args())


CLASSIC = Topology()

_INEQUIVALENT = re.compile(r"inequivalent arg '(?P<arg>[^']+)' for queue '(?P<queue>[^']+)' in vhost '(?P<vhost>[^']*)'"
                           r": received (?P<wanted>.+?) but current is (?P<current>.+)$")


def mismatch_advice(text: str, topology: Topology, existing: str | None = None) -> str | None:
    """What an operator does about a PRECONDITION_FAILED on a queue declaration, or None if ``text`` is not
    one. RabbitMQ names only the first argument that differs (the dead-letter ones come before the type), so
    ``existing``, the type found by ``probe_type``, decides whether the type or only an argument differs. The
    queue keeps the events that are in it: the advice never starts with deleting it."""
    m = _INEQUIVALENT.search(text)
    if m is None:
        return None
    queue, vhost, arg = m["queue"], m["vhost"] or "/", m["arg"]
    current = re.sub(r"^the value '([^']*)'.*", r"\1", m["current"].strip())
    if arg == "x-queue-type":
        existing = "classic" if current == "none" else current
    if existing and existing != topology.queue_type:
        return (f"queue {queue!r} (vhost {vhost!r}) exists as a {existing} queue and GATEWAY_QUEUE_TYPE="
                f"{topology.queue_type}; RabbitMQ cannot change a queue's type. Either run with "
                f"GATEWAY_QUEUE_TYPE={existing}, or move the queue as docs/deployment.md ('Changing the queue "
                f"type') describes: when it is empty, `rabbitmqctl -p {vhost} delete_queue {queue} --if-empty`, "
                f"then start the gateway with GATEWAY_QUEUE_TYPE={topology.queue_type}. "
                f"Check with `rabbitmqctl -p {vhost} list_queues name type messages`.")
    return (f"queue {queue!r} (vhost {vhost!r}) was declared with {arg} = {current or 'none'}, and the gateway "
            f"asks for {m['wanted']} (GATEWAY_QUEUE_TYPE={topology.queue_type}, GATEWAY_DELIVERY_LIMIT="
            f"{topology.delivery_limit}); RabbitMQ cannot change an existing queue's arguments. Run with the "
            f"settings it was declared with (`rabbitmqctl -p {vhost} list_queues name type arguments`), or "
            f"move it as docs/deployment.md ('Changing the queue type') describes.")


def probe_type(connection: Connection, name: str) -> str | None:
    """The type of an existing queue, found by declaring it as a bare quorum queue on a channel of its own:
    accepted, or refused for an argument other than the type, means quorum; refused for the type means
    classic (or whatever the refusal names). AMQP has no way to ask directly."""
    channel = connection.channel()
    try:
        Queue(name, durable=True, queue_arguments={"x-queue-type": "quorum"})(channel).declare()
        return "quorum"
    except connection.channel_errors as exc:
        m = _INEQUIVALENT.search(str(exc))
        if m is None:
            return None
        if m["arg"] != "x-queue-type":
            return "quorum"
        current = re.sub(r"^the value '([^']*)'.*", r"\1", m["current"].strip())
        return "classic" if current == "none" else current
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def declare_queue(connection: Connection, queue: Queue, topology: Topology) -> None:
    """Declare one queue on a channel of its own (a refusal closes the channel)."""
    channel = connection.channel()
    try:
        queue(channel).declare()
    except connection.channel_errors as exc:
        advice = mismatch_advice(str(exc), topology, probe_type(connection, queue.name))
        if advice is None:
            raise
        raise ConfigurationError(advice) from exc
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def declare_topology(connection: Connection, topology: Topology = CLASSIC, own_queue: str | None = None) -> None:
    """The exchange and the gateway's own queues, each with the configured type; raises ConfigurationError
    when one exists with another type."""
    channel = connection.channel()
    try:
        EXCHANGE(channel).declare()
    finally:
        channel.close()
    queues = [topology.kartlegging_queue(), topology.parked_queue()]
    if own_queue:
        queues.append(topology.receiver_queue(own_queue))
    for queue in queues:
        declare_queue(connection, queue, topology)


def connect(urls: str | Sequence[str], *, heartbeat: float = 0, connect_timeout: float = 5) -> Connection:
    """A kombu connection over one or several URLs (the nodes of a cluster, ';'-joined or a list). kombu keeps
    the rest as alternates and, when a connection fails or drops, goes on to the next round-robin, so a
    gateway finds a surviving node without a load balancer in front."""
    url = urls if isinstance(urls, str) else ";".join(urls)
    return Connection(url, heartbeat=heartbeat, connect_timeout=connect_timeout, failover_strategy="round-robin")


def parked_reason(headers: dict[str, Any] | None) -> tuple[str, str]:
    """Reason code and text of a message on gateway.parked, whoever put it there: the gateway writes
    ``x-reason-code``/``x-reason``; the broker, dead-lettering past the delivery limit, writes only
    ``x-first-death-reason`` (and ``x-death``), which becomes ``BROKER_DELIVERY_LIMIT``."""
    headers = headers or {}
    if "x-reason-code" in headers:
        return str(headers["x-reason-code"]), str(headers.get("x-reason", ""))
    why = headers.get("x-first-death-reason")
    if why == "delivery_limit":
        queue = headers.get("x-first-death-queue", KARTLEGGING_QUEUE.name)
        return (Reason.BROKER_DELIVERY_LIMIT,
                f"the broker dead-lettered it from {queue} after its delivery limit (GATEWAY_DELIVERY_LIMIT); "
                "the gateway never reached an end state for it: look it up by event_id, then replay it")
    if why:
        return f"BROKER_{str(why).upper()}", f"dead-lettered by the broker ({why})"
    return Reason.INTERNAL_ERROR, "on gateway.parked without a reason"


def queue_depth(connection: Connection, name: str) -> int:
    channel = connection.channel()
    try:
        return int(receiver_queue(name)(channel).queue_declare(passive=True).message_count)
    finally:
        channel.close()


@dataclass(frozen=True)
class Outgoing:
    """One AMQP message to publish to a queue through the default exchange."""

    queue: str
    body: bytes
    properties: dict[str, Any]


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


def parked_out(body: bytes, code: str, reason: str, *, event_id: str | None, message_id: str | None,
               content_type: str | None) -> Outgoing:
    headers = {"x-reason-code": code, "x-reason": reason}
    if event_id:
        headers["x-event-id"] = event_id
    return Outgoing(PARKED_QUEUE.name, body, {
        "content_type": content_type or "application/octet-stream",
        "content_encoding": "binary",
        "message_id": message_id,
        "headers": headers,
    })


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


class AmqpPublisher:
    """Publishes on its own connection, a whole batch in one AMQP transaction: the broker's
    commit-ok comes only when every persistent message is safely in its durable queue, the same
    guarantee as publisher confirms, but one round trip per batch instead of one per message
    (measured on this kind of machine: about 1,000 messages a second with a confirm per message, 5-7
    times that with a transaction per batch; see BENCHMARKS.md). Messages are mandatory: one that no
    queue takes comes back, its queue is declared again and the message re-sent, so a deleted queue
    cannot swallow a message."""

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
        self.transactional = hasattr(self.channel, "tx_select")  # the in-memory transport has no transactions
        if self.transactional:
            self.channel.tx_select()
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
            if self.transactional:
                self.channel.tx_select()
            self.producer = Producer(self.channel, on_return=self._on_return)
            Queue(name, durable=True)(self.channel).queue_declare(passive=True)

    def _on_return(self, exception: Exception, exchange: str, routing_key: str, message: Any) -> None:
        self._returned.append(routing_key)

    def _publish_once(self, items: Sequence[Outgoing]) -> list[Outgoing]:
        self._returned.clear()
        # every queue first: a refused declaration closes the channel, and with it the open transaction
        for name in dict.fromkeys(item.queue for item in items):
            if name not in self._declared:
                self._declare_receiver(name)
                self._declared.add(name)
        for item in items:
            self.producer.publish(item.body, exchange="", routing_key=item.queue, delivery_mode=2,
                                  mandatory=self.transactional, **item.properties)
        if self.transactional:
            self.channel.tx_commit()
        returned = set(self._returned)
        self._declared -= returned
        return [item for item in items if item.queue in returned]

    def publish_batch(self, items: Sequence[Outgoing]) -> None:
        pending = list(items)
        for attempt in range(self.max_retries + 1):
            try:
                pending = self._publish_once(pending)
                if not pending:
                    return
                continue  # returned messages: their queues were declared again, send them again
            except self._errors as exc:
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
        self.producer.publish(body, exchange=EXCHANGE, routing_key=ROUTING_KEY, delivery_mode=2,
                              content_type="application/json", content_encoding="utf-8", message_id=event_id)
        if self.transactional:
            self.channel.tx_commit()

    def close(self) -> None:
        # Closing a dead connection must not hide the error that killed it.
        with contextlib.suppress(Exception):
            self.connection.release()
