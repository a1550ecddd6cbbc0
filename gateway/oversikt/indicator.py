"""Monitoring the national indicator: how many SP1/SP2 kartlegginger carry the NCMP procedure code WMFG10.

National monitoring counts cancer patients with and without WMFG10 ("kartlegging av pasientens behov for
oppfølging ut over tjenester i spesialisthelsetjenesten"), registered by the hospital at SP1 and SP2. The gateway
sees every kartlegging event, including those parked because WMFG10 was missing, so a hospital can see its share
per month before the national figures arrive — and the counts per samhandlingspunkt, kommune and month show where
the kommune's points (SP3–SP5) are happening at all.

A declined kartlegging is counted apart: the code is registered when the assessment is done, so a decline is
neither with nor without it and stays out of the share's denominator. Months are Oslo calendar months of the day
the kartlegging was performed. Records are counted as given: pass each kartlegging event once (the store keeps one
row per event, also when it was parked and replayed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from gateway.oversikt.export import columns_of, rows_csv
from gateway.oversikt.oslo import oslo_month
from gateway.oversikt.pathway import HOSPITAL_POINTS, KartleggingRecord


@dataclass(frozen=True)
class Wmfg10Row:
    """One hospital (the SP1/SP2 sender) and month. ``share`` = with_wmfg10 / kartlegginger, None when there were
    no done kartlegginger (only declines)."""

    hospital_herid: int
    hospital_name: str
    month: str
    kartlegginger: int
    with_wmfg10: int
    without_wmfg10: int
    declined: int
    share: float | None


@dataclass(frozen=True)
class PointCountRow:
    """Kartlegginger done and declined at one samhandlingspunkt in one kommune (the patient's) and month."""

    month: str
    kommunenummer: str
    samhandlingspunkt: int
    done: int
    declined: int


WMFG10_COLUMNS = columns_of(Wmfg10Row)
POINT_COUNT_COLUMNS = columns_of(PointCountRow)


def wmfg10_share(records: Iterable[KartleggingRecord]) -> list[Wmfg10Row]:
    """Per hospital and month, ordered by HER-id then month. The name is the one on the hospital's latest record
    (names change; the HER-id does not)."""
    counts: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # done, with, declined
    names: dict[int, tuple[tuple[date, str], str]] = {}
    for k in records:
        if k.samhandlingspunkt not in HOSPITAL_POINTS:
            continue
        c = counts[(k.sender_herid, oslo_month(k.performed_on))]
        if k.declined:
            c[2] += 1
        else:
            c[0] += 1
            c[1] += k.wmfg10
        order = (k.performed_on, k.event_id)
        if k.sender_herid not in names or names[k.sender_herid][0] < order:
            names[k.sender_herid] = (order, k.sender_name)
    return [Wmfg10Row(herid, names[herid][1], month, done, with_, done - with_, declined,
                      with_ / done if done else None)
            for (herid, month), (done, with_, declined) in sorted(counts.items())]


def point_counts(records: Iterable[KartleggingRecord]) -> list[PointCountRow]:
    """Per month, kommune and samhandlingspunkt, in that order; only combinations that occur."""
    counts: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for k in records:
        counts[(oslo_month(k.performed_on), k.kommunenummer, k.samhandlingspunkt)][1 if k.declined else 0] += 1
    return [PointCountRow(month, kommune, sp, done, declined)
            for (month, kommune, sp), (done, declined) in sorted(counts.items())]


def wmfg10_csv(rows: Iterable[Wmfg10Row]) -> str:
    """The WMFG10 report as CSV (share with four decimals, empty when undefined)."""
    return rows_csv(rows, WMFG10_COLUMNS)


def point_counts_csv(rows: Iterable[PointCountRow]) -> str:
    return rows_csv(rows, POINT_COUNT_COLUMNS)
