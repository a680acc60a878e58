"""`/stats/requests` payloads checked before use: Locust, or a proxy in front of it, may lie.

Strings where numbers belong, NaN/Infinity, 10**30, negative counters, a dict as `state`,
300,000 entries: each is refused with one `InvalidPayload`, so that the stats builder and
MongoDB only ever see numbers that can be true (docs/locust-api.md, "GET /stats/requests",
lists the real fields).
"""

from __future__ import annotations

import math
from typing import Any

from loadmgr.locust.seconds import (
    KNOWN_STATES,
    MAX_METHOD,
    MAX_RAW_NAME,
    InvalidPayload,
    stored_name,
)

MAX_ENTRIES = 10_000  # Locust itself sends at most 500 entries and 500 errors
MAX_WORKERS = 100_000
MAX_COUNTER = 2**53
MAX_MS = 10**9
MAX_RATE = 10**9

_COUNTERS = ("num_requests", "num_failures")
_LATENCIES = (
    "avg_response_time",
    "min_response_time",
    "max_response_time",
    "median_response_time",
    "response_time_percentile_0.95",
    "response_time_percentile_0.99",
    "avg_content_length",
)
_RATES = ("current_rps", "current_fail_per_sec", "total_rps", "total_fail_per_sec")


def _fail(what: str) -> InvalidPayload:
    return InvalidPayload(f"Locust sent impossible stats: {what}")


def _number(value: Any, what: str, high: float, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(f"{what} is {type(value).__name__}, not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(f"{what} is {value}")
    if not 0 <= value <= high:
        raise _fail(f"{what} {value!r:.40} is out of range")


def _text(value: Any, what: str, limit: int) -> None:
    if not isinstance(value, str) or len(value) > limit:
        raise _fail(f"{what} is not a string of at most {limit:,} characters")


def _named(item: dict[str, Any], what: str) -> None:
    """Checks the item's name, shortened in place as every source shortens it."""
    name = item.get("name", "")
    _text(name, what, MAX_RAW_NAME)
    if "name" in item:
        item["name"] = stored_name(name)


def _entry(entry: Any) -> None:
    if not isinstance(entry, dict):
        raise _fail("a stats entry is not an object")
    _named(entry, "an entry's name")
    _text(entry.get("method") or "", "an entry's method", MAX_METHOD)
    name = f"entry {str(entry.get('name'))[:60]!r}"
    for key in _COUNTERS:
        value = entry.get(key, 0)
        _number(value, f"{name} {key}", MAX_COUNTER)
        if isinstance(value, float) and value != int(value):
            raise _fail(f"{name} {key} is not a whole number")
    if entry.get("num_failures", 0) > entry.get("num_requests", 0):
        raise _fail(f"{name} has more failures than requests")
    for key in _LATENCIES:
        _number(entry.get(key), f"{name} {key}", MAX_MS, nullable=True)
    for key in _RATES:
        _number(entry.get(key), f"{name} {key}", MAX_RATE, nullable=True)


def check_stats(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` if every field the collector reads can be true (a name past MAX_NAME
    shortened in place, `stored_name`); else InvalidPayload."""
    state = payload.get("state")
    if not isinstance(state, str) or state not in KNOWN_STATES:
        raise _fail(f"state is {str(state)[:40]!r}")
    entries = payload.get("stats")
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise _fail(f"stats is not a list of at most {MAX_ENTRIES} entries")
    for entry in entries:
        _entry(entry)
    _number(payload.get("user_count", 0), "user_count", MAX_COUNTER)
    if "worker_count" in payload:
        _number(payload.get("worker_count"), "worker_count", MAX_WORKERS)
    _objects(payload.get("workers", []), "workers", MAX_WORKERS, "a worker")
    current = payload.get("current_response_time_percentiles") or {}
    if not isinstance(current, dict):
        raise _fail("current_response_time_percentiles is not an object")
    for key, value in current.items():
        _number(value, str(key)[:60], MAX_MS, nullable=True)
    for error in _objects(payload.get("errors", []), "errors", MAX_ENTRIES, "an error"):
        _named(error, "an error's name")
        _text(error.get("method") or "", "an error's method", MAX_METHOD)
        _number(error.get("occurrences", 0), "an error's occurrences", MAX_COUNTER)
    return payload


def _objects(value: Any, name: str, limit: int, one: str) -> list[dict[str, Any]]:
    """`value` as a list of at most `limit` objects; the payload is refused otherwise."""
    if not isinstance(value, list) or len(value) > limit:
        raise _fail(f"{name} is not a list")
    for item in value:
        if not isinstance(item, dict):
            raise _fail(f"{one} is not an object")
    return value
