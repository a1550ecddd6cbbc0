"""The field's cases, without a server: a wish for a kreftkoordinator, an individual plan, children,
a declined kartlegging and two hospitals. Routing, text and the contract; the end-to-end tests on
RabbitMQ are in test_feltsaker_e2e.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from lxml import etree

from gateway.domain.fodselsnummer import age_on, birth_date, synthetic
from gateway.domain.history import TWO_HOSPITALS, Tidligere, second_hospital
from gateway.domain.kartlegging import Contact, Declined, Guardian, IndividuellPlan, Kartlegging, parse_event
from gateway.domain.registry import GpAssignment, MemoryRegister, Party
from gateway.errors import Parked, Reason
from gateway.pipeline import build_meldinger
from gateway.routing.route import route
from tests.conftest import FIXTURES
from tests.unit.test_routing import DEPT, DIALOG, FNR, FORVALTNING, GP, HOSPITAL, KOMMUNE, KREFTKOORD, event, register

KOORD, BARNEKOORD = 8_900_030, 8_900_031
OTHER_HOSPITAL, OTHER_DEPT, SAME_HOSPITAL_OTHER_DEPT = 8_900_040, 8_900_041, 8_900_003
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def kommune_register(*, kreftkoordinator: bool = True, koordinerende: bool = True, barnekoordinator: bool = False,
                     gp_for: tuple[str, ...] = ()) -> MemoryRegister:
    extra = [Party(OTHER_HOSPITAL, "Annetsjukehuset HF", "organisation"),
             Party(OTHER_DEPT, "Kreftpoliklinikken", "department", parent_herid=OTHER_HOSPITAL, formats=DIALOG),
             Party(SAME_HOSPITAL_OTHER_DEPT, "Kirurgisk avdeling", "department", parent_herid=HOSPITAL,
                   formats=DIALOG)]
    if koordinerende:
        extra.append(Party(KOORD, "Koordinerende enhet", "service", parent_herid=KOMMUNE,
                           service_type="koordinerende_enhet", formats=DIALOG))
    if barnekoordinator:
        extra.append(Party(BARNEKOORD, "Barnekoordinator", "service", parent_herid=KOMMUNE,
                           service_type="barnekoordinator", formats=DIALOG))
    base = register(extra=tuple(extra))
    parties = {k: v for k, v in base.parties.items() if kreftkoordinator or k != KREFTKOORD}
    assignments = dict(base.assignments)
    for fnr in gp_for:
        assignments[fnr] = [GpAssignment(fnr, GP, date(2000, 1, 1))]
    return MemoryRegister(parties=parties, assignments=assignments)


def texts(e: Kartlegging, reg: MemoryRegister, **kwargs: object) -> dict[str, str]:
    """role → the note text of that receiver's message (built and validated as in production)."""
    chosen = route(e, reg, **kwargs)  # type: ignore[arg-type]
    out = {}
    for m in build_meldinger(e, chosen, NOW):
        root = etree.fromstring(m.xml)
        found = root.xpath("//*[local-name()='TekstNotatInnhold'] | "
                           "//*[local-name()='Journaltekst']/*[local-name()='Notat']")
        out[m.role] = "".join(found[0].itertext())
    return out


# 1. The patient wants a kreftkoordinator -----------------------------------------------------------

def test_wish_for_kreftkoordinator_reaches_the_kreftkoordinator() -> None:
    e = replace(event(1), kreftkoordinator_wanted=True)
    chosen = route(e, kommune_register())
    assert [(m.role, m.herid) for m in chosen.receivers] == [
        ("kommune", FORVALTNING), ("fastlege", GP), ("kreftkoordinator", KREFTKOORD)]
    assert chosen.additions and chosen.additions[0].startswith("onsker-kreftkoordinator (routes/default.yaml:")
    for role, text in texts(e, kommune_register()).items():
        assert "Pasienten ønsker kontakt med kreftkoordinator." in text, role
    assert texts(e, kommune_register())["kreftkoordinator"].startswith("Til kreftkoordinator")


def test_no_kreftkoordinator_falls_back_to_koordinerende_enhet_and_says_so() -> None:
    e = replace(event(1), kreftkoordinator_wanted=True)
    reg = kommune_register(kreftkoordinator=False)
    chosen = route(e, reg)
    kk = next(m for m in chosen.receivers if m.role == "kreftkoordinator")
    assert (kk.herid, kk.target, kk.fallback) == (KOORD, "koordinerende_enhet", True)
    assert "fallback step 2 of 3" in kk.why
    text = texts(e, reg)["kreftkoordinator"]
    assert "Pasienten ønsker kontakt med kreftkoordinator." in text
    assert "Kommunen har ingen aktiv kreftkoordinator" in text and "Koordinerende enhet, Testvik kommune" in text


