"""The registry file: lookups, GP periods, addresses, and broken files refused with the entry named."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.registry import RegisterError, address_of, load_register

FILE = Path(__file__).resolve().parents[2] / "fixtures" / "register.json"
REGISTER = load_register(FILE)
DATA = json.loads(FILE.read_text(encoding="utf-8"))
P2 = next(a["fnr"] for a in DATA["fastlegeregister"] if a["relation"] == "vikar")


def test_kommune_and_services() -> None:
    bergen = REGISTER.kommune("4601")
    assert bergen is not None and bergen.name == "Bergen kommune"
    assert [s.herid for s in REGISTER.kommune_services("4601", "forvaltningsenhet")] == [8100101]
    assert REGISTER.kommune_services("1867", "kreftkoordinator") == []
    assert REGISTER.kommune("9999") is None
    hamar = REGISTER.kommune_services("3403", "forvaltningsenhet")
    assert [(s.herid, s.active) for s in hamar] == [(8100401, False), (8100405, True)]


def test_vikar_wins_inside_its_period_only() -> None:
    assert REGISTER.fastlege(P2, date(2026, 8, 31)).gp_herid == 8101001  # type: ignore[union-attr]
    vikar = REGISTER.fastlege(P2, date(2026, 9, 1))
    assert vikar is not None and (vikar.gp_herid, vikar.relation) == (8101002, "vikar")
    assert REGISTER.fastlege(P2, date(2027, 1, 1)).gp_herid == 8101001  # type: ignore[union-attr]


def test_no_gp_before_or_after_the_assignment() -> None:
    fnr = DATA["fastlegeregister"][0]["fnr"]
    assert REGISTER.fastlege(fnr, date(2000, 1, 1)) is None


def test_addresses() -> None:
    service = address_of(REGISTER, 8100101)
    assert service is not None and (service.organisation.herid, service.herid) == (8100100, 8100101)
    gp = address_of(REGISTER, 8100901)
    assert gp is not None and gp.organisation.name == "Fjellsiden legesenter" and gp.unit.kind == "person"
    dept = address_of(REGISTER, 8100601)
    assert dept is not None and dept.organisation.herid == 8100600
    org = address_of(REGISTER, 8100600)
    assert org is not None and org.unit is None and org.herid == 8100600
    assert address_of(REGISTER, 1) is None


def broken(tmp_path: Path, change: Any) -> Path:
    data = json.loads(FILE.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["parties"].append(dict(d["parties"][0])), "appears twice"),
        (lambda d: d["parties"][1].update(service_type="kantine"), "service_type must be one of"),
        (lambda d: d["parties"][1].update(kind="robot"), "kind must be one of"),
        (lambda d: d["parties"][1].update(parent_herid=42), "parent_herid 42"),
        (lambda d: d["parties"][1].pop("name"), "'name' is missing"),
        (lambda d: d["fastlegeregister"][0].update(fnr="12345678901"), "fastlegeregister[0]"),
        (lambda d: d["fastlegeregister"][0].update(gp_herid=8100100), "not a person"),
        (lambda d: d["fastlegeregister"][0].update(valid_from="2020-13-01"), "fastlegeregister[0]"),
        (lambda d: d.update(version=2), "version"),
    ],
)
def test_broken_files_name_the_entry(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(RegisterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_register(broken(tmp_path, change))


def test_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(RegisterError, match="not valid JSON"):
        load_register(path)
