"""Generated histories of synthetic patients for the oversikt tests: a plan per patient in the generator's own
terms (dates as plain Oslo dates) and the kartlegging records the store would hold for it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from gateway.oversikt.pathway import KartleggingRecord, parse_due_window_settings

HOSPITAL_A, HOSPITAL_B, HOSPITAL_C, KOMMUNE_UNIT = 8000001, 8000002, 8000003, 8100001
KOMMUNER = ["5001", "0301", "4601", "1103", "3401", "1804"]
SETTINGS = parse_due_window_settings(None, {"5001": {"sp4": {"from_days": 60, "to_days": 90}},
                                            "0301": {"basis": "diagnosis"}, "1103": {"sp5": None}})
# The same configuration written out by hand: (basis, (from, to) for SP4 or None, (from, to) for SP5 or None).
TRUTH = {"5001": ("sp3", (60, 90), (335, 395)), "0301": ("diagnosis", (91, 122), (365, 548)),
         "1103": ("sp3", (80, 110), None)}
DEFAULT_TRUTH = ("sp3", (80, 110), (335, 395))


@dataclass
class Plan:
    """What happened to one generated patient, in the generator's own terms."""

    key: str
    kommune: str
    old_kommune: str | None
    hospitals: list[int]
    sp1: date | None = None
    sp1_declined: bool = False
    sp1_again: date | None = None
    sp2: date | None = None
    sp3: date | None = None
    sp3_declined: date | None = None
    sp3_again: date | None = None
    sp4: date | None = None
    sp5: date | None = None
    records: list[KartleggingRecord] = field(default_factory=list)
    # (samhandlingspunkt, Oslo date, sender HER-id, sender name, kommune, declined, wmfg10) per record
    truth: list[tuple[int, date, int, str, str, bool, bool]] = field(default_factory=list)


def when(r: random.Random, d: date) -> date | datetime:
    """The date itself, or (a fifth of the time) an instant at 23:30 UTC the day before, which is d in Oslo."""
    return datetime.combine(d - timedelta(days=1), time(23, 30), UTC) if r.random() < 0.2 else d


def add(r: random.Random, p: Plan, sp: int, d: date, sender: int, declined: bool = False,
        again: date | None = None) -> None:
    kommune_then = p.old_kommune if (p.old_kommune and sp == 1) else p.kommune
    status = r.choice(["declined", "sent"]) if declined else r.choice(
        ["sent", "sent", "routed", "parked", "not_shared", "received"])
    wmfg10 = sp <= 2 and not declined and r.random() < 0.85
    name = f"Enhet {sender}"
    p.truth.append((sp, d, sender, name, kommune_then, declined, wmfg10))
    p.records.append(KartleggingRecord(f"{p.key}-{sp}-{len(p.records)}", p.key, sp, when(r, d), sender, name,
                                       kommune_then, status, declined, again, wmfg10))


def generate(n: int, seed: int) -> list[Plan]:
    r = random.Random(seed)
    start = date(2023, 1, 1)
    plans = []
    for i in range(n):
        kommune = r.choice(KOMMUNER)
        old = r.choice([k for k in KOMMUNER if k != kommune]) if r.random() < 0.05 else None
        hospitals = [r.choice([HOSPITAL_A, HOSPITAL_B, HOSPITAL_C])]
        p = Plan(f"pat{i:05d}", kommune, old, hospitals)
        d1 = start + timedelta(days=r.randrange(0, 1096))  # three years, 2024 a leap year
        if r.random() < 0.95:
            p.sp1 = d1
            p.sp1_declined = r.random() < 0.12
            p.sp1_again = d1 + timedelta(days=r.randrange(30, 200)) if p.sp1_declined and r.random() < 0.7 else None
        if p.sp1 is None or r.random() < 0.7:
            p.sp2 = d1 + timedelta(days=r.randrange(7, 40))
            if p.sp1 and r.random() < 0.1:  # SP1 at one hospital, SP2 at another
                hospitals.append(next(h for h in (HOSPITAL_A, HOSPITAL_B, HOSPITAL_C) if h != hospitals[0]))
        base = p.sp2 or d1
        u = r.random()
        if u < 0.55:
            p.sp3 = base + timedelta(days=r.randrange(20, 60))
        elif u < 0.62:
            p.sp3_declined = base + timedelta(days=r.randrange(20, 60))
            p.sp3_again = p.sp3_declined + timedelta(days=r.randrange(60, 300)) if r.random() < 0.8 else None
        if p.sp3:
            if r.random() < 0.5:
                p.sp4 = p.sp3 + timedelta(days=r.randrange(70, 120))
            if r.random() < (0.5 if p.sp4 else 0.05):
                p.sp5 = p.sp3 + timedelta(days=r.randrange(330, 400))
        plans.append(p)

        if p.sp1:
            add(r, p, 1, p.sp1, hospitals[0], p.sp1_declined, p.sp1_again)
        if p.sp2:
            add(r, p, 2, p.sp2, hospitals[-1])
        if p.sp3:
            add(r, p, 3, p.sp3, KOMMUNE_UNIT)
        if p.sp3_declined:
            add(r, p, 3, p.sp3_declined, KOMMUNE_UNIT, True, p.sp3_again)
        if p.sp4:
            add(r, p, 4, p.sp4, KOMMUNE_UNIT)
        if p.sp5:
            add(r, p, 5, p.sp5, KOMMUNE_UNIT)
        r.shuffle(p.records)
    return plans


