"""A run's stored numbers (`finalStats`, `judgedStats`, `lastMetrics`): made safe to read,
and a metric read out of them.

Anything can have written a run document: the Go control plane, a script, a hand in
mongosh, a bug. A string, a bool, an object, NaN or infinity where a number belongs must
not crash a reader (`runs list`, `metrics compare`, a trend) nor make `-o json` print
`NaN`, which is not JSON: such a value reads as unknown (null), a `totals` that is no
object reads as none, a `requestStats` that is no list as empty, and an item of it that is
no object is left out. Numbers that are finite stay exactly as stored.
"""

from __future__ import annotations

import math
from typing import Any

from loadmgr.models.stats.catalog import METRICS, SERVER_PREFIX, is_server_metric
from loadmgr.models.stats.catalog import metric as catalog_metric

_COUNTS = frozenset(
    {
        "requests",
        "failures",
        "rps",
        "numRequests",
        "numFailures",
        "totalRequests",
        "totalFailures",
        "currentUsers",
        "userCount",
        "workerCount",
        "avgContentLength",
    }
)
_NUMBER_SUFFIXES = ("Ms", "Sec", "Rate", "RPS", "Rps", "Requests", "Failures")


def _numeric_key(key: str) -> bool:
    return key in _COUNTS or key.endswith(_NUMBER_SUFFIXES)


def _number_or_none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _clean_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One object of numbers: numeric keys hold a finite number or null; NaN and infinity
    under any key read as null."""
    cleaned: dict[str, Any] = {}
    for key, value in entry.items():
        if isinstance(key, str) and _numeric_key(key):
            cleaned[key] = _number_or_none(value)
        elif isinstance(value, float) and not math.isfinite(value):
            cleaned[key] = None
        else:
            cleaned[key] = value
    return cleaned


def clean_stats(value: Any) -> Any:
    """`finalStats`, `judgedStats` or `lastMetrics` as it can be read (see the module)."""
    if not isinstance(value, dict):
        return value  # None stays None; anything else is for the model to refuse or default
    cleaned = _clean_entry(value)
    if "totals" in value:
        totals = value["totals"]
        cleaned["totals"] = _clean_entry(totals) if isinstance(totals, dict) else None
    if "requestStats" in value:
        items = value["requestStats"]
        cleaned["requestStats"] = [
            _clean_entry(item) for item in items if isinstance(item, dict)
        ] if isinstance(items, list) else []
    return cleaned


STATS_FIELDS = ("finalStats", "judgedStats", "lastMetrics")


def readable_stats(field: str, value: Any) -> Any:
    """A run's stats field (one of STATS_FIELDS) as it can be read: cleaned; not an object
    at all, as none (`lastMetrics`: empty)."""
    if isinstance(value, dict):
        return clean_stats(value)
    return {} if field == "lastMetrics" else None


# -- a metric out of stored stats ----------------------------------------------------------

# Metric → (key in `totals`, key in a `requestStats` item), from the catalog.
METRIC_KEYS: dict[str, tuple[str, str]] = {m.name: (m.total_key, m.request_key) for m in METRICS}


def find_request(stats: Any, scope: str) -> dict[str, Any] | None:
    """The `requestStats` item named `METHOD name`, or `name` alone when only one matches.

    Stored stats may have been written by anything (the Go control plane, a hand, a bug):
    an item that is not an object with text names is no request."""
    found = stats.get("requestStats") if isinstance(stats, dict) else None
    items = [
        item
        for item in (found if isinstance(found, list) else ())
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    ]
    scope = scope.strip()
    for item in items:
        if f"{item.get('method') or ''} {item['name']}" == scope:
            return dict(item)
    named = [item for item in items if item["name"] == scope]
    return dict(named[0]) if len(named) == 1 else None


def stored_totals(stats: Any) -> dict[str, Any]:
    """The `totals` object of stored stats; empty when there is none or it is no object."""
    totals = stats.get("totals") if isinstance(stats, dict) else None
    return totals if isinstance(totals, dict) else {}


def stored_number(value: Any) -> float | None:
    """A stored metric as a number to judge: None for anything but a finite number of 0 or
    more (a string, a bool, NaN, infinity, a negative latency or rate mean nothing)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def metric_value(stats: Any, metric: str, scope: str | None = None) -> float | None:
    """A catalog metric read from stored stats (`final_stats` output), for the totals or
    the request `scope`; None when unknown or no data. KeyError for an unknown metric."""
    entry = catalog_metric(metric)
    if scope is None:
        value = stored_totals(stats).get(entry.total_key)
    else:
        item = find_request(stats, scope)
        value = item.get(entry.request_key) if item else None
    return stored_number(value)


def with_server_means(stats: Any, server_stats: Any) -> Any:
    """A run's stored numbers with each server metric's mean over the run (`serverStats`,
    docs/server-metrics.md) in their totals, under its catalog key (`server.NAME`): so
    whatever reads a catalog metric out of a run's numbers (comparisons, baseline checks,
    trends) reads a server metric as it reads p95. Stats that are no object stay as they
    are (a run without final numbers is compared on none)."""
    if not isinstance(stats, dict) or not isinstance(server_stats, dict):
        return stats
    means = {
        catalog_metric(SERVER_PREFIX + name).total_key: item.get("avg")
        for name, item in server_stats.items()
        if isinstance(item, dict) and is_server_metric(SERVER_PREFIX + str(name))
    }
    if not means:
        return stats
    return {**stats, "totals": {**stored_totals(stats), **means}}


def server_metrics_of(server_stats: Any) -> list[str]:
    """The catalog names (`server.NAME`) of the server metrics a run summarised."""
    if not isinstance(server_stats, dict):
        return []
    return [
        SERVER_PREFIX + str(name)
        for name in server_stats
        if is_server_metric(SERVER_PREFIX + str(name))
    ]
