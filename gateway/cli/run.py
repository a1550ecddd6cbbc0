"""``gateway run``: the composition root of the running gateway. It builds every part from the settings,
wires them together and runs until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from gateway import metrics
from gateway.cli import context
from gateway.delivery.bus import (
    KARTLEGGING_QUEUE,
    PARKED_QUEUE,
    configure_parked_ttl,
    connect,
    declare_queue,
    declare_topology,
    receiver_queue_name,
)
from gateway.delivery.consumer import EventHandler, KartleggingConsumer
from gateway.delivery.edi2.transport import Edi2Inbox, Edi2Outbox
from gateway.delivery.inbound import InboundHandler
from gateway.delivery.policy import Periodic
from gateway.delivery.receipts import AppRecTracker
from gateway.delivery.reload import Reloader
from gateway.delivery.status import StatusPublisher
from gateway.domain.registry import EDI2
from gateway.errors import ConfigurationError
from gateway.logs import configure, log
from gateway.operations.replay import retry_routing_parks
from gateway.settings import Settings
from gateway.store import SqlStore
from gateway.store.events import now_utc


@click.command()
def run() -> None:
    """Consume kartlegging events until stopped (SIGTERM or Ctrl-C stop it cleanly)."""
    settings = context.settings()
    configure(settings.log_format)
    register = context.register(settings)
    rules = context.rules(settings)
    msh = context.meldingstjener(settings)  # None when EDI 2.0 is not configured
    store = context.store(settings, create=True, keyed=True)
    topology = context.topology(settings)
    context.audit_settings(store, settings)
    _wait_for_broker(settings)
    publisher = context.publisher(settings)
    handler = EventHandler(register, store, publisher, rules=rules, window_days=settings.two_hospitals_window_days,
                           folders=context.folders(settings), served=frozenset(settings.served_herids),
                           checks=context.checks(settings))
    # The gateway is the messaging system of the served HER-ids: their queues carry our receipts and replies.
    queues = [topology.receiver_queue(receiver_queue_name(h)) for h in settings.served_herids]
    broker = metrics.BrokerProbe(settings.broker_url, lambda: [KARTLEGGING_QUEUE.name, PARKED_QUEUE.name,
                                                                *(q.name for q in queues)])
    metrics.register_collector(metrics.GatewayCollector(
        store, broker, None if settings.registry_in_store else Path(settings.registry)))
    health = None
    if settings.health_port:
        try:
            health = metrics.HealthServer(settings.health_host, settings.health_port, lambda: {
                "store": metrics.store_up(store), "broker": broker.look(force=True)[0]}).start()
        except OSError as exc:
            publisher.close()
            raise click.ClickException(
                f"GATEWAY_HEALTH_PORT {settings.health_port} on {settings.health_host}: {exc.strerror}; is another "
                "gateway running here? Give it another port (or 0 for none)") from exc
        log.info("health.listening", url=f"http://{settings.health_host}:{health.port}/readyz")
    statuses = StatusPublisher(store, publisher, register)
    configure_parked_ttl(settings.parked_ttl_hours)
    on_import = None
    if settings.retry_parked_after_import:
        def on_import(version: str) -> None:
            n = retry_routing_parks(store, publisher, version)
            log.info("reload.retried_parked", registry_version=version, events=n, operator="system")
    # The registry and rules are swapped between batches by this periodic task (docs/decisions.md).
    reloader = Reloader([handler, statuses], registry=settings.registry,
                        db=store.db if settings.registry_in_store else None, routes_dir=settings.routes_dir,
                        template_dir=settings.template_dir, on_import=on_import)
    # several URLs (the nodes of a cluster): kombu reconnects to the next one that answers when a node goes
    with connect(settings.broker_urls, heartbeat=settings.heartbeat_seconds) as connection:
        try:
            declare_topology(connection, topology)
            for queue in queues:
                declare_queue(connection, queue, topology)
        except ConfigurationError as exc:
            publisher.close()
            raise click.ClickException(f"configuration: {exc}") from exc
        consumer = KartleggingConsumer(
            connection, handler, settings.prefetch, queue=topology.kartlegging_queue(),
            extra_consumers=lambda Consumer, channel: [
                Consumer(queues=queues, on_message=inbound.on_message, prefetch_count=settings.prefetch)],
            max_event_bytes=settings.max_event_bytes, retry_cap=settings.retry_cap_seconds,
        )
        # One failure policy for every loop: the inbound consumer and the periodic tasks share the batcher's.
        tracker = AppRecTracker(store, publisher, settings.apprec_deadline_hours, policy=consumer.policy,
                                max_bytes=settings.max_receipt_bytes)
        inbound = InboundHandler(store, publisher, tracker)
        consumer.periodic = [
            Periodic(settings.overdue_check_seconds, tracker.check_overdue, "overdue_check"),
            Periodic(0.5, statuses.publish_pending, "status"),
            Periodic(15.0, metrics.AppRecObserver(store, now_utc()), "apprec_metrics"),
        ]
        if settings.reload_seconds > 0:
            consumer.periodic.append(Periodic(settings.reload_seconds, reloader.check, "reload"))
        if msh is not None:
            outbox = Edi2Outbox(store, msh)
            inbox = Edi2Inbox(msh, settings.served_herids,
                              lambda document, api_id: inbound.handle(document, "meldingstjener", api_id))
            consumer.periodic += [Periodic(settings.msh_poll_seconds, outbox.send_pending, "edi2_outbox"),
                                  Periodic(settings.msh_poll_seconds, inbox.poll, "edi2_inbox")]
        else:
            consumer.periodic.append(Periodic(300.0, lambda: _edi2_unconfigured(store), "edi2_waiting"))

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("consumer.stopping", signal=signal.Signals(signum).name)
            consumer.should_stop = True
            consumer.batcher.should_stop = True  # also ends a batch's backoff wait during an outage

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("gateway.started", broker=connection.as_uri(), broker_nodes=len(settings.broker_urls),
                 queue_type=topology.queue_type, store=settings.store_url.split(":", 1)[0],
                 registry=str(settings.registry), edi2=msh is not None,
                 registry_version=reloader.current.registry, rules_version=reloader.current.rules)
        consumer.run_forever()
    publisher.close()
    store.close()
    if health is not None:
        health.stop()
    log.info("gateway.stopped")


def _wait_for_broker(settings: Settings) -> None:
    """A broker that is down when the gateway starts is waited for (bounded backoff, logged), not a reason to
    exit: an outage makes the gateway wait. SIGTERM still stops it."""
    with connect(settings.broker_urls, heartbeat=settings.heartbeat_seconds) as probe:
        probe.ensure_connection(
            max_retries=None, interval_start=1, interval_step=2, interval_max=settings.retry_cap_seconds,
            errback=lambda exc, interval: log.warning("broker.unavailable", error_type=type(exc).__name__,
                                                      error=str(exc)[:200], retry_in_s=interval))


def _edi2_unconfigured(store: SqlStore) -> None:
    """Messages for EDI 2.0 receivers wait in the store while GATEWAY_MSH_URL is unset: say so, never drop them."""
    pending = store.pending(EDI2, 1000)
    if pending:
        log.warning("edi2.not_configured", waiting=len(pending),
                    what_to_do="set GATEWAY_MSH_URL and the HelseID settings (docs/transports.md)")
