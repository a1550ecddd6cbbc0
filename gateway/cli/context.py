"""The composition root's helpers: settings, store, registry and rules built once from the settings, with
errors that say what was wrong and what to do instead of a traceback."""

from __future__ import annotations

import getpass

import click

from gateway.delivery.bus import AmqpPublisher, Topology
from gateway.domain.registry import Register, RegisterError, load_register
from gateway.errors import ConfigurationError, StoreMissing, StoreUnavailable
from gateway.pipeline import Folders
from gateway.routing.rules import RuleError, RuleSet, load_rules
from gateway.settings import Settings
from gateway.store import SqlStore, open_store
from gateway.store.registry import StoreRegister


def settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def store(s: Settings | None = None, *, create: bool = False) -> SqlStore:
    """The store named by GATEWAY_STORE_URL. Read-only commands (``create=False``) refuse a SQLite file that
    does not exist, so a typo in the URL is an error instead of an empty answer."""
    s = s or settings()
    try:
        return open_store(s.store_url, create=create)
    except StoreMissing as exc:
        raise click.ClickException(str(exc)) from exc
    except (ValueError, StoreUnavailable) as exc:
        raise click.ClickException(f"cannot open the store ({s.store_url.split(':', 1)[0]}): {exc}; "
                                   "check GATEWAY_STORE_URL and that the database is running") from exc


def register(s: Settings) -> Register:
    if s.registry_in_store:
        found = StoreRegister(store(s).db)
        if not found.parties:
            raise click.ClickException("GATEWAY_REGISTRY=store, but the store holds no registry: "
                                       "run 'gateway registry import --parties FILE.json' first")
        return found
    assert not isinstance(s.registry, str)
    try:
        return load_register(s.registry)
    except FileNotFoundError as exc:
        raise click.ClickException(
            f"the contact-point registry {s.registry} does not exist; set GATEWAY_REGISTRY to the file") from exc
    except RegisterError as exc:
        raise click.ClickException(f"the contact-point registry {s.registry} is broken: {exc}") from exc


def rules(s: Settings) -> RuleSet:
    try:
        return load_rules(s.routes_dir, s.template_dir)
    except RuleError as exc:
        raise click.ClickException(f"the routing rules are broken; refusing to route wrongly: {exc}") from exc


def folders(s: Settings) -> Folders:
    return Folders(templates=str(s.template_dir), schemas=str(s.schema_dir))


def operator(s: Settings, given: str | None = None) -> str:
    """Who acts, for the audit trail: the OS login, with a given name (option or GATEWAY_OPERATOR) beside it."""
    login = getpass.getuser()
    named = given or s.operator
    return login if not named or named == login else f"{login} ({named})"


def topology(s: Settings) -> Topology:
    """How the gateway's queues are declared (GATEWAY_QUEUE_TYPE, GATEWAY_DELIVERY_LIMIT)."""
    return Topology(s.queue_type, s.delivery_limit if s.queue_type == "quorum" else 0)


def publisher(s: Settings, broker: str | None = None) -> AmqpPublisher:
    """A publisher that declares receivers' queues with the configured type, over every broker URL."""
    return AmqpPublisher(broker or s.broker_url, topology=topology(s))
