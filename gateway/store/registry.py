"""The contact-point registry kept in the store (SQLite or PostgreSQL), so every gateway process and
every operator sees the same version.

``import_parties`` and ``import_gp_register`` replace the previous version in one transaction: a
file that is wrong anywhere changes nothing and the error names the line. ``StoreRegister``
answers the routing's questions (the ``Register`` protocol) from the store: parties are few and
cached per process; the GP register (5.5 million rows nationally) is looked up by index.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from gateway.domain import fodselsnummer
from gateway.domain.registry import GpAssignment, MemoryRegister, Party, RegisterError, load_register
from gateway.store.db import Database, Tx

GP_COLUMNS = ("fnr", "gp_herid", "valid_from", "valid_to", "relation")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ImportTooDestructive(RegisterError):
    """The import would remove more of the registry than ``max_remove_share``; ``--force`` allows it."""


def import_parties(db: Database, path: Path, *, force: bool = False, max_remove_share: float = 0.1) -> int:
    """The parties of a registry JSON file (the format of ``GATEWAY_REGISTRY``); the whole file is
    checked first. The GP register comes separately, as CSV (``import_gp_register``)."""
    return import_registry(db, parties=path, force=force, max_remove_share=max_remove_share)[0]


def import_gp_register(db: Database, path: Path, progress: Callable[[int], None] | None = None, *,
                       force: bool = False, max_remove_share: float = 0.1) -> int:
    """Replace the GP register with a CSV file (``fnr,gp_herid,valid_from,valid_to,relation``)."""
    return import_registry(db, gp=path, progress=progress, force=force, max_remove_share=max_remove_share)[1]


def _guard(kind: str, before: int, after: int, force: bool, share: float) -> None:
    """A file that would remove more than ``share`` of what the store holds is most likely the wrong file (an
    empty export, a test file): refused unless the operator says ``--force``."""
    if force or before == 0:
        return
    removed = max(0, before - after)
    if removed > share * before:
        raise ImportTooDestructive(f"the new {kind} has {after} rows where the store has {before}: it would remove "
                                   f"{removed} ({removed / before:.0%}, more than {share:.0%}); check the file, "
                                   "or give --force if that is intended")


def import_registry(db: Database, *, parties: Path | None = None, gp: Path | None = None,
                    progress: Callable[[int], None] | None = None, force: bool = False,
                    max_remove_share: float = 0.1) -> tuple[int, int]:
    """Replace the parties and/or the GP register in ONE transaction (issue 12: ``--parties good --gp bad``
    committed the parties and then said "nothing was changed"). Either file wrong anywhere, or an import that
    would remove more than ``max_remove_share`` of what is there, changes nothing. Returns (parties, gp rows)
    imported; 0 for a file not given."""
    register = load_register(parties) if parties is not None else None  # checks the whole file first

    def work(tx: Tx) -> tuple[int, int]:
        n_parties = n_gp = 0
        if register is not None:
            before = (tx.one("SELECT count(*) AS n FROM parties") or {"n": 0})["n"]
            _guard("parties", before, len(register.parties), force, max_remove_share)
            tx.execute("DELETE FROM parties")
            tx.many("INSERT INTO parties(herid, parent_herid, name, kind, active, kommunenummer, service_type, "
                    "formats, given_name, family_name, hpr, edi_address, phone, opening_hours) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(p.herid, p.parent_herid, p.name, p.kind, int(p.active), p.kommunenummer, p.service_type,
                      json.dumps(list(p.formats)), p.given_name, p.family_name, p.hpr, p.edi_address, p.phone,
                      p.opening_hours) for p in register.parties.values()])
            tx.execute("INSERT INTO registry_imports(kind, source, rows, imported_at) VALUES (?,?,?,?)",
                       ("parties", str(parties), len(register.parties), _now()))
            n_parties = len(register.parties)
        if gp is not None:
            persons = {r["herid"] for r in tx.all("SELECT herid FROM parties WHERE kind = 'person'")}
            before = (tx.one("SELECT count(*) AS n FROM gp_assignments") or {"n": 0})["n"]
            n_gp = _load_gp(db, tx, gp, persons, progress)
            _guard("GP register", before, n_gp, force, max_remove_share)
        return n_parties, n_gp

    return db.transaction(work)


def write_gp_csv(path: Path, assignments: list[GpAssignment]) -> None:
    """The CSV format ``import_gp_register`` reads (used by the generator and the tests)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(GP_COLUMNS)
        for a in assignments:
            out.writerow((a.fnr, a.gp_herid, a.valid_from.isoformat(), a.valid_to.isoformat() if a.valid_to else "",
                          a.relation))


