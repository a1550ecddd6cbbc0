"""The national-size GP register: generate it, import it, look patients up.

    python bench/gp_register.py [--rows 5500000] [--store-url sqlite:///var/gp-bench.sqlite3]

Generates a synthetic register (fødselsnumre with valid check digits, month + 80 so they are never
a real person's; about 1,100 patients per GP, a vikar period for one in fifty), imports it with
`gateway registry import` logic (the whole swap in one transaction) and times 10,000 random GP
lookups through the same code the routing uses. Goals: import < 3 minutes, lookup < 1 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.domain.fodselsnummer import synthetic_all  # noqa: E402
from gateway.domain.registry import GpAssignment  # noqa: E402
from gateway.store import SqlStore, open_store  # noqa: E402
from gateway.store.registry import StoreRegister, import_gp_register, import_parties, write_gp_csv  # noqa: E402

GPS = [8100901, 8100902, 8101001, 8101002, 8101101, 8101201]  # the fixture's GPs


def generate(rows: int, path: Path) -> list[str]:
    """Writes the register; returns a sample of the numbers written, for lookups."""
    rng = random.Random(5_500_000)
    sample: list[str] = []
    out: list[GpAssignment] = []
    per_day = rows // 36_500 + 1
    day = date(1925, 1, 1)
    i = 0
    while len(out) < rows:
        for fnr in synthetic_all(day)[:per_day]:
            if len(out) >= rows:
                break
            out.append(GpAssignment(fnr, GPS[i % len(GPS)], date(2010, 1, 1)))
            if i % 50 == 0 and len(out) < rows:  # a vikar period for one patient in fifty
                out.append(GpAssignment(fnr, GPS[(i + 1) % len(GPS)], date(2026, 9, 1), date(2026, 12, 31), "vikar"))
            if rng.random() < 0.002:
                sample.append(fnr)
            i += 1
        day += timedelta(days=1)
    write_gp_csv(path, out)
    return sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_500_000)
    ap.add_argument("--store-url", default=None, help="default: a SQLite file in a temporary folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "gp.csv"
        t = time.perf_counter()
        sample = generate(args.rows, csv_path)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.0f} MB) in {time.perf_counter() - t:.1f} s")
        store = open_store(args.store_url or f"sqlite:///{Path(tmp) / 'gp.sqlite3'}")
        assert isinstance(store, SqlStore)
        import_parties(store.db, ROOT / "fixtures" / "register.json")
        t = time.perf_counter()
        count = import_gp_register(store.db, csv_path)
        import_s = time.perf_counter() - t
        print(f"imported {count:,} rows in {import_s:.1f} s (goal < 180 s)")
        register = StoreRegister(store.db)
        rng = random.Random(1)
        lookups = [rng.choice(sample) for _ in range(10_000)]
        times = []
        for fnr in lookups:
            t = time.perf_counter()
            assert register.fastlege(fnr, date(2026, 10, 1)) is not None
            times.append((time.perf_counter() - t) * 1000)
        q = statistics.quantiles(times, n=100)
        print(f"GP lookup over 10,000 random patients: mean {statistics.mean(times):.3f} ms, p50 {q[49]:.3f} ms, "
              f"p99 {q[98]:.3f} ms (goal < 1 ms)")
        store.close()


if __name__ == "__main__":
    main()
