"""Routing by the rules in routes/: every default rule, each fallback step, consent, overrides, broken files."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gateway.domain.fodselsnummer import synthetic
from gateway.domain.history import Tidligere
from gateway.domain.kartlegging import (
    Assessment,
    Consent,
    Contact,
    Diagnosis,
    InpatientStay,
    Kartlegging,
    Patient,
    Performer,
    Sender,
    Topic,
)
from gateway.domain.registry import GpAssignment, MemoryRegister, Party
from gateway.errors import Parked, Reason
from gateway.routing.route import Skipped, route
from gateway.routing.rules import RuleError, RuleSet, load_rules

FNR = synthetic(date(1961, 5, 17), 3)
HOSPITAL, DEPT = 8_900_001, 8_900_002
KOMMUNE, FORVALTNING, KREFTKOORD = 8_900_010, 8_900_011, 8_900_012
LEGEKONTOR, GP, VIKAR = 8_900_020, 8_900_021, 8_900_022


DIALOG = ("dialogmelding-1.1",)


def register(*, forvaltning_active: bool = True, forvaltning_formats: tuple[str, ...] = DIALOG,
             gp_formats: tuple[str, ...] = DIALOG, extra: tuple[Party, ...] = ()) -> MemoryRegister:
    parties = [
        Party(HOSPITAL, "Testsjukehuset HF", "organisation"),
        Party(DEPT, "Kreftavdelingen", "department", parent_herid=HOSPITAL, formats=DIALOG),
        Party(KOMMUNE, "Testvik kommune", "organisation", kommunenummer="4601"),
        Party(FORVALTNING, "Tildelingskontoret", "service", parent_herid=KOMMUNE, service_type="forvaltningsenhet",
              active=forvaltning_active, formats=forvaltning_formats),
        Party(KREFTKOORD, "Kreftkoordinator", "service", parent_herid=KOMMUNE, service_type="kreftkoordinator",
              formats=DIALOG),
        Party(LEGEKONTOR, "Fjordlegene", "organisation"),
        Party(GP, "Lege Lin", "person", parent_herid=LEGEKONTOR, given_name="Rita", family_name="Lin",
              formats=gp_formats),
        Party(VIKAR, "Lege Vik", "person", parent_herid=LEGEKONTOR, given_name="Ola", family_name="Vik",
              formats=DIALOG),
        *extra,
    ]
    return MemoryRegister(
        parties={p.herid: p for p in parties},
        assignments={FNR: [GpAssignment(FNR, GP, date(2010, 1, 1)),
                           GpAssignment(FNR, VIKAR, date(2026, 6, 1), date(2026, 8, 31), "vikar")]},
    )


def event(sp: int = 1, *, objects: bool = False, kommune: str = "4601", sender: int = DEPT,
          performed_on: date = date(2026, 3, 2)) -> Kartlegging:
    return Kartlegging(
        event_id="5b0a0d7e-0000-4000-8000-000000000001",
        occurred_at=datetime(2026, 3, 2, 10, tzinfo=UTC),
        samhandlingspunkt=sp,
        sender=Sender(sender, "Kreftavdelingen", Contact("Kari Kontakt", "forløpskoordinator", "+47 55 00 00 00")),
        patient=Patient(FNR, "Synt", "Etisk", kommune),
        diagnosis=Diagnosis("C50.9", "Brystkreft", date(2026, 2, 1)),
        assessment=Assessment("WMFG10" if sp < 3 else None, performed_on, Performer("Kari", "sykepleier"), 4,
                              (Topic("ernaering", True, "Trenger hjelp"),), "Familien", "Kontakt om 3 mnd"),
        consent=Consent(objects, False),
    )


@pytest.mark.parametrize("sp", [1, 2])
def test_sp1_sp2_go_to_forvaltningsenhet_and_fastlege(sp: int) -> None:
    chosen = route(event(sp), register())
    assert chosen.sender.organisation.herid == HOSPITAL and chosen.sender.herid == DEPT
    assert [(m.role, m.herid) for m in chosen.receivers] == [("kommune", FORVALTNING), ("fastlege", GP)]
    assert chosen.receivers[0].address.organisation.herid == KOMMUNE
    assert chosen.receivers[1].address.organisation.herid == LEGEKONTOR


@pytest.mark.parametrize("sp", [3, 4, 5])
def test_sp3_to_sp5_go_to_the_fastlege(sp: int) -> None:
    chosen = route(event(sp, sender=FORVALTNING), register())
    assert [(m.role, m.herid) for m in chosen.receivers] == [("fastlege", GP)]


def test_objection_sends_nothing() -> None:
    chosen = route(event(1, objects=True), register())
    assert chosen.receivers == ()
    assert chosen.why_none and "objects" in chosen.why_none


def test_vikar_valid_on_the_date_wins() -> None:
    chosen = route(event(1, performed_on=date(2026, 7, 1)), register())
    assert chosen.receivers[1].herid == VIKAR
    assert "vikar" in chosen.receivers[1].why


def test_fastlege_named_in_event_is_used() -> None:
    e = event(1)
    e = replace(e, patient=replace(e.patient, fastlege_herid=VIKAR))
    assert route(e, register()).receivers[1].herid == VIKAR


def test_unknown_kommune_parks() -> None:
    with pytest.raises(Parked) as info:
        route(event(1, kommune="9999"), register())
    assert info.value.code == Reason.UNKNOWN_KOMMUNE


def test_inactive_forvaltningsenhet_parks() -> None:
    with pytest.raises(Parked) as info:
        route(event(1), register(forvaltning_active=False))
    assert info.value.code == Reason.NO_KOMMUNE_CONTACT_POINT


def test_no_gp_on_the_date_parks_without_patient_data() -> None:
    with pytest.raises(Parked) as info:
        route(event(1, performed_on=date(2001, 1, 1)), register())
    assert info.value.code == Reason.NO_FASTLEGE
    assert FNR not in info.value.reason


def test_unknown_sender_parks() -> None:
    with pytest.raises(Parked) as info:
        route(event(1, sender=1234), register())
    assert info.value.code == Reason.UNKNOWN_SENDER


STAY = InpatientStay(date(2026, 1, 28))


def test_receiver_gets_the_first_preferred_format_it_accepts() -> None:
    """The default rule prefers PLO for the kommune, but PLO only counts while the patient is admitted."""
    admitted = replace(event(1), inpatient_stay=STAY)
    chosen = route(admitted, register(forvaltning_formats=("plo-1.6",)))
    assert [(m.role, m.format) for m in chosen.receivers] == [("kommune", "plo-1.6"),
                                                               ("fastlege", "dialogmelding-1.1")]
    both = register(forvaltning_formats=("plo-1.6", "dialogmelding-1.1"))
    assert route(admitted, both).receivers[0].format == "plo-1.6"
    assert route(event(1), both).receivers[0].format == "dialogmelding-1.1"
    with pytest.raises(Parked) as info:  # a kommune contact point that reads only PLO, and no stay
        route(event(1), register(forvaltning_formats=("plo-1.6",)))
    assert info.value.code == Reason.NO_ACCEPTED_FORMAT and "inpatient stay" in info.value.reason


def test_receiver_that_accepts_none_of_ours_parks() -> None:
    with pytest.raises(Parked) as info:
        route(event(1), register(gp_formats=("dialogmelding-1.0",)))
    assert info.value.code == Reason.NO_ACCEPTED_FORMAT
    assert "dialogmelding-1.0" in info.value.reason


def test_one_kommune_contact_point_by_default() -> None:
    """Issue 13, point 7: the default rules no longer send saksbehandling a second, PLO copy."""
    saks = Party(8_900_013, "Saksbehandling", "service", parent_herid=KOMMUNE, service_type="saksbehandling",
                 formats=("plo-1.6", "dialogmelding-1.1"))
    for e in (event(2), replace(event(2), inpatient_stay=STAY)):
        chosen = route(e, register(extra=(saks,)))
        assert [(m.role, m.herid) for m in chosen.receivers] == [("kommune", FORVALTNING), ("fastlege", GP)]
    assert [m.role for m in route(event(3, sender=FORVALTNING), register(extra=(saks,))).receivers] == ["fastlege"]


def test_a_vikar_is_addressed_as_vikar() -> None:
    """Same rule and texts as the fastlege (role), but the message names a substitute as one (9034: 15)."""
    gp = next(m for m in route(event(1, performed_on=date(2026, 7, 1)), register()).receivers
              if m.role == "fastlege")
    assert (gp.herid, gp.relation, gp.addressed_as) == (VIKAR, "vikar", "vikar")
    regular = next(m for m in route(event(1), register()).receivers if m.role == "fastlege")
    assert (regular.relation, regular.addressed_as) == ("fastlege", "fastlege")


def write_rules(folder: Path, default: str, **kommuner: str) -> RuleSet:
    (folder / "kommune").mkdir(parents=True, exist_ok=True)
    (folder / "default.yaml").write_text(default, encoding="utf-8")
    for nr, text in kommuner.items():
        (folder / "kommune" / f"{nr[1:]}.yaml").write_text(text, encoding="utf-8")
    return load_rules(folder)


DEFAULT = (Path(__file__).resolve().parents[2] / "routes" / "default.yaml").read_text(encoding="utf-8")
OVERRIDE = """version: 1
kommune: "4601"
rules:
  - name: testvik-kreft-forst
    when:
      samhandlingspunkt: [1, 2]
    receivers:
      - role: kommune
        find: [kreftkoordinator, koordinerende_enhet, forvaltningsenhet]
        formats: [dialogmelding-1.1]
      - role: fastlege
        find: [fastlege]
        formats: [dialogmelding-1.1]
