"""How long the operators' lists take at a million messages (issue 15): a benchmark, not a test.

    .venv/bin/python bench/lists.py [--messages 1000000] [--url sqlite:///tmp/lists.sqlite3 | postgresql://…]

Fills a fresh store with synthetic events (two messages each, spread over a year, a few parked), then times one
page of each list the CLI offers, with each filter, and the count behind "showing N of M". Every line should be
well under a second; a slow one names a filter without an index (migration 0012)."""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

from gateway.store import open_store


def fill(url: str, messages: int) -> None:
    store = open_store(url)
    start = datetime(2025, 12, 1, tzinfo=UTC)
    kommuner = ["4601", "5001", "1804", "3403", "1867"]
    statuses = ["sent", "acknowledged", "rejected", "overdue", "superseded"]
    events = messages // 2
    batch = 10_000
    for first in range(0, events, batch):
        def work(tx, first: int = first) -> None:  # type: ignore[no-untyped-def]
            rows, msgs = [], []
            for i in range(first, min(first + batch, events)):
                at = (start + timedelta(seconds=i * 31_536_000 // events)).isoformat(timespec="milliseconds")
                parked = i % 97 == 0
                rows.append((i + 1, f"{uuid.UUID(int=i)}", at, b"{}", "parked" if parked else "sent",
                             "ROUTING_UNKNOWN_KOMMUNE" if parked else None, (i % 5) + 1, kommuner[i % 5],
                             f"k{i % 50_000}", f"{i}"))
                if not parked:
                    for n, herid in enumerate((8100101 + i % 7, 8100901 + i % 3)):
                        msg_id = str(uuid.UUID(int=(i << 1) + n + (1 << 100)))
                        msgs.append((msg_id, i + 1, "DIALOG_HELSEFAGLIG", 8100601, herid, "fastlege", "bench",
                                     b"<x/>", statuses[(i + n) % 5], at))
            tx.many("INSERT INTO events(id, event_id, received_at, body, status, reason_code, samhandlingspunkt, "
                    "kommunenummer, patient_key, dedupe_key) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            tx.many("INSERT INTO messages(msg_id, event_ref, msg_type, from_herid, to_herid, role, why, xml, status, "
                    "created_at) VALUES (?,?,?,?,?,?,?,?,?,?)", msgs)

        store.db.transaction(work)
    store.close()


def timed(name: str, call) -> None:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    rows, total = call()
    print(f"{time.perf_counter() - began:8.3f} s  {name:<45} {len(rows):>3} of {total}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--url", default="sqlite:////tmp/gateway-bench-lists.sqlite3")
    parser.add_argument("--keep", action="store_true", help="Use the store as it is (filled before).")
    args = parser.parse_args()
    if not args.keep:
        if args.url.startswith("sqlite:////"):
            import pathlib

            pathlib.Path(args.url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        began = time.perf_counter()
        fill(args.url, args.messages)
        print(f"filled {args.messages} messages in {time.perf_counter() - began:.0f} s")
    s = open_store(args.url, create=False)
    timed("events list", lambda: s.search_events())
    timed("events list --status parked", lambda: s.search_events(status="parked"))
    timed("events list --reason-code …", lambda: s.search_events(reason_code="ROUTING_UNKNOWN_KOMMUNE"))
    timed("events list --sp 3 --since 2026-06-01", lambda: s.search_events(samhandlingspunkt=3,
                                                                             since="2026-06-01"))
    timed("events list --kommune 4601 --since -7d", lambda: s.search_events(kommune="4601", since="2026-11-20"))
    timed("events list --offset 100000", lambda: s.search_events(offset=100_000))
    timed("messages list", lambda: s.search_messages())
    timed("messages list --status rejected", lambda: s.search_messages(status="rejected"))
    timed("messages overdue", lambda: s.search_messages(status="overdue"))
    timed("messages list --receiver 8100101", lambda: s.search_messages(receiver=8100101))
    timed("messages list --kommune 5001", lambda: s.search_messages(kommune="5001"))
    timed("messages list --since 2026-11-01 --until …", lambda: s.search_messages(since="2026-11-01",
                                                                                   until="2026-11-15"))
    timed("audit", lambda: s.audit_search())
    s.close()


if __name__ == "__main__":
    main()
