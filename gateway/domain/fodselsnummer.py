"""Fødselsnummer and D-nummer: check digits, birth date with century, synthetic test numbers, H-numbers.

The month's first digit says what kind of number it is:

* month + 80: a *synthetic* test number (Skatteetaten's Tenor convention), never a real person's. The test
  data and the demo use them; a production gateway refuses them (``GATEWAY_SYNTHETIC_FNR=refuse``).
* month + 40: an *H-nummer*, a hospital's internal help number for a patient whose identity is not
  established. It is not a national identity: a message carrying it as a fødselsnummer would be filed on the
  wrong person or no one at the receiver, so the gateway refuses it (``is_h_nummer``). (NAV's older synthetic
  numbers also use + 40; they are refused for the same reason.)

``is_valid`` checks the digits and the date only; what a kartlegging may carry is decided in
``kartlegging.parse_event``.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _control(digits: str, weights: tuple[int, ...]) -> int | None:
    rest = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    if rest == 11:
        return 0
    return None if rest == 10 else rest


def _checksums_ok(fnr: str) -> bool:
    k1 = _control(fnr[:9], _W1)
    if k1 is None or k1 != int(fnr[9]):
        return False
    k2 = _control(fnr[:10], _W2)
    return k2 is not None and k2 == int(fnr[10])


def _century(year2: int, individual: int) -> int | None:
    """The century from the individual-number ranges (Skatteetaten's rules)."""
    if individual <= 499:
        return 1900
    if individual <= 749 and year2 >= 54:
        return 1800
    if individual >= 900 and year2 >= 40:
        return 1900
    if year2 <= 39:
        return 2000
    return None


def kind(fnr: str) -> Literal["FNR", "DNR"]:
    return "DNR" if fnr[0] in "4567" else "FNR"


def birth_date(fnr: str) -> date:
    """The birth date; raises ValueError for a number whose date is impossible."""
    day, month, year2, individual = int(fnr[:2]), int(fnr[2:4]), int(fnr[4:6]), int(fnr[6:9])
    if kind(fnr) == "DNR":
        day -= 40
    if month > 80:
        month -= 80
    elif month > 40:
        month -= 40
    century = _century(year2, individual)
    if century is None:
        raise ValueError("individual number and year do not fit any century")
    return date(century + year2, month, day)


def _month_digit(fnr: str) -> int:
    return int(fnr[2])


def is_h_nummer(fnr: str) -> bool:
    """An H-nummer (month + 40): a hospital's internal number, not a national identity."""
    return _month_digit(fnr) in (4, 5)


def is_synthetic(fnr: str) -> bool:
    """A synthetic test number (month + 80): never a real person's."""
    return _month_digit(fnr) in (8, 9)


def is_valid(fnr: str) -> bool:
    if len(fnr) != 11 or not fnr.isascii() or not fnr.isdigit():
        return False
    if not _checksums_ok(fnr):
        return False
    try:
        birth_date(fnr)
    except ValueError:
        return False
    return True


def age_on(fnr: str, on: date) -> int:
    born = birth_date(fnr)
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def synthetic_all(birth: date, *, d_nummer: bool = False) -> list[str]:
    """Every valid synthetic number (month + 80) for a birth date, in individual-number order."""
    year2 = birth.year % 100
    if 1900 <= birth.year <= 1999:
        individuals = range(0, 500)
    elif 2000 <= birth.year <= 2039:
        individuals = range(500, 1000)
    elif 1854 <= birth.year <= 1899:
        individuals = range(500, 750)
    else:
        raise ValueError("no individual-number range for that year")
    day = birth.day + (40 if d_nummer else 0)
    out = []
    for individual in individuals:
        base = f"{day:02d}{birth.month + 80:02d}{year2:02d}{individual:03d}"
        k1 = _control(base, _W1)
        if k1 is None:
            continue
        k2 = _control(base + str(k1), _W2)
        if k2 is not None:
            out.append(f"{base}{k1}{k2}")
    return out


def synthetic(birth: date, index: int, *, d_nummer: bool = False) -> str:
    """The ``index``-th valid synthetic number for a birth date, deterministic."""
    numbers = synthetic_all(birth, d_nummer=d_nummer)
    if index >= len(numbers):
        raise ValueError("index beyond the numbers available for that date")
    return numbers[index]
