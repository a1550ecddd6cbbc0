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

from gateway import __version__
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


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


# The senders of the synthetic demo registry (hospital departments and kommune services), like the
# registry default: a real deployment names its own.
DEMO_SENDERS = "8100601,8100701,8100801,8100103,8100203,8100302"


def _herids(value: str) -> tuple[int, ...]:
    """``8100601, 8100701`` → (8100601, 8100701); a word that is not a number is a ValueError."""
    return tuple(dict.fromkeys(int(part) for part in value.replace(" ", "").split(",") if part))


def _at_least_one(value: tuple[int, ...]) -> str | None:
    if not value:
        return "must name at least one HER-id"
    return None if all(v > 0 for v in value) else "must be positive HER-ids"


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
    Setting("GATEWAY_SERVED_HERIDS", DEMO_SENDERS,
            "Comma-separated HER-ids the gateway is the messaging system for: events may only name these as "
            "sender, and their {herid}_async queues (receipts, replies) are consumed.",
            "served_herids", _herids, _at_least_one),
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
    Setting("GATEWAY_MSH_URL", "(none: EDI 2.0 off)",
            "Base URL of NHN's Meldingstjener API (EDI 2.0); see docs/transports.md for the hosts.", "msh_url"),
    Setting("GATEWAY_HELSEID_TOKEN_URL", "(none)", "HelseID token endpoint ({authority}/connect/token).",
            "helseid_token_url"),
    Setting("GATEWAY_HELSEID_CLIENT_ID", "(none)", "The gateway's HelseID client id.", "helseid_client_id"),
    Setting("GATEWAY_HELSEID_KEY", "(none)",
            "Path to the HelseID client's private key (JWK JSON or PEM); never logged.", "helseid_key", _opt_path),
    Setting("GATEWAY_MSH_SOURCE_SYSTEM", "pakkeforlop-gateway, <version>",
            "The nhn-source-system header sent on every Meldingstjener call.", "msh_source_system"),
    Setting("GATEWAY_MSH_POLL_SECONDS", "10",
            "How often the EDI 2.0 outbox and inbox run (the outbox also backs off on its own).",
            "msh_poll_seconds", _float, _at_least(0.05)),
    Setting("GATEWAY_OPERATOR", "(the login name)",
            "Name recorded beside the OS login in the audit trail for operator commands.", "operator",
            str, lambda v: _operator_name_problem(v)),
    Setting("GATEWAY_SECRET_FILE", "var/gateway.secret",
            "File with this installation's secret for the keyed patient hash; made (0600) at first start. Keep it "
            "outside the store and back it up: without it the store cannot find a patient's earlier events.",
            "secret_file", Path),
    Setting("GATEWAY_SYNTHETIC_FNR", "refuse",
            "Synthetic test fødselsnumre (month + 80): refuse (production) or accept (test and demo installations).",
            "synthetic_fnr", str, _one_of("refuse", "accept")),
    Setting("GATEWAY_MAX_AGE_YEARS", "120", "A patient older than this on the day of the kartlegging is parked.",
            "max_age_years", _int, _at_least(1)),
    Setting("GATEWAY_MAX_PAST_DAYS", "1095",
            "A kartlegging performed more than this many days before it arrives is parked (0 turns the check off).",
            "max_past_days", _int, _at_least(0)),
    Setting("GATEWAY_MAX_FUTURE_DAYS", "1",
            "A kartlegging dated more than this many days after it arrives is parked (0 turns the check off).",
            "max_future_days", _int, _at_least(0)),
    Setting("GATEWAY_MAX_EVENT_BYTES", "1048576",
            "Largest event body read; a larger one is parked unread, kept as its size and SHA-256 only.",
            "max_event_bytes", _int, _at_least(4096)),
    Setting("GATEWAY_MAX_RECEIPT_BYTES", "1048576",
            "Largest AppRec body read; a larger one is parked unread, kept as its size and SHA-256 only.",
            "max_receipt_bytes", _int, _at_least(4096)),
    Setting("GATEWAY_REGISTRY_MAX_REMOVE_SHARE", "0.1",
            "Share of the parties or GP rows in the store a registry import may remove without --force.",
            "registry_max_remove_share", _float, lambda v: None if 0 <= v <= 1 else "must be between 0 and 1"),
    Setting("GATEWAY_RETENTION_DAYS", "(keep everything)",
            "Days finished events and their messages are kept; 'gateway retention' purges older ones (unset: "
            "keep everything).", "retention_days", _int, _at_least(1)),
    Setting("GATEWAY_RELOAD_SECONDS", "10",
            "How often the running gateway looks for a new registry import or changed routing rules and "
            "switches to them between batches (0: never; a restart is then needed).",
            "reload_seconds", _float, _at_least(0)),
    Setting("GATEWAY_RETRY_PARKED_AFTER_IMPORT", "false",
            "After each registry import the running gateway sees, replay the events parked for a routing reason "
            "(audited as 'system').", "retry_parked_after_import", _bool),
    Setting("GATEWAY_PARKED_TTL_HOURS", "168",
            "Hours a notification copy stays on gateway.parked (the store is the truth; 0: no expiry).",
            "parked_ttl_hours", _float, _at_least(0)),
    Setting("GATEWAY_RETRY_CAP_SECONDS", "30",
            "Longest wait between two tries while the store or the broker is unavailable (bounded, jittered "
            "backoff; the gateway keeps trying until it is stopped).", "retry_cap_seconds", _float, _at_least(0.1)),
    Setting("GATEWAY_HEALTH_HOST", "127.0.0.1",
            "Address of 'gateway run's /healthz, /readyz and /metrics (0.0.0.0 in a container).", "health_host"),
    Setting("GATEWAY_HEALTH_PORT", "9464", "Port of 'gateway run's health and metrics server (0 turns it off).",
            "health_port", _int, _at_least(0)),
    Setting("GATEWAY_CONSOLE_HOST", "127.0.0.1", "Address the web console ('gateway console') listens on.",
            "console_host"),
    Setting("GATEWAY_CONSOLE_PORT", "8080", "Port of the web console.", "console_port", _int, _at_least(1)),
    Setting("GATEWAY_CONSOLE_SECRET_FILE", "var/console-secret",
            "File with the key that signs console session cookies (made, readable by the owner only, if missing; "
            "replicas behind one address must share it).", "console_secret_file", Path),
    Setting("GATEWAY_CONSOLE_SESSION_MINUTES", "30", "Minutes without a request before a console user is signed out.",
            "console_session_minutes", _float, _at_least(1)),
    Setting("GATEWAY_CONSOLE_SECURE_COOKIES", "false",
            "true when the console is served over HTTPS (behind TLS): the session cookie is then sent over HTTPS "
            "only.", "console_secure_cookies", _bool),
    Setting("GATEWAY_CONSOLE_MAX_FAILED_SIGNINS", "5",
            "Failed sign-ins (per user name, and per client address) before sign-in is refused for 15 minutes.",
            "console_max_failed_signins", _int, _at_least(1)),
    Setting("GATEWAY_CONSOLE_LANGUAGE", "nb", "The console's default language: nb (Bokmål) or en.",
            "console_language", str, _one_of("nb", "en")),
)