"""


def test_sp3_reaches_the_hospital_named_in_the_event_or_in_earlier_events() -> None:
    e = replace(event(3, sender=FORVALTNING), hospital_contact_herid=DEPT)
    chosen = route(e, register())
    assert [(m.role, m.herid) for m in chosen.receivers] == [("fastlege", GP), ("sykehus", DEPT)]
    assert "named in the event" in chosen.receivers[1].why
    history = [Tidligere("e-1", 3, FORVALTNING, None), Tidligere("e-2", 1, DEPT, None)]
    earlier = route(event(4, sender=FORVALTNING), register(), history=lambda fnr: history if fnr == FNR else [])
    assert [m.herid for m in earlier.receivers] == [GP, DEPT]
    assert "last SP1/SP2 event" in earlier.receivers[1].why
    unknown = route(event(5, sender=FORVALTNING), register())
    assert [m.role for m in unknown.receivers] == ["fastlege"]
    assert any(s.target == "sykehus" and "no hospital contact" in s.why for s in unknown.skipped)


def test_nav_never_gets_the_clinical_note(tmp_path: Path) -> None:
    """Issue 13, point 6: not from the defaults, and not from a kommune rule naming NAV, even with consent."""
    nav = Party(8_900_014, "NAV Testvik", "service", parent_herid=KOMMUNE, service_type="nav", formats=DIALOG)
    rules = write_rules(tmp_path, DEFAULT, k4601=OVERRIDE + """      - role: nav
        find: [nav]
        formats: [dialogmelding-1.1]
        optional: true