def test_no_kreftkoordinator_nor_koordinerende_enhet_leaves_the_wish_in_the_kommune_message() -> None:
    e = replace(event(1), kreftkoordinator_wanted=True)
    reg = kommune_register(kreftkoordinator=False, koordinerende=False)
    chosen = route(e, reg)
    assert [m.herid for m in chosen.receivers] == [FORVALTNING, GP]  # the chain ends at the kommune's receiver
    assert any(s.role == "kreftkoordinator" and "already a receiver" in s.why for s in chosen.skipped)
    assert "Pasienten ønsker kontakt med kreftkoordinator." in texts(e, reg)["kommune"]


def test_without_the_wish_nobody_extra_is_told() -> None:
    chosen = route(event(1), kommune_register())
    assert [m.role for m in chosen.receivers] == ["kommune", "fastlege"] and chosen.additions == ()
    assert all("kreftkoordinator" not in t for t in texts(event(1), kommune_register()).values())


# 2. Individual plan and koordinator --------------------------------------------------------------

def test_individual_plan_with_consent_notifies_the_koordinerende_enhet() -> None:
    e = replace(event(2), individuell_plan=IndividuellPlan(needed=True, consent_to_notify=True))
    chosen = route(e, kommune_register())
    assert ("koordinerende_enhet", KOORD) in [(m.role, m.herid) for m in chosen.receivers]
    assert chosen.additions[0].startswith("individuell-plan ")
    text = texts(e, kommune_register())["koordinerende_enhet"]
    assert text.startswith("Til koordinerende enhet: behov for individuell plan og koordinator")
    assert "har samtykket til at kommunens koordinerende enhet varsles" in text


@pytest.mark.parametrize("plan", [IndividuellPlan(True, False), IndividuellPlan(False, True), None])
def test_individual_plan_without_need_or_consent_notifies_nobody(plan: IndividuellPlan | None) -> None:
    e = replace(event(2), individuell_plan=plan)
    assert [m.role for m in route(e, kommune_register()).receivers] == ["kommune", "fastlege"]
    assert all("individuell plan" not in t for t in texts(e, kommune_register()).values())


# 3. Children --------------------------------------------------------------------------------------

def child(born: date, on: date, *, d_nummer: bool = False, index: int = 0) -> Kartlegging:
    fnr = synthetic(born, index, d_nummer=d_nummer)
    e = event(1, performed_on=on)
    return replace(e, patient=replace(e.patient, fnr=fnr, fastlege_herid=GP,
                                      guardian=Guardian("Foresatt Fiktiv", "mor", "+47 900 11 222")))


def test_child_goes_to_the_barnekoordinator_with_age_and_guardian() -> None:
    e = child(date(2010, 6, 15), date(2026, 3, 2))
    reg = kommune_register(barnekoordinator=True)
    chosen = route(e, reg)
    assert ("barnekoordinator", BARNEKOORD) in [(m.role, m.herid) for m in chosen.receivers]
    assert chosen.age == 15 and chosen.additions[0].startswith("barn-under-18 ")
    text = texts(e, reg)["barnekoordinator"]
    assert text.startswith("Til barnekoordinator")
    assert "Pasienten er et barn: 15 år på kartleggingsdatoen." in text
    assert "Foresatt: Foresatt Fiktiv (mor), telefon +47 900 11 222." in text


def test_child_without_barnekoordinator_goes_to_the_koordinerende_enhet() -> None:
    e = child(date(2010, 6, 15), date(2026, 3, 2))
    chosen = route(e, kommune_register(barnekoordinator=False))
    bk = next(m for m in chosen.receivers if m.role == "barnekoordinator")
    assert (bk.herid, bk.target) == (KOORD, "koordinerende_enhet")
    assert texts(e, kommune_register())["barnekoordinator"].startswith(
        "Til koordinerende enhet (kommunen har ingen barnekoordinator i adresseregisteret)")


@pytest.mark.parametrize(("born", "on", "is_child"), [
    (date(2008, 10, 5), date(2026, 10, 4), True),  # the day before the 18th birthday
    (date(2008, 10, 5), date(2026, 10, 5), False),  # the 18th birthday
    (date(2008, 2, 29), date(2026, 2, 28), True),  # born on 29 February: 18 only on 1 March
    (date(2008, 2, 29), date(2026, 3, 1), False),
    (date(2026, 1, 10), date(2026, 3, 2), True),  # a baby
])
def test_the_age_on_the_day_of_the_kartlegging_decides(born: date, on: date, is_child: bool) -> None:
    chosen = route(child(born, on), kommune_register())
    assert ("barnekoordinator" in [m.role for m in chosen.receivers]) is is_child


