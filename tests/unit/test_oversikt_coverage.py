"""Coverage of contact points: by hand, and over hundreds of generated kommuner where each (kommune, role) is
built from a named scenario whose expected problems are known before the report is computed."""

from __future__ import annotations

import csv
import io
import random

import pytest

from gateway.oversikt.coverage import CSV_COLUMNS, CoverageError, CoverageRow, ReceiverCounts, coverage, coverage_csv


def test_a_kommune_without_kreftkoordinator_and_with_a_silent_receiver() -> None:
    wanted = {"5001": {"forvaltningsenhet", "kreftkoordinator", "koordinerende_enhet", "fastlege"}}
    registry = {"5001": {"forvaltningsenhet": [(81001, "Tildelingskontoret", True), (81000, "Gammel enhet", False)],
                         "koordinerende_enhet": [(81002, "Koordinerende enhet", False)],
                         "fastlege": [(91001, "Legekontoret A", True), (91002, "Legekontoret B", True)],
                         "nav": [(81009, "NAV Trondheim", True)]}}
    receipts = {81001: ReceiverCounts(10, 8, 1, 1), 81000: ReceiverCounts(2, 2), 91001: ReceiverCounts(4, 0, 0, 2),
                91002: ReceiverCounts(3, 0)}
    rows = coverage(wanted, registry, receipts)
    assert [(r.role, r.problems) for r in rows] == [
        ("forvaltningsenhet", ("rejects", "overdue")),
        ("koordinerende_enhet", ("no_active",)),
        ("kreftkoordinator", ("missing",)),
        ("fastlege", ("never_acknowledges", "overdue")),
        ("nav", ("not_wanted",)),
    ]
    first = rows[0]
    assert (first.active, first.inactive, first.herids, first.sent, first.acknowledged) == (1, 1, (81001,), 12, 10)
    assert rows[3].herids == (91001, 91002) and rows[3].sent == 7
    assert not any(r.ok for r in rows)


def test_a_kommune_only_in_the_registry_and_one_only_in_the_rules() -> None:
    rows = coverage({"0301": {"forvaltningsenhet"}}, {"4601": {"kreftkoordinator": [(1, "K", True)]}})
    assert [(r.kommunenummer, r.role, r.wanted, r.problems) for r in rows] == [
        ("0301", "forvaltningsenhet", True, ("missing",)), ("4601", "kreftkoordinator", False, ("not_wanted",))]


def test_counts_must_add_up() -> None:
    with pytest.raises(CoverageError, match="exceed sent"):
        ReceiverCounts(1, 1, 1)
    with pytest.raises(CoverageError, match="whole number"):
        ReceiverCounts(-1)


def test_csv_export() -> None:
    rows = coverage({"5001": {"forvaltningsenhet", "kreftkoordinator"}},
                    {"5001": {"forvaltningsenhet": [(81001, "Tildeling, Trondheim", True), (81003, "B", True)]}},
                    {81001: ReceiverCounts(5, 5)})
    text = coverage_csv(rows)
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == list(CSV_COLUMNS) == ["kommunenummer", "role", "wanted", "active", "inactive", "herids", "names",
                                             "sent", "acknowledged", "rejected", "overdue", "problems"]
    assert lines[1:] == [["5001", "forvaltningsenhet", "yes", "2", "0", "81001;81003", "Tildeling, Trondheim;B", "5",
                          "5", "0", "0", ""],
                         ["5001", "kreftkoordinator", "yes", "0", "0", "", "", "0", "0", "0", "0", "missing"]]


SCENARIOS = {
    "ok": (),
    "unused": (),
    "missing": ("missing",),
    "no_active": ("no_active",),
    "rejects": ("rejects",),
    "silent": ("never_acknowledges",),
    "silent_overdue": ("never_acknowledges", "overdue"),
    "late": ("overdue",),
    "not_wanted": ("not_wanted",),
}
ROLES = ["forvaltningsenhet", "koordinerende_enhet", "kreftkoordinator", "barnekoordinator", "saksbehandling",
         "fastlege", "nav"]


def test_generated_kommuner_report_the_planted_scenarios() -> None:
    r = random.Random(11)
    wanted: dict[str, set[str]] = {}
    registry: dict[str, dict[str, list[tuple[int, str, bool]]]] = {}
    receipts: dict[int, ReceiverCounts] = {}
    expect: dict[tuple[str, str], tuple[tuple[str, ...], int, int, int]] = {}
    herid = 10_000
    for n in range(350):
        kommune = f"{n + 1000:04d}"
        wanted[kommune] = set()
        registry[kommune] = {}
        for role in r.sample(ROLES, r.randrange(1, len(ROLES))):
            scenario = r.choice(list(SCENARIOS))
            if scenario != "not_wanted":
                wanted[kommune].add(role)
            if scenario == "missing":
                expect[(kommune, role)] = (SCENARIOS[scenario], 0, 0, 0)
                continue
            active_n = 0 if scenario == "no_active" else r.randrange(1, 4)
            inactive_n = r.randrange(1, 3) if scenario == "no_active" else r.randrange(0, 2)
            parties = []
            for i in range(active_n + inactive_n):
                herid += 1
                parties.append((herid, f"Enhet {herid}", i < active_n))
            registry[kommune][role] = parties
            sent = {"unused": 0, "no_active": 0}.get(scenario, r.randrange(1, 20) + 6)
            ack = 0 if scenario.startswith("silent") or sent == 0 else r.randrange(1, sent - 4)
            rejected = r.randrange(1, 3) if scenario == "rejects" else 0
            overdue = r.randrange(1, 3) if scenario in ("silent_overdue", "late") else 0
            # half of the sent and acknowledged to the first party, the rest (with any rejects or overdue) to the
            # last, none to those between: the report must sum over the role's parties
            first = (sent // 2, ack // 2) if len(parties) > 1 else (0, 0)
            if any(first):
                receipts[parties[0][0]] = ReceiverCounts(*first)
            if sent - first[0]:
                receipts[parties[-1][0]] = ReceiverCounts(sent - first[0], ack - first[1], rejected, overdue)
            expect[(kommune, role)] = (SCENARIOS[scenario], sent, ack, active_n)
    rows = coverage(wanted, registry, receipts)
    assert {(row.kommunenummer, row.role): (row.problems, row.sent, row.acknowledged, row.active) for row in rows} == (
        expect)
    assert [(row.kommunenummer, ROLES.index(row.role)) for row in rows] == sorted(
        (row.kommunenummer, ROLES.index(row.role)) for row in rows)  # ROLES lists the report order
    parsed = list(csv.DictReader(io.StringIO(coverage_csv(rows))))
    assert len(parsed) == len(rows)
    assert all(p["problems"] == ";".join(row.problems) for p, row in zip(parsed, rows, strict=True))
    assert isinstance(rows[0], CoverageRow)
