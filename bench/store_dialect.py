"""The measurement behind docs/decisions.md ("plain DB-API, not SQLAlchemy Core"): one transaction writing a
batch of 50 transition rows, sqlite3 against SQLAlchemy Core ``text()``, in one run on this machine.

Needs ``pip install sqlalchemy`` (not a dependency of the gateway). Run: ``python bench/store_dialect.py``.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time

from sqlalchemy import create_engine, text

TABLE = ("CREATE TABLE transitions (id INTEGER PRIMARY KEY, entity TEXT, ref TEXT, status TEXT, at TEXT, "
         "reason_code TEXT, reason TEXT)")
SQL = "INSERT INTO transitions(entity, ref, status, at, reason_code, reason) VALUES (?,?,?,?,?,?)"
ROWS = [("event", str(i), "sent", "2026-11-30T00:00:00", None, None) for i in range(50)]
N = 400


def main() -> None:
    folder = tempfile.mkdtemp()
    raw = sqlite3.connect(os.path.join(folder, "a.db"), isolation_level=None)
    raw.execute(TABLE)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=OFF")  # both sides alike: the statement path is measured, not the disk
    start = time.perf_counter()
    for _ in range(N):
        raw.execute("BEGIN")
        raw.executemany(SQL, ROWS)
        raw.execute("COMMIT")
    t_raw = (time.perf_counter() - start) / N

    engine = create_engine(f"sqlite:///{os.path.join(folder, 'b.db')}")
    with engine.connect() as c:
        c.exec_driver_sql("PRAGMA journal_mode=WAL")
        c.exec_driver_sql("PRAGMA synchronous=OFF")
        c.exec_driver_sql(TABLE)
        c.commit()
    statement = text("INSERT INTO transitions(entity, ref, status, at, reason_code, reason) "
                     "VALUES (:e, :r, :s, :a, :c, :x)")
    rows = [dict(zip(["e", "r", "s", "a", "c", "x"], row, strict=True)) for row in ROWS]
    with engine.connect() as c:
        start = time.perf_counter()
        for _ in range(N):
            with c.begin():
                c.execute(statement, rows)
        t_sa = (time.perf_counter() - start) / N
    print(f"batch of 50 rows, one transaction: sqlite3 {t_raw * 1e6:.0f} µs, SQLAlchemy Core text() "
          f"{t_sa * 1e6:.0f} µs, ratio {t_sa / t_raw:.2f}")


if __name__ == "__main__":
    main()