@pytest.mark.parametrize(("born", "d_nummer"), [(date(2010, 6, 15), False), (date(2010, 6, 15), True),
                                                 (date(2000, 1, 1), False), (date(2018, 2, 28), True)])
def test_century_comes_from_the_individual_number(born: date, d_nummer: bool) -> None:
    """The same six digits of date are 1910 or 2010 depending on the individual number."""
    young = synthetic(born, 0, d_nummer=d_nummer)
    old = synthetic(born.replace(year=born.year - 100), 0, d_nummer=d_nummer)
    assert young[:6] == old[:6] and int(young[6:9]) >= 500 > int(old[6:9])
    assert birth_date(young) == born and birth_date(old) == born.replace(year=born.year - 100)
    on = date(2026, 6, 30)
    assert age_on(young, on) < 27 and age_on(old, on) >= 100
    assert ("barnekoordinator" in [m.role for m in route(child(born, on, d_nummer=d_nummer),
                                                          kommune_register()).receivers]) is (age_on(young, on) < 18)


def test_1800s_individual_numbers_are_not_children() -> None:
    """500–749 with a year of 54–99 is the 1800s: a number like that is never a child today."""
    old = synthetic(date(1899, 12, 31), 0)
    assert 500 <= int(old[6:9]) <= 749 and birth_date(old).year == 1899
    e = event(1)
    e = replace(e, patient=replace(e.patient, fnr=old, fastlege_herid=GP))
    assert route(e, kommune_register()).age == 126


def test_adults_are_not_routed_as_children() -> None:
    chosen = route(event(1), kommune_register(barnekoordinator=True))
    assert "barnekoordinator" not in [m.role for m in chosen.receivers]
    assert all("barn" not in t for t in texts(event(1), kommune_register()).values())


# 4. The patient declined -------------------------------------------------------------------------

def declined(consent: bool, sp: int = 1) -> Kartlegging:
    e = event(sp)
    return replace(e, declined=Declined(consent, date(2026, 6, 1)),
                   assessment=replace(e.assessment, procedure_code=None, topics=()))


def test_declined_with_consent_gives_the_kommune_a_short_notice() -> None:
    e = declined(True)
    chosen = route(e, kommune_register())
    assert chosen.declined and chosen.template == "avslag"
    assert chosen.rule and chosen.rule.startswith("avslag-med-samtykke ")
    assert [(m.role, m.herid) for m in chosen.receivers] == [("kommune", FORVALTNING)]  # not the fastlege
    text = texts(e, kommune_register())["kommune"]
    assert text.startswith("Melding om at pasienten takket nei til behovskartlegging")
    assert "samtykket til at kommunen informeres" in text and "tidligst 01.06.2026" in text
    assert "Behov pasienten har" not in text and "WMFG10" not in text


def test_declined_without_consent_sends_nothing() -> None:
    chosen = route(declined(False), kommune_register())
    assert chosen.receivers == () and chosen.declined
    assert chosen.why_none and "did not consent" in chosen.why_none
    assert chosen.rule == "built in: declined without consent to inform the kommune"


def test_declined_at_a_kommune_point_has_nobody_to_tell() -> None:
    chosen = route(declined(True, sp=3), kommune_register())
    assert chosen.receivers == () and chosen.declined and "no rule" in (chosen.why_none or "")


def test_declined_but_wants_a_kreftkoordinator() -> None:
    """Seed 003: patients often accept a kreftkoordinator but decline the pathway follow-up."""
    e = replace(declined(True), kreftkoordinator_wanted=True)
    chosen = route(e, kommune_register())
    assert [(m.role, m.herid) for m in chosen.receivers] == [("kommune", FORVALTNING),
                                                              ("kreftkoordinator", KREFTKOORD)]
    text = texts(e, kommune_register())["kreftkoordinator"]
    assert "takket nei" in text and "Pasienten ønsker kontakt med kreftkoordinator." in text


def test_declined_event_needs_no_wmfg10_but_a_done_one_does() -> None:
    raw = json.loads((FIXTURES / "events" / "13-sp1-trondheim-takket-nei-med-samtykke.json").read_text("utf-8"))
    assert raw["assessment"]["procedure_code"] is None
    assert parse_event(json.dumps(raw).encode()).declined == Declined(True, date(2026, 12, 1))
    raw.pop("declined")
    with pytest.raises(Parked) as info:
        parse_event(json.dumps(raw).encode())
    assert info.value.code == Reason.WMFG10_MISSING


# 5. Two hospitals --------------------------------------------------------------------------------

