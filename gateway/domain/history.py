"""A patient's earlier kartlegginger, as the store remembers them, and the two questions routing
asks of them: which hospital to copy at SP3–SP5, and whether a second hospital is doing the same
samhandlingspunkt again.

The store answers with plain rows (``Tidligere``); the decisions here are pure functions, so they
are tested without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from gateway.domain.kartlegging import Contact, Kartlegging

TWO_HOSPITALS = "two-hospitals"  # the flag operators filter on
DEFAULT_WINDOW_DAYS = 90


@dataclass(frozen=True)
class Tidligere:
    """An earlier SP1/SP2 kartlegging of the same patient that reached its receivers."""

    event_id: str
    samhandlingspunkt: int
    sender_herid: int
    performed_on: date | None
    contact: Contact | None = None


# fnr → the patient's earlier SP1/SP2 kartlegginger, newest first
Historikk = Callable[[str], Sequence[Tidligere]]


def last_hospital(earlier: Sequence[Tidligere]) -> int | None:
    """The sender of the newest SP1/SP2 kartlegging: the hospital that SP3–SP5 results go back to."""
    return next((t.sender_herid for t in earlier if t.samhandlingspunkt in (1, 2)), None)


def second_hospital(event: Kartlegging, earlier: Sequence[Tidligere], organisation_of: Callable[[int], int | None],
                    window_days: int) -> Tidligere | None:
    """The other hospital's kartlegging at the same samhandlingspunkt within the window, if there is one.

    Hospitals are compared by organisation, so two departments of one hospital are not "two
    hospitals". Only SP1 and SP2 count: they are the hospitals' points.
    """
    if event.samhandlingspunkt not in (1, 2) or event.declined is not None:
        return None
    own = organisation_of(event.sender.herid)
    on = event.assessment.performed_on
    for t in earlier:
        if t.event_id == event.event_id or t.samhandlingspunkt != event.samhandlingspunkt:
            continue
        if t.performed_on is None or abs((on - t.performed_on).days) > window_days:
            continue
        other = organisation_of(t.sender_herid)
        if other is not None and other != own:
            return t
    return None
