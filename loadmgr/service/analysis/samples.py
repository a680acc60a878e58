"""A run's steady intervals as samples: one value per interval of each compared metric,
which the significance of a comparison is tested on (service/analysis/significance.py).

Steady: after the run's warm-up, with the users spawned (Locust's state `running`, or
none recorded by another tool), not a gap no collector saw. A latency is a sample only
from an interval with requests; a rate from every steady interval (a stalled second is
a real 0/s).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from loadmgr.models import LoadTestRun
from loadmgr.models.stats.catalog import SERVER_PREFIX, is_server_metric
from loadmgr.models.stats.catalog import metric as catalog_metric
from loadmgr.service.analysis.windows import run_origin

if TYPE_CHECKING:
    from loadmgr.store import Store

# (request or None for the totals, metric) → the values of the steady intervals, in order.
Samples = dict[tuple[str | None, str], list[float]]

_STEADY_STATES = (None, "running")


def _key_of(name: str, per_request: bool) -> str:
    entry = catalog_metric(name)
    if per_request:
        return entry.request_key
    return name if is_server_metric(name) else entry.interval_total_key


def _projection(metrics: Iterable[str], per_request: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "seq": True,
        "state": True,
        "gap": True,
        "windowStart": True,
        "timestamp": True,
        "intervalSec": True,
        "intervalRequests": True,
        "intervalFailures": True,
    }
    for name in metrics:
        if is_server_metric(name):
            fields["server"] = True
            continue
        fields[_key_of(name, False)] = True
        if per_request:
            fields[f"requestStats.{_key_of(name, True)}"] = True
    if per_request:
        for part in ("method", "name", "intervalRequests", "intervalFailures"):
            fields[f"requestStats.{part}"] = True
    return fields


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class _Read:
    """How one metric's sample is read from an interval (and a request in it): worked out
    once per comparison, not once per interval, request and metric (720 intervals of 20
    requests and 8 metrics are 120,960 reads a run)."""

    name: str
    total_key: str
    request_key: str | None  # None: a server metric, read from `server` of the totals
    latency: bool
    error_rate: bool

    @classmethod
    def of(cls, name: str) -> _Read:
        server = is_server_metric(name)
        return cls(
            name,
            _key_of(name, False),
            None if server else _key_of(name, True),
            catalog_metric(name).unit == "ms",
            name == "error_rate",
        )


def _add(
    samples: Samples, request: str | None, item: dict[str, Any], reads: list[tuple[_Read, str]]
) -> None:
    """One interval's (or one request's in it) value of each metric, added to its samples;
    its request count read once for all of them."""
    requests = _number(item.get("intervalRequests")) or 0.0
    for read, key in reads:
        if read.error_rate:  # a request's interval stores no rate: its counts say it
            failures = _number(item.get("intervalFailures")) or 0.0
            value = failures / requests if requests else None
        elif read.latency and not requests:
            continue  # no request in it: no latency, not a latency of 0
        else:
            value = _number(item.get(key))
        if value is not None:
            samples.setdefault((request, read.name), []).append(value)


def _start(doc: dict[str, Any]) -> datetime | None:
    value = doc.get("windowStart")
    if not isinstance(value, datetime):
        end = doc.get("timestamp")
        if not isinstance(end, datetime):
            return None
        value = end - timedelta(seconds=_number(doc.get("intervalSec")) or 0.0)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def steady_samples(
    store: Store,
    run: LoadTestRun,
    metrics: Iterable[str],
    *,
    requests: Iterable[str] = (),
) -> Samples:
    """The values of `metrics` in each steady interval of `run`: of its totals, and of each
    request in `requests` (`GET /cart`, as `metrics compare` names them). One read."""
    reads = [_Read.of(m) for m in metrics if catalog_metric(m).direction]
    names = [read.name for read in reads]
    servers = [read for read in reads if read.request_key is None]
    totals = [(read, read.total_key) for read in reads if read.request_key is not None]
    per_request = [(read, read.request_key) for read in reads if read.request_key is not None]
    wanted = set(requests)
    samples: Samples = {}
    origin = run_origin(run)
    steady_from = origin + timedelta(seconds=run.warmupSec) if origin is not None else None
    projection = _projection(names, bool(wanted))
    for doc in store.metrics.iter_for_run(run.id, projection):
        if doc.get("gap") is True or doc.get("state") not in _STEADY_STATES:
            continue
        start = _start(doc)
        if steady_from is not None and (start is None or start < steady_from):
            continue
        server = doc.get("server")
        server = server if isinstance(server, dict) else {}
        for read in servers:
            value = _number(server.get(read.name.removeprefix(SERVER_PREFIX)))
            if value is not None:
                samples.setdefault((None, read.name), []).append(value)
        _add(samples, None, doc, totals)
        for item in doc.get("requestStats") or () if wanted else ():
            if not isinstance(item, dict):
                continue
            request = f"{item.get('method', '')} {item.get('name', '')}".strip()
            if request in wanted:
                _add(samples, request, item, per_request)
    return samples
