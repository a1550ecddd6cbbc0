"""Settings: the only place that reads ``GATEWAY_*`` environment variables.

Every other module receives plain values (a folder, a number, a URL) from the composition root
(``gateway.cli``), so it can be tested without touching the environment. The table ``SETTINGS`` is
the single description of each variable: ``gateway --help`` and ``docs/configuration.md`` are
generated from it, and a test keeps both in step.

The data the gateway ships (routing rules, note templates, the contract's JSON Schema, the
official XSDs and the synthetic demo registry) lives in the package (``gateway/resources``) and is
found through ``importlib.resources``, so an installed wheel runs with no checkout on disk. The
``*_DIR`` settings point at an operator's own copy instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.errors import ConfigurationError


def packaged(*parts: str) -> Path:
    """A file or folder the package ships. The package is installed as files (wheel or editable), so the
    resource is a real path that lxml, Jinja and YAML can open directly."""
    return Path(str(resources.files("gateway").joinpath("resources", *parts)))


PACKAGED_ROUTES = packaged("routes")
PACKAGED_TEMPLATES = packaged("templates")
PACKAGED_SCHEMAS = packaged("schemas")
PACKAGED_FIXTURES = packaged("fixtures")


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default (as the text a user would type) and meaning."""

    name: str
    default: str
    help: str
    attr: str
    parse: Callable[[str], Any] = str
    check: Callable[[Any], str | None] = field(default=lambda _v: None)


def _int(value: str) -> int:
    return int(value)


def _float(value: str) -> float:
    return float(value)


def _path_or_store(value: str) -> Path | str:
    return "store" if value == "store" else Path(value)


def _opt_path(value: str) -> Path | None:
    return Path(value) if value else None


def _broker_urls(value: str) -> str:
    """One URL, or the nodes of one cluster separated by ';' or ','; kept as kombu's ';'-joined form."""
    urls = [u.strip() for u in value.replace(",", ";").split(";") if u.strip()]
    if not urls or any("://" not in u for u in urls):
        raise ValueError(value)
    return ";".join(urls)


