"""What a run's documents may hold, so that each fits MongoDB's 16 MiB, and what is left
out when one still does not.

The worst case of a run's end, with Locust's answers at loadmgr's limits (names of
`MAX_NAME` characters and methods of `MAX_METHOD`, each character 4 bytes of UTF-8):
`finalStats` and `judgedStats` with MAX_STORED_REQUESTS per-request entries each,
`lastMetrics` with MAX_LIVE_REQUESTS, MAX_STORED_ERRORS errors of MAX_ERROR_TEXT
characters, beside a 1 MB locustfile: about 13 MB, proved by
`tests/unit/test_document_sizes.py`; the steady samples stored after the end add at most
2 MB (`MAX_SAMPLES_BYTES`, service/analysis/run_samples.py). The totals are Locust's
own whatever is left out: only the least busy requests (and the rarest errors) go,
counted in `requestsOmitted` and `errorsOmitted`.

Should MongoDB refuse a document all the same (a refusal: never cured by retrying), the
end is written without its per-request part (`without_per_request`) and an interval
without its histograms, then without its per-request part (`slimmer_intervals`): the
sums of the intervals stay Locust's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from loadmgr.locust.seconds import MAX_METHOD, MAX_NAME
from loadmgr.models import MetricSnapshot

__all__ = [
    "MAX_ERROR_TEXT",
    "MAX_LIVE_REQUESTS",
    "MAX_METHOD",
    "MAX_NAME",
    "MAX_STORED_ERRORS",
    "MAX_STORED_REQUESTS",
    "bounded_stats",
    "busiest_positions",
    "slimmer_intervals",
    "without_per_request",
]

MAX_STORED_REQUESTS = 500  # per-request entries kept in finalStats, judgedStats (Locust: 500)
MAX_LIVE_REQUESTS = 100  # in lastMetrics: what a live view shows
MAX_STORED_ERRORS = 100  # the most frequent errors
MAX_ERROR_TEXT = 1_000  # characters of one error's message
_PER_REQUEST = ("requestStats", "errors")


def _busiest(items: list[Any], limit: int, count_key: str) -> tuple[list[Any], int]:
    """At most `limit` of `items`, the ones with most `count_key`, in their own order."""
    if len(items) <= limit:
        return items, 0
    counts = [item.get(count_key) if isinstance(item, dict) else 0 for item in items]
    return [items[i] for i in busiest_positions(counts, limit)], len(items) - limit


def busiest_positions(counts: list[Any], limit: int) -> list[int]:
    """The positions of the `limit` largest `counts` (anything but a number counts 0; the
    first of equal ones first), in ascending order."""
    ranked = sorted(range(len(counts)), key=lambda i: -_count(counts[i]))
    return sorted(ranked[:limit])


def _count(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def bounded_stats(
    stats: dict[str, Any] | None, requests: int = MAX_STORED_REQUESTS
) -> dict[str, Any] | None:
    """`stats` (finalStats, judgedStats, lastMetrics) with at most `requests` per-request
    entries and MAX_STORED_ERRORS errors of MAX_ERROR_TEXT characters; what is left out
    is counted. Thresholds are judged before this, on everything."""
    if not isinstance(stats, dict):
        return stats
    bounded = dict(stats)
    items = stats.get("requestStats")
    if isinstance(items, list):
        bounded["requestStats"], omitted = _busiest(items, requests, "numRequests")
        if omitted:
            bounded["requestsOmitted"] = omitted
    errors = stats.get("errors")
    if isinstance(errors, list):
        kept, omitted = _busiest(errors, MAX_STORED_ERRORS, "occurrences")
        bounded["errors"] = [_short_error(error) for error in kept]
        if omitted:
            bounded["errorsOmitted"] = omitted
    return bounded


def _short_error(error: Any) -> Any:
    text = error.get("error") if isinstance(error, dict) else None
    if isinstance(text, str) and len(text) > MAX_ERROR_TEXT:
        return {**error, "error": text[: MAX_ERROR_TEXT - 1] + "…"}
    return error


def without_per_request(changes: dict[str, Any], reason: str) -> dict[str, Any]:
    """A run's end without its per-request part (entries, errors, histograms), the totals
    kept, and `reason` told in `error`: what is stored when MongoDB refused the whole."""
    slim = dict(changes)
    for key in ("finalStats", "judgedStats", "lastMetrics"):
        part = changes.get(key)
        if isinstance(part, dict):
            slim[key] = {k: v for k, v in part.items() if k not in _PER_REQUEST}
    note = f"per-request statistics not stored: {reason}"
    slim["error"] = f"{changes['error']}; {note}" if changes.get("error") else note
    return slim


def slimmer_intervals(snapshot: MetricSnapshot) -> Iterator[MetricSnapshot]:
    """Ever smaller forms of an interval MongoDB refused, its totals kept: without its
    histograms, then without its per-request entries."""
    yield snapshot.model_copy(
        update={
            "hist": None,
            "requestStats": [
                item.model_copy(update={"hist": None}) for item in snapshot.requestStats
            ],
            "metadata": {**snapshot.metadata, "slimmed": "without its histograms"},
        }
    )
    yield snapshot.model_copy(
        update={
            "hist": None,
            "requestStats": [],
            "metadata": {**snapshot.metadata, "slimmed": "without its per-request part"},
        }
    )
