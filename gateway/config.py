"""Configuration from environment variables, read once at start-up.

Every setting has a default that works on a developer machine; production sets them all.
The README lists them; ``gateway --help`` names the same variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULTS = {
    "GATEWAY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    "GATEWAY_STORE_URL": "sqlite:///var/gateway.sqlite3",
    "GATEWAY_REGISTRY": str(REPO_ROOT / "fixtures" / "register.json"),
    "GATEWAY_OWN_HERID": "8199999",
    "GATEWAY_PREFETCH": "100",
    "GATEWAY_LOG_FORMAT": "auto",
    "GATEWAY_APPREC_DEADLINE_HOURS": "96",
    "GATEWAY_OVERDUE_CHECK_SECONDS": "60",
    "GATEWAY_OPERATOR": "",
    "GATEWAY_TWO_HOSPITALS_WINDOW_DAYS": "90",
}


@dataclass(frozen=True)
class Settings:
    broker_url: str
    store_url: str
    registry_path: Path
    own_herid: int
    prefetch: int
    log_format: str
    apprec_deadline_hours: float = 96.0
    overdue_check_seconds: float = 60.0
    two_hospitals_window_days: int = 90

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env

        def get(name: str) -> str:
            return source.get(name) or DEFAULTS[name]

        try:
            own_herid = int(get("GATEWAY_OWN_HERID"))
            prefetch = int(get("GATEWAY_PREFETCH"))
            deadline = float(get("GATEWAY_APPREC_DEADLINE_HOURS"))
            check = float(get("GATEWAY_OVERDUE_CHECK_SECONDS"))
            window = int(get("GATEWAY_TWO_HOSPITALS_WINDOW_DAYS"))
        except ValueError as exc:
            raise ValueError(f"GATEWAY_OWN_HERID, GATEWAY_PREFETCH, GATEWAY_APPREC_DEADLINE_HOURS, "
                             f"GATEWAY_OVERDUE_CHECK_SECONDS and GATEWAY_TWO_HOSPITALS_WINDOW_DAYS must be numbers "
                             f"({exc})") from exc
        if window < 0:
            raise ValueError("GATEWAY_TWO_HOSPITALS_WINDOW_DAYS must be 0 or more (0 turns the check off)")
        if prefetch < 2:
            raise ValueError("GATEWAY_PREFETCH must be at least 2: the consumer works on several events at once")
        log_format = get("GATEWAY_LOG_FORMAT")
        if log_format not in ("auto", "json", "console"):
            raise ValueError("GATEWAY_LOG_FORMAT must be one of auto, json, console")
        return cls(
            broker_url=get("GATEWAY_BROKER_URL"),
            store_url=get("GATEWAY_STORE_URL"),
            registry_path=Path(get("GATEWAY_REGISTRY")),
            own_herid=own_herid,
            prefetch=prefetch,
            log_format=log_format,
            apprec_deadline_hours=deadline,
            overdue_check_seconds=check,
            two_hospitals_window_days=window,
        )
