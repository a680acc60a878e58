"""The arithmetic of judging a window of intervals: histograms and proportions.

A histogram is the compact form the loadmgr Locust plugin stores per interval, at top level
and per request: `"ms:count,ms:count"` (Locust's rounded milliseconds), exact for its
interval, so windows merge by adding counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from loadmgr.models.histogram import HistogramError, decode, merged, percentile


def parse_hist(value: Any) -> dict[int, int] | None:
    """`"12:30,15:4"` → {12: 30, 15: 4} (models/histogram's text); a mapping of whole
    milliseconds is taken as it is.

    None when absent or malformed: a histogram judged wrong is worse than none.
    """
    if isinstance(value, Mapping):
        try:
            pairs = {int(ms): int(count) for ms, count in value.items() if float(ms) == int(ms)}
        except (TypeError, ValueError, OverflowError):
            return None
        return pairs if len(pairs) == len(value) and min(pairs.values(), default=0) >= 0 else None
    if not isinstance(value, str):
        return None
    try:
        return decode(value)
    except HistogramError:
        return None


def merge_hists(hists: Iterable[Mapping[int, int]]) -> dict[int, int]:
    return merged(hists)


def hist_percentile(hist: Mapping[int, int], q: float) -> float | None:
    """Locust's percentile of a histogram (the one rule of models/histogram), so a window's
    p95 reads as Locust would report it."""
    return percentile(hist, q)


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
