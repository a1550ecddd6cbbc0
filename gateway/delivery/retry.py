"""Bounded exponential backoff with full jitter, for transient failures (broker, store).

Full jitter spreads the retries of many gateways (or many events) so they do not hammer a
recovering broker or database in step.
"""

from __future__ import annotations

import random

BASE_S = 0.2
CAP_S = 30.0


def backoff(attempt: int, *, base: float = BASE_S, cap: float = CAP_S) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based)."""
    return random.uniform(base / 2, min(cap, base * 2 ** min(attempt, 30)))
