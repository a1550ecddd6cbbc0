"""Calendar arithmetic in Norwegian local time.

A kartlegging happens on a Norwegian calendar day and reports are read by Norwegian staff, so every
date and month here is the one on a wall clock in Oslo. An instant stored in UTC just before
midnight belongs to the next day (and, at a month's end, to the next month) in Oslo; a naive
datetime is refused because its zone would be a guess.

Conversion goes through UTC: ``astimezone`` from Europe/Oslo to Europe/Oslo is a no-op, which would keep a
wall time that does not exist (the hour skipped in March) with the wrong offset.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")


def oslo_date(value: date | datetime) -> date:
    """The Oslo calendar date of ``value``: a date is taken as it is, an aware datetime is converted."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a time zone (UTC or Europe/Oslo)")
        return value.astimezone(UTC).astimezone(OSLO).date()
    return value


def oslo_month(value: date | datetime) -> str:
    """``YYYY-MM`` of the Oslo calendar date; the month key of every report."""
    return oslo_date(value).strftime("%Y-%m")


def oslo_isoformat(value: datetime) -> str:
    """ISO 8601 with the Oslo offset (+01:00 or +02:00), to the second."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give a time zone (UTC or Europe/Oslo)")
    return value.astimezone(UTC).astimezone(OSLO).isoformat(timespec="seconds")
