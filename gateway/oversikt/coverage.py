"""Coverage of the kommuner's contact points: the "contact info missing" problem made visible before a
patient is affected.

For each kommune, the roles the routing rules want (forvaltningsenhet, koordinerende_enhet, kreftkoordinator,
barnekoordinator, saksbehandling, fastlege, …) against the parties the registry has for them, and how those
receivers have answered: a receiver that rejects our messages or never acknowledges them is as good as missing.
Only about 56 % of kommuner have a kreftkoordinator, so a missing role here is often expected and covered by a
fallback in the routes; the report shows the gap, the routes say what happens instead.

Input is plain mappings the lead fills from the routes and the registry; output is rows and CSV text.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

from gateway.oversikt.export import columns_of, rows_csv

# The usual order of roles in a report; roles not listed here follow alphabetically.
ROLE_ORDER = ("forvaltningsenhet", "koordinerende_enhet", "kreftkoordinator", "barnekoordinator", "saksbehandling",
              "fastlege")


class CoverageError(ValueError):
    """Input that cannot be counted (e.g. more answers than messages sent)."""


@dataclass(frozen=True)
class ReceiverCounts:
    """Messages sent to one HER-id and how many of them are now acknowledged, rejected or overdue (the rest are
    sent and still within the deadline). Counted by each message's current state."""

    sent: int = 0
    acknowledged: int = 0
    rejected: int = 0
    overdue: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CoverageError(f"{f.name} must be a whole number ≥ 0, got {value!r}")
        settled = self.acknowledged + self.rejected + self.overdue
        if settled > self.sent:
            raise CoverageError(f"acknowledged + rejected + overdue ({settled}) exceed sent ({self.sent})")

    def __add__(self, other: ReceiverCounts) -> ReceiverCounts:
        return ReceiverCounts(self.sent + other.sent, self.acknowledged + other.acknowledged,
                              self.rejected + other.rejected, self.overdue + other.overdue)


# Problems, in the order they are listed in a row.
MISSING = "missing"  # wanted, and the registry has no party for the role
NO_ACTIVE = "no_active"  # wanted, the registry has parties but none is active
REJECTS = "rejects"  # some message to the role's parties was rejected
NEVER_ACKNOWLEDGES = "never_acknowledges"  # messages sent, none acknowledged
OVERDUE = "overdue"  # some message has no AppRec by the deadline
NOT_WANTED = "not_wanted"  # the registry has the role but no rule asks for it (informational)


@dataclass(frozen=True)
class CoverageRow:
    """One kommune and role. ``herids`` and ``names`` are the active parties (';'-joined in CSV); the counts are
    summed over every party of the role, active or not (an inactive party may have received before)."""

    kommunenummer: str
    role: str
    wanted: bool
    active: int
    inactive: int
    herids: tuple[int, ...]
    names: tuple[str, ...]
    sent: int
    acknowledged: int
    rejected: int
    overdue: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.wanted and not self.problems


CSV_COLUMNS = columns_of(CoverageRow)


def _role_key(role: str) -> tuple[int, str]:
    return (ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER), role)


def coverage(wanted: Mapping[str, Collection[str]],
             registry: Mapping[str, Mapping[str, Sequence[tuple[int, str, bool]]]],
             receipts: Mapping[int, ReceiverCounts] | None = None) -> list[CoverageRow]:
    """Rows for every kommune in either input and every role wanted there or present in the registry, ordered by
    kommunenummer and role (``ROLE_ORDER`` first).

    ``wanted``: kommunenummer → the roles the routing rules look for there. ``registry``: kommunenummer → role →
    the parties as (herid, name, active). ``receipts``: herid → counts; a HER-id without counts has none.
    """
    receipts = receipts or {}
    rows: list[CoverageRow] = []
    for kommune in sorted(set(wanted) | set(registry)):
        want = set(wanted.get(kommune, ()))
        present = registry.get(kommune, {})
        for role in sorted(want | set(present), key=_role_key):
            parties = list(present.get(role, ()))
            active = sorted((p for p in parties if p[2]), key=lambda p: p[0])
            counts = sum((receipts.get(p[0], ReceiverCounts()) for p in {p[0]: p for p in parties}.values()),
                         ReceiverCounts())
            problems: list[str] = []
            if role in want:
                if not parties:
                    problems.append(MISSING)
                elif not active:
                    problems.append(NO_ACTIVE)
            else:
                problems.append(NOT_WANTED)
            if counts.rejected:
                problems.append(REJECTS)
            if counts.sent and not counts.acknowledged:
                problems.append(NEVER_ACKNOWLEDGES)
            if counts.overdue:
                problems.append(OVERDUE)
            rows.append(CoverageRow(kommune, role, role in want, len(active), len(parties) - len(active),
                                    tuple(p[0] for p in active), tuple(p[1] for p in active), counts.sent,
                                    counts.acknowledged, counts.rejected, counts.overdue, tuple(problems)))
    return rows


def coverage_csv(rows: Iterable[CoverageRow]) -> str:
    """The coverage report as CSV; booleans as yes/no, lists ';'-joined."""
    return rows_csv(rows, CSV_COLUMNS)
