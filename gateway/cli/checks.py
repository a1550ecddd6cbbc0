"""Checks of what an operator types, as click callbacks and parameter types.

Operator input lands in the audit trail, in SQL parameters and on terminals (issue 12, point 14): a newline
in ``--reason`` forged a second audit row in ``gateway audit``; ``--limit -1`` and a 30-digit ``--receiver``
ended in tracebacks. Text is one line of printable characters with a length limit; numbers are ranged;
times are ISO 8601. The error names the option and the rule, never echoes what was typed.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import click

MAX_REASON = 500
MAX_OPERATOR = 64
MAX_KEY = 100
MAX_LIMIT = 1_000_000
HERID = click.IntRange(1, 999_999_999)  # HER-ids are at most nine digits
LIMIT = click.IntRange(1, MAX_LIMIT)


def one_line(value: str, *, limit: int, what: str, empty_ok: bool = False) -> str:
    """The value, if it is one line of printable characters (no control characters: a newline, a tab, an
    escape sequence for the terminal) of at most ``limit`` characters."""
    if not empty_ok and not value.strip():
        raise click.BadParameter(f"{what} must not be empty")
    if len(value) > limit:
        raise click.BadParameter(f"{what} is longer than {limit} characters")
    if any(not c.isprintable() for c in value):
        raise click.BadParameter(f"{what} must be one line of printable characters (no control characters)")
    return value


def reason(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else one_line(value, limit=MAX_REASON, what="the reason")


def operator(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else one_line(value, limit=MAX_OPERATOR, what="the operator name")


def key(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An event_id, a store number or a MsgId."""
    return None if value is None else one_line(value, limit=MAX_KEY, what="the key")


def iso_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        if len(value) <= 10:
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("must be an ISO date or time, e.g. 2026-03-01 or 2026-03-01T12:00") from None
    return value


def kommunenummer(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{4}", value):
        raise click.BadParameter("must be a four-digit kommunenummer, e.g. 4601")
    return value


def reason_code(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,63}", value):
        raise click.BadParameter("must be a reason code such as ROUTING_UNKNOWN_KOMMUNE (docs/reason-codes.md)")
    return value


def fodselsnummer(_ctx: click.Context, _param: click.Parameter, value: Any) -> str:
    if not (isinstance(value, str) and re.fullmatch(r"[0-9]{11}", value)):
        raise click.BadParameter("must be eleven digits")
    return value
