"""Response-time histograms: exact percentiles over any set of seconds or intervals.

A histogram maps a rounded response time in whole milliseconds (Locust's own rounding:
1 ms below 100 ms, 10 ms below 1 s, 100 ms below 10 s, 1 s above) to a request count.
Stored compactly as text, `"ms:count,ms:count"` in ascending ms (docs/metrics.md), so that
merging the histograms of any run window gives that window's exact percentiles.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from operator import mul, sub
from typing import Any

from loadmgr.models.stats.catalog import QUANTILES

Histogram = dict[int, int]

MAX_BUCKET_MS = 10**9  # ~11.6 days: anything above is not a response time
MAX_COUNT = 2**53  # counts stay exact as JSON numbers


class HistogramError(ValueError):
    """A histogram text or value that is not one loadmgr wrote."""


class StepsText(str):
    """A histogram's text made from a checked flat step array without empty buckets, with
    that array (`steps`): what the compact encoder would read back from the text, handed
    to it as it is (no parse of 500 texts per interval). Made only by
    `steps_summary_and_text`, where the text is formatted from those very steps; to
    anything else it is the text."""

    steps: list[int]


def encode(histogram: Mapping[int, int]) -> str:
    """The compact text of a histogram (empty buckets left out)."""
    return ",".join(f"{ms}:{count}" for ms, count in sorted(histogram.items()) if count)


def decode(text: str | None) -> Histogram:
    """The histogram of `encode`'s text; HistogramError for anything else."""
    return merge_text_into({}, text)


def merge_text_into(target: Histogram, text: str | None) -> Histogram:
    """Add the counts of `encode`'s text to `target` (in place) without building a second
    dict: the read path of window percentiles over thousands of intervals."""
    if not text:
        return target
    numbers = text.replace(",", ":").split(":")
    # Digits only, exactly one colon a pair: checked by C loops, not one pair at a time.
    if text.count(",") * 2 + 2 != len(numbers) or not "".join(numbers).isdigit():
        raise HistogramError(f"malformed histogram {text[:40]!r}")
    if "" in numbers:
        raise HistogramError(f"malformed histogram {text[:40]!r}")
    values = list(map(int, numbers))
    if max(values[0::2]) > MAX_BUCKET_MS or max(values[1::2]) > MAX_COUNT:
        raise HistogramError(f"histogram out of range {text[:40]!r}")
    pairs = iter(values)
    get = target.get
    for ms, count in zip(pairs, pairs, strict=True):
        target[ms] = get(ms, 0) + count
    return target


def steps_fault(flat: Any) -> str | None:
    """Why `flat` is not a flat step array loadmgr reads (whole numbers, the first bucket
    ≥ 0, each step ≥ 1, counts ≥ 0, in range); None when it is. C loops throughout: the
    collector checks 500 of them per interval and the window reads thousands."""
    if type(flat) is not list or len(flat) % 2:
        return "a histogram that is no list of (bucket, count) pairs"
    if not flat:
        return None
    if set(map(type, flat)) != {int}:
        return "a histogram with a value that is no whole number"
    steps, counts = flat[2::2], flat[1::2]
    if flat[0] < 0 or (steps and min(steps) < 1) or min(counts) < 0:
        return "a histogram whose buckets do not ascend"
    if sum(flat[0::2]) > MAX_BUCKET_MS or max(counts) > MAX_COUNT:
        return "a histogram out of range"
    return None


def whole_steps_fault(flat: list[int]) -> str | None:
    """`steps_fault` of a list known to hold whole numbers ≥ 0 alone (JSON of nothing but
    digits and commas in brackets): one slice, no check of types or signs. The window
    reads check thousands of them."""
    if len(flat) % 2:
        return "a histogram that is no list of (bucket, count) pairs"
    if not flat:
        return None
    steps = flat[2::2]
    if 0 in steps:  # ≥ 0 already: a step below 1 is a 0
        return "a histogram whose buckets do not ascend"
    # A step above MAX_BUCKET_MS fails the sum: `max` over all of it bounds the counts.
    if flat[0] + sum(steps) > MAX_BUCKET_MS or max(flat) > MAX_COUNT:
        return "a histogram out of range"
    return None


def merge_steps_into(target: Histogram, steps: Sequence[int]) -> Histogram:
    """Add a flat step array's counts (`[ms₀, n₀, ms₁ − ms₀, n₁, …]`: the compact form,
    docs/storage.md, already checked) to `target` (in place): no text in between."""
    get = target.get
    for ms, count in zip(accumulate(steps[0::2]), steps[1::2], strict=True):
        target[ms] = get(ms, 0) + count
    return target


def merge_into(target: Histogram, source: Mapping[int, int]) -> Histogram:
    """Add `source`'s counts to `target` (in place) and return it."""
    for ms, count in source.items():
        target[ms] = target.get(ms, 0) + count
    return target


def merged(histograms: Iterable[Mapping[int, int]]) -> Histogram:
    """One histogram holding the counts of all of them."""
    total: Histogram = {}
    for histogram in histograms:
        merge_into(total, histogram)
    return total


