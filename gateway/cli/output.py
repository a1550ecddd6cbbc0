"""Presentation helpers shared by the commands: aligned tables and JSON."""

from __future__ import annotations

import json
from typing import Any

import click


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
        click.echo(json.dumps([{k: v for k, v in r.items() if k not in ("xml", "body")} for r in rows],
                              ensure_ascii=False, indent=2))
    else:
        table(rows, columns)


def fields(row: dict[str, Any], keys: list[str], width: int = 15) -> None:
    """One record as ``key: value`` lines."""
    for key in keys:
        click.echo(f"{key + ':':<{width}} {row.get(key) if row.get(key) is not None else ''}")
