"""Each patient's pathway through Pakkeforløp hjem, and who is due for the next samhandlingspunkt.

"Registrering av pakkeforløp – hvordan holde oversikt?": nobody in the field knows which patients have had
which kartlegging. The gateway sees every kartlegging event and every AppRec, so from plain records of them
it tells, per patient, which samhandlingspunkter are done, when and by whom, whether the results reached
their receivers and were acknowledged, and when the next point is due.

Due windows are recommendations, not deadlines ("ikke forløpstider"), so they are configurable per kommune:

* basis ``sp3`` (default, the national description): SP4 about 3 months and SP5 about 1 year after SP3.
  Without a done SP3 there is no anchor, and no window: the list cannot guess when SP3 happened.
* basis ``diagnosis`` (the patient page: the kommune's conversations 3–4 and 12–18 months after the
  diagnosis): the diagnosis date is not in the kartlegging contract, so the date of the patient's first SP1
  kartlegging, done or declined (it happens at the clinical decision), stands in for it, or of the first SP2
  when SP1 is missing (a later date: the window then opens late rather than early). The 3–4-month
  conversation is SP4's window and the 12–18-month one SP5's; a kommune that records its first conversation
  as SP3 may add an ``sp3`` window.

A window for point *n* is satisfied by any done kartlegging at point *n* or later. When a later window has
opened, it replaces an earlier one that was missed: the list shows what to do now.

A patient who declined and has not had a kartlegging since (at the same or a later point) is kept out of the
due lists — asking again before the agreed date would disregard the answer — and appears in the "ask again"
list once ``ask_again_after`` has passed. A decline without a date stays out of the lists and is visible in
the pathway.

All dates are Oslo calendar dates (see ``oslo``); an aware datetime given for a date is converted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from gateway.oversikt.oslo import oslo_date
from gateway.routing.windows import (  # noqa: F401  (re-exported: the pathway's configuration)
    BASES,
    DEFAULT_WINDOWS,
    EVENT_STATUSES,
    HOSPITAL_POINTS,
    MAX_DAYS,
    MESSAGE_STATES,
    Basis,
    DueWindowError,
    DueWindows,
    DueWindowSettings,
    Window,
    parse_due_window_settings,
    parse_due_windows,
)


class RecordError(ValueError):
    """A kartlegging record that contradicts itself (a bug in the query that made it)."""


@dataclass(frozen=True)
class MessageRecord:
    """One message of a kartlegging event and its current state (built, sent, acknowledged, rejected, overdue,
    superseded)."""

    msg_id: str
    receiver_herid: int
    receiver_name: str
    role: str
    state: str

    def __post_init__(self) -> None:
        if self.state not in MESSAGE_STATES:
            raise RecordError(f"message {self.msg_id}: state {self.state!r} is not one of {', '.join(MESSAGE_STATES)}")


@dataclass(frozen=True)
class KartleggingRecord:
    """One kartlegging event as the store knows it. ``patient_key`` is the store's pseudonymous key, never the
    fødselsnummer. ``performed_on`` and ``ask_again_after`` may be given as aware datetimes; they are kept as Oslo
    dates. ``declined`` is the truth about declining: status ``declined`` means declined *and nothing sent*, while
    a decline the kommune may hear about is routed and sent like any other event."""

    event_id: str
    patient_key: str
    samhandlingspunkt: int
    performed_on: date
    sender_herid: int
    sender_name: str
    kommunenummer: str
    status: str
    declined: bool = False
    ask_again_after: date | None = None
    wmfg10: bool = False
    messages: tuple[MessageRecord, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.samhandlingspunkt, bool) or self.samhandlingspunkt not in (1, 2, 3, 4, 5):
            raise RecordError(f"event {self.event_id}: samhandlingspunkt must be 1-5, got {self.samhandlingspunkt!r}")
        if self.status not in EVENT_STATUSES:
            raise RecordError(f"event {self.event_id}: status {self.status!r} is not one of "
                              f"{', '.join(EVENT_STATUSES)}")
        if self.status == "declined" and not self.declined:
            raise RecordError(f"event {self.event_id}: status declined but declined is false")
        try:
            object.__setattr__(self, "performed_on", oslo_date(self.performed_on))
            if self.ask_again_after is not None:
                object.__setattr__(self, "ask_again_after", oslo_date(self.ask_again_after))
        except ValueError as exc:
            raise RecordError(f"event {self.event_id}: {exc}") from None
        object.__setattr__(self, "messages", tuple(self.messages))


DeliveryState = Literal["none", "pending", "sent", "acknowledged", "rejected", "overdue"]


def delivery_state(messages: Iterable[MessageRecord]) -> DeliveryState:
    """One word for how far a kartlegging's result got (superseded messages do not count; their replacements do).

    ``rejected`` and ``overdue`` win because they need someone to act; ``acknowledged`` only when every receiver
    acknowledged; ``none`` when nothing was to be sent (not shared, declined, parked before building)."""
    states = {m.state for m in messages if m.state != "superseded"}
    if not states:
        return "none"
    if "rejected" in states:
        return "rejected"
    if "overdue" in states:
        return "overdue"
    if "built" in states:
        return "pending"
    if "sent" in states:
        return "sent"
    return "acknowledged"


@dataclass(frozen=True)
class DueWindow:
    """When the point ``samhandlingspunkt`` is due for one patient: from and to (inclusive), from ``basis_date``."""

    samhandlingspunkt: int
    basis: Basis
    basis_date: date
    from_date: date
    to_date: date


DueState = Literal["none", "upcoming", "due_soon", "overdue", "declined", "ask_again"]


@dataclass(frozen=True)
class Pathway:
    """One patient's pathway: every kartlegging (done or declined) in date order, the hospitals involved (senders
    at SP1/SP2, two when the patient is treated at two), the open decline if any, and the unmet due windows."""

    patient_key: str
    kommunenummer: str
    hospitals: tuple[int, ...]
    kartlegginger: tuple[KartleggingRecord, ...]
    open_decline: KartleggingRecord | None
    windows: tuple[DueWindow, ...]

    @property
    def done(self) -> tuple[KartleggingRecord, ...]:
        return tuple(k for k in self.kartlegginger if not k.declined)

    def done_at(self, samhandlingspunkt: int) -> tuple[KartleggingRecord, ...]:
        return tuple(k for k in self.done if k.samhandlingspunkt == samhandlingspunkt)

    def first_done(self, samhandlingspunkt: int) -> KartleggingRecord | None:
        found = self.done_at(samhandlingspunkt)
        return found[0] if found else None

    def points_done(self) -> tuple[int, ...]:
        return tuple(sorted({k.samhandlingspunkt for k in self.done}))

    def current_window(self, today: date | datetime) -> DueWindow | None:
        """The window that matters on ``today``: the latest one already open (a missed earlier one is moot once
        a later one has opened), else the next one to open; None when the pathway is complete or has no basis."""
        day = oslo_date(today)
        opened = [w for w in self.windows if w.from_date <= day]
        if opened:
            return opened[-1]
        return self.windows[0] if self.windows else None

    def due_state(self, today: date | datetime, soon_days: int = 30) -> DueState:
        """Where the patient stands on ``today``: ``ask_again``/``declined`` for an open decline (its date passed
        or not), else from the current window: ``overdue`` after its end, ``due_soon`` when it opens within
        ``soon_days`` or is open, ``upcoming`` later, ``none`` without a window."""
        day = oslo_date(today)
        if self.open_decline is not None:
            again = self.open_decline.ask_again_after
            return "ask_again" if again is not None and again <= day else "declined"
        window = self.current_window(day)
        if window is None:
            return "none"
        if day > window.to_date:
            return "overdue"
        if window.from_date - timedelta(days=soon_days) <= day:
            return "due_soon"
        return "upcoming"


def _order(k: KartleggingRecord) -> tuple[date, int, str]:
    return (k.performed_on, k.samhandlingspunkt, k.event_id)


def build_pathway(records: Iterable[KartleggingRecord], windows: DueWindows | DueWindowSettings) -> Pathway:
    """The pathway of one patient from all their kartlegging records (all must share one patient_key)."""
    ks = tuple(sorted(records, key=_order))
    if not ks:
        raise RecordError("a pathway needs at least one kartlegging")
    keys = {k.patient_key for k in ks}
    if len(keys) != 1:
        raise RecordError(f"records of {len(keys)} patients given for one pathway")
    kommune = ks[-1].kommunenummer  # where the patient lives now: the latest kartlegging's kommune
    config = windows.for_kommune(kommune) if isinstance(windows, DueWindowSettings) else windows
    hospitals = tuple(sorted({k.sender_herid for k in ks if k.samhandlingspunkt in HOSPITAL_POINTS}))
    done = [k for k in ks if not k.declined]

    open_decline = None
    for k in ks:
        if k.declined and not any(d.samhandlingspunkt >= k.samhandlingspunkt and d.performed_on >= k.performed_on
                                  for d in done):
            open_decline = k  # the latest unresolved one wins: ks is in date order

    basis_date: date | None
    if config.basis == "sp3":
        basis_date = next((k.performed_on for k in done if k.samhandlingspunkt == 3), None)
    else:
        basis_date = next((k.performed_on for k in ks if k.samhandlingspunkt == 1),
                          next((k.performed_on for k in ks if k.samhandlingspunkt == 2), None))
    highest_done = max((k.samhandlingspunkt for k in done), default=0)
    due: list[DueWindow] = []
    if basis_date is not None:
        for sp, w in config.targets():
            if highest_done < sp:
                due.append(DueWindow(sp, config.basis, basis_date, basis_date + timedelta(days=w.from_days),
                                     basis_date + timedelta(days=w.to_days)))
    return Pathway(ks[0].patient_key, kommune, hospitals, ks, open_decline, tuple(due))


def build_pathways(records: Iterable[KartleggingRecord],
                   windows: DueWindows | DueWindowSettings | None = None) -> list[Pathway]:
    """Every patient's pathway, ordered by patient_key."""
    by_patient: dict[str, list[KartleggingRecord]] = defaultdict(list)
    for k in records:
        by_patient[k.patient_key].append(k)
    config = windows if windows is not None else DueWindowSettings()
    return [build_pathway(by_patient[key], config) for key in sorted(by_patient)]