def _operator_name_problem(value: str) -> str | None:
    """An operator's name goes into the audit trail: printable, one line, short."""
    if len(value) > 64 or any(not c.isprintable() for c in value):
        return "must be at most 64 printable characters on one line"
    return None


_UNSET_DEFAULTS = {"GATEWAY_REGISTRY", "GATEWAY_ROUTES", "GATEWAY_TEMPLATE_DIR", "GATEWAY_SCHEMA_DIR",
                   "GATEWAY_RETENTION_DAYS", "GATEWAY_OPERATOR", "GATEWAY_MSH_URL", "GATEWAY_HELSEID_TOKEN_URL",
                   "GATEWAY_HELSEID_CLIENT_ID",
                   "GATEWAY_HELSEID_KEY", "GATEWAY_MSH_SOURCE_SYSTEM"}


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
    served_herids: tuple[int, ...] = tuple(int(h) for h in DEMO_SENDERS.split(","))
    prefetch: int = 100
    log_format: str = "auto"
    apprec_deadline_hours: float = 96.0
    overdue_check_seconds: float = 60.0
    two_hospitals_window_days: int = 90
    operator: str = ""
    msh_url: str = ""
    helseid_token_url: str = ""
    helseid_client_id: str = ""
    helseid_key: Path | None = None
    msh_source_system: str = f"pakkeforlop-gateway, {__version__}"
    msh_poll_seconds: float = 10.0

    health_host: str = "127.0.0.1"
    health_port: int = 9464
    console_host: str = "127.0.0.1"
    console_port: int = 8080
    console_secret_file: Path = Path("var/console-secret")
    console_session_minutes: float = 30.0
    console_secure_cookies: bool = False
    console_max_failed_signins: int = 5
    console_language: str = "nb"

    secret_file: Path = Path("var/gateway.secret")
    synthetic_fnr: str = "refuse"
    max_age_years: int = 120
    max_past_days: int = 1095
    max_future_days: int = 1
    max_event_bytes: int = 1024 * 1024
    max_receipt_bytes: int = 1024 * 1024
    retry_cap_seconds: float = 30.0
    registry_max_remove_share: float = 0.1
    retention_days: int | None = None
    reload_seconds: float = 10.0
    retry_parked_after_import: bool = False
    parked_ttl_hours: float = 168.0

    @property
    def edi2_configured(self) -> bool:
        return bool(self.msh_url)

    def edi2_missing(self) -> list[str]:
        """The EDI 2.0 settings still missing when GATEWAY_MSH_URL is set (the gateway refuses to start)."""
        wanted = {"GATEWAY_HELSEID_TOKEN_URL": self.helseid_token_url, "GATEWAY_HELSEID_CLIENT_ID":
                  self.helseid_client_id, "GATEWAY_HELSEID_KEY": self.helseid_key}
        return [name for name, value in wanted.items() if not value] if self.msh_url else []

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


BEGIN, END = "<!-- settings table: generated by python -m gateway.settings DOC -->", "<!-- end of settings table -->"


def update_doc(path: Path) -> None:
    """Rewrites the table between the markers in ``path`` (docs/configuration.md)."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    path.write_text(text[:start] + "\n" + markdown_table() + "\n" + text[end:], encoding="utf-8")


if __name__ == "__main__":  # python -m gateway.settings docs/configuration.md
    import sys

    if len(sys.argv) > 1:
        update_doc(Path(sys.argv[1]))
    else:
        print(markdown_table())
