"""The envelope of an event body, read before (and without) trusting it: its top-level ``event_id``, and a
JSON reading that refuses a key given twice. Both work on hostile input in linear time and never echo a value."""

from __future__ import annotations

import json
import re
from typing import Any

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


_UUID = re.compile(UUID_PATTERN)
_JSON_PARSE_LIMIT = 4 * 1024 * 1024  # bigger bodies are over any sane GATEWAY_MAX_EVENT_BYTES: scanned, not parsed
_SCAN_LIMIT = 65536
_STRUCTURE = re.compile(rb'["{}\[\]]')
_ID_VALUE = re.compile(rb'[ \t\r\n]*:[ \t\r\n]*"([0-9A-Fa-f-]{36})"')


def _usable(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and _UUID.match(value) else None


def event_id_of(body: bytes) -> str | None:
    """The event_id of a raw body, if it has a usable one; for bookkeeping of bad events too.

    Only the top-level ``event_id`` counts (issue 12, point 4): an event that quotes another's id in a nested
    object (``{"correction_of": {"event_id": A}, …, "event_id": B}``) is B, never A. A body that parses is
    read as JSON (the same reading ``parse_event`` gives it); a broken or oversized one is scanned, its first
    64 kB only, by ``_top_level_event_id``."""
    if len(body) <= _JSON_PARSE_LIMIT:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            pass
        else:
            return _usable(data.get("event_id")) if isinstance(data, dict) else None
    return _usable(_top_level_event_id(body[:_SCAN_LIMIT]))


def _top_level_event_id(text: bytes) -> str | None:
    """The first ``"event_id": "<36 characters>"`` at depth one of a possibly broken JSON text. Linear time:
    every step moves forward, and each string is found with ``find`` (a backslash run before a quote is
    counted once, for that quote only)."""
    depth, i, n = 0, 0, len(text)
    while i < n:
        found = _STRUCTURE.search(text, i)
        if found is None:
            return None
        c, i = text[found.start()], found.end()
        if c == 0x22:  # a string: find its unescaped closing quote
            start = i
            while True:
                end = text.find(b'"', i)
                if end < 0:
                    return None
                back = end - 1
                while back >= start and text[back] == 0x5C:
                    back -= 1
                i = end + 1
                if (end - 1 - back) % 2 == 0:
                    break
            if depth == 1 and text[start:end] == b"event_id":
                value = _ID_VALUE.match(text, i)
                if value is not None:
                    return value.group(1).decode("ascii")
        elif c in (0x7B, 0x5B):
            depth += 1
        else:
            depth -= 1
    return None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON allows a key twice and Python keeps the last; a sender's second ``event_id`` or ``fnr`` would then
    be read differently by different readers. Refused."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


