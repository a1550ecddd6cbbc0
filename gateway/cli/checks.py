"""Checks of what an operator types, as click callbacks and parameter types.

Operator input lands in the audit trail, in SQL parameters and on terminals (issue 12, point 14): a newline
in ``--reason`` forged a second audit row in ``gateway audit``; ``--limit -1`` and a 30-digit ``--receiver``
ended in tracebacks. Text is one line of printable characters with a length limit; numbers are ranged;
times are ISO 8601. The error names the option and the rule, never echoes what was typed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
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
    """One line with at least one word (three letters or more): "x" or "..." tells the next operator nothing."""
    if value is None:
        return None
    one_line(value, limit=MAX_REASON, what="the reason")
    if not re.search(r"[^\W\d_]{3,}", value):
        raise click.BadParameter("the reason must say why in words (e.g. 'kommune 4601 added to the registry')")
    return value


def confirm_bulk(what: str, yes: bool) -> None:
    """A bulk action asks on a terminal; a script must say ``--yes`` (issue 15): nothing changes many things
    because a command was pasted into the wrong window."""
    import sys

    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(f"{what}: not on a terminal, so nobody can confirm; add --yes")
    if not click.confirm(f"{what}?", default=False):
        raise click.ClickException("nothing done")


def operator(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else one_line(value, limit=MAX_OPERATOR, what="the operator name")


def key(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An event_id, a store number or a MsgId."""
    return None if value is None else one_line(value, limit=MAX_KEY, what="the key")


WHEN_HELP = ("ISO date or time (with or without offset), 30.11.2026 [14:00], today, yesterday, now, or -2h/-30m/-7d; "
             "Europe/Oslo unless an offset is given")
_RELATIVE = re.compile(r"-([0-9]{1,6})\s*(m|min|h|d|w)")
_NORWEGIAN = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})(?:[ T]([0-9]{1,2}):([0-9]{2}))?")


def parse_when(value: str, *, end_of_day: bool = False, now: datetime | None = None) -> datetime:
    """An operator's time as an aware datetime. A bare date is that day's midnight in Oslo, or, for an
    ``--until`` (``end_of_day``), the next midnight: "--until 30.11.2026" includes the 30th, as people mean
    it. Raises ValueError on anything else, so a typo is an error and not an empty list (issue 15)."""
    from zoneinfo import ZoneInfo

    oslo = ZoneInfo("Europe/Oslo")
    text = value.strip().lower()
    current = now or datetime.now(UTC)
    day: date | None = None
    if text in ("now", "nå"):
        return current
    if text in ("today", "i dag", "idag"):
        day = current.astimezone(oslo).date()
    elif text in ("yesterday", "i går", "igår"):
        day = current.astimezone(oslo).date() - timedelta(days=1)
    elif (rel := _RELATIVE.fullmatch(text)) is not None:
        unit = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}[rel.group(2)]
        return current - timedelta(**{unit: int(rel.group(1))})
    elif (nor := _NORWEGIAN.fullmatch(text)) is not None:
        d, mo, y, hh, mm = nor.groups()
        if hh is None:
            day = date(int(y), int(mo), int(d))
        else:
            return datetime(int(y), int(mo), int(d), int(hh), int(mm), tzinfo=oslo)
    elif len(text) == 10:
        day = date.fromisoformat(text)
    else:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=oslo)
    if end_of_day:
        day = day + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=oslo)


def stored(moment: datetime) -> str:
    """As the store writes times (UTC ISO, milliseconds), so a text comparison is a time comparison."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def iso_time(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--since``/``--until``: the time in the store's form."""
    if value is None:
        return None
    try:
        return stored(parse_when(value, end_of_day=(param.name or "").startswith("until")))
    except (ValueError, OverflowError):
        raise click.BadParameter(f"not a time; use {WHEN_HELP}") from None


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


def optional_fodselsnummer(_ctx: click.Context, _param: click.Parameter, value: Any) -> str | None:
    """``--fnr``: eleven digits; the error never repeats what was typed (it may be a real number)."""
    return None if value is None else fodselsnummer(_ctx, _param, value)
