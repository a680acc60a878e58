"""Latency figures in order: min ≤ p50 ≤ p90 ≤ p95 ≤ p99 ≤ max, the mean within [min, max].

Locust counts response times in a histogram rounded to two significant digits (121 ms is
counted as 120, 127 ms as 130), and its percentiles are that histogram's; but it reports
its minimum and maximum exact (to the whole ms) and clamps its median to them. Stored side
by side, a target answering in 121–127 ms read `min 121, p50 120.84, p95 120, p99 130,
max 127`: a p95 below the minimum, a p99 above the maximum. loadmgr stores every latency
figure at the histogram's resolution (docs/metrics.md, "One resolution"): the percentiles
are its buckets, the minimum and maximum its lowest and highest bucket, and the mean, the
one figure that is no bucket, lies between them. The loadmgr plugin's histograms give
exactly that by construction (models/histogram.py); Locust's payloads are put in that
form here, by whatever writes them (locust/stats.py).
"""

from __future__ import annotations

from typing import Any

from loadmgr.models.stats.catalog import BY_NAME, QUANTILES


def bucket_ms(ms: float) -> int:
    """A response time rounded as Locust's histogram rounds it (`bucket_response_time`:
    two significant digits, 1 ms below 100 ms; half to even). The loadmgr plugin, a file
    Locust loads on its own, keeps its own copy (`bucket`); a test holds them equal."""
    digits = 0 if ms < 100 else -1 if ms < 1000 else -2 if ms < 10000 else -3
    return int(round(ms, digits))


# The keys of (min, mean, percentiles ascending, max) in stored totals and in a
# `requestStats[]` item (intervals name their own fields as totals do).
TOTAL_KEYS = (
    BY_NAME["min"].total_key,
    BY_NAME["avg"].total_key,
    tuple(m.total_key for m in sorted(QUANTILES, key=lambda m: m.quantile or 0.0)),
    BY_NAME["max"].total_key,
)
REQUEST_KEYS = (
    BY_NAME["min"].request_key,
    BY_NAME["avg"].request_key,
    tuple(m.request_key for m in sorted(QUANTILES, key=lambda m: m.quantile or 0.0)),
    BY_NAME["max"].request_key,
)
LatencyKeys = tuple[str, str, tuple[str, ...], str]


def _clamp(value: float, low: float | None, high: float | None) -> float:
    if low is not None and value < low:
        return low
    if high is not None and value > high:
        return high
    return value


def at_histogram_resolution(numbers: dict[str, Any], keys: LatencyKeys) -> dict[str, Any]:
    """Locust's latency figures in `numbers` (under `keys`), in place, at its histogram's
    resolution and in order; a figure that is None (not known) stays None.

    The minimum and maximum become their buckets; each percentile becomes its bucket (the
    median Locust clamped to its exact extremes), never below the one before it, within
    [min, max]; the mean stays exact within [min, max]. Only a payload mixing windows or
    written by hand can need more than the rounding of min and max: a percentile below a
    lower one is raised to it, which is the one order the quantiles can have.
    """
    min_key, avg_key, quantile_keys, max_key = keys
    low, high = numbers.get(min_key), numbers.get(max_key)
    low = None if low is None else float(bucket_ms(low))
    high = None if high is None else float(bucket_ms(high))
    if low is not None and high is not None and low > high:
        low, high = high, low
    if min_key in numbers:
        numbers[min_key] = low
    if max_key in numbers:
        numbers[max_key] = high
    floor = low
    for key in quantile_keys:
        value = numbers.get(key)
        if value is not None:
            value = _clamp(float(bucket_ms(value)), floor, high)
            numbers[key] = value
            floor = value
    mean = numbers.get(avg_key)
    if mean is not None:
        numbers[avg_key] = _clamp(float(mean), low, high)
    return numbers


def out_of_order(numbers: dict[str, Any], keys: LatencyKeys) -> list[str]:
    """What breaks min ≤ p50 ≤ … ≤ max or min ≤ avg ≤ max among the known figures in
    `numbers`, as `"a > b"` phrases; empty when in order."""
    min_key, avg_key, quantile_keys, max_key = keys
    chain = [k for k in (min_key, *quantile_keys, max_key) if numbers.get(k) is not None]
    broken = [
        f"{a}={numbers[a]} > {b}={numbers[b]}"
        for i, a in enumerate(chain)
        for b in chain[i + 1 :]
        if numbers[a] > numbers[b]
    ]
    mean = numbers.get(avg_key)
    if mean is not None:
        low, high = numbers.get(min_key), numbers.get(max_key)
        if low is not None and low > mean:
            broken.append(f"{min_key}={low} > {avg_key}={mean}")
        if high is not None and mean > high:
            broken.append(f"{avg_key}={mean} > {max_key}={high}")
    return broken