def _lines(path: Path, f: BinaryIO) -> Iterator[str]:
    """The file's lines as text; invalid UTF-8 is an error naming the line, never the bytes found."""
    for n, raw in enumerate(f, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RegisterError(f"{path}, line {n}: not valid UTF-8") from None


def _valid_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _gp_rows(path: Path, persons: set[int], progress: Callable[[int], None] | None) -> Iterator[tuple[Any, ...]]:
    """Checked rows. An error names the file, the line and the column's rule, never the value: a shifted line
    puts a fødselsnummer into another column (issue 12), and the error goes to a terminal and its logs."""
    with path.open("rb") as f:
        reader = csv.reader(_lines(path, f))
        try:
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != GP_COLUMNS:
                raise RegisterError(f"{path}, line 1: the header must be {','.join(GP_COLUMNS)}")
            for row in reader:
                n = reader.line_num
                if len(row) != 5:
                    raise RegisterError(f"{path}, line {n}: expected 5 fields, found {len(row)}")
                fnr, gp, valid_from, valid_to, relation = row
                if not fodselsnummer.is_valid(fnr):
                    raise RegisterError(f"{path}, line {n}: fnr is not a valid fødselsnummer or D-nummer")
                if not (gp.isascii() and gp.isdigit() and len(gp) <= 9):
                    raise RegisterError(f"{path}, line {n}: gp_herid must be a HER-id (digits)")
                gp_herid = int(gp)
                if not _valid_date(valid_from) or (valid_to and not _valid_date(valid_to)):
                    raise RegisterError(f"{path}, line {n}: valid_from and valid_to must be dates (YYYY-MM-DD)")
                if persons and gp_herid not in persons:
                    raise RegisterError(f"{path}, line {n}: gp_herid {gp_herid} is not a person in the registry")
                if relation not in ("fastlege", "vikar"):
                    raise RegisterError(f"{path}, line {n}: relation must be fastlege or vikar")
                if progress and n % 50_000 == 0:
                    progress(50_000)
                yield fnr, gp_herid, valid_from, valid_to or None, relation
        except csv.Error:
            raise RegisterError(f"{path}, line {reader.line_num}: not valid CSV") from None


def _load_gp(db: Database, tx: Tx, path: Path, persons: set[int], progress: Callable[[int], None] | None) -> int:
    """Swap the GP register inside the caller's transaction; the number of rows loaded."""
    count = 0

    def counted(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    # Without the index while loading, then built once: the whole swap is one transaction.
    tx.execute("DROP INDEX gp_assignments_fnr")
    tx.execute("DELETE FROM gp_assignments")
    rows = counted(_gp_rows(path, persons, progress))
    if db.dialect == "postgresql":
        with tx.connection.cursor().copy("COPY gp_assignments (fnr, gp_herid, valid_from, valid_to, relation) "
                                         "FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        tx.connection.executemany("INSERT INTO gp_assignments(fnr, gp_herid, valid_from, valid_to, relation) "
                                  "VALUES (?,?,?,?,?)", rows)
    tx.execute("CREATE INDEX gp_assignments_fnr ON gp_assignments(fnr)")
    tx.execute("INSERT INTO registry_imports(kind, source, rows, imported_at) VALUES (?,?,?,?)",
               ("gp_register", str(path), count, _now()))
    return count


class StoreRegister(MemoryRegister):
    """The ``Register`` the routing asks, answered from the store: the parties (a few thousand) are read
    once per process, the GP register is looked up by its index on every question."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        for r in db.query("SELECT * FROM parties"):
            self.parties[r["herid"]] = Party(
                herid=r["herid"], name=r["name"], kind=r["kind"], parent_herid=r["parent_herid"],
                active=bool(r["active"]), kommunenummer=r["kommunenummer"], service_type=r["service_type"],
                formats=tuple(json.loads(r["formats"])), given_name=r["given_name"], family_name=r["family_name"],
                hpr=r["hpr"], edi_address=r.get("edi_address"), phone=r.get("phone"),
                opening_hours=r.get("opening_hours"))

    def assignments_for(self, fnr: str) -> list[GpAssignment]:
        return [GpAssignment(r["fnr"], r["gp_herid"], date.fromisoformat(r["valid_from"]),
                             date.fromisoformat(r["valid_to"]) if r["valid_to"] else None, r["relation"])
                for r in self.db.query("SELECT * FROM gp_assignments WHERE fnr = ?", (fnr,))]
