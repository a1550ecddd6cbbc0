"""``gateway run``: the composition root of the running gateway. It builds every part from the settings,
wires them together and runs until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
from types import FrameType

import click
from kombu import Connection

from gateway.cli import context
from gateway.delivery.bus import AmqpPublisher, declare_topology
from gateway.delivery.consumer import EventHandler, KartleggingConsumer
from gateway.delivery.policy import Periodic
from gateway.delivery.receipts import AppRecTracker, apprec_queue
from gateway.logs import configure, log


@click.command()
def run() -> None:
    """Consume kartlegging events until stopped (SIGTERM or Ctrl-C stop it cleanly)."""
    settings = context.settings()
    configure(settings.log_format)
    register = context.register(settings)
    rules = context.rules(settings)
    store = context.store(settings, create=True, keyed=True)
    publisher = AmqpPublisher(settings.broker_url)
    handler = EventHandler(register, store, publisher, rules=rules, window_days=settings.two_hospitals_window_days,
                           folders=context.folders(settings), checks=context.checks(settings))
    receipts = apprec_queue(settings.own_herid)
    with Connection(settings.broker_url, heartbeat=30) as connection:
        declare_topology(connection)
        consumer = KartleggingConsumer(
            connection, handler, settings.prefetch,
            extra_consumers=lambda Consumer, channel: [
                Consumer(queues=[receipts], on_message=tracker.on_message, prefetch_count=settings.prefetch)],
            max_event_bytes=settings.max_event_bytes, retry_cap=settings.retry_cap_seconds,
        )
        # One failure policy for every loop: the receipt consumer and the overdue check share the batcher's.
        tracker = AppRecTracker(store, publisher, settings.apprec_deadline_hours, policy=consumer.policy,
                                max_bytes=settings.max_receipt_bytes)
        consumer.periodic = [Periodic(settings.overdue_check_seconds, tracker.check_overdue, "overdue_check")]

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("consumer.stopping", signal=signal.Signals(signum).name)
            consumer.should_stop = True
            consumer.batcher.should_stop = True  # also ends a batch's backoff wait during an outage

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("gateway.started", broker=connection.as_uri(), store=settings.store_url.split(":", 1)[0],
                 registry=str(settings.registry))
        consumer.run_forever()
    publisher.close()
    store.close()
    log.info("gateway.stopped")
