"""The WMFG10 indicator and the counts per samhandlingspunkt, kommune and month: hand-made edge cases (Oslo month
boundaries, leap day, declines, two hospitals) and thousands of generated patients counted from their plans."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from gateway.oversikt.indicator import (
    POINT_COUNT_COLUMNS,
    WMFG10_COLUMNS,
    PointCountRow,
    Wmfg10Row,
    point_counts,
    point_counts_csv,
    wmfg10_csv,
    wmfg10_share,
)
from gateway.oversikt.pathway import KartleggingRecord
from tests.unit.oversikt_history import generate

A, B = 8000001, 8000002


def rec(sp: int, performed_on: date, sender: int = A, *, wmfg10: bool = True, declined: bool = False,
        kommune: str = "5001", name: str | None = None, n: int = 0) -> KartleggingRecord:
    return KartleggingRecord(f"e-{sp}-{performed_on}-{sender}-{n}", f"p{n}", sp, performed_on, sender,
                             name or f"Sykehus {sender}", kommune, "sent", declined, None, wmfg10)


def test_month_is_the_oslo_month_of_the_instant() -> None:
    records = [
        rec(1, datetime(2026, 1, 31, 23, 30, tzinfo=UTC), n=1),  # 00:30 on 1 February in Oslo
        rec(1, datetime(2026, 1, 31, 22, 59, tzinfo=UTC), wmfg10=False, n=2),  # 23:59 on 31 January
        rec(1, datetime(2026, 6, 30, 22, 0, tzinfo=UTC), n=3),  # midnight into July, summer time
        rec(2, datetime(2026, 6, 30, 21, 59, tzinfo=UTC), n=4),  # still June
        rec(1, datetime(2025, 12, 31, 23, 0, tzinfo=UTC), n=5),  # New Year in Oslo
    ]
    rows = wmfg10_share(records)
    assert [(r.month, r.kartlegginger, r.with_wmfg10) for r in rows] == [
        ("2026-01", 2, 1), ("2026-02", 1, 1), ("2026-06", 1, 1), ("2026-07", 1, 1)]


def test_leap_day_and_declines_and_two_hospitals() -> None:
    records = [rec(1, date(2024, 2, 29), n=1), rec(2, date(2024, 2, 29), wmfg10=False, n=1),
               rec(1, date(2024, 2, 28), declined=True, wmfg10=False, n=2),
               rec(1, date(2024, 2, 10), B, n=3), rec(3, date(2024, 2, 29), 8100001, wmfg10=False, n=1),
               rec(1, date(2024, 3, 1), B, declined=True, wmfg10=False, n=4)]
    assert wmfg10_share(records) == [
        Wmfg10Row(A, "Sykehus 8000001", "2024-02", 2, 1, 1, 1, 0.5),
        Wmfg10Row(B, "Sykehus 8000002", "2024-02", 1, 1, 0, 0, 1.0),
        Wmfg10Row(B, "Sykehus 8000002", "2024-03", 0, 0, 0, 1, None),  # only a decline: no share
    ]
    assert point_counts(records) == [
        PointCountRow("2024-02", "5001", 1, 2, 1), PointCountRow("2024-02", "5001", 2, 1, 0),
        PointCountRow("2024-02", "5001", 3, 1, 0), PointCountRow("2024-03", "5001", 1, 0, 1)]


def test_the_latest_name_of_a_hospital_is_used() -> None:
    records = [rec(1, date(2026, 1, 1), name="Gammelt navn", n=1), rec(1, date(2026, 3, 1), name="Nytt navn", n=2)]
    assert {r.hospital_name for r in wmfg10_share(records)} == {"Nytt navn"}


def test_csv_has_a_header_and_stable_columns() -> None:
    rows = wmfg10_share([rec(1, date(2026, 1, 5), n=1), rec(1, date(2026, 1, 6), wmfg10=False, n=2),
                         rec(1, date(2026, 1, 7), wmfg10=False, n=3), rec(1, date(2026, 2, 7), declined=True, n=4)])
    text = wmfg10_csv(rows)
    assert text.splitlines()[0] == ",".join(WMFG10_COLUMNS) == (
        "hospital_herid,hospital_name,month,kartlegginger,with_wmfg10,without_wmfg10,declined,share")
    assert list(csv.reader(io.StringIO(text)))[1:] == [["8000001", "Sykehus 8000001", "2026-01", "3", "1", "2", "0",
                                                       "0.3333"],
                                                      ["8000001", "Sykehus 8000001", "2026-02", "0", "0", "0", "1", ""]]
    assert text.endswith("\r\n")
    counts = point_counts_csv(point_counts([rec(4, date(2026, 1, 5), 8100001, kommune="0301")]))
    assert counts == ",".join(POINT_COUNT_COLUMNS) + "\r\n2026-01,0301,4,1,0\r\n"


PLANS = generate(5000, seed=4)


def test_generated_wmfg10_share_matches_a_count_from_the_plans() -> None:
    records = [k for p in PLANS for k in p.records]
    done: Counter[tuple[int, str]] = Counter()
    with_code: Counter[tuple[int, str]] = Counter()
    declined: Counter[tuple[int, str]] = Counter()
    for p in PLANS:
        for sp, d, sender, _, _, was_declined, wmfg10 in p.truth:
            if sp > 2:
                continue
            key = (sender, f"{d.year:04d}-{d.month:02d}")
            if was_declined:
                declined[key] += 1
            else:
                done[key] += 1
                with_code[key] += wmfg10
    rows = wmfg10_share(records)
    assert {(r.hospital_herid, r.month): (r.kartlegginger, r.with_wmfg10, r.declined) for r in rows} == {
        key: (done[key], with_code[key], declined[key]) for key in done | declined}
    for r in rows:
        assert r.without_wmfg10 == r.kartlegginger - r.with_wmfg10
        assert r.share == (pytest.approx(r.with_wmfg10 / r.kartlegginger) if r.kartlegginger else None)
    assert [(r.hospital_herid, r.month) for r in rows] == sorted((r.hospital_herid, r.month) for r in rows)
    assert sum(r.kartlegginger + r.declined for r in rows) == sum(1 for p in PLANS for t in p.truth if t[0] <= 2)
    parsed = list(csv.DictReader(io.StringIO(wmfg10_csv(rows))))
    assert len(parsed) == len(rows) and int(parsed[0]["kartlegginger"]) == rows[0].kartlegginger


def test_generated_point_counts_match_a_count_from_the_plans() -> None:
    want: Counter[tuple[str, str, int, bool]] = Counter(
        (f"{d.year:04d}-{d.month:02d}", kommune, sp, was_declined)
        for p in PLANS for sp, d, _, _, kommune, was_declined, _ in p.truth)
    rows = point_counts([k for p in PLANS for k in p.records])
    got = Counter({(r.month, r.kommunenummer, r.samhandlingspunkt, False): r.done for r in rows})
    got.update({(r.month, r.kommunenummer, r.samhandlingspunkt, True): r.declined for r in rows})
    assert +got == want
    assert len({r.month for r in rows}) >= 36  # three years of kartlegginger, plus the later points
