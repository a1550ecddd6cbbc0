"""The registry in the store: atomic imports that name the broken line, and the same answers as the file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from gateway.domain.kartlegging import parse_event
from gateway.domain.registry import GpAssignment, RegisterError, load_register
from gateway.routing.route import route
from gateway.store import SqlStore, open_store
from gateway.store.registry import StoreRegister, import_gp_register, import_parties, write_gp_csv
from tests.conftest import FIXTURES, postgres_database
from tests.factories import CliResult, cli

FILE = FIXTURES / "register.json"
MEMORY = load_register(FILE)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'r.sqlite3'}")
        yield s  # type: ignore[misc]
        s.close()
    else:
        with postgres_database() as url:
            s = open_store(url)
            yield s  # type: ignore[misc]
            s.close()


def gp_csv(tmp_path: Path, extra: list[GpAssignment] = ()) -> Path:  # type: ignore[assignment]
    path = tmp_path / "gp.csv"
    write_gp_csv(path, [a for rows in MEMORY.assignments.values() for a in rows] + list(extra))
    return path


def test_store_answers_as_the_file_does(store: SqlStore, tmp_path: Path) -> None:
    assert import_parties(store.db, FILE) == len(MEMORY.parties)
    assert import_gp_register(store.db, gp_csv(tmp_path)) == sum(len(v) for v in MEMORY.assignments.values())
    register = StoreRegister(store.db)
    assert register.parties == MEMORY.parties
    for fnr in MEMORY.assignments:
        day = date(2000, 1, 1)
        while day < date(2028, 1, 1):
            assert register.fastlege(fnr, day) == MEMORY.fastlege(fnr, day)
            day += timedelta(days=73)
    for path in sorted((FIXTURES / "events").glob("0*.json")):
        event = parse_event(path.read_bytes())
        assert route(event, register) == route(event, MEMORY)


@pytest.mark.parametrize(
    ("line", "message"),
    [("13116900217,8100901,2020-01-01,,fastlege", "line 3: fnr is not a valid"),
     ("13116900216,8100100,2020-01-01,,fastlege", "line 3: gp_herid 8100100 is not a person"),
     ("13116900216,8100901,2020-13-01,,fastlege", "line 3"),
     ("13116900216,8100901,2020-01-01,,lege", "line 3: relation"),
     ("13116900216,8100901", "line 3: expected 5 fields")],
)
def test_a_broken_line_changes_nothing(store: SqlStore, tmp_path: Path, line: str, message: str) -> None:
    import_parties(store.db, FILE)
    good = gp_csv(tmp_path)
    before = import_gp_register(store.db, good)
    broken = tmp_path / "broken.csv"
    header, first, *_ = good.read_text(encoding="utf-8").splitlines()
    broken.write_text("\n".join([header, first, line, first]) + "\n", encoding="utf-8")
    with pytest.raises(RegisterError, match=message):
        import_gp_register(store.db, broken)
    assert store.db.query("SELECT count(*) AS n FROM gp_assignments")[0]["n"] == before
    assert StoreRegister(store.db).fastlege(next(iter(MEMORY.assignments)), date(2026, 3, 1)) is not None


def test_wrong_header_is_refused(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("fnr;gp\n", encoding="utf-8")
    with pytest.raises(RegisterError, match="line 1: the header"):
        import_gp_register(store.db, path)


def test_registry_cli(tmp_path: Path) -> None:
    env = {"GATEWAY_STORE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}", "PATH": "/usr/bin:/bin"}

    def gateway(*args: str) -> CliResult:
        return cli(env, *args)

    done = gateway("registry", "import", "--parties", str(FILE), "--gp", str(gp_csv(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert f"parties: {len(MEMORY.parties)} imported" in done.stdout
    kommune = gateway("registry", "kommune", "3403").stdout
    assert "Hamar kommune" in kommune and "INACTIVE" in kommune and "8100405" in kommune
    assert "Fjellsiden legesenter (8100900) / Rita Lin (8100901)" in gateway("registry", "show", "8100901").stdout
    fnr = next(iter(MEMORY.assignments))
    shown = gateway("registry", "gp", fnr)
    assert shown.returncode == 0 and "Rita Lin" in shown.stdout and fnr not in shown.stdout + shown.stderr
    assert gateway("registry", "gp", "13116900216").returncode == 1