def count(histogram: Mapping[int, int]) -> int:
    return sum(histogram.values())


def percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """Locust's percentile (its `calculate_response_time_percentile`): the largest recorded
    value with at most int(n·fraction) requests below it, so that a run's whole window reads
    exactly as Locust's own report; None for an empty histogram."""
    return summary_of(histogram, (("p", fraction),))[0].get("p")


def mean(histogram: Mapping[int, int]) -> float | None:
    """The mean of the rounded response times, in ms."""
    total = count(histogram)
    if total <= 0:
        return None
    return sum(ms * n for ms, n in histogram.items()) / total


def summary(histogram: Mapping[int, int]) -> dict[str, float | None]:
    """min, max, avg and p50/p90/p95/p99 of a histogram, in one pass over its sorted buckets."""
    return summary_and_text(histogram)[0]


def interval_latencies(numbers: Mapping[str, float | None]) -> dict[str, float | None]:
    """A `summary`'s numbers as a stored interval's latency fields (models/documents/runs.py),
    in their order: what the collector's windows and retention's merged windows store."""
    return {
        "avgResponseMs": numbers["avg"],
        "minResponseMs": numbers["min"],
        "maxResponseMs": numbers["max"],
        "p50ResponseMs": numbers["p50"],
        "p90ResponseMs": numbers["p90"],
        "p95ResponseMs": numbers["p95"],
        "p99ResponseMs": numbers["p99"],
    }


def summary_and_text(histogram: Mapping[int, int]) -> tuple[dict[str, float | None], str]:
    """`summary` and `encode` of a histogram with one sort (the collector's hot path)."""
    return summary_of(histogram, _PERCENTILES)


def summary_of(
    histogram: Mapping[int, int], percentiles: tuple[tuple[str, float], ...]
) -> tuple[dict[str, float | None], str]:
    """min, max, avg and the named `percentiles` (Locust's rule), with the histogram's text."""
    buckets = sorted((ms, n) for ms, n in histogram.items() if n > 0)
    text = ",".join([f"{ms}:{n}" for ms, n in buckets])
    total = 0
    weighted = 0
    for ms, n in buckets:
        total += n
        weighted += ms * n
    if total <= 0:
        empty: dict[str, float | None] = dict.fromkeys(("min", "max", "avg"))
        empty.update((key, None) for key, _ in percentiles)
        return empty, text
    numbers: dict[str, float | None] = {
        "min": float(buckets[0][0]),
        "max": float(buckets[-1][0]),
        "avg": weighted / total,
    }
    # In ascending order, the values with at most `wanted` requests below them form a
    # prefix: the answer is the last bucket of that prefix.
    for key, fraction in percentiles:
        wanted = int(total * fraction)
        below = 0
        answer = buckets[0][0]
        for ms, n in buckets:
            if below > wanted:
                break
            answer = ms
            below += n
        numbers[key] = float(answer)
    return numbers, text


def summary_and_steps_text(histogram: Mapping[int, int]) -> tuple[dict[str, float | None], str]:
    """`summary_and_text` whose text carries its steps (a `StepsText`), so the compact
    encoder stores them as they are instead of parsing the text again: retention's merged
    windows, 21 histograms each."""
    buckets = sorted(ms for ms, count in histogram.items() if count > 0)
    if not buckets:
        return summary_and_text(histogram)
    steps = [0] * (2 * len(buckets))
    steps[0::2] = map(sub, buckets, [0, *buckets[:-1]])
    steps[1::2] = map(histogram.__getitem__, buckets)
    return steps_summary_and_text(steps)


def steps_summary_and_text(steps: list[int]) -> tuple[dict[str, float | None], str]:
    """`summary_and_text` of a checked flat step array, whose buckets ascend already: no
    dict, no sort (the collector's hot path when the plugin merged the window)."""
    counts = steps[1::2]
    if 0 in counts:  # an empty bucket is left out of the text: take the general path
        return summary_and_text(merge_steps_into({}, steps))
    buckets = list(accumulate(steps[0::2]))
    text = StepsText(",".join(map(_PAIR, zip(buckets, counts, strict=True))))
    text.steps = steps  # counts ≥ 1 (above), steps ≥ 1 (checked): `hist_flat(text)` exactly
    if not counts:
        return summary_of({}, _PERCENTILES)[0], text
    # Requests below each bucket; Locust's answer is the last bucket with at most
    # int(n·q) below it (as `summary_of`'s walk). The last sum is the total.
    below = list(accumulate(counts, initial=0))
    total = below.pop()
    numbers: dict[str, float | None] = {
        "min": float(buckets[0]),
        "max": float(buckets[-1]),
        "avg": sum(map(mul, buckets, counts)) / total,
    }
    for key, fraction in _PERCENTILES:
        numbers[key] = float(buckets[bisect_right(below, int(total * fraction)) - 1])
    return numbers, text


_PAIR = "%d:%d".__mod__


# The catalog's percentiles: (name, quantile).
_PERCENTILES = tuple((m.name, m.quantile) for m in QUANTILES if m.quantile is not None)
