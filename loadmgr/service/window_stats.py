"""The arithmetic of judging a window of intervals: histograms and proportions.

A histogram is the compact form the loadmgr Locust plugin stores per interval, at top level
and per request: `"ms:count,ms:count"` (Locust's rounded milliseconds), exact for its
interval, so windows merge by adding counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def parse_hist(value: Any) -> dict[float, int] | None:
    """`"12:30,15:4"` → {12.0: 30, 15.0: 4}; a mapping is taken as it is.

    None when absent or malformed: a histogram judged wrong is worse than none.
    """
    if isinstance(value, Mapping):
        pairs: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, str):
        pairs = []
        for item in value.split(","):
            if not item.strip():
                continue
            ms, sep, count = item.partition(":")
            if not sep:
                return None
            pairs.append((ms, count))
    else:
        return None
    hist: dict[float, int] = {}
    try:
        for ms, count in pairs:
            key, number = float(ms), int(count)
            if not math.isfinite(key) or number < 0:
                return None
            hist[key] = hist.get(key, 0) + number
    except (TypeError, ValueError, OverflowError):
        return None
    return hist


def merge_hists(hists: Iterable[Mapping[float, int]]) -> dict[float, int]:
    merged: dict[float, int] = {}
    for hist in hists:
        for value, count in hist.items():
            merged[value] = merged.get(value, 0) + count
    return merged


def hist_percentile(hist: Mapping[float, int], q: float) -> float | None:
    """Locust's percentile of a histogram (its `calculate_response_time_percentile`), so
    a window's p95 reads as Locust would report it."""
    total = sum(hist.values())
    if total <= 0:
        return None
    wanted = int(total * q)
    processed = 0
    for value in sorted(hist, reverse=True):
        processed += hist[value]
        if total - processed <= wanted:
            return value
    return min(hist)


def wilson_bounds(successes: int, trials: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion; with a one-sided z, each bound is one-sided.

    Unlike p ± z·√(p(1-p)/n) it stays within [0, 1] and is sound for small counts and
    proportions near 0, which is where error rates live.
    """
    if trials <= 0:
        return 0.0, 1.0
    p = min(1.0, successes / trials)
    if z <= 0:
        return p, p
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - spread), min(1.0, centre + spread)
