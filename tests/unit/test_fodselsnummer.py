from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.no import fodselsnummer as stdnum_fnr

from gateway.domain.fodselsnummer import age_on, birth_date, is_valid, kind, synthetic

# 13116900216 is the (fictitious) patient in KITH's official Dialogmelding sample.
SAMPLE = "13116900216"


def test_official_sample_number_is_valid() -> None:
    assert is_valid(SAMPLE)
    assert kind(SAMPLE) == "FNR"
    assert birth_date(SAMPLE) == date(1969, 11, 13)


@pytest.mark.parametrize("bad", ["13116900217", "1311690021", "131169002166", "1311690021a", "", "32136900216"])
def test_wrong_numbers_are_rejected(bad: str) -> None:
    assert not is_valid(bad)


def test_every_single_digit_change_is_caught_or_still_valid_by_checksum() -> None:
    # mod 11 catches every single-digit error in the first ten digits
    for pos in range(11):
        for d in "0123456789":
            if d == SAMPLE[pos]:
                continue
            assert not is_valid(SAMPLE[:pos] + d + SAMPLE[pos + 1:])


@pytest.mark.parametrize(
    ("born", "d_nummer"),
    [(date(1961, 5, 17), False), (date(1999, 12, 31), False), (date(2000, 1, 1), False), (date(2020, 2, 29), True),
     (date(1870, 6, 1), False), (date(1940, 3, 3), True)],
)
def test_synthetic_numbers_round_trip(born: date, d_nummer: bool) -> None:
    for i in range(3):
        fnr = synthetic(born, i, d_nummer=d_nummer)
        assert is_valid(fnr), fnr
        assert birth_date(fnr) == born
        assert kind(fnr) == ("DNR" if d_nummer else "FNR")
        assert int(fnr[2:4]) > 80  # never a real person's month


def test_century_from_individual_number() -> None:
    assert birth_date(synthetic(date(2005, 4, 4), 0)).year == 2005
    assert birth_date(synthetic(date(1905, 4, 4), 0)).year == 1905
    assert age_on(synthetic(date(2010, 6, 15), 0), date(2026, 6, 14)) == 15
    assert age_on(synthetic(date(2010, 6, 15), 0), date(2026, 6, 15)) == 16


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2039, 12, 31)), st.integers(0, 20), st.booleans())
def test_synthetic_is_always_valid(born: date, index: int, d_nummer: bool) -> None:
    fnr = synthetic(born, index, d_nummer=d_nummer)
    assert is_valid(fnr) and birth_date(fnr) == born
    # python-stdnum, an independent implementation, agrees on the check digits (it does not know the
    # synthetic month + 80, so only the digits are compared)
    assert fnr[9:] == stdnum_fnr.calc_check_digit1(fnr[:9]) + stdnum_fnr.calc_check_digit2(fnr[:10])
