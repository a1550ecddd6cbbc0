"""``gateway run``: the composition root of the running gateway. It builds every part from the settings,
wires them together and runs until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click
from kombu import Connection

from gateway import metrics
from gateway.cli import context
from gateway.delivery.bus import KARTLEGGING_QUEUE, PARKED_QUEUE, AmqpPublisher, declare_topology
from gateway.delivery.consumer import EventHandler, KartleggingConsumer
from gateway.delivery.inbound import InboundHandler, served_queues
from gateway.delivery.receipts import AppRecTracker
from gateway.delivery.status import StatusPublisher
from gateway.logs import configure, log
from gateway.store.events import now_utc


@click.command()
def run() -> None:
    """Consume kartlegging events until stopped (SIGTERM or Ctrl-C stop it cleanly)."""
    settings = context.settings()
    configure(settings.log_format)
    register = context.register(settings)
    rules = context.rules(settings)
    store = context.store(settings, create=True)
    publisher = AmqpPublisher(settings.broker_url)
    handler = EventHandler(register, store, publisher, rules=rules, window_days=settings.two_hospitals_window_days,
                           folders=context.folders(settings), served=frozenset(settings.served_herids))
    tracker = AppRecTracker(store, publisher, settings.apprec_deadline_hours)
    # The gateway is the messaging system of the served HER-ids: their queues carry our receipts and replies.
    inbound = InboundHandler(store, publisher, tracker)
    queues = served_queues(settings.served_herids)
    broker = metrics.BrokerProbe(settings.broker_url, lambda: [KARTLEGGING_QUEUE.name, PARKED_QUEUE.name,
                                                                *(q.name for q in queues)])
    metrics.register_collector(metrics.GatewayCollector(
        store, broker, None if settings.registry_in_store else Path(settings.registry)))
    health = None
    if settings.health_port:
        health = metrics.HealthServer(settings.health_host, settings.health_port, lambda: {
            "store": metrics.store_up(store), "broker": broker.look(force=True)[0]}).start()
        log.info("health.listening", url=f"http://{settings.health_host}:{health.port}/readyz")
    statuses = StatusPublisher(store, publisher, register)
    with Connection(settings.broker_url, heartbeat=30) as connection:
        declare_topology(connection)
        consumer = KartleggingConsumer(
            connection, handler, settings.prefetch,
            periodic=[(settings.overdue_check_seconds, tracker.check_overdue), (0.5, statuses.publish_pending),
                      (15.0, metrics.AppRecObserver(store, now_utc()))],
            extra_consumers=lambda Consumer, channel: [
                Consumer(queues=queues, on_message=inbound.on_message, prefetch_count=settings.prefetch)],
        )

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("consumer.stopping", signal=signal.Signals(signum).name)
            consumer.should_stop = True
            consumer.batcher.should_stop = True  # also ends a batch's backoff wait during an outage

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("gateway.started", broker=connection.as_uri(), store=settings.store_url.split(":", 1)[0],
                 registry=str(settings.registry))
        consumer.run_forever()
    if health is not None:
        health.stop()
    publisher.close()
    store.close()
    log.info("gateway.stopped")
