"""CSV text for the oversikt reports: one header row, columns in the row dataclass's field order (stable, so a
spreadsheet or a script reading the export keeps working), RFC 4180 line ends, booleans as yes/no and lists
';'-joined so one row stays one line."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import astuple, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def columns_of(row_type: type[DataclassInstance]) -> tuple[str, ...]:
    """The CSV columns of a row dataclass: its field names in order."""
    return tuple(f.name for f in fields(row_type))


def cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ";".join(str(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def rows_csv(rows: Iterable[DataclassInstance], columns: Sequence[str]) -> str:
    """CSV text with the header ``columns`` and one line per row (the row's fields must be those columns)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(v) for v in astuple(row)])
    return out.getvalue()