def org_of(herid: int) -> int | None:
    return {DEPT: HOSPITAL, SAME_HOSPITAL_OTHER_DEPT: HOSPITAL, OTHER_DEPT: OTHER_HOSPITAL}.get(herid)


def earlier(sender: int, sp: int = 1, days_before: int = 10, event_id: str = "e-earlier") -> Tidligere:
    return Tidligere(event_id, sp, sender, date(2026, 3, 2) - timedelta(days=days_before),
                     Contact("Per Poliklinikk", "kontaktsykepleier", "+47 75 00 00 00"))


@pytest.mark.parametrize(("history", "flagged"), [
    ([earlier(OTHER_DEPT)], True),
    ([earlier(OTHER_DEPT, days_before=90)], True),  # the window's edge is inside
    ([earlier(OTHER_DEPT, days_before=91)], False),
    ([earlier(OTHER_DEPT, days_before=-30)], True),  # arrived out of order
    ([earlier(OTHER_DEPT, sp=2)], False),  # another samhandlingspunkt
    ([earlier(SAME_HOSPITAL_OTHER_DEPT)], False),  # the same hospital, another department
    ([earlier(DEPT)], False),
    ([earlier(OTHER_DEPT, event_id="5b0a0d7e-0000-4000-8000-000000000001")], False),  # the event itself
    ([], False),
])
def test_second_hospital_within_the_window(history: list[Tidligere], flagged: bool) -> None:
    assert (second_hospital(event(1), history, org_of, 90) is not None) is flagged


def test_second_hospital_is_delivered_flagged_and_named_in_the_text() -> None:
    history = [earlier(OTHER_DEPT)]
    reg = kommune_register()
    chosen = route(event(1), reg, history=lambda fnr: history if fnr == FNR else [])
    assert chosen.flags == (TWO_HOSPITALS,)
    assert [m.role for m in chosen.receivers] == ["kommune", "fastlege"]  # still delivered
    for text in texts(event(1), reg, history=lambda fnr: history).values():
        assert ("pasienten fikk også behovskartlegging ved samhandlingspunkt 1 fra Kreftpoliklinikken, "
                "Annetsjukehuset HF (HER-id 8900041) 20.02.2026, kontaktperson Per Poliklinikk, "
                "telefon +47 75 00 00 00") in text


def test_the_window_is_configurable() -> None:
    history = [earlier(OTHER_DEPT, days_before=40)]
    assert route(event(1), kommune_register(), history=lambda fnr: history, window_days=30).flags == ()
    assert route(event(1), kommune_register(), history=lambda fnr: history, window_days=60).flags == (TWO_HOSPITALS,)


def test_other_hospital_named_by_the_sender_is_in_the_text() -> None:
    e = replace(event(1), other_hospital_herid=OTHER_DEPT)
    for text in texts(e, kommune_register()).values():
        assert "Pasienten behandles også ved Kreftpoliklinikken, Annetsjukehuset HF (HER-id 8900041)." in text


# The contract ---------------------------------------------------------------------------------------

def _fixture(name: str) -> dict[str, object]:
    return json.loads((FIXTURES / "events" / name).read_text(encoding="utf-8"))


def test_version_1_events_without_the_new_fields_still_parse() -> None:
    e = parse_event(json.dumps(_fixture("01-sp1-bergen-brystkreft.json")).encode())
    assert (e.kreftkoordinator_wanted, e.individuell_plan, e.declined, e.other_hospital_herid,
            e.patient.guardian) == (False, None, None, None, None)


@pytest.mark.parametrize(("name", "change", "path"), [
    ("13-sp1-trondheim-takket-nei-med-samtykke.json", lambda e: e["declined"].pop("consent_to_inform_kommune"),
     "declined"),
    ("11-sp2-bergen-individuell-plan.json", lambda e: e["individuell_plan"].__setitem__("needed", "ja"),
     "individuell_plan.needed"),
    ("10-sp1-bodo-onsker-kreftkoordinator.json", lambda e: e.__setitem__("kreftkoordinator_wanted", "yes"),
     "kreftkoordinator_wanted"),
    ("12-sp1-bergen-barn.json", lambda e: e["patient"]["guardian"].__setitem__("phone", "Ola Prøvebarn"),
     "patient.guardian.phone"),
])
def test_the_new_fields_are_checked(name: str, change: object, path: str) -> None:
    raw = _fixture(name)
    change(raw)  # type: ignore[operator]
    with pytest.raises(Parked) as info:
        parse_event(json.dumps(raw).encode())
    assert info.value.code == Reason.SCHEMA and info.value.reason.startswith(path)
    assert "Ola Prøvebarn" not in info.value.reason  # a guardian's data is never echoed
