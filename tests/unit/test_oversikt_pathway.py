"""The pathway per patient and the due lists: hand-made cases for each rule, and thousands of generated patients
whose expected lists are derived from the plan that generated them (not from the records, and not with the
implementation's algorithm)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from gateway.oversikt.pathway import (
    DEFAULT_WINDOWS,
    DueWindowError,
    DueWindows,
    DueWindowSettings,
    KartleggingRecord,
    MessageRecord,
    RecordError,
    Window,
    build_pathway,
    build_pathways,
    delivery_state,
    parse_due_window_settings,
    parse_due_windows,
    worklists,
)
from tests.unit.oversikt_history import (
    DEFAULT_TRUTH,
    HOSPITAL_A,
    HOSPITAL_B,
    KOMMUNE_UNIT,
    SETTINGS,
    TRUTH,
    Plan,
    generate,
)


def rec(sp: int, performed_on: date | datetime, *, key: str = "p1", sender: int | None = None,
        kommune: str = "5001", status: str = "sent", declined: bool = False, again: date | None = None,
        wmfg10: bool = False, messages: tuple[MessageRecord, ...] = (), event_id: str | None = None
        ) -> KartleggingRecord:
    sender = sender if sender is not None else (HOSPITAL_A if sp <= 2 else KOMMUNE_UNIT)
    return KartleggingRecord(event_id or f"{key}-sp{sp}-{performed_on}", key, sp, performed_on, sender,
                             f"Enhet {sender}", kommune, status, declined, again, wmfg10, messages)


# --- hand-made cases ---------------------------------------------------------------------------------------------

def test_sp4_and_sp5_windows_from_sp3_and_the_due_states_at_their_edges() -> None:
    p = build_pathway([rec(1, date(2026, 1, 5)), rec(3, date(2026, 2, 1))], DEFAULT_WINDOWS["sp3"])
    assert p.points_done() == (1, 3)
    sp4, sp5 = p.windows
    assert (sp4.samhandlingspunkt, sp4.from_date, sp4.to_date) == (4, date(2026, 4, 22), date(2026, 5, 22))
    assert (sp5.samhandlingspunkt, sp5.from_date, sp5.to_date) == (5, date(2027, 1, 2), date(2027, 3, 3))
    assert p.due_state(date(2026, 3, 22)) == "upcoming"
    assert p.due_state(date(2026, 3, 23)) == "due_soon"  # opens within 30 days
    assert p.due_state(date(2026, 5, 22)) == "due_soon"  # last day of the window
    assert p.due_state(date(2026, 5, 23)) == "overdue"
    assert p.due_state(date(2026, 5, 23), soon_days=0) == "overdue"
    assert p.due_state(date(2026, 4, 21), soon_days=0) == "upcoming"


def test_today_is_the_oslo_date_not_the_utc_date() -> None:
    p = build_pathway([rec(3, date(2026, 2, 1))], DEFAULT_WINDOWS["sp3"])  # SP4 window ends 2026-05-22
    assert p.due_state(datetime(2026, 5, 22, 21, 59, tzinfo=UTC)) == "due_soon"  # 23:59 in Oslo (summer time)
    assert p.due_state(datetime(2026, 5, 22, 22, 0, tzinfo=UTC)) == "overdue"  # 00:00 on the 23rd in Oslo
    lists = worklists([p], datetime(2026, 5, 22, 22, 30, tzinfo=UTC))
    assert lists.today == date(2026, 5, 23)
    assert [i.days_left for i in lists.by_kommune["5001"].overdue] == [-1]
    with pytest.raises(ValueError, match="naive"):
        p.due_state(datetime(2026, 5, 22, 22, 0))


def test_performed_on_given_as_an_instant_is_kept_as_its_oslo_date() -> None:
    k = rec(3, datetime(2024, 2, 28, 23, 30, tzinfo=UTC))  # 00:30 on 29 February in Oslo
    assert k.performed_on == date(2024, 2, 29) and type(k.performed_on) is date
    with pytest.raises(RecordError, match="naive"):
        rec(3, datetime(2024, 2, 28, 23, 30))


def test_leap_day_basis() -> None:
    p = build_pathway([rec(3, date(2024, 2, 29))], DEFAULT_WINDOWS["sp3"])
    assert [(w.from_date, w.to_date) for w in p.windows] == [(date(2024, 5, 19), date(2024, 6, 18)),
                                                           (date(2025, 1, 29), date(2025, 3, 30))]
    d = build_pathway([rec(1, date(2023, 3, 1))], DEFAULT_WINDOWS["diagnosis"])
    # 2024 is a leap year: 365 days after 1 March 2023 is 29 February 2024
    assert d.windows[1].from_date == date(2024, 2, 29)


def test_without_sp3_there_is_no_sp3_based_window_but_a_diagnosis_based_one() -> None:
    records = [rec(1, date(2026, 1, 5)), rec(2, date(2026, 1, 20))]
    assert build_pathway(records, DEFAULT_WINDOWS["sp3"]).windows == ()
    assert build_pathway(records, DEFAULT_WINDOWS["sp3"]).due_state(date(2027, 1, 1)) == "none"
    diag = build_pathway(records, DEFAULT_WINDOWS["diagnosis"])
    assert [(w.samhandlingspunkt, w.basis_date, w.from_date, w.to_date) for w in diag.windows] == [
        (4, date(2026, 1, 5), date(2026, 4, 6), date(2026, 5, 7)),
        (5, date(2026, 1, 5), date(2027, 1, 5), date(2027, 7, 7)),
    ]
    # SP1 missing: SP2 stands in for the diagnosis date
    assert build_pathway(records[1:], DEFAULT_WINDOWS["diagnosis"]).windows[0].basis_date == date(2026, 1, 20)


def test_a_missed_window_gives_way_to_the_next_once_that_opens() -> None:
    p = build_pathway([rec(3, date(2025, 1, 10))], DEFAULT_WINDOWS["sp3"])
    assert p.due_state(date(2025, 6, 1)) == "overdue"
    window = p.current_window(date(2025, 6, 1))
    assert window is not None and window.samhandlingspunkt == 4
    window = p.current_window(date(2025, 12, 11))  # SP5 opens 335 days after SP3
    assert window is not None and window.samhandlingspunkt == 5
    assert p.due_state(date(2025, 12, 11)) == "due_soon"
    # SP5 done without SP4: nothing is due any more
    done = build_pathway([rec(3, date(2025, 1, 10)), rec(5, date(2026, 1, 5))], DEFAULT_WINDOWS["sp3"])
    assert done.windows == () and done.due_state(date(2026, 6, 1)) == "none"


def test_declined_then_done_later_resolves_the_decline() -> None:
    declined = rec(1, date(2026, 1, 5), status="declined", declined=True, again=date(2026, 3, 1))
    only = build_pathway([declined], DEFAULT_WINDOWS["sp3"])
    assert only.open_decline == declined and only.done == ()
    assert only.due_state(date(2026, 2, 28)) == "declined"
    assert only.due_state(date(2026, 3, 1)) == "ask_again"
    later = build_pathway([declined, rec(2, date(2026, 4, 1)), rec(3, date(2026, 5, 1))], DEFAULT_WINDOWS["sp3"])
    assert later.open_decline is None and later.points_done() == (2, 3)
    assert later.due_state(date(2026, 7, 25)) == "due_soon"
    # changed their mind the same day: the kartlegging answers the decline
    same_day = [rec(3, date(2026, 5, 1), declined=True, again=date(2026, 9, 1)), rec(3, date(2026, 5, 1))]
    assert build_pathway(same_day, DEFAULT_WINDOWS["sp3"]).open_decline is None
    # a kartlegging at an earlier point does not answer a decline at a later one
    sp4_declined = rec(4, date(2026, 8, 1), declined=True, again=None, status="sent")
    still = build_pathway([rec(3, date(2026, 5, 1)), sp4_declined], DEFAULT_WINDOWS["sp3"])
    assert still.open_decline == sp4_declined and still.due_state(date(2030, 1, 1)) == "declined"


def test_two_hospitals_see_the_patient_on_both_lists() -> None:
    records = [rec(1, date(2026, 1, 5), sender=HOSPITAL_A), rec(2, date(2026, 1, 25), sender=HOSPITAL_B),
               rec(3, date(2026, 2, 1)), rec(1, date(2026, 1, 3), key="p2", sender=HOSPITAL_B, kommune="0301"),
               rec(3, date(2026, 2, 10), key="p2", kommune="0301")]
    pathways = build_pathways(records)
    assert [p.hospitals for p in pathways] == [(HOSPITAL_A, HOSPITAL_B), (HOSPITAL_B,)]
    lists = worklists(pathways, date(2026, 4, 25))
    assert [i.patient_key for i in lists.by_hospital[HOSPITAL_A].due_soon] == ["p1"]
    assert [i.patient_key for i in lists.by_hospital[HOSPITAL_B].due_soon] == ["p1", "p2"]
    assert set(lists.by_kommune) == {"5001", "0301"}


def test_kommune_windows_follow_where_the_patient_lives_now() -> None:
    settings = parse_due_window_settings(None, {"5001": {"sp4": {"from_days": 60, "to_days": 90}},
                                                "0301": {"basis": "diagnosis"}})
    moved = [rec(1, date(2026, 1, 5), kommune="0301"), rec(3, date(2026, 2, 1), kommune="5001")]
    p = build_pathway(moved, settings)
    assert p.kommunenummer == "5001"
    assert (p.windows[0].from_date, p.windows[0].to_date) == (date(2026, 4, 2), date(2026, 5, 2))
    stays = build_pathway([rec(1, date(2026, 1, 5), kommune="0301")], settings)
    assert stays.windows[0].basis == "diagnosis"


def test_delivery_state_of_a_kartlegging() -> None:
    def m(state: str) -> MessageRecord:
        return MessageRecord(f"m-{state}", 1, "Mottaker", "kommune", state)

    assert delivery_state([]) == "none"
    assert delivery_state([m("superseded")]) == "none"
    assert delivery_state([m("acknowledged"), m("acknowledged")]) == "acknowledged"
    assert delivery_state([m("acknowledged"), m("sent")]) == "sent"
    assert delivery_state([m("built"), m("sent")]) == "pending"
    assert delivery_state([m("overdue"), m("acknowledged")]) == "overdue"
    assert delivery_state([m("overdue"), m("rejected")]) == "rejected"
    assert delivery_state([m("superseded"), m("acknowledged")]) == "acknowledged"


@pytest.mark.parametrize(("raw", "message"), [
    ({"basis": "month"}, r"basis: must be one of sp3, diagnosis"),
    ({"sp6": {"from_days": 1, "to_days": 2}}, "unknown key"),
    ({"sp4": {"from_days": 90, "to_days": 80}}, r"sp4\.to_days: must not be before from_days \(90\)"),
    ({"sp4": {"from_days": 80}}, r"sp4: to_days is missing"),
    ({"sp4": {"from_days": True, "to_days": 80}}, r"sp4\.from_days: must be a whole number"),
    ({"sp4": {"from_days": "80", "to_days": 90}}, r"sp4\.from_days: must be a whole number"),
    ({"sp4": {"from_days": -1, "to_days": 90}}, r"between 0 and"),
    ({"sp4": {"from_days": 1, "to_days": 5000}}, r"between 0 and"),
    ({"sp4": {"from_days": 1, "to_days": 5, "weeks": 1}}, r"sp4: unknown key\(s\) weeks"),
    ({"sp4": [80, 110]}, r"sp4: must be a mapping"),
    ({"sp3": {"from_days": 1, "to_days": 5}}, r"basis sp3 there is no window for SP3"),
    ([1, 2], "must be a mapping"),
])
def test_bad_due_windows_are_refused_with_the_place_named(raw: Any, message: str) -> None:
    with pytest.raises(DueWindowError, match=message) as info:
        parse_due_windows(raw, "routes/kommune/5001.yaml: due_windows")
    assert str(info.value).startswith("routes/kommune/5001.yaml: due_windows")


def test_due_windows_fill_in_from_the_defaults_file_and_the_basis() -> None:
    assert parse_due_windows(None) == DEFAULT_WINDOWS["sp3"]
    assert parse_due_windows({"basis": "diagnosis"}) == DEFAULT_WINDOWS["diagnosis"]
    assert parse_due_windows({"sp5": None}) == DueWindows("sp3", sp4=Window(80, 110))
    with_sp3 = parse_due_windows({"basis": "diagnosis", "sp3": {"from_days": 30, "to_days": 60}})
    assert with_sp3.targets()[0] == (3, Window(30, 60))
    settings = parse_due_window_settings({"sp4": {"from_days": 70, "to_days": 100}},
                                         {"5001": {"sp5": {"from_days": 300, "to_days": 400}},
                                          "0301": {"basis": "diagnosis"}, "1103": None})
    assert settings.default == DueWindows("sp3", sp4=Window(70, 100), sp5=Window(335, 395))
    assert settings.for_kommune("5001") == DueWindows("sp3", sp4=Window(70, 100), sp5=Window(300, 400))
    assert settings.for_kommune("0301") == DEFAULT_WINDOWS["diagnosis"]  # another basis: its own defaults
    assert settings.for_kommune("1103") == settings.default == settings.for_kommune("9999")
    with pytest.raises(DueWindowError, match=r"routes/kommune/Oslo.yaml: due_windows: 'Oslo' is not a kommunenummer"):
        parse_due_window_settings(None, {"Oslo": {}})
    with pytest.raises(DueWindowError, match=r"^routes/kommune/0301.yaml: due_windows.basis"):
        parse_due_window_settings(None, {"0301": {"basis": "x"}})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sp": 6}, "samhandlingspunkt must be 1-5"),
    ({"status": "lost"}, "status 'lost'"),
    ({"status": "declined"}, "status declined but declined is false"),
])
def test_contradictory_records_are_refused(kwargs: dict[str, Any], message: str) -> None:
    sp = kwargs.pop("sp", 1)
    with pytest.raises(RecordError, match=message):
        rec(sp, date(2026, 1, 1), **kwargs)
    with pytest.raises(RecordError, match="state 'lost'"):
        MessageRecord("m", 1, "x", "kommune", "lost")


def test_worklists_refuse_a_negative_horizon_and_pathways_need_one_patient() -> None:
    with pytest.raises(ValueError):
        worklists([], date(2026, 1, 1), soon_days=-1)
    with pytest.raises(RecordError):
        build_pathway([rec(1, date(2026, 1, 1)), rec(1, date(2026, 1, 1), key="p2")], DEFAULT_WINDOWS["sp3"])
    with pytest.raises(RecordError):
        build_pathway([], DEFAULT_WINDOWS["sp3"])


# --- generated histories ------------------------------------------------------------------------------------------

def expected(p: Plan, today: date, soon: int) -> tuple[str, int | None, date | None, date | None]:
    """(state, target SP, window from, window to), written from the plan."""
    # Declines: the generator never lets anything follow a decline at SP3, and a decline at SP1 is answered by
    # SP2 or SP3 (both come after it).
    decline_again: tuple[date | None] | None = None
    if p.sp3_declined:
        decline_again = (p.sp3_again,)
    elif p.sp1_declined and not p.sp2 and not p.sp3:
        decline_again = (p.sp1_again,)
    if decline_again is not None:
        again = decline_again[0]
        return ("ask_again" if again is not None and again <= today else "declined", None, None, None)
    basis, sp4, sp5 = TRUTH.get(p.kommune, DEFAULT_TRUTH)
    anchor = p.sp3 if basis == "sp3" else (p.sp1 or p.sp2)
    if anchor is None or p.sp5:
        return ("none", None, None, None)
    w4 = (4, anchor + timedelta(days=sp4[0]), anchor + timedelta(days=sp4[1])) if sp4 and not p.sp4 else None
    w5 = (5, anchor + timedelta(days=sp5[0]), anchor + timedelta(days=sp5[1])) if sp5 else None
    current = w5 if w5 and today >= w5[1] else (w4 or w5)
    if current is None:
        return ("none", None, None, None)
    sp, start, end = current
    if today > end:
        return ("overdue", sp, start, end)
    if (start - today).days <= soon:
        return ("due_soon", sp, start, end)
    return ("upcoming", sp, start, end)


PLANS = generate(4000, seed=17)


def test_generated_pathways_record_what_was_done_when_and_by_whom() -> None:
    pathways = {p.patient_key: p for p in build_pathways([k for plan in PLANS for k in plan.records], SETTINGS)}
    assert len(pathways) == len(PLANS)
    for plan in PLANS:
        p = pathways[plan.key]
        done = {1: None if plan.sp1_declined else plan.sp1, 2: plan.sp2, 3: plan.sp3, 4: plan.sp4, 5: plan.sp5}
        assert p.points_done() == tuple(sp for sp, d in done.items() if d), plan.key
        for sp, d in done.items():
            first = p.first_done(sp)
            assert (first.performed_on if first else None) == d
        assert set(p.hospitals) == set(plan.hospitals)
        only_sp1 = plan.sp1 is not None and len(plan.records) == 1
        assert p.kommunenummer == (plan.old_kommune if plan.old_kommune and only_sp1 else plan.kommune)


@pytest.mark.parametrize("today", [date(2023, 6, 30), date(2024, 2, 29), date(2025, 3, 31), date(2026, 1, 1),
                                   datetime(2025, 10, 25, 23, 30, tzinfo=UTC)])
@pytest.mark.parametrize("soon", [0, 30])
def test_generated_worklists_match_the_plans(today: date, soon: int) -> None:
    oslo_today = today.date() + timedelta(days=1) if isinstance(today, datetime) else today  # 23:30 UTC: next day
    lists = worklists(build_pathways([k for plan in PLANS for k in plan.records], SETTINGS), today, soon)
    assert lists.today == oslo_today

    want: dict[tuple[str, Any, str], set[tuple[Any, ...]]] = defaultdict(set)
    for plan in PLANS:
        only_sp1 = plan.sp1 is not None and len(plan.records) == 1
        kommune = plan.old_kommune if plan.old_kommune and only_sp1 else plan.kommune
        if plan.old_kommune and only_sp1:
            continue  # the kommune's windows then come from the old kommune; covered by the hand-made cases
        state, sp, start, end = expected(plan, oslo_today, soon)
        if state in ("due_soon", "overdue"):
            assert end is not None
            item: tuple[Any, ...] = (plan.key, sp, start, end, (end - oslo_today).days)
        elif state == "ask_again":
            again = plan.sp3_again if plan.sp3_declined else plan.sp1_again
            item = (plan.key, 3 if plan.sp3_declined else 1, again)
        else:
            continue
        want[("k", kommune, state)].add(item)
        for h in plan.hospitals:
            want[("h", h, state)].add(item)

    got: dict[tuple[str, Any, str], set[tuple[Any, ...]]] = defaultdict(set)
    skipped = {plan.key for plan in PLANS if plan.old_kommune and plan.sp1 is not None and len(plan.records) == 1}
    for kind, per in (("k", lists.by_kommune), ("h", lists.by_hospital)):
        for where, wl in per.items():
            for state, items in (("due_soon", wl.due_soon), ("overdue", wl.overdue)):
                got[(kind, where, state)] |= {(i.patient_key, i.window.samhandlingspunkt, i.window.from_date,
                                               i.window.to_date, i.days_left)
                                              for i in items if i.patient_key not in skipped}
            got[(kind, where, "ask_again")] |= {(i.patient_key, i.samhandlingspunkt, i.ask_again_after)
                                                for i in wl.ask_again if i.patient_key not in skipped}
    assert {k: v for k, v in got.items() if v} == dict(want)
    total = sum(len(v) for k, v in want.items() if k[0] == "k")
    assert total > 50  # the generated population really exercises the lists on this day


def test_generated_lists_are_sorted_by_deadline() -> None:
    lists = worklists(build_pathways([k for plan in PLANS for k in plan.records], SETTINGS), date(2025, 3, 31))
    for wl in [*lists.by_kommune.values(), *lists.by_hospital.values()]:
        for items in (wl.due_soon, wl.overdue):
            assert [(i.window.to_date, i.patient_key) for i in items] == sorted(
                (i.window.to_date, i.patient_key) for i in items)
        assert [i.ask_again_after for i in wl.ask_again] == sorted(i.ask_again_after for i in wl.ask_again)


def test_settings_type_is_accepted_directly() -> None:
    assert isinstance(SETTINGS, DueWindowSettings)
    assert SETTINGS.for_kommune("1103").sp5 is None
