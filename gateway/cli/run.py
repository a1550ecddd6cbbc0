"""``gateway run``: the composition root of the running gateway. It builds every part from the settings,
wires them together and runs until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
from types import FrameType

import click

from gateway.cli import context
from gateway.delivery.bus import connect, declare_topology, receiver_queue_name
from gateway.delivery.consumer import EventHandler, KartleggingConsumer
from gateway.delivery.receipts import AppRecTracker
from gateway.errors import ConfigurationError
from gateway.logs import configure, log


@click.command()
def run() -> None:
    """Consume kartlegging events until stopped (SIGTERM or Ctrl-C stop it cleanly)."""
    settings = context.settings()
    configure(settings.log_format)
    register = context.register(settings)
    rules = context.rules(settings)
    store = context.store(settings, create=True)
    topology = context.topology(settings)
    publisher = context.publisher(settings)
    handler = EventHandler(register, store, publisher, rules=rules, window_days=settings.two_hospitals_window_days,
                           folders=context.folders(settings))
    tracker = AppRecTracker(store, publisher, settings.apprec_deadline_hours)
    receipts = topology.receiver_queue(receiver_queue_name(settings.own_herid))
    # several URLs (the nodes of a cluster): kombu reconnects to the next one that answers when a node goes
    with connect(settings.broker_urls, heartbeat=settings.heartbeat_seconds) as connection:
        try:
            declare_topology(connection, topology, receipts.name)
        except ConfigurationError as exc:
            publisher.close()
            raise click.ClickException(f"configuration: {exc}") from exc
        consumer = KartleggingConsumer(
            connection, handler, settings.prefetch, queue=topology.kartlegging_queue(),
            periodic=[(settings.overdue_check_seconds, tracker.check_overdue)],
            extra_consumers=lambda Consumer, channel: [
                Consumer(queues=[receipts], on_message=tracker.on_message, prefetch_count=settings.prefetch)],
        )

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("consumer.stopping", signal=signal.Signals(signum).name)
            consumer.should_stop = True
            consumer.batcher.should_stop = True  # also ends a batch's backoff wait during an outage

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("gateway.started", broker=connection.as_uri(), broker_nodes=len(settings.broker_urls),
                 queue_type=topology.queue_type, store=settings.store_url.split(":", 1)[0],
                 registry=str(settings.registry))
        consumer.run_forever()
    publisher.close()
    store.close()
    log.info("gateway.stopped")
