"""RabbitMQ topology and the publisher, through kombu.

Names are the contract with hospitals and receivers: events arrive on the topic exchange
``kartlegging`` (routing key ``kartlegging.completed``) into ``gateway.kartlegging``;
messages leave for ``{receiver_herid}_async`` (NHN's naming); what cannot go on is parked
on ``gateway.parked`` with its body unchanged.
"""

from __future__ import annotations

from typing import Any

from kombu import Connection, Exchange, Queue

from gateway.melding import Melding

EXCHANGE = Exchange("kartlegging", type="topic", durable=True)
ROUTING_KEY = "kartlegging.completed"
KARTLEGGING_QUEUE = Queue("gateway.kartlegging", EXCHANGE, routing_key=ROUTING_KEY, durable=True)
PARKED_QUEUE = Queue("gateway.parked", durable=True)


def receiver_queue(name: str) -> Queue:
    return Queue(name, durable=True)


def declare_topology(connection: Connection) -> None:
    channel = connection.channel()
    try:
        for entity in (EXCHANGE, KARTLEGGING_QUEUE, PARKED_QUEUE):
            entity(channel).declare()
    finally:
        channel.close()


def queue_depth(connection: Connection, name: str) -> int:
    channel = connection.channel()
    try:
        return int(receiver_queue(name)(channel).queue_declare(passive=True).message_count)
    finally:
        channel.close()


class Publisher:
    """Publishes on its own connection with publisher confirms: a message counts as sent only
    when the broker has confirmed it (and publishing from the consumer's own connection
    recurses in kombu, see shared/perf/LIMITS.md)."""

    def __init__(self, url: str) -> None:
        self.connection = Connection(url, transport_options={"confirm_publish": True})
        self.connection.ensure_connection(max_retries=5, interval_start=0.5, interval_step=1, interval_max=5)
        self.producer = self.connection.Producer()
        self._publish: Any = self.connection.ensure(
            self.producer, self.producer.publish, max_retries=5, interval_start=0.5, interval_step=1, interval_max=5
        )
        self._declared: set[str] = set()

    def _send(self, body: bytes, queue: str, **properties: Any) -> None:
        declare = [] if queue in self._declared else [receiver_queue(queue)]
        self._publish(body, exchange="", routing_key=queue, declare=declare, delivery_mode=2, **properties)
        self._declared.add(queue)

    def publish_melding(self, melding: Melding) -> None:
        self._send(
            melding.xml,
            melding.queue,
            content_type="application/xml",
            content_encoding="utf-8",
            message_id=melding.msg_id,
            correlation_id=melding.event_id,
            type=melding.msg_type,
            headers={
                "fromHerId": str(melding.from_herid),
                "toHerId": str(melding.to_herid),
                "applicationTimeStamp": melding.generated_at,
            },
        )

    def publish_parked(
        self, body: bytes, code: str, reason: str, *, event_id: str | None, message_id: str | None,
        content_type: str | None,
    ) -> None:
        headers = {"x-reason-code": code, "x-reason": reason}
        if event_id:
            headers["x-event-id"] = event_id
        self._send(
            body,
            PARKED_QUEUE.name,
            content_type=content_type or "application/octet-stream",
            content_encoding="binary",
            message_id=message_id,
            headers=headers,
        )

    def publish_event(self, body: bytes, event_id: str) -> None:
        """What a hospital system does; used by ``gateway publish`` and the demo."""
        self._publish(
            body, exchange=EXCHANGE, routing_key=ROUTING_KEY, declare=[EXCHANGE, KARTLEGGING_QUEUE],
            delivery_mode=2, content_type="application/json", content_encoding="utf-8", message_id=event_id,
        )

    def close(self) -> None:
        self.connection.release()
