"""Due windows for the next samhandlingspunkt: the recommendations (not deadlines) the pathway lists use,
configurable per kommune in the routes and checked with clear errors when loaded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Basis = Literal["sp3", "diagnosis"]
BASES: tuple[Basis, ...] = ("sp3", "diagnosis")
EVENT_STATUSES = ("received", "routed", "sent", "parked", "not_shared", "declined")
MESSAGE_STATES = ("built", "sent", "acknowledged", "rejected", "overdue", "superseded")
HOSPITAL_POINTS = (1, 2)


class DueWindowError(ValueError):
    """A due-window configuration that cannot be used; the message names the file/key and what is wrong."""


@dataclass(frozen=True)
class Window:
    """Days after the basis date within which the point should be done (both ends inclusive)."""

    from_days: int
    to_days: int


@dataclass(frozen=True)
class DueWindows:
    """The due windows of one kommune: the basis and a window per target samhandlingspunkt (None: no window)."""

    basis: Basis
    sp3: Window | None = None
    sp4: Window | None = None
    sp5: Window | None = None

    def targets(self) -> list[tuple[int, Window]]:
        """(samhandlingspunkt, window) in point order."""
        return [(sp, w) for sp, w in ((3, self.sp3), (4, self.sp4), (5, self.sp5)) if w is not None]


DEFAULT_WINDOWS: dict[Basis, DueWindows] = {
    # "ca. 3 måneder" and "ca. 1 år etter samhandlingspunkt 3"
    "sp3": DueWindows("sp3", sp4=Window(80, 110), sp5=Window(335, 395)),
    # "ca. 3–4 måneder" and "ca. 12–18 måneder etter en kreftdiagnose"
    "diagnosis": DueWindows("diagnosis", sp4=Window(91, 122), sp5=Window(365, 548)),
}
MAX_DAYS = 1100  # three years: anything longer is a typo, not a recommendation


def _window(raw: Any, where: str) -> Window | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise DueWindowError(f"{where}: must be a mapping with from_days and to_days (or null for no window), "
                             f"got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"from_days", "to_days"})
    if unknown:
        raise DueWindowError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; only from_days and to_days")
    values: dict[str, int] = {}
    for key in ("from_days", "to_days"):
        if key not in raw:
            raise DueWindowError(f"{where}: {key} is missing")
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise DueWindowError(f"{where}.{key}: must be a whole number of days, got {value!r}")
        if not 0 <= value <= MAX_DAYS:
            raise DueWindowError(f"{where}.{key}: must be between 0 and {MAX_DAYS} days, got {value}")
        values[key] = value
    if values["to_days"] < values["from_days"]:
        raise DueWindowError(f"{where}.to_days: must not be before from_days ({values['from_days']}), "
                             f"got {values['to_days']}")
    return Window(values["from_days"], values["to_days"])


def parse_due_windows(raw: Mapping[str, Any] | None, where: str = "due_windows",
                      base: DueWindows | None = None) -> DueWindows:
    """Validate one ``due_windows`` mapping from the routes YAML and fill in what it leaves out.

    Shape: ``{"basis": "sp3" | "diagnosis", "sp4": {"from_days": 80, "to_days": 110}, "sp5": {...}}``; every key
    is optional and ``null`` for a point removes its window. Left-out keys come from ``base`` (the defaults file's
    windows) when it has the same basis, else from the built-in defaults of the basis. ``sp3`` is only allowed with
    basis ``diagnosis``: with basis ``sp3`` it would be measured from itself.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise DueWindowError(f"{where}: must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - {"basis", "sp3", "sp4", "sp5"})
    if unknown:
        raise DueWindowError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: basis, sp3, sp4, sp5")
    basis_raw = raw.get("basis", base.basis if base else "sp3")
    if basis_raw not in BASES:
        raise DueWindowError(f"{where}.basis: must be one of {', '.join(BASES)}, got {basis_raw!r}")
    basis: Basis = "sp3" if basis_raw == "sp3" else "diagnosis"
    start = base if base is not None and base.basis == basis else DEFAULT_WINDOWS[basis]
    windows = {sp: getattr(start, sp) for sp in ("sp3", "sp4", "sp5")}
    for sp in ("sp3", "sp4", "sp5"):
        if sp in raw:
            windows[sp] = _window(raw[sp], f"{where}.{sp}")
    if basis == "sp3" and windows["sp3"] is not None:
        raise DueWindowError(f"{where}.sp3: with basis sp3 there is no window for SP3 itself; "
                             "use basis diagnosis to set one")
    return DueWindows(basis, sp3=windows["sp3"], sp4=windows["sp4"], sp5=windows["sp5"])


@dataclass(frozen=True)
class DueWindowSettings:
    """The default windows and those of the kommuner that set their own."""

    default: DueWindows = DEFAULT_WINDOWS["sp3"]
    per_kommune: Mapping[str, DueWindows] = field(default_factory=dict)

    def for_kommune(self, kommunenummer: str) -> DueWindows:
        return self.per_kommune.get(kommunenummer, self.default)


def parse_due_window_settings(default: Mapping[str, Any] | None,
                              per_kommune: Mapping[str, Mapping[str, Any] | None] | None = None,
                              default_where: str = "routes/default.yaml: due_windows",
                              kommune_where: str = "routes/kommune/{kommune}.yaml: due_windows") -> DueWindowSettings:
    """All due windows from the routes: ``default`` from the defaults file, ``per_kommune`` kommunenummer → the
    ``due_windows`` of that kommune's file (a kommune without the key may be left out or given None)."""
    base = parse_due_windows(default, default_where)
    kommuner: dict[str, DueWindows] = {}
    for kommune, raw in (per_kommune or {}).items():
        if not (isinstance(kommune, str) and len(kommune) == 4 and kommune.isdigit()):
            raise DueWindowError(f"{kommune_where.format(kommune=kommune)}: {kommune!r} is not a kommunenummer")
        if raw is not None:
            kommuner[kommune] = parse_due_windows(raw, kommune_where.format(kommune=kommune), base)
    return DueWindowSettings(base, kommuner)


