"""Settings are environment variables; ``gateway run`` audits what changed since the last start."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from gateway.cli.context import audit_settings
from gateway.settings import Settings
from gateway.store import open_store


def test_a_changed_setting_is_audited_once_with_the_password_masked(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    first = Settings(broker_url="amqp://gw:s3cret@rabbit:5672/prod", prefetch=100)
    audit_settings(store, first)
    audit_settings(store, first)  # the same settings again: nothing new
    assert [r["action"] for r in store.audit_log()] == ["settings"]
    audit_settings(store, replace(first, prefetch=40))
    rows = store.audit_log()
    assert [r["action"] for r in rows] == ["settings", "settings"]
    detail = json.loads(rows[0]["detail"])
    assert detail["changed"] == ["GATEWAY_PREFETCH"]
    assert detail["settings"]["GATEWAY_PREFETCH"] == "40"
    assert "s3cret" not in rows[0]["detail"] and "s3cret" not in rows[1]["detail"]
    assert "gw:***@rabbit" in detail["settings"]["GATEWAY_BROKER_URL"]
