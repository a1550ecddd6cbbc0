"""Shared test factories: one-event forms of the store's batch calls, synthetic messages, a CLI runner.

The store's interface is batch-shaped (the consumer records, decides and marks a batch at a time);
tests that walk one event through the states use these helpers instead of test-only store methods.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.messages.outbound import Melding, msg_id_for
from gateway.store import EventOutcome, Incoming, SqlStore, StoredEvent


def record_event(store: SqlStore, body: bytes, event_id: str | None, amqp_message_id: str | None) -> StoredEvent:
    return store.record_events([Incoming(body, event_id, amqp_message_id)])[0]


def park_event(store: SqlStore, ref: int, code: str, reason: str) -> None:
    store.record_outcomes([EventOutcome(ref, "parked", code, reason)])


def record_route(store: SqlStore, ref: int, samhandlingspunkt: int, kommunenummer: str,
                 meldinger: Sequence[Melding]) -> None:
    store.record_outcomes([EventOutcome(ref, "routed", None, None, samhandlingspunkt, kommunenummer,
                                        tuple(meldinger))])


def mark_sent(store: SqlStore, ref: int, msg_ids: Iterable[str]) -> None:
    store.mark_sent_many([(ref, list(msg_ids))])


def mark_not_shared(store: SqlStore, ref: int, why: str) -> None:
    store.record_outcomes([EventOutcome(ref, "not_shared", None, why)])


def melding(event_id: str, herid: int, xml: bytes = b"<x/>") -> Melding:
    """A stand-in message for store tests (the XML is not looked at there)."""
    return Melding(msg_id=msg_id_for(event_id, herid), event_id=event_id, msg_type="DIALOG_HELSEFAGLIG",
                   from_herid=1, to_herid=herid, role="fastlege", why="test", generated_at="2026-01-01T00:00:00",
                   xml=xml)


@dataclass(frozen=True)
class CliResult:
    """What a command printed and returned, shaped like subprocess.CompletedProcess."""

    returncode: int
    stdout: str
    stderr: str


def cli(env: Mapping[str, str], *args: str) -> CliResult:
    """Runs ``gateway ARGS`` in-process with click's CliRunner, with exactly the GATEWAY_* settings of
    ``env`` (any other GATEWAY_* variable of the test process is unset for the call)."""
    from click.testing import CliRunner

    from gateway.cli.main import main

    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GATEWAY_")}
    overrides.update({k: v for k, v in env.items() if k.startswith("GATEWAY_")})
    result = CliRunner().invoke(main, list(args), env=overrides, catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def cli_json(env: Mapping[str, str], *args: str) -> Any:
    done = cli(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
