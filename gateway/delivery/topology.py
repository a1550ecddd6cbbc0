"""The gateway's queues and how they are declared: names, the queue type (classic or quorum), the inbound
queue's delivery limit and dead-lettering, the advice for a queue that exists with another type, and the
connection over one or several broker nodes. ``bus`` re-exports all of it; ``bus.receiver_queue_name`` stays
the one place ``{herid}_async`` is spelled.

Queue types are configuration: classic queues live on one node, which is all a single broker has; quorum
queues are replicated by Raft over a cluster's nodes and survive the loss of a minority of them. RabbitMQ
never changes the type (or any argument) of an existing queue: declaring it differently is refused with
PRECONDITION_FAILED. The gateway turns that into a ConfigurationError that names the queue and the way out,
instead of failing deep in kombu, and it never deletes a queue to redeclare it (that would drop its events).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Exchange, Queue

from gateway.errors import ConfigurationError, Reason

EXCHANGE = Exchange("kartlegging", type="topic", durable=True)
ROUTING_KEY = "kartlegging.completed"
KARTLEGGING_QUEUE = Queue("gateway.kartlegging", EXCHANGE, routing_key=ROUTING_KEY, durable=True)
PARKED_QUEUE = Queue("gateway.parked", durable=True)


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