def _one_of(*allowed: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"


def _at_least(minimum: float, why: str = "") -> Callable[[Any], str | None]:
    return lambda v: None if v >= minimum else f"must be at least {minimum}{why}"


SETTINGS: tuple[Setting, ...] = (
    Setting("GATEWAY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//",
            "RabbitMQ URL (amqp://user:password@host:port/vhost); for a cluster, one URL per node separated by "
            "';' or ',': the gateway connects to the first that answers and fails over to the next.",
            "broker_url", _broker_urls),
    Setting("GATEWAY_QUEUE_TYPE", "classic",
            "Type of the queues the gateway declares (gateway.kartlegging, gateway.parked, {herid}_async): "
            "classic on a single node, quorum (replicated) on a cluster. An existing queue keeps its type.",
            "queue_type", str, _one_of("classic", "quorum")),
    Setting("GATEWAY_DELIVERY_LIMIT", "50",
            "Quorum only: deliveries of one event after which the broker dead-letters it to gateway.parked, "
            "a second line behind the gateway's own limit of 10 (0: no broker limit).",
            "delivery_limit", _int, _at_least(0)),
    Setting("GATEWAY_HEARTBEAT_SECONDS", "30",
            "AMQP heartbeat: a silent broker node is given up after about twice this, then the next URL is tried.",
            "heartbeat_seconds", _int, _at_least(2)),
    Setting("GATEWAY_STORE_URL", "sqlite:///var/gateway.sqlite3",
            "Message store: sqlite:///relative/path, sqlite:////absolute/path or postgresql://user@host/db.",
            "store_url"),
    Setting("GATEWAY_REGISTRY", "(the synthetic demo registry)",
            "Contact-point registry: a JSON file, or 'store' for the registry imported into the store.",
            "registry", _path_or_store),
    Setting("GATEWAY_ROUTES", "(the packaged routes/)",
            "Folder of routing rules (default.yaml and kommune/NNNN.yaml).", "routes_dir", _opt_path),
    Setting("GATEWAY_TEMPLATE_DIR", "(the packaged templates/)",
            "Folder of note templates (*.txt.j2).", "template_dir", _opt_path),
    Setting("GATEWAY_SCHEMA_DIR", "(the packaged schemas/)",
            "Folder of the official XSDs (msghead/, dialogmelding/, plo/, apprec/, bundles/).", "schema_dir",
            _opt_path),
    Setting("GATEWAY_OWN_HERID", "8199999", "HER-id of the gateway's own inbound queue ({herid}_async).",
            "own_herid", _int),
    Setting("GATEWAY_PREFETCH", "100", "Events taken from the queue at once (a batch is half of it).",
            "prefetch", _int, _at_least(2, ": the consumer works on several events at once")),
    Setting("GATEWAY_LOG_FORMAT", "auto", "Log lines: json, console, or auto (console on a terminal).",
            "log_format", str, _one_of("auto", "json", "console")),
    Setting("GATEWAY_APPREC_DEADLINE_HOURS", "96", "Hours without an AppRec before a sent message is overdue.",
            "apprec_deadline_hours", _float, _at_least(0)),
    Setting("GATEWAY_OVERDUE_CHECK_SECONDS", "60", "How often the overdue check runs.",
            "overdue_check_seconds", _float, _at_least(0.1)),
    Setting("GATEWAY_TWO_HOSPITALS_WINDOW_DAYS", "90",
            "Days within which a second hospital's SP1/SP2 flags the event (0 turns the check off).",
            "two_hospitals_window_days", _int, _at_least(0)),
    Setting("GATEWAY_OPERATOR", "(the login name)",
            "Name recorded beside the OS login in the audit trail for operator commands.", "operator"),
)

_UNSET_DEFAULTS = {"GATEWAY_REGISTRY", "GATEWAY_ROUTES", "GATEWAY_TEMPLATE_DIR", "GATEWAY_SCHEMA_DIR",
                   "GATEWAY_OPERATOR"}


@dataclass(frozen=True)
class Settings:
    """Plain values for the whole gateway; built once by the composition root."""

    broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    store_url: str = "sqlite:///var/gateway.sqlite3"
    queue_type: str = "classic"
    delivery_limit: int = 50
    heartbeat_seconds: int = 30
    registry: Path | str = PACKAGED_FIXTURES / "register.json"
    routes_dir: Path = PACKAGED_ROUTES
    template_dir: Path = PACKAGED_TEMPLATES
    schema_dir: Path = PACKAGED_SCHEMAS
    own_herid: int = 8199999
    prefetch: int = 100
    log_format: str = "auto"
    apprec_deadline_hours: float = 96.0
    overdue_check_seconds: float = 60.0
    two_hospitals_window_days: int = 90
    operator: str = ""

    @property
    def broker_urls(self) -> tuple[str, ...]:
        """The nodes to try, in order (one for a single broker)."""
        return tuple(self.broker_url.split(";"))

    @property
    def registry_in_store(self) -> bool:
        return self.registry == "store"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Reads every ``GATEWAY_*`` variable once; a bad value is an error naming the variable."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for s in SETTINGS:
            raw = source.get(s.name, "")
            if raw == "":
                if s.name in _UNSET_DEFAULTS:
                    continue  # the dataclass default: packaged data or nothing
                raw = s.default
            try:
                value = s.parse(raw)
            except ValueError:
                raise ConfigurationError(f"{s.name}={raw!r} is not valid: {s.help}") from None
            problem = s.check(value)
            if problem:
                raise ConfigurationError(f"{s.name} {problem} (got {raw!r})")
            if value is not None:
                values[s.attr] = value
        return cls(**values)


def help_table() -> str:
    """The environment variables for ``gateway --help`` (click keeps a ``\\b`` paragraph as written)."""
    width = max(len(s.name) for s in SETTINGS) + 2
    return "\b\n" + "\n".join(f"  {s.name:<{width}} {s.help} [default: {s.default}]" for s in SETTINGS)


def markdown_table() -> str:
    """The configuration table of ``docs/configuration.md``."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    rows += [f"| `{s.name}` | `{s.default}` | {s.help} |" for s in SETTINGS]
    return "\n".join(rows)


if __name__ == "__main__":  # python -m gateway.settings prints the table for docs/configuration.md
    print(markdown_table())