@dataclass(frozen=True)
class DueItem:
    """A patient due (or overdue) for a samhandlingspunkt; ``days_left`` to the window's end, negative when past."""

    patient_key: str
    kommunenummer: str
    hospitals: tuple[int, ...]
    window: DueWindow
    days_left: int


@dataclass(frozen=True)
class AskAgainItem:
    """A patient who declined and may now be asked again."""

    patient_key: str
    kommunenummer: str
    hospitals: tuple[int, ...]
    event_id: str
    samhandlingspunkt: int
    declined_on: date
    ask_again_after: date


@dataclass(frozen=True)
class Worklist:
    due_soon: tuple[DueItem, ...] = ()
    overdue: tuple[DueItem, ...] = ()
    ask_again: tuple[AskAgainItem, ...] = ()


@dataclass(frozen=True)
class Worklists:
    """The lists per kommune (the patient's current kommune) and per hospital (each SP1/SP2 sender of the
    patient: a patient treated at two hospitals is on both lists). Only kommuner and hospitals with at least one
    item are keys."""

    today: date
    soon_days: int
    by_kommune: Mapping[str, Worklist]
    by_hospital: Mapping[int, Worklist]


def worklists(pathways: Iterable[Pathway], today: date | datetime, soon_days: int = 30) -> Worklists:
    """Due soon (opens within ``soon_days`` or open now), overdue, and declined with "ask again after" passed."""
    if isinstance(soon_days, bool) or not isinstance(soon_days, int) or soon_days < 0:
        raise ValueError(f"soon_days must be a whole number ≥ 0, got {soon_days!r}")
    day = oslo_date(today)
    lists: dict[str, dict[Any, list[Any]]] = {"due_soon": defaultdict(list), "overdue": defaultdict(list),
                                              "ask_again": defaultdict(list)}
    for p in pathways:
        state = p.due_state(day, soon_days)
        item: DueItem | AskAgainItem
        if state in ("due_soon", "overdue"):
            window = p.current_window(day)
            assert window is not None
            item = DueItem(p.patient_key, p.kommunenummer, p.hospitals, window, (window.to_date - day).days)
        elif state == "ask_again":
            d = p.open_decline
            assert d is not None and d.ask_again_after is not None
            item = AskAgainItem(p.patient_key, p.kommunenummer, p.hospitals, d.event_id, d.samhandlingspunkt,
                                d.performed_on, d.ask_again_after)
        else:
            continue
        lists[state][("k", p.kommunenummer)].append(item)
        for h in p.hospitals:
            lists[state][("h", h)].append(item)

    def worklist(key: tuple[str, Any]) -> Worklist:
        def due_key(i: DueItem) -> tuple[date, str]:
            return (i.window.to_date, i.patient_key)

        def again_key(i: AskAgainItem) -> tuple[date, str]:
            return (i.ask_again_after, i.patient_key)

        return Worklist(tuple(sorted(lists["due_soon"].get(key, []), key=due_key)),
                        tuple(sorted(lists["overdue"].get(key, []), key=due_key)),
                        tuple(sorted(lists["ask_again"].get(key, []), key=again_key)))

    keys = {key for per in lists.values() for key in per}
    return Worklists(
        day, soon_days,
        {k: worklist(("k", k)) for _, k in sorted(key for key in keys if key[0] == "k")},
        {h: worklist(("h", h)) for _, h in sorted(key for key in keys if key[0] == "h")},
    )
