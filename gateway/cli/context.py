"""The composition root's helpers: settings, store, registry and rules built once from the settings, with
errors that say what was wrong and what to do instead of a traceback."""

from __future__ import annotations

import json
import os
import pwd
import re
from typing import TYPE_CHECKING

import click

from gateway.errors import ConfigurationError, StoreMissing, StoreUnavailable
from gateway.settings import Settings
from gateway.store import SqlStore, open_store
from gateway.store.secret import load_or_create_secret, read_secret

# The broker client, the routing and the XML stack are imported where they are used: an operator's list
# command needs none of them and starts in a fraction of a second (issue 15).
if TYPE_CHECKING:
    from gateway.delivery.bus import AmqpPublisher, Topology
    from gateway.delivery.edi2.msh import MshClient
    from gateway.domain.kartlegging import Checks
    from gateway.domain.registry import Register
    from gateway.pipeline import Folders
    from gateway.routing.rules import RuleSet


def settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc


def secret(s: Settings, *, create: bool) -> bytes | None:
    """The installation's secret for the keyed patient hash (GATEWAY_SECRET_FILE); ``gateway run`` makes it at
    first start, read-only tools only read it (None when there is none yet)."""
    try:
        return load_or_create_secret(s.secret_file) if create else read_secret(s.secret_file)
    except ConfigurationError as exc:
        raise click.ClickException(f"GATEWAY_SECRET_FILE: {exc}") from exc
    except OSError as exc:
        raise click.ClickException(f"GATEWAY_SECRET_FILE {s.secret_file} cannot be read or made: "
                                   f"{exc.strerror}") from exc


def store(s: Settings | None = None, *, create: bool = False, keyed: bool = False) -> SqlStore:
    """The store named by GATEWAY_STORE_URL. Read-only commands (``create=False``) refuse a SQLite file that
    does not exist, so a typo in the URL is an error instead of an empty answer. ``keyed``: bound to the
    installation's secret (made if missing) for commands that write or look up patient keys."""
    s = s or settings()
    try:
        return open_store(s.store_url, create=create, secret=secret(s, create=True) if keyed else None)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    except StoreMissing as exc:
        raise click.ClickException(str(exc)) from exc
    except (ValueError, StoreUnavailable) as exc:
        raise click.ClickException(f"cannot open the store ({s.store_url.split(':', 1)[0]}): {exc}; "
                                   "check GATEWAY_STORE_URL and that the database is running") from exc


def lookup_store(s: Settings) -> SqlStore:
    """The store bound to the installation's existing secret, for finding a patient by fødselsnummer; a
    lookup never makes a secret (that would key nothing that is stored)."""
    found = secret(s, create=False)
    if found is None:
        raise click.ClickException(f"no secret at GATEWAY_SECRET_FILE ({s.secret_file}): patients can only be "
                                   "found once 'gateway run' has made it; point GATEWAY_SECRET_FILE at the "
                                   "gateway's own file")
    try:
        return open_store(s.store_url, create=False, secret=found)
    except (ConfigurationError, StoreMissing) as exc:
        raise click.ClickException(str(exc)) from exc
    except (ValueError, StoreUnavailable) as exc:
        raise click.ClickException(f"cannot open the store: {exc}") from exc


def register(s: Settings) -> Register:
    from gateway.domain.registry import RegisterError, load_register
    from gateway.store.registry import StoreRegister

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
    from gateway.routing.rules import RuleError, load_rules

    try:
        return load_rules(s.routes_dir, s.template_dir)
    except RuleError as exc:
        raise click.ClickException(f"the routing rules are broken; refusing to route wrongly: {exc}") from exc


def folders(s: Settings) -> Folders:
    from gateway.pipeline import Folders

    return Folders(templates=str(s.template_dir), schemas=str(s.schema_dir))


def checks(s: Settings) -> Checks:
    from gateway.domain.kartlegging import Checks

    return Checks(accept_synthetic=s.synthetic_fnr == "accept", max_age_years=s.max_age_years,
                  max_past_days=s.max_past_days, future_days=s.max_future_days)


def os_login() -> str:
    """The OS account running the command, from the process's user id: ``getpass.getuser`` reads $USER and
    $LOGNAME first, which anyone can set, and the audit trail must name who really acted."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a container user without a passwd entry
        return f"uid {os.getuid()}"


def operator(s: Settings, given: str | None = None) -> str:
    """Who acts, for the audit trail: the OS login, with a given name (option or GATEWAY_OPERATOR) beside it."""
    login = os_login()
    named = given or s.operator
    return login if not named or named == login else f"{login} ({named})"


def meldingstjener(s: Settings) -> MshClient | None:
    """The Meldingstjener client when EDI 2.0 is configured (GATEWAY_MSH_URL), else None. A half-done
    configuration stops the gateway with the names of what is missing rather than failing on the first send."""
    if not s.edi2_configured:
        return None
    missing = s.edi2_missing()
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise click.ClickException(f"GATEWAY_MSH_URL is set, but {', '.join(missing)} {verb} not: set them "
                                   "(docs/transports.md) or unset GATEWAY_MSH_URL")
    from gateway.delivery.edi2.helseid import HelseIdClient, HelseIdError
    from gateway.delivery.edi2.msh import MshClient

    assert s.helseid_key is not None
    try:
        helseid = HelseIdClient(token_url=s.helseid_token_url, client_id=s.helseid_client_id, key_path=s.helseid_key)
    except (HelseIdError, OSError, ValueError) as exc:
        raise click.ClickException(f"GATEWAY_HELSEID_KEY {s.helseid_key}: cannot use the key "
                                   f"({type(exc).__name__}); it must be a private JWK (JSON) or PEM file") from exc
    return MshClient(base_url=s.msh_url, source_system=s.msh_source_system, helseid=helseid)


def topology(s: Settings) -> Topology:
    """How the gateway's queues are declared (GATEWAY_QUEUE_TYPE, GATEWAY_DELIVERY_LIMIT)."""
    from gateway.delivery.bus import Topology

    return Topology(s.queue_type, s.delivery_limit if s.queue_type == "quorum" else 0)


def publisher(s: Settings, broker: str | None = None) -> AmqpPublisher:
    """A publisher that declares receivers' queues with the configured type, over every broker URL."""
    from gateway.delivery.bus import AmqpPublisher

    return AmqpPublisher(broker or s.broker_url, topology=topology(s))


def _shown(value: object) -> str:
    """A setting as the audit trail shows it: a password in a URL is masked."""
    return re.sub(r"(://[^:/@;]+:)[^@;]*@", r"\1***@", str(value))


def audit_settings(store: SqlStore, s: Settings) -> None:
    """Settings are environment variables, so nothing records when they change: ``gateway run`` compares them
    with what the last start recorded and audits the difference (names and new values, passwords masked), as
    the OS user who started it."""
    from gateway.settings import SETTINGS

    now = {setting.name: _shown(getattr(s, setting.attr)) for setting in SETTINGS}
    last = store.last_audit("settings")
    before = json.loads(last["detail"] or "{}").get("settings", {}) if last else {}
    changed = sorted(name for name in now if before.get(name) != now[name])
    if last is not None and not changed:
        return
    store.audit(os_login(), "settings", "gateway run", "settings at start differ from the last start" if last
                else "first start: the settings in use", json.dumps({"changed": changed, "settings": now},
                                                                   ensure_ascii=False))