""")
    e = event(1)
    chosen = route(replace(e, consent=replace(e.consent, share_with_nav=True)), register(extra=(nav,)), rules)
    assert 8_900_014 not in [m.herid for m in chosen.receivers]
    assert any(s.role == "nav" and "clinical note" in s.why for s in chosen.skipped)
    without = route(e, register(extra=(nav,)), rules)
    assert any(s.role == "nav" and s.why.startswith("consent") for s in without.skipped)
    assert route(replace(e, consent=replace(e.consent, share_with_nav=True)), register(extra=(nav,))).receivers


def test_override_walks_its_fallback_chain(tmp_path: Path) -> None:
    rules = write_rules(tmp_path, DEFAULT, k4601=OVERRIDE)
    first = route(event(1), register(), rules)
    assert first.rule is not None and first.rule.startswith("testvik-kreft-forst")
    assert first.receivers[0].herid == KREFTKOORD and "fallback step 1 of 3" in first.receivers[0].why
    inactive = replace(register().parties[KREFTKOORD], active=False)
    third = route(event(1), register(extra=(inactive,)), rules)
    assert third.receivers[0].herid == FORVALTNING and "fallback step 3 of 3" in third.receivers[0].why
    assert [(s.target, s.why) for s in third.skipped if s.role == "kommune"] == [
        ("kreftkoordinator", "inactive in the registry"),
        ("koordinerende_enhet", "kommune 4601 has no koordinerende_enhet in the registry")]
    # the override is for kommune 4601 only; SP3 still follows the defaults
    assert route(event(3, sender=FORVALTNING), register(), rules).rule.startswith("sp3-sp5")  # type: ignore[union-attr]


def test_every_fallback_missing_parks(tmp_path: Path) -> None:
    rules = write_rules(tmp_path, DEFAULT, k4601=OVERRIDE)
    gone = {h: replace(p, active=False) for h, p in register().parties.items() if h in (KREFTKOORD, FORVALTNING)}
    reg = register()
    reg.parties.update(gone)
    with pytest.raises(Parked) as info:
        route(event(1), reg, rules)
    assert info.value.code == Reason.NO_KOMMUNE_CONTACT_POINT
    assert "kreftkoordinator → koordinerende_enhet → forvaltningsenhet" in info.value.reason


def test_inactive_service_is_skipped_for_the_next_one() -> None:
    old = Party(8_900_009, "Gammelt tildelingskontor", "service", parent_herid=KOMMUNE,
                service_type="forvaltningsenhet", active=False, formats=DIALOG)
    chosen = route(event(1), register(extra=(old,)))
    assert chosen.receivers[0].herid == FORVALTNING
    assert Skipped("kommune", "forvaltningsenhet", 8_900_009, "inactive in the registry") in chosen.skipped


def line_of(needle: str, offset: int = 0) -> int:
    """The 1-based line of the first line of DEFAULT that contains needle, plus offset."""
    return next(i for i, line in enumerate(DEFAULT.splitlines(), start=1) if needle in line) + offset


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[forvaltningsenhet]", "[tildeling]"),
         rf"default.yaml:{line_of('find: [forvaltningsenhet]', -1)}: unknown receiver 'tildeling'"),
        (("[plo-1.6, dialogmelding-1.1]", "[dialogmelding-1.0]"),
         rf"default.yaml:{line_of('formats: [plo-1.6, dialogmelding-1.1]', -2)}: unknown format 'dialogmelding-1.0'"),
        (("optional: true\n\nadditions", "optionl: true\n\nadditions"),
         rf"default.yaml:{line_of('role: sykehus')}: unknown key\(s\) optionl"),
        (("samhandlingspunkt: [3, 4, 5]", "samhandlingspunkt: [3, 4]"), "no default rule for samhandlingspunkt 5"),
        (("      samhandlingspunkt: [1, 2]\n    receivers", "      samhandlingspunkt: [1, 7]\n    receivers"),
         rf"default.yaml:{line_of('name: sp1-sp2-fra-sykehuset', 2)}: samhandlingspunkt"),
        (("version: 1", "version: [1"), "not valid YAML"),
        (("\n      age_under: 18", "\n      age_under: atten"),
         rf"default.yaml:{line_of('name: barn-under-18', 2)}: age_under"),
        (("declined: any", "declined: maybe"), "declined must be true or false or any"),
        (("    template: avslag", "    template: avslg"), "template avslg.txt.j2 is not in"),
        (("\n      kreftkoordinator_wanted: true", "\n      kreftkoordinator_onske: true"),
         r"unknown key\(s\) kreftkoordinator_onske"),
    ],
)
def test_broken_rule_files_are_refused_with_file_and_line(tmp_path: Path, change: tuple[str, str],
                                                          message: str) -> None:
    assert change[0] in DEFAULT
    with pytest.raises(RuleError, match=message):
        write_rules(tmp_path, DEFAULT.replace(change[0], change[1], 1))


def test_kommune_file_must_be_named_after_its_kommune(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="named after its kommune"):
        write_rules(tmp_path, DEFAULT, k5001=OVERRIDE)


def test_shipped_rules_load() -> None:
    rules = load_rules(Path(__file__).resolve().parents[2] / "routes")
    assert next(r.name for r in rules.rules_for("5001")) == "trondheim-sp1-sp2"


def test_override_second_step(tmp_path: Path) -> None:
    rules = write_rules(tmp_path, DEFAULT, k4601=OVERRIDE)
    koord = Party(8_900_015, "Koordinerende enhet", "service", parent_herid=KOMMUNE,
                  service_type="koordinerende_enhet", formats=DIALOG)
    reg = register(extra=(koord,))
    reg.parties[KREFTKOORD] = replace(reg.parties[KREFTKOORD], active=False)
    chosen = route(event(2), reg, rules)
    assert chosen.receivers[0].herid == 8_900_015 and "fallback step 2 of 3" in chosen.receivers[0].why
