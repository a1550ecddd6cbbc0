"""Presentation helpers shared by the commands: aligned tables, JSON, and pages that say what they leave out.

Lists never truncate silently (issue 15): every list says "showing N of M" and how to see the next page. That
line goes to stderr, so ``--json`` on stdout stays one parseable document; on a terminal both are seen."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import click

# Columns the store keeps as JSON text or a comma list: --json gives them as JSON, not as strings in JSON.
NESTED_JSON = ("apprec_errors", "sender_contact", "errors")
LISTS = ("flags",)


def nested(row: dict[str, Any]) -> dict[str, Any]:
    """A row for JSON output: no body or XML, JSON columns decoded, comma lists as lists."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k in ("xml", "body"):
            continue
        if k in NESTED_JSON and isinstance(v, str):
            with contextlib.suppress(ValueError):
                v = json.loads(v)
        elif k in LISTS:
            v = [f for f in v.split(",") if f] if isinstance(v, str) else (v or [])
        out[k] = v
    return out


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c) if r.get(c) is not None else "")) for r in rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        click.echo("  ".join(str(r.get(c) if r.get(c) is not None else "").ljust(widths[c]) for c in columns))


def emit(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    """JSON carries every column (but never a body or XML); the table only the readable ones."""
    if as_json:
        click.echo(json.dumps([nested(r) for r in rows], ensure_ascii=False, indent=2, default=str))
    else:
        table(rows, columns)


def page(rows: list[dict[str, Any]], total: int, offset: int, columns: list[str], as_json: bool,
         order: str = "newest first") -> None:
    """One page of a list and the line that says how much there is: ``showing 1–50 of 1 203 (newest first);
    next page: --offset 50``."""
    emit(rows, columns, as_json)
    if not rows:
        note = f"showing 0 of {total}" + (f" (offset {offset} is past the end)" if total and offset >= total else "")
    else:
        note = f"showing {offset + 1}–{offset + len(rows)} of {total} ({order})"
        if offset + len(rows) < total:
            note += f"; next page: --offset {offset + len(rows)}"
    click.echo(note, err=True)


def fields(row: dict[str, Any], keys: list[str], width: int = 15) -> None:
    """One record as ``key: value`` lines."""
    for key in keys:
        click.echo(f"{key + ':':<{width}} {row.get(key) if row.get(key) is not None else ''}")
